"""Retries that recover (issue 19).

- ``gs://`` and ``hdfs://`` inputs are read through their pyarrow filesystem with the same retrying,
  reopen-at-the-byte stream as S3 and HTTP(S). There is no GCS or HDFS here, so the store behind
  those schemes is a pyarrow ``PyFileSystem`` over the real WARC files, read in place, whose reads
  raise OSError at a chosen byte (once, twice, or always): everything else is the job's own code.
- ``--resume`` reads again every file that did not finish cleanly: a run stopped by 503s from a
  loopback server over ``--max-failed-files`` succeeds once the fault is lifted, with the tables of a
  clean extraction.
"""

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs

from imagerank import fs
from imagerank.crawl import sources
from imagerank.crawl.extract import (build_report, check_run, extract_files, resume_plan, retried_report,
                                     run_extract)
from imagerank.crawl.files import ExtractOptions
from imagerank.crawl.schemas import TABLES
from imagerank.stage import StageError

from conftest import WARC, extracted, shared_file, table
from test_remote import serve  # noqa: F401 - the loopback HTTP server fixture

FAIL_FROM = 70_000  # inside the 23rd of warcfile.warc.gz's 50 gzip members (69,787 to 70,222)


class FaultyFile:
    """A local file whose reads raise OSError at the store's fault byte while it has faults left."""

    def __init__(self, path: str, store: "FaultyStore"):
        self.file, self.store = open(path, "rb"), store

    def read(self, n=-1):
        store, pos = self.store, self.file.tell()
        end = None if n is None or n < 0 else pos + n
        if store.fail_from is not None and store.faults_left != 0 and (end is None or end > store.fail_from):
            if pos >= store.fail_from:
                store.faults += 1
                if store.faults_left is not None:
                    store.faults_left -= 1
                raise ConnectionResetError(f"injected: connection reset at byte {pos}")
            n = store.fail_from - pos  # the bytes before the fault arrive
        return self.file.read(n)

    def seek(self, offset, whence=0):
        return self.file.seek(offset, whence)

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()

    @property
    def closed(self):
        return self.file.closed


class FaultyStore(pafs.FileSystemHandler):
    """A read-only store over a local folder: ``bucket/a/b`` (gs) or ``/bucket/a/b`` (hdfs) is
    ``root/a/b``. ``faults_left``: reads to fail at ``fail_from`` (None: every one)."""

    def __init__(self, root: Path, fail_from: int | None = None, faults_left: int | None = 0):
        self.root, self.fail_from, self.faults_left = root, fail_from, faults_left
        self.local = pafs.LocalFileSystem()
        self.opens = []  # every path opened, in order
        self.faults = 0

    def _local(self, path: str) -> str:
        return str(self.root.joinpath(*path.lstrip("/").split("/")[1:]))

    def open_input_file(self, path):
        self.opens.append(path)
        return pa.PythonFile(FaultyFile(self._local(path), self), mode="r")

    def get_file_info(self, paths):
        return [pafs.FileInfo(p, self.local.get_file_info(self._local(p)).type) for p in paths]

    def get_type_name(self):
        return "faulty"

    def normalize_path(self, path):
        return path

    def equals(self, other):
        return other is self

    def _read_only(self, *args, **kwargs):
        raise NotImplementedError("a read-only test store")

    get_file_info_selector = create_dir = delete_dir = delete_dir_contents = _read_only
    delete_root_dir_contents = delete_file = move = copy_file = _read_only
    open_input_stream = open_append_stream = open_output_stream = _read_only


@pytest.fixture
def store(monkeypatch):
    """gs:// and hdfs:// served by one FaultyStore over ../shared/data/warc (set its fault per test)."""
    shared_file("warc", "resiliparse", "warcfile.warc.gz")
    faulty = FaultyStore(WARC)
    filesystem = pafs.PyFileSystem(faulty)
    original = fs._filesystem
    monkeypatch.setattr(fs, "_filesystem",
                        lambda scheme, authority: filesystem if scheme in ("gs", "hdfs") else original(scheme, authority))
    monkeypatch.setattr(sources, "RETRIES", 2)
    monkeypatch.setattr(sources, "BACKOFF", 0.01)
    return faulty


URLS = {"gs": "gs://crawl-bucket/resiliparse/warcfile.warc.gz",
        "hdfs": "hdfs://namenode:8020/crawl/resiliparse/warcfile.warc.gz"}


def rows_of(tables):
    """Every row, its file name left out (the URL or the local path it was read from)."""
    return {name: [{k: v for k, v in row.items() if k != "warc_filename"} for row in rows]
            for name, rows in tables.items()}


@pytest.mark.parametrize("scheme", ["gs", "hdfs"])
def test_a_transient_fault_mid_file_is_retried_to_the_same_records(store, scheme):
    store.fail_from, store.faults_left = FAIL_FROM, 2  # two reads fail at the byte; the third try reads on
    tables, counters, _ = extracted(URLS[scheme])
    clean, clean_counters, _ = extracted(shared_file("warc", "resiliparse", "warcfile.warc.gz"))
    assert store.faults == 2
    assert rows_of(tables) == rows_of(clean) and counters == clean_counters
    assert (len(tables["pages"]), len(tables["image_embeds"]), len(tables["page_links"])) == (16, 150, 1025)
    assert {p["warc_filename"] for p in tables["pages"]} == {URLS[scheme]}
    assert "skip:corrupt_data" not in counters and "file:failed_midway" not in counters


@pytest.mark.parametrize("scheme", ["gs", "hdfs"])
def test_a_persistent_fault_is_failed_midway_at_its_byte_never_corrupt_data(store, scheme):
    store.fail_from, store.faults_left = FAIL_FROM, None
    url = URLS[scheme]
    tables, counters, details = extracted(url)
    whole, _, _ = extracted(shared_file("warc", "resiliparse", "warcfile.warc.gz"))
    # the first read at the byte and RETRIES more, each after reopening the file there; then no more
    assert store.faults == sources.RETRIES + 1 == 3
    assert counters["file:failed_midway"] == 1
    assert "skip:corrupt_data" not in counters and "file:unreadable" not in counters
    detail = details["file:failed_midway"]
    assert url in detail and f"byte {FAIL_FROM}" in detail and "3 tries" in detail and "injected" in detail
    assert "22 records and 7 pages read before it are kept" in detail
    pages = tables["pages"]
    assert [p["url"] for p in pages] == [p["url"] for p in whole["pages"][:7]]
    assert (len(pages), len(tables["image_embeds"]), len(tables["page_links"])) == (7, 43, 361)
    assert all(p["warc_record_offset"] + p["warc_record_length"] <= FAIL_FROM for p in pages)


def test_a_missing_object_is_unreadable_without_retries(store):
    tables, counters, details = extracted("gs://crawl-bucket/resiliparse/no-such.warc.gz")
    assert counters == Counter({"file:unreadable": 1}) and not any(tables.values())
    assert store.opens == ["crawl-bucket/resiliparse/no-such.warc.gz"]  # one try: not found is final
    assert "no-such.warc.gz" in details["file:unreadable"]


def test_an_unknown_scheme_is_unreadable():
    _, counters, details = extracted("ftp://example.org/a.warc.gz")
    assert counters == Counter({"file:unreadable": 1}) and "ftp" in details["file:unreadable"]


def test_the_other_files_are_read_past_a_failed_file_and_it_counts_against_max_failed_files(store, tmp_path):
    """The tasks' own loop (parts and counters written per file), in plain Python: the gs:// file
    fails mid-way for good, the files after it are read whole; the report names it with its byte,
    and --max-failed-files decides whether the run may be committed."""
    store.fail_from, store.faults_left = FAIL_FROM, None
    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    clueweb = str(shared_file("warc", "resiliparse", "clueweb-quirk.warc.gz"))
    paths = [URLS["gs"], whirlwind, clueweb]
    folder = "file://" + str(tmp_path / "run")
    counters = list(extract_files([(part, path, None) for part, path in enumerate(paths)], folder, ExtractOptions()))
    rows = {(table, part): pq.read_table(tmp_path / "run" / table / f"part-{part:05d}.parquet").num_rows
            for table in TABLES for part in range(3)}
    assert [rows["pages", part] for part in range(3)] == [7, 1, 29]  # 7 kept before the fault; the others whole
    assert [rows["image_embeds", part] for part in range(3)] == [43, 41, 1252]
    written = [json.loads(line) for line in (tmp_path / "run" / "_files" / "part-00000.json").read_text().splitlines()]
    assert [r["name"] for r in written if r["name"].startswith("file:")] == ["file:failed_midway"]
    report = build_report(counters, len(paths))
    (failed,) = report["files"]["failed"]
    assert failed["path"] == URLS["gs"] and failed["reason"] == "failed_midway" and f"byte {FAIL_FROM}" in failed["error"]
    assert report["files"]["read"] == 3 and report["pages"] == 37 and "corrupt_data" not in report["skipped"]
    check_run(report, len(paths), 0.5)  # 1 of 3 failed: allowed
    with pytest.raises(StageError, match=r"1 of 3 input files failed, more than --max-failed-files 0.05"):
        check_run(report, len(paths), 0.05)


def test_resume_plan_reads_again_what_did_not_finish_cleanly():
    paths = ["a", "b", "c", "d", "e"]
    outcomes = {0: ("a", None), 1: ("b", "unreadable"), 2: ("c", "failed_midway"), 4: ("x", None),
                5: ("f", None), 7: ("h", "no_records")}
    done, retried, beyond = resume_plan(outcomes, paths)
    assert done == {0}  # 3 never finished; 4 was another file (the manifest changed): read again
    assert retried == [{"path": "b", "reason": "unreadable"}, {"path": "c", "reason": "failed_midway"}]
    assert beyond == [5, 7]
    summary = retried_report(retried * 600)
    assert summary["total"] == 1200 and summary["by_reason"] == {"failed_midway": 600, "unreadable": 600}
    assert len(summary["listed"]) == 1000 and summary["listed"][:2] == retried


def test_resume_after_503s_reads_the_failed_files_again_and_matches_a_clean_run(spark, serve, tmp_path):  # noqa: F811
    """Two of four files fail on a loopback server (one answers 503 to every request: unreadable;
    one breaks off for good at byte 70,000 after 7 pages: failed_midway), over --max-failed-files:
    nothing is committed. With the fault lifted, --resume reads those two again, and only those;
    the first attempt's 7 pages are replaced, not added: the tables equal a clean run's."""
    names = {"whirlwind.warc.gz": ("whirlwind", "whirlwind.warc.gz"),
             "warcfile.warc.gz": ("resiliparse", "warcfile.warc.gz"),
             "clueweb-quirk.warc.gz": ("resiliparse", "clueweb-quirk.warc.gz"),
             "link-extraction-test.warc": ("ia-web-commons", "link-extraction-test.warc")}
    files = {name: shared_file("warc", *where).read_bytes() for name, where in names.items()}
    server = serve(files, faults={"clueweb-quirk.warc.gz": "503", "warcfile.warc.gz": FAIL_FROM})
    urls = [server.url + name for name in names]
    out = tmp_path / "out"
    fast = {"read_retries": 1, "read_backoff": 0.01}

    with pytest.raises(StageError, match=r"2 of 4 input files failed, more than --max-failed-files 0.05"):
        run_extract(spark, urls, str(out), **fast)
    assert not (out / "_CURRENT").exists()
    (unfinished,) = os.listdir(out / "_runs")
    first = out / "_runs" / unfinished
    assert pq.read_table(first / "pages" / "part-00001.parquet").num_rows == 7  # kept before the fault
    asked = Counter(name for name, _, _ in server.requests)

    server.faults.clear()
    resumed = run_extract(spark, urls, str(out), resume=True, **fast)
    assert resumed["resumed"] and resumed["run"] == unfinished
    assert resumed["files_resumed"] == 2 and resumed["files"]["failed"] == []
    assert resumed["files_retried"] == {
        "total": 2, "by_reason": {"failed_midway": 1, "unreadable": 1},
        "listed": [{"path": urls[1], "reason": "failed_midway"}, {"path": urls[2], "reason": "unreadable"}]}
    again = Counter(name for name, _, _ in server.requests) - asked
    assert set(again) == {"warcfile.warc.gz", "clueweb-quirk.warc.gz"}  # the clean files were not read again

    clean = run_extract(spark, urls, str(tmp_path / "clean"))
    assert clean["files_retried"]["total"] == 0 and clean["files"]["failed"] == []
    assert resumed["rows_written"] == clean["rows_written"] and resumed["pages"] == clean["pages"] == 1 + 16 + 29 + 9
    for name in TABLES:
        assert table(spark, out, name).count() == clean["rows_written"][name]
    resumed_urls = sorted(r["url"] for r in table(spark, out, "pages").select("url").collect())
    clean_urls = sorted(r["url"] for r in table(spark, tmp_path / "clean", "pages").select("url").collect())
    assert resumed_urls == clean_urls and len(resumed_urls) == len(set(resumed_urls))
    for key in ("records_by_type", "skipped", "urls_dropped", "files"):
        assert resumed[key] == clean[key]
