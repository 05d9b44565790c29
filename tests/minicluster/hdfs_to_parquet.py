"""A tiny PySpark application for tests/test_yarn.py: counts the words of a text file (on HDFS) and writes
them as Parquet to OUTPUT/words, and what it ran on (master, deploy mode, application id, the YARN
containers its Python workers ran in) as one JSON line to OUTPUT/info.

    spark-submit --master yarn hdfs_to_parquet.py hdfs://.../lines.txt hdfs://.../out
"""

import json
import os
import sys

from pyspark.sql import SparkSession


def where_am_i(_):
    """Where a Python worker runs: the NodeManager gives each container its CONTAINER_ID."""
    yield os.environ.get("CONTAINER_ID"), sys.executable


def main(source: str, output: str) -> None:
    spark = SparkSession.builder.appName("imagerank-yarn-smoke").getOrCreate()
    sc = spark.sparkContext
    words = (spark.read.text(source)
             .selectExpr("explode(split(value, ' ')) AS word").where("word != ''")
             .groupBy("word").count())
    words.write.mode("overwrite").parquet(f"{output}/words")
    workers = sorted(set(sc.parallelize(range(4), 2).mapPartitions(where_am_i).collect()),
                     key=lambda found: [str(part) for part in found])
    info = {
        "master": sc.master,
        "spark.master": sc.getConf().get("spark.master"),
        "deploy_mode": sc.getConf().get("spark.submit.deployMode", "client"),
        "app_id": sc.applicationId,
        "spark_version": spark.version,
        "default_fs": sc._jsc.hadoopConfiguration().get("fs.defaultFS"),
        "driver_container": os.environ.get("CONTAINER_ID"),
        "driver_python": sys.executable,
        "worker_containers": [container for container, _ in workers],
        "worker_pythons": sorted({python for _, python in workers}),
    }
    spark.createDataFrame([(json.dumps(info),)], "value string").coalesce(1) \
        .write.mode("overwrite").text(f"{output}/info")
    print("YARN-SMOKE " + json.dumps(info), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
