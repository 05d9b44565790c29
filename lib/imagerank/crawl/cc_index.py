"""Selecting WARC records through Common Crawl's columnar URL index (cc-index-table).

The index is Parquet, one row per capture, partitioned by ``crawl`` and ``subset``
(``s3://commoncrawl/cc-index/table/cc-main/warc/crawl=CC-MAIN-2024-10/subset=warc/``), with the
URL (``url``, ``url_host_name``, ``url_host_registered_domain``...), the fetch (``fetch_status``,
``content_mime_type``, ``content_mime_detected``) and where the record lies (``warc_filename``,
relative to the bucket, ``warc_record_offset``, ``warc_record_length``). As cc-pyspark's
CCIndexWarcSparkJob does, a SQL WHERE clause selects the captures, in Spark (Parquet's column
pruning and predicate push-down read little of the index); the selected records are grouped by
WARC file, and one extraction task per WARC file reads its records with bounded range requests,
neighbours together (:func:`imagerank.crawl.files.spans`).

The WARC file names come to the driver (a crawl has about 10^5 WARC files); the offsets and
lengths stay in Spark, one sorted array per WARC file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.crawl.sources import join_path
from imagerank.stage import StageError

WHERE = ("warc_filename", "warc_record_offset", "warc_record_length")  # the columns extraction needs
EXAMPLE = "url_host_registered_domain IN ('wikipedia.org', 'flickr.com') AND fetch_status = 200"


@dataclass
class Selection:
    """The records a filter selected: ``paths`` (the WARC files, in part order), ``records`` (a
    DataFrame of ``part``, ``path``, ``ranges``: array of (offset, length) sorted), and counts."""

    paths: list[str]
    records: DataFrame
    selected: int  # index rows the filter selected
    bad_rows: int  # of those, rows without a WARC file name, an offset >= 0 or a length > 0: skipped
    duplicate_rows: int  # rows naming a record another row names too: the record is read once
    cached: DataFrame  # the grouped selection, persisted while the extraction reads it

    def release(self) -> None:
        self.cached.unpersist()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_index(spark: SparkSession, path: str, where: str) -> DataFrame:
    """The index rows at ``path`` that ``where`` selects; :class:`StageError` (one line naming
    the path or the filter and the fix) for a path that is not such an index or a filter that
    does not parse or names columns the index lacks."""
    try:
        index = spark.read.parquet(path)
    except AnalysisException as error:
        raise StageError(f"--cc-index {path}: cannot be read as Parquet ({_first_line(error)}); give the folder "
                         f"of Common Crawl's columnar index, e.g. s3://commoncrawl/cc-index/table/cc-main/warc/")
    missing = [name for name in WHERE if name not in index.columns]
    if missing:
        raise StageError(f"--cc-index {path}: has no column {', '.join(missing)}; it is not Common Crawl's "
                         f"columnar index (its columns: {', '.join(index.columns)})")
    try:
        return index.where(F.expr(where))
    except AnalysisException as error:  # ParseException is one
        raise StageError(f"--index-filter {where!r}: {_first_line(error)}; write a SQL WHERE clause over the "
                         f"index's columns ({', '.join(index.columns)}), e.g. \"{EXAMPLE}\"")


def select(spark: SparkSession, path: str, where: str, base_url: str | None) -> Selection:
    """The WARC records of the index at ``path`` that ``where`` selects, grouped by WARC file
    (names made absolute against ``base_url``, as a manifest's are). A selection of nothing, or
    of relative names without ``base_url``, raises :class:`StageError`."""
    rows = read_index(spark, path, where)
    offset, length = F.col("warc_record_offset").cast("long"), F.col("warc_record_length").cast("long")
    usable = F.col("warc_filename").isNotNull() & (offset >= 0) & (length > 0)
    grouped = (rows
               .groupBy("warc_filename")
               .agg(F.sort_array(F.collect_set(F.when(usable, F.struct(offset.alias("offset"),
                                                                        length.alias("length")))))
                    .alias("ranges"),
                    F.count(F.lit(1)).alias("n_selected"),
                    F.sum(F.when(usable, 0).otherwise(1)).alias("n_bad"))
               .persist(StorageLevel.MEMORY_AND_DISK))
    files = (grouped
             .select("warc_filename", "n_selected", "n_bad", F.size("ranges").alias("n_records"))
             .orderBy("warc_filename")
             .collect())
    selected = sum(row["n_selected"] for row in files)
    bad = sum(row["n_bad"] for row in files)
    duplicate = selected - bad - sum(row["n_records"] for row in files)
    names = [row["warc_filename"] for row in files if row["warc_filename"] is not None and row["n_bad"] < row["n_selected"]]
    if not names:
        grouped.unpersist()
        what = "no record" if not selected else f"{selected} rows, none with a WARC file, offset and length"
        raise StageError(f"--index-filter {where!r} selects {what} of --cc-index {path}; check the filter "
                         f"(and the crawl and subset it names)")
    relative = next((name for name in names if not fs.scheme_of(name) and not name.startswith("/")), None)
    if relative is not None and not base_url:
        grouped.unpersist()
        raise StageError(f"--cc-index {path} names WARC files relative to a bucket ({relative}); give "
                         f"--input-base-url s3://commoncrawl/ or https://data.commoncrawl.org/")
    paths = [join_path(base_url, name) if base_url else name for name in names]
    parts = spark.createDataFrame(list(enumerate(zip(names, paths))),
                                  "part int, file struct<warc_filename: string, path: string>")
    records = (grouped
               .join(parts.select("part", "file.*"), on="warc_filename", how="inner")
               .select("part", "path", "ranges"))
    return Selection(paths=paths, records=records, selected=selected, bad_rows=bad, duplicate_rows=duplicate,
                     cached=grouped)
