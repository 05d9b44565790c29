"""The committed tables as Iceberg tables (spark.imagerank.iceberg.tables), read by a Spark session that
knows nothing of imagerank: Iceberg's runtime comes from the Maven repository, as on a cluster.
spark-submit in local mode: what is tested is the tables' publication and a foreign reader, which
test_cluster's local-cluster runs do not change."""

from __future__ import annotations

import json

import pyspark
import pytest

from imagerank import commit

from conftest import report_of, table
from test_cluster import Submitted

pytestmark = pytest.mark.slow  # spark-submit end to end: the slow batch (make test-slow)

ICEBERG = {"3.5": "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0",
           "4.0": "org.apache.iceberg:iceberg-spark-runtime-4.0_2.13:1.10.0",
           "4.1": "org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:1.11.0"}

READER = """
import json, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
out = sys.argv[1]
found = {}
for name in ("provider_constants", "popularity"):
    rows = spark.read.format("iceberg").load(out + "/" + name)
    runs = [r.summary.get("imagerank.run") for r in
            spark.read.format("iceberg").load(out + "/" + name + "#snapshots").orderBy("committed_at").collect()]
    found[name] = {"rows": sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in rows.collect()),
                   "runs": runs}
print("FOUND " + json.dumps(found))
"""


def iceberg_package() -> str:
    version = ".".join(pyspark.__version__.split(".")[:2])
    if version not in ICEBERG:
        pytest.skip(f"no Iceberg runtime listed for Spark {version}")
    return ICEBERG[version]


def submit_ok(job: Submitted) -> None:
    code = job.finish(600)
    if code != 0 and any("unresolved dependency" in line or "UnresolvedDependencies" in line for line in job.lines):
        pytest.skip("Iceberg's runtime could not be fetched from the Maven repository: " + job.log(5))
    assert code == 0, job.log()


def test_each_run_replaces_the_iceberg_tables_that_plain_spark_reads(spark, sample_crawl, tmp_path):
    package = iceberg_package()
    catalog = sample_crawl["catalog"]
    fewer = tmp_path / "fewer.csv"
    lines = open(catalog, encoding="utf-8").read().splitlines()
    fewer.write_text("\n".join(lines[:len(lines) // 2]) + "\n", encoding="utf-8")
    out = tmp_path / "pop"
    settings = {"spark.imagerank.iceberg.tables": "path"}
    runs = []
    for source in (catalog, str(fewer)):
        submit_ok(Submitted("popularity.py", ["--catalog", source, "--output", str(out)], conf=settings,
                            packages=package, master="local[2]"))
        runs.append(commit.marker(str(out))["run"])
    report = report_of(out)
    assert set(report["iceberg_tables"]) == {"provider_constants", "popularity"}
    reader = tmp_path / "reader.py"
    reader.write_text(READER)
    job = Submitted(str(reader), [str(out)], packages=package, master="local[1]")
    submit_ok(job)
    (line,) = [line for line in job.out if line.startswith("FOUND ")]
    found = json.loads(line[len("FOUND "):])
    for name in ("provider_constants", "popularity"):
        expected = sorted(json.dumps(r.asDict(), sort_keys=True, default=str) for r in table(spark, out, name).collect())
        assert found[name]["rows"] == expected  # the second run's rows, not the first's, not both
        assert found[name]["runs"] == runs  # one snapshot per run, each naming its run
    assert len(found["popularity"]["rows"]) < len(lines) - 1  # the smaller catalog's


def test_a_setting_that_names_no_destination_fails_before_any_work(spark, sample_crawl, tmp_path):
    from imagerank.commands import main

    spark.conf.set("spark.imagerank.iceberg.tables", "glue_catalog")
    try:
        code = main("popularity", ["--catalog", sample_crawl["catalog"], "--output", str(tmp_path / "pop")])
    finally:
        spark.conf.unset("spark.imagerank.iceberg.tables")
    assert code == 2
    assert not (tmp_path / "pop" / "_runs").exists()
