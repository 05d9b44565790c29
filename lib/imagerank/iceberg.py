"""The committed tables as Iceberg tables, for readers who know nothing of imagerank's run folders.

Set ``spark.imagerank.iceberg.tables`` (and put Iceberg's Spark runtime on the classpath) and each
stage, after it commits a run, replaces one Iceberg table per table of the run:

- ``path``: a path-based table at ``OUTPUT/<table>`` (Iceberg's Hadoop tables), read with
  ``spark.read.format("iceberg").load(OUTPUT + "/pages")``. Needs no catalog service. Iceberg's
  Hadoop tables commit by renaming a metadata file, which HDFS and local disks do atomically and
  object stores do not: on S3 and GCS prefer a catalog.
- ``CATALOG.NAMESPACE``: tables ``CATALOG.NAMESPACE.<table>`` in a catalog the session configured
  (AWS Glue on EMR, a Hive metastore or BigLake on Dataproc), read with ``spark.table(...)``,
  Athena, Trino or BigQuery. Table names are unique across the stages, so one namespace holds a
  whole pipeline.

Each table is replaced in one Iceberg commit (``createOrReplace``), so a reader sees the previous
run's table or the new one, never a mix; the tables of one run are replaced one after another, and
every snapshot names its run (snapshot property ``imagerank.run``), so a reader can check that the
tables it joins come from one run. ``OUTPUT/_CURRENT`` stays the one marker that switches all of a
stage's tables at once. Replacing copies the rows (Parquet stays the stages' own format and the
source of truth); older snapshots keep their files until the table's owner expires them
(``CALL <catalog>.system.expire_snapshots``).
"""

from __future__ import annotations

import hashlib

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from imagerank import fs

SETTING = "spark.imagerank.iceberg.tables"
RUN_PROPERTY = "imagerank.run"


class IcebergError(ValueError):
    """A setting that names no usable Iceberg destination."""


def destination(spark: SparkSession) -> str | None:
    """The value of :data:`SETTING`: None (off), ``path``, or ``CATALOG.NAMESPACE``."""
    value = (spark.conf.get(SETTING, "") or "").strip()
    if not value or value.lower() in ("off", "false", "none"):
        return None
    if value != "path" and len(value.split(".")) != 2:
        raise IcebergError(f"{SETTING}={value}: give 'path' or CATALOG.NAMESPACE (for example glue_catalog.imagerank)")
    return value


def _path_catalog(spark: SparkSession, output: str) -> tuple[str, str]:
    """(catalog, namespace) of a Hadoop catalog whose tables lie at ``output/<table>``."""
    parent, name = output.rstrip("/").rsplit("/", 1)
    catalog = "imagerank_" + hashlib.sha1(parent.encode()).hexdigest()[:12]
    prefix = f"spark.sql.catalog.{catalog}"
    spark.conf.set(prefix, "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set(prefix + ".type", "hadoop")
    spark.conf.set(prefix + ".warehouse", parent)
    return catalog, name


def identifiers(spark: SparkSession, output: str, tables: list[str]) -> dict[str, str]:
    """The Iceberg identifier each table of ``output`` is published as; empty when publishing is off."""
    where = destination(spark)
    if where is None:
        return {}
    if where == "path":
        catalog, namespace = _path_catalog(spark, output)
    else:
        catalog, namespace = where.split(".")
    return {name: f"`{catalog}`.`{namespace}`.`{name}`" for name in tables}


def publish(spark: SparkSession, run_folder: str, run: str, tables: dict[str, list[str] | None],
            names: dict[str, str]) -> None:
    """Replace each Iceberg table in ``names`` with the run's Parquet table of that name."""
    if not names:
        return
    namespace = next(iter(names.values())).rsplit(".", 1)[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    for name, identifier in names.items():
        frame = spark.read.parquet(fs.join(run_folder, name))
        writer = (frame.writeTo(identifier)
                  .tableProperty("format-version", "2")
                  .option("snapshot-property." + RUN_PROPERTY, run))
        partition_by = tables.get(name)
        if partition_by:
            writer = writer.partitionedBy(*[F.col(column) for column in partition_by])
        writer.createOrReplace()
