"""Spark's own zip archives are not re-read at each task (imagerank.zip_archives), other archives are."""

import sys
import zipfile
import zipimport

import pytest

from imagerank import zip_archives

EAGER = (3, 10) <= sys.version_info[:2] <= (3, 12)  # the Pythons that re-read at invalidation


def _archive(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(f"{name}.py", f"NAME = {name!r}\n")


@pytest.mark.skipif(not EAGER, reason="this Python reads a zip archive's directory lazily after invalidation")
def test_spark_archives_keep_their_directory_and_others_are_read_again(tmp_path):
    assert zip_archives.spark_archive("/opt/spark/python/lib/pyspark.zip")
    assert zip_archives.spark_archive("/x/py4j-0.10.9.9-src.zip") and zip_archives.spark_archive("/x/spark-core_2.13-4.1.4.jar")
    assert not zip_archives.spark_archive("/x/imagerank-deps.zip") and not zip_archives.spark_archive("/x/pyspark.zip.bak")
    assert zip_archives.install() is False  # installed once, by importing imagerank
    seen = {}
    for name in ("deps.zip", "spark-core_2.13-4.1.4.jar"):
        path = tmp_path / name
        _archive(path, ["first"])
        importer = zipimport.zipimporter(str(path))
        _archive(path, ["first", "second"])  # the archive replaced after it was first read
        importer.invalidate_caches()
        seen[name] = importer.find_spec("second") is not None
    assert seen == {"deps.zip": True, "spark-core_2.13-4.1.4.jar": False}


def test_a_python_worker_keeps_it_once_it_ran_imagerank_code(spark):
    def probe(_):
        import imagerank  # importing the package installs it

        return imagerank.__name__ == "imagerank" and getattr(zipimport.zipimporter.invalidate_caches, "_imagerank", False)

    got = spark.sparkContext.parallelize(range(2), 2).map(probe).collect()
    assert got == [EAGER, EAGER]
