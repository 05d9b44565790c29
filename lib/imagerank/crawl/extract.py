"""The extract stage: crawl files -> ``pages``, ``image_embeds``, ``page_links`` (+ ``_report.json``).

One Spark task per crawl file. Each task streams its file through FastWARC and the HTML (or WAT)
extractor and writes its rows straight to Parquet (pyarrow, one part file per crawl file and
table, row groups flushed as they fill), so rows never cross into the JVM. A part is written under
a hidden temporary name (``.part-N...``, which Spark does not list) and moved into place, so a
retried or speculative task replaces its own part and a killed one leaves nothing a reader sees.
Last, the task writes the file's counters to ``_files/part-N.json``: that file marks the crawl
file as finished, cleanly or with a failure (``file:unreadable``, ``file:failed_midway``,
``file:no_records``), and the report is summed from those files by Spark. ``--resume`` reads again
every file that did not finish cleanly (and every file whose counters are missing); part ``N`` is
always the N-th input file, so the parts and counters of a file read again replace those of its
earlier attempt, whose rows are never read twice. The run is committed by
:class:`imagerank.stage.Stage`.

Measured (bench/bench_extract.py): handing the rows to Spark through ``mapInArrow`` and splitting
a persisted union into three tables ran ~3.8x the plain-Python time; writing from the task brings
the Spark job close to the plain-Python time.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from imagerank import fs
from imagerank.crawl.files import FORMATS, ExtractOptions, extract_pages
from imagerank.crawl.records import TOLERANT_READER
from imagerank.crawl.schemas import COUNTER, TABLES
from imagerank.crawl import sources
from imagerank.crawl.cc_index import EXAMPLE, Selection, select
from imagerank.crawl.sources import expand_input
from imagerank.progress import FileProgress
from imagerank.stage import Stage, StageError

ROW_GROUP = 65536
FILES = "_files"  # one JSON-lines file of counters per crawl file finished
RETRIED_LISTED = 1000  # files read again by --resume named in the report; the rest are counted


def part_name(part: int) -> str:
    return f"part-{part:05d}"


class PartWriter:
    """Rows of one crawl file into one Parquet part file per table. Rows are tuples in
    :data:`imagerank.crawl.schemas.COLUMNS` order; a row group is made from them as one Arrow struct
    array, split into columns (README, "Speed", has what that saves against dicts)."""

    def __init__(self, folder: str, part: int):
        self.folder = folder
        self.part = part
        self.schemas = {name: to_arrow_schema(schema) for name, schema in TABLES.items()}
        self.structs = {name: pa.struct(list(schema)) for name, schema in self.schemas.items()}
        self.buffers: dict[str, list[tuple]] = {name: [] for name in TABLES}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.sinks: dict = {}
        self.tmp_suffix = f".tmp-{uuid.uuid4().hex[:8]}"
        self.counts: dict[str, int] = defaultdict(int)

    def _final(self, table: str) -> str:
        return fs.join(self.folder, table, part_name(self.part) + ".parquet")

    def _tmp(self, table: str) -> str:
        return fs.join(self.folder, table, "." + part_name(self.part) + ".parquet" + self.tmp_suffix)

    def _flush(self, table: str) -> None:
        rows = self.buffers[table]
        if table not in self.writers:
            self.sinks[table] = fs.open_output(self._tmp(table))
            self.writers[table] = pq.ParquetWriter(self.sinks[table], self.schemas[table], compression="snappy")
        if rows:
            self.writers[table].write_table(pa.Table.from_struct_array(pa.array(rows, type=self.structs[table])))
            self.buffers[table] = []

    def add_page(self, page: tuple, embeds: list[tuple], links: list[tuple]) -> None:
        """One page's rows (:func:`imagerank.crawl.files.extract_pages`)."""
        for table, rows in (("pages", (page,)), ("image_embeds", embeds), ("page_links", links)):
            buffer = self.buffers[table]
            buffer.extend(rows)
            self.counts[table] += len(rows)
            if len(buffer) >= ROW_GROUP:
                self._flush(table)

    def close(self) -> None:
        for table in TABLES:
            self._flush(table)  # every table gets a part file, empty or not
            self.writers[table].close()
            self.sinks[table].close()
            final = self._final(table)
            if not fs.is_local(final) and fs.scheme_of(final) not in fs.OBJECT_STORES and fs.exists(final):
                # HDFS renames over no file: the part of an earlier attempt at this crawl file (a
                # retried task, or a file --resume reads again) goes first
                fs.delete_tree(final)
            fs.move(self._tmp(table), final)

    def abort(self) -> None:
        for table, writer in self.writers.items():
            try:
                writer.close()
                self.sinks[table].close()
                fs.delete_tree(self._tmp(table))
            except OSError:
                pass


def extract_files(items: Iterable[tuple[int, str, list | None]], folder: str, options: ExtractOptions,
                  settings: fs.FsSettings | None = None, progress: tuple | None = None) -> Iterator[dict]:
    """Extract each (part number, path, ranges) into ``folder`` (ranges: the (offset, length) of
    the records to read, None for the whole file); yields each file's counter rows once written."""
    if settings is not None:
        fs.configure(settings)
    for part, path, ranges in items:
        writer = PartWriter(folder, part)
        counters = []
        try:
            for kind, item in extract_pages(path, options, ranges):
                if kind == "counter":
                    counters.append(item)
                else:
                    writer.add_page(*item)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        counters += [{"file": path, "name": "rows:" + table, "n": writer.counts[table], "detail": None}
                     for table in TABLES]
        fs.write_text(fs.join(folder, FILES, part_name(part) + ".json"),
                      "".join(json.dumps(row) + "\n" for row in counters))
        if progress is not None:
            progress[0].add(1)
            progress[1].add(writer.counts["pages"])
        yield from counters


def file_outcomes(spark: SparkSession, folder: str) -> dict[int, tuple[str, str | None]]:
    """Part number -> (crawl file, failure) of every crawl file a run has finished (its ``_files``
    counters are written), read by Spark. The failure is the reason of its ``file:`` counter
    (``unreadable``, ``failed_midway``, ``no_records``), None for a file that finished cleanly
    (``file:tolerant_reader`` is not a failure)."""
    files = fs.join(folder, FILES)
    if not fs.exists(files):
        return {}
    counters = spark.read.schema(COUNTER).json(files)
    part = F.regexp_extract(F.col("_metadata.file_name"), r"^part-(\d+)\.json$", 1)
    name = F.col("name")
    failure = F.when(name.startswith("file:") & (name != TOLERANT_READER), F.substring(name, len("file:") + 1, 1 << 16))
    rows = (counters.groupBy(part.alias("part"))
            .agg(F.min("file").alias("file"), F.min(failure).alias("failure"))
            .where(F.col("part") != "")
            .collect())
    return {int(row["part"]): (row["file"], row["failure"]) for row in rows}


def resume_plan(outcomes: dict[int, tuple[str, str | None]], paths: list[str]) -> tuple[set[int], list[dict], list[int]]:
    """What ``--resume`` does with an unfinished run's finished files (:func:`file_outcomes`):
    (parts not read again: finished cleanly, as the same input file; files read again because they
    failed, each ``{"path", "reason"}`` in input order; parts past the end of ``paths``, to remove).

    A part whose counters name another file than the input now at that place (the manifest
    changed) is read again as well, not listed as retried: its earlier rows are of another file."""
    done, retried, beyond = set(), [], []
    for part, (path, failure) in sorted(outcomes.items()):
        if part >= len(paths):
            beyond.append(part)
        elif path != paths[part]:
            continue
        elif failure is None:
            done.add(part)
        else:
            retried.append({"path": path, "reason": failure})
    return done, retried, beyond


def drop_parts(folder: str, parts: list[int]) -> None:
    """Remove parts and their counters from a run (the table parts first: the counters mark them)."""
    for part in parts:
        for table in TABLES:
            fs.delete_tree(fs.join(folder, table, part_name(part) + ".parquet"))
        fs.delete_tree(fs.join(folder, FILES, part_name(part) + ".json"))


def build_report(counter_rows: list[dict], n_paths: int) -> dict:
    """The extract report from the per-file counters."""
    totals: dict[str, int] = defaultdict(int)
    failed, tolerant = [], []
    for row in counter_rows:
        if row["name"] == TOLERANT_READER:
            tolerant.append(row["file"])
        elif row["name"].startswith("file:"):
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
            "tolerant_reader": sorted(tolerant),
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
        **({"index": group("index:")} if any(name.startswith("index:") for name in totals) else {}),
    }


def retried_report(retried: list[dict]) -> dict:
    """The report's ``files_retried``: the files ``--resume`` read again because their earlier
    attempt failed (:func:`resume_plan`), counted by that failure; the first :data:`RETRIED_LISTED`
    named, in input order (their outcome this time is in ``files.failed`` like any file's)."""
    return {"total": len(retried), "by_reason": dict(sorted(Counter(f["reason"] for f in retried).items())),
            "listed": retried[:RETRIED_LISTED]}


def summed_counters(spark: SparkSession, folder: str) -> list[dict]:
    """The counters of every crawl file of a run, summed by name (failed files kept apiece), by Spark."""
    counters = spark.read.schema(COUNTER).json(fs.join(folder, FILES))
    per_file = counters.where(F.col("name").startswith("file:")).collect()
    totals = (counters.where(~F.col("name").startswith("file:"))
              .groupBy("name").agg(F.sum("n").alias("n")).collect())
    return sorted((r.asDict() for r in per_file), key=lambda r: (r["file"], r["name"])) + [{"file": None, "name": r["name"], "n": r["n"], "detail": None}
                                             for r in totals]


def check_run(report: dict, n_paths: int, max_failed_files: float) -> None:
    """Raises :class:`StageError` for a run that must not be committed: not one input file could be
    read, more than ``max_failed_files`` of them failed (unreadable, failed mid-way, no records), or
    not one page was extracted. Where every input file held no WARC record, the message says they
    are not WARC or WAT files, naming the first, not the limit (no limit would help)."""
    failed = report["files"]["failed"]
    if report["files"]["read"] == 0:
        first = failed[0] if failed else {}
        raise StageError(f"not one of the {n_paths} input files could be read "
                         f"(first: {first.get('path')}: {first.get('error')})")
    not_crawl = [f for f in failed if f["reason"] == "no_records"]
    if len(not_crawl) == n_paths:
        first = not_crawl[0]["error"]
        raise StageError(first + "; give WARC or WAT files as --input" if n_paths == 1 else
                         f"not one of the {n_paths} input files is a WARC or WAT file (first: {first}); "
                         f"give WARC or WAT files as --input")
    if len(failed) > max_failed_files * n_paths:
        raise StageError(
            f"{len(failed)} of {n_paths} input files failed, more than --max-failed-files {max_failed_files} "
            f"allows (first: {failed[0].get('path')}: {failed[0].get('error')})")
    if report["pages"] == 0:
        raise StageError(f"not one page was extracted from the {n_paths} input files (records read: "
                         f"{report['records_by_type']}, skipped: {report['skipped']})")


def check_index_run(report: dict, max_failed: float) -> None:
    """:func:`check_run` for records selected through Common Crawl's index: raises
    :class:`StageError` where not one record could be read, more than ``max_failed`` of them
    failed, or not one page was extracted."""
    index, failed = report["cc_index"], report["files"]["failed"]
    first = f" (first: {failed[0]['error']})" if failed else ""
    selected = index["records_read"] + index["records_failed"]
    if index["records_read"] == 0:
        raise StageError(f"not one of the {selected} records selected through --cc-index could be read{first}")
    if index["records_failed"] > max_failed * selected:
        raise StageError(f"{index['records_failed']} of the {selected} records selected through --cc-index could not "
                         f"be read, more than --max-failed-files {max_failed} allows{first}")
    if report["pages"] == 0:
        raise StageError(f"not one page was extracted from the {selected} records selected through --cc-index "
                         f"(records read: {report['records_by_type']}, skipped: {report['skipped']})")


def input_paths(specs: list[str], input_base_url: str | None) -> list[str]:
    """The crawl files that the (qualified) ``--input`` specs name, in order; a manifest that cannot
    be read or a glob that matches nothing raises :class:`StageError` naming it (an input problem)."""
    try:
        paths = [path for spec in specs for path in expand_input(spec, input_base_url)]
    except sources.InputError as error:
        raise StageError(f"--input {error}") from error
    if not paths:
        raise StageError(f"no input files in {specs}: the manifests list none; check --input")
    return paths


def run_extract(
    spark: SparkSession,
    input_spec: str | list[str],
    output: str,
    fmt: str = "auto",
    crawl: str | None = None,
    input_base_url: str | None = None,
    parser: str = "selectolax",
    max_page_bytes: int = 5 << 20,
    max_failed_files: float = 0.05,
    resume: bool = False,
    read_retries: int | None = None,
    read_backoff: float | None = None,
    cc_index: str | None = None,
    index_filter: str | None = None,
) -> dict:
    """Extract pages, image embeds and page links from crawl files; returns the report.

    With ``resume``, an unfinished run with the same arguments is continued: crawl files it
    finished cleanly are not read again; every other file is read (again), those whose earlier
    attempt failed (unreadable, failed mid-way, no records) are listed under ``files_retried``, and
    the rows of an earlier attempt are replaced, never counted twice. ``read_retries`` and
    ``read_backoff`` bound the retries of remote sources (:func:`imagerank.crawl.sources.open_stream`;
    default 6 tries after the first, from 0.5 s); they do not change what a run reads, so a run
    stopped by a flaky store may be resumed with more.

    With ``cc_index`` (instead of ``input_spec``), the records are those that the SQL WHERE clause
    ``index_filter`` selects from Common Crawl's columnar index at that path
    (:mod:`imagerank.crawl.cc_index`), read with range requests, one task per WARC file; a record
    that cannot be read is counted as failed (``cc_index.records_failed``), and ``max_failed_files``
    bounds the fraction of the selected records that failed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, not {fmt!r}")
    if max_page_bytes < 1:
        raise ValueError(f"--max-page-bytes must be positive, not {max_page_bytes}")
    if not 0.0 <= max_failed_files <= 1.0:
        raise ValueError(f"--max-failed-files must be a fraction between 0 and 1, not {max_failed_files}")
    if read_retries is not None and (not isinstance(read_retries, int) or read_retries < 0):
        raise ValueError(f"read retries must be a whole number, 0 or more, not {read_retries!r}")
    if read_backoff is not None and not read_backoff >= 0:
        raise ValueError(f"read back-off must be 0 seconds or more, not {read_backoff!r}")
    if (cc_index is None) == (not input_spec):
        raise ValueError("give either --input (crawl files) or --cc-index (Common Crawl's columnar index), not "
                         + ("both" if cc_index else "neither"))
    if cc_index is not None and not index_filter:
        raise ValueError(f"--cc-index needs --index-filter, a SQL WHERE clause over the index, e.g. \"{EXAMPLE}\" "
                         f"(to read whole crawl files, give them as --input)")
    if cc_index is not None and fmt == "wat":
        raise ValueError("--cc-index selects WARC records: --format wat does not go with it")
    specs = [] if cc_index else [input_spec] if isinstance(input_spec, str) else list(input_spec)
    options = ExtractOptions(format=fmt, crawl=crawl, parser=parser, max_page_bytes=max_page_bytes,
                             read_retries=read_retries, read_backoff=read_backoff)
    args = {"input": specs, "format": fmt, "crawl": crawl, "input_base_url": input_base_url, "parser": parser,
            "max_page_bytes": max_page_bytes, "max_failed_files": max_failed_files}
    if cc_index is not None:
        args.update({"cc_index": cc_index, "index_filter": index_filter})
    with Stage(spark, "extract", output, args, resume=resume) as stage:
        selection = None
        if cc_index is not None:
            selection = select(spark, stage.qualify(cc_index), index_filter, input_base_url)
            paths = selection.paths
        else:
            paths = input_paths([stage.qualify(spec) for spec in specs], input_base_url)
        for path in paths:
            stage.check_input(path)
        folder, settings = stage.folder, fs.current_settings()
        done, retried = set(), []
        if stage.resumed:
            done, retried, beyond = resume_plan(file_outcomes(spark, folder), paths)
            drop_parts(folder, beyond)
        todo = [(part, path) for part, path in enumerate(paths) if part not in done]
        try:
            with FileProgress(spark, "extract", len(paths), done=len(done)) as progress:
                accumulators = (progress.files, progress.pages)
                if todo:
                    (work_items(spark, todo, selection)
                     .mapPartitions(lambda part: extract_files(part, folder, options, settings, accumulators))
                     .count())
        finally:
            if selection is not None:
                selection.release()  # the grouped selection, persisted for the tasks: also where they failed
        report = build_report(summed_counters(spark, folder), len(paths))
        if selection is not None:
            index = report.pop("index", {})
            report["cc_index"] = {"path": cc_index, "filter": index_filter, "warc_files": len(paths),
                                  "records_selected": selection.selected, "rows_unusable": selection.bad_rows,
                                  "rows_duplicate": selection.duplicate_rows,
                                  "records_read": index.get("read", 0), "records_failed": index.get("failed", 0)}
            check_index_run(report, max_failed_files)
        else:
            check_run(report, len(paths), max_failed_files)
        stage.report.update({"format": fmt, "parser": parser, "crawl": crawl, "max_page_bytes": max_page_bytes,
                             "read_retries": sources.RETRIES if read_retries is None else read_retries,
                             "read_backoff": sources.BACKOFF if read_backoff is None else read_backoff,
                             "files_resumed": len(done), "files_retried": retried_report(retried), **report})
    return stage.report


def work_items(spark: SparkSession, todo: list[tuple[int, str]], selection: Selection | None):
    """An RDD of (part, path, ranges), one task each: the crawl files to read whole, or with a
    selection the WARC files' selected records (their ranges joined in Spark, not sent from here)."""
    if selection is None:
        return spark.sparkContext.parallelize([(part, path, None) for part, path in todo], len(todo))
    tasks = spark.createDataFrame([(part, task) for task, (part, _) in enumerate(todo)], "part int, task int")
    return (selection.records
            .join(tasks, on="part", how="inner")
            .rdd
            .map(lambda row: (row["task"], (row["part"], row["path"], [(r[0], r[1]) for r in row["ranges"]])))
            .partitionBy(len(todo), lambda task: task)
            .values())
