"""The extract stage: crawl files -> ``pages``, ``image_embeds``, ``page_links`` (+ ``_report.json``).

One Spark task per crawl file. Each task streams its file through FastWARC and the HTML (or WAT)
extractor and hands Arrow batches to Spark (``mapInArrow``), so rows never pass through pickled
Python objects. The tagged rows are persisted once and split into the three tables.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterable, Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from imagerank.crawl.files import FORMATS, ExtractOptions, extract_file
from imagerank.crawl.schemas import EXTRACT_ROWS, TABLES
from imagerank.crawl.sources import expand_input
from imagerank.tables import StagedOutput, now_iso

BATCH_ROWS = 8192


def arrow_batches(paths: Iterable[str], options: ExtractOptions, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Tagged extraction rows of the given files as Arrow record batches."""
    buffer: list[dict] = []
    for path in paths:
        for table, row in extract_file(path, options):
            buffer.append({"table": table, table: row})
            if len(buffer) >= BATCH_ROWS:
                yield pa.RecordBatch.from_pylist(buffer, schema=schema)
                buffer = []
    if buffer:
        yield pa.RecordBatch.from_pylist(buffer, schema=schema)


def build_report(counter_rows: list, table_counts: dict[str, int], paths: list[str]) -> dict:
    """The extract report from the per-file counters."""
    totals: dict[str, int] = defaultdict(int)
    failed = []
    for row in counter_rows:
        if row["name"].startswith("file:"):
            failed.append({"path": row["file"], "reason": row["name"][5:], "error": row["detail"]})
        else:
            totals[row["name"]] += row["n"]

    def group(prefix: str) -> dict[str, int]:
        return {k[len(prefix) :]: v for k, v in sorted(totals.items()) if k.startswith(prefix)}

    records = group("records:")
    unreadable = [f for f in failed if f["reason"] == "unreadable"]
    return {
        "files": {
            "total": len(paths),
            "read": len(paths) - len(unreadable),
            "by_format": group("format:"),
            "failed": failed,
        },
        "records_read": sum(records.values()),
        "records_by_type": records,
        "wat_envelopes_by_type": group("wat:"),
        "pages": table_counts.get("pages", 0),
        "rows_written": {name: table_counts.get(name, 0) for name in TABLES},
        "skipped": group("skip:"),
        "urls_dropped": group("url:"),
        "self_links_dropped": totals.get("link:self", 0),
        "warnings": group("warn:"),
        "errors_by_type": group("error:"),
    }


def run_extract(
    spark: SparkSession,
    input_spec: str | list[str],
    output: str,
    fmt: str = "auto",
    crawl: str | None = None,
    input_base_url: str | None = None,
    parser: str = "selectolax",
    max_page_bytes: int = 5 << 20,
) -> dict:
    """Extract pages, image embeds and page links from crawl files; returns the report."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, not {fmt!r}")
    started = time.time()
    started_at = now_iso()
    specs = [input_spec] if isinstance(input_spec, str) else list(input_spec)
    paths = [path for spec in specs for path in expand_input(spec, input_base_url)]
    if not paths:
        raise ValueError(f"no input files in {specs}")
    options = ExtractOptions(format=fmt, crawl=crawl, parser=parser, max_page_bytes=max_page_bytes)
    schema = to_arrow_schema(EXTRACT_ROWS)

    def extract_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from arrow_batches(batch.column("path").to_pylist(), options, schema)

    files = spark.createDataFrame(
        spark.sparkContext.parallelize([(p,) for p in paths], len(paths)), "path string"
    )
    rows = files.mapInArrow(extract_partition, EXTRACT_ROWS).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        table_counts = {r["table"]: r["count"] for r in rows.groupBy("table").count().collect()}
        counter_rows = [r.asDict() for r in rows.filter(F.col("table") == "counter").select("counter.*").collect()]
        report = {
            "job": "extract",
            "input": specs,
            "format": fmt,
            "parser": parser,
            "crawl": crawl,
            "max_page_bytes": max_page_bytes,
            "started_at": started_at,
            **build_report(counter_rows, table_counts, paths),
        }
        with StagedOutput(spark, output) as staged:
            for name in TABLES:
                table = rows.filter(F.col("table") == name).select(f"{name}.*")
                staged.write(name, table)
            report["finished_at"] = now_iso()
            report["seconds"] = round(time.time() - started, 3)
            staged.report(report)
    finally:
        rows.unpersist()
    return report
