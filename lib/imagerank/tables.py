"""Writing a stage's output so that readers see the whole of it or none of it, plus its report.

A stage writes every table and ``_report.json`` into a staging folder beside the output, then
swaps it in: the old output (if any) is renamed aside, the staging folder renamed to the output,
the old one deleted. A failed run leaves only a ``*.__staging-*`` folder, never a half output
under the output's name, and ``_report.json`` is the last thing written inside it. Paths go
through Hadoop's FileSystem API, so the same code serves local disks, HDFS and s3a://.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

REPORT = "_report.json"


def _fs(spark: SparkSession, path: str):
    jvm = spark._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark._jsc.hadoopConfiguration()), jpath


def _path(spark: SparkSession, path: str):
    return spark._jvm.org.apache.hadoop.fs.Path(path)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class StagedOutput:
    """Usage::

        with StagedOutput(spark, "out/extract") as staged:
            df.write.parquet(staged.table("pages"))
            staged.report({...})
    """

    def __init__(self, spark: SparkSession, output: str):
        self.spark = spark
        self.output = output.rstrip("/")
        self.run_id = uuid.uuid4().hex[:12]
        self.staging = f"{self.output}.__staging-{self.run_id}"

    def table(self, name: str) -> str:
        return f"{self.staging}/{name}"

    def write(self, name: str, df: DataFrame, partition_by: list[str] | None = None) -> None:
        writer = df.write.mode("errorifexists")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(self.table(name))

    def report(self, report: dict) -> None:
        write_text(self.spark, f"{self.staging}/{REPORT}", json.dumps(report, indent=2, sort_keys=True, default=str))

    def __enter__(self) -> "StagedOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        fs, staging = _fs(self.spark, self.staging)
        if exc_type is not None:
            fs.delete(staging, True)
            return
        output = _path(self.spark, self.output)
        old = _path(self.spark, f"{self.output}.__old-{self.run_id}")
        parent = output.getParent()
        if parent is not None and not fs.exists(parent):
            fs.mkdirs(parent)
        had_old = fs.exists(output)
        if had_old and not fs.rename(output, old):
            raise OSError(f"could not move the previous {self.output} aside")
        if not fs.rename(staging, output):
            if had_old:
                fs.rename(old, output)
            raise OSError(f"could not move {self.staging} to {self.output}")
        if had_old:
            fs.delete(old, True)


def delete_path(spark: SparkSession, path: str) -> None:
    """Remove a file or folder (recursively) through Hadoop's FileSystem API; absent is fine."""
    fs, jpath = _fs(spark, path)
    fs.delete(jpath, True)


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, jpath = _fs(spark, path)
    fs.setWriteChecksum(False)  # no .crc sidecar next to the report on local disks
    stream = fs.create(jpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    fs, jpath = _fs(spark, path)
    jvm = spark._jvm
    stream = fs.open(jpath)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return "\n".join(iter(reader.readLine, None))
    finally:
        stream.close()


def read_report(spark: SparkSession, output: str) -> dict:
    """The report of a finished stage; raises if the output is missing or incomplete."""
    return json.loads(read_text(spark, f"{output.rstrip('/')}/{REPORT}"))
