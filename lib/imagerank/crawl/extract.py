"""The extract stage: crawl files -> ``pages``, ``image_embeds``, ``page_links`` (+ ``_report.json``).

One Spark task per crawl file. Each task streams its file through FastWARC and the HTML (or WAT)
extractor and writes its rows straight to Parquet (pyarrow, one part file per crawl file and
table, row groups flushed as they fill), so rows never cross into the JVM; only the task's
counters come back to the driver. Part files are written under a temporary name and moved into
place, so a retried or speculative task replaces its own part instead of adding a second one;
the whole output is staged and swapped in by :class:`imagerank.tables.StagedOutput`.

Measured (bench/bench_extract.py): handing the rows to Spark through ``mapInArrow`` and splitting
a persisted union into three tables ran ~3.8x the plain-Python time; writing from the task brings
the Spark job close to the plain-Python time.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from imagerank.crawl.files import FORMATS, ExtractOptions, extract_file
from imagerank.crawl.schemas import TABLES
from imagerank.crawl.sources import expand_input
from imagerank.tables import StagedOutput, now_iso

ROW_GROUP = 65536


def arrow_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for a Spark-style path (s3a:// is Hadoop's name for s3://)."""
    if path.startswith("s3a://"):
        path = "s3://" + path[len("s3a://") :]
    if "://" not in path:
        return pafs.LocalFileSystem(), path
    return pafs.FileSystem.from_uri(path)


class PartWriter:
    """Rows of one crawl file into one Parquet part file per table."""

    def __init__(self, folder: str, part: int):
        self.fs, self.root = arrow_filesystem(folder)
        self.part = part
        self.schemas = {name: to_arrow_schema(schema) for name, schema in TABLES.items()}
        self.buffers: dict[str, list[dict]] = {name: [] for name in TABLES}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.tmp_suffix = f".tmp-{uuid.uuid4().hex[:8]}"
        self.counts: dict[str, int] = defaultdict(int)

    def _final(self, table: str) -> str:
        return f"{self.root}/{table}/part-{self.part:05d}.parquet"

    def _flush(self, table: str) -> None:
        rows = self.buffers[table]
        if table not in self.writers:
            self.fs.create_dir(f"{self.root}/{table}", recursive=True)
            sink = self.fs.open_output_stream(self._final(table) + self.tmp_suffix)
            self.writers[table] = pq.ParquetWriter(sink, self.schemas[table], compression="snappy")
        if rows:
            self.writers[table].write_table(pa.Table.from_pylist(rows, schema=self.schemas[table]))
            self.buffers[table] = []

    def add(self, table: str, row: dict) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        self.counts[table] += 1
        if len(buffer) >= ROW_GROUP:
            self._flush(table)

    def close(self) -> None:
        for table in TABLES:
            self._flush(table)  # every table gets a part file, empty or not
            self.writers[table].close()
            self.fs.move(self._final(table) + self.tmp_suffix, self._final(table))

    def abort(self) -> None:
        for table, writer in self.writers.items():
            try:
                writer.close()
                self.fs.delete_file(self._final(table) + self.tmp_suffix)
            except OSError:
                pass


def extract_files(indexed_paths: Iterable[tuple[int, str]], folder: str, options: ExtractOptions) -> Iterator[dict]:
    """Extract each (part number, path) into ``folder``; yields the counter rows of each file."""
    for part, path in indexed_paths:
        writer = PartWriter(folder, part)
        try:
            for table, row in extract_file(path, options):
                if table == "counter":
                    yield row
                else:
                    writer.add(table, row)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        for table in TABLES:
            yield {"file": path, "name": "rows:" + table, "n": writer.counts[table], "detail": None}


def build_report(counter_rows: list[dict], n_paths: int) -> dict:
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
    rows = group("rows:")
    unreadable = [f for f in failed if f["reason"] == "unreadable"]
    return {
        "files": {
            "total": n_paths,
            "read": n_paths - len(unreadable),
            "by_format": group("format:"),
            "failed": failed,
        },
        "records_read": sum(records.values()),
        "records_by_type": records,
        "wat_envelopes_by_type": group("wat:"),
        "pages": rows.get("pages", 0),
        "rows_written": {name: rows.get(name, 0) for name in TABLES},
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
    started, started_at = time.time(), now_iso()
    specs = [input_spec] if isinstance(input_spec, str) else list(input_spec)
    paths = [path for spec in specs for path in expand_input(spec, input_base_url)]
    if not paths:
        raise ValueError(f"no input files in {specs}")
    options = ExtractOptions(format=fmt, crawl=crawl, parser=parser, max_page_bytes=max_page_bytes)

    with StagedOutput(spark, output) as staged:
        folder = staged.staging
        counter_rows = (
            spark.sparkContext.parallelize(list(enumerate(paths)), len(paths))
            .mapPartitions(lambda part: extract_files(part, folder, options))
            .collect()
        )
        report = {
            "job": "extract",
            "input": specs,
            "format": fmt,
            "parser": parser,
            "crawl": crawl,
            "max_page_bytes": max_page_bytes,
            "started_at": started_at,
            **build_report(counter_rows, len(paths)),
            "finished_at": now_iso(),
            "seconds": round(time.time() - started, 3),
        }
        staged.report(report)
    return report
