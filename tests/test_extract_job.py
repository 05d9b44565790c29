"""The extract stage under real Spark: tables, report, replacement and failure behaviour."""

import os
import re
import time
import shutil
from collections import Counter

import pytest

from imagerank.crawl.extract import run_extract
from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.commit import OutputError
from imagerank.crawl.schemas import TABLES
from imagerank.stage import StageError

from conftest import report_of, run_dir, shared_file, table


@pytest.fixture(scope="module")
def sample_extract(sample_pipeline):
    """The session's extraction of the sample (sample_pipeline's, with the defaults)."""
    return str(sample_pipeline["root"] / "extract"), sample_pipeline["extract_report"]


def test_sample_tables_and_report(spark, sample_extract):
    out, report = sample_extract
    assert sorted(os.listdir(out)) == ["_CURRENT", "_commits", "_runs"]
    assert sorted(os.listdir(run_dir(out))) == ["_files", "_heartbeat.json", "_report.json", "_run.json",
                                                "image_embeds", "page_links", "pages"]
    assert report_of(out) == report
    assert report["job"] == "extract" and report["master"].startswith("local")
    pages = table(spark, out, "pages")
    embeds = table(spark, out, "image_embeds")
    links = table(spark, out, "page_links")
    for name, df in (("pages", pages), ("image_embeds", embeds), ("page_links", links)):
        assert [f.name for f in df.schema] == [f.name for f in TABLES[name]]
        assert report["rows_written"][name] == df.count()
    # 300 pages generated; one sits in the corrupt gzip member
    assert report["pages"] == 299
    assert report["files"] == {"total": 3, "read": 3, "by_format": {"warc": 2, "wat": 1}, "failed": [],
                               "tolerant_reader": []}
    assert report["skipped"] == {"corrupt_data": 1, "non_html": 2, "truncated_record": 1, "undecodable_body": 1}
    # one javascript: and one mailto: link on each HTML page (the WAT shard holds none)
    assert report["urls_dropped"]["url_javascript"] == 199 == report["urls_dropped"]["url_mailto"]
    sources = {r["source"] for r in embeds.select("source").distinct().collect()}
    assert sources == {"img_src", "img_srcset", "picture_source", "lazy_src", "og_image", "link_href", "wat_img"}
    assert pages.filter("crawl = 'CC-MAIN-2099-01'").count() == 299
    assert links.filter("nofollow").count() > 0
    assert links.filter("src_url = dst_url").count() == 0
    # n_images / n_links agree with the embed and link tables
    per_page = embeds.groupBy("page_url").count().withColumnRenamed("count", "n")
    joined = pages.join(per_page, pages.url == per_page.page_url, how="left").fillna(0, ["n"])
    assert joined.filter("n_images != n").count() == 0
    # thumbnail and size variants fold into one key
    from imagerank.sample import FLICKR_IDS, WIKIMEDIA_FILES

    def distinct(column, where):
        return {r[0] for r in embeds.filter(where).select(column).distinct().collect()}

    wikimedia = "image_url like 'https://upload.wikimedia.org/%'"
    assert len(distinct("image_url", wikimedia)) > len(distinct("image_key", wikimedia))
    assert distinct("image_key", wikimedia) <= {f"wikimedia:commons/{name}" for name in WIKIMEDIA_FILES}
    flickr = "image_url like 'https://live.staticflickr.com/%'"
    assert len(distinct("image_url", flickr)) > len(distinct("image_key", flickr))
    assert distinct("image_key", flickr) <= {f"flickr:{i}" for i in FLICKR_IDS}


def test_spark_job_matches_plain_python_on_real_warcs(spark, tmp_path):
    paths = [str(shared_file("warc", "whirlwind", "whirlwind.warc.gz")),
             str(shared_file("warc", "resiliparse", "warcfile.warc.gz"))]
    out = str(tmp_path / "real")
    report = run_extract(spark, paths, out)
    expected = Counter(t for p in paths for t, _ in extract_file(p, ExtractOptions()) if t != "counter")
    assert report["rows_written"] == {name: expected[name] for name in TABLES}
    urls = {r["url"] for r in table(spark, out, "pages").collect()}
    assert "https://an.wikipedia.org/wiki/Escopete" in urls and len(urls) == 17


def test_rerun_replaces_the_output_whole(spark, sample_crawl, tmp_path):
    out = str(tmp_path / "out")
    run_extract(spark, sample_crawl["manifest"], out)
    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    first_run = run_dir(out).name
    report = run_extract(spark, whirlwind, out)
    assert table(spark, out, "pages").count() == 1 == report["pages"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # the new run is current; the runs it replaced are kept for readers still on them (a week by default)
    third = run_extract(spark, whirlwind, out)
    assert sorted(os.listdir(os.path.join(out, "_runs"))) == sorted([first_run, report["run"], third["run"]])
    # past the retention, runs replaced earlier than that go; the one replaced just now stays
    spark.conf.set("spark.imagerank.commit.retention", "1s")
    try:
        time.sleep(1.5)
        fourth = run_extract(spark, whirlwind, out)
    finally:
        spark.conf.unset("spark.imagerank.commit.retention")
    assert sorted(os.listdir(os.path.join(out, "_runs"))) == sorted([third["run"], fourth["run"]])


def test_failed_run_keeps_the_previous_output(spark, sample_crawl, tmp_path):
    out = str(tmp_path / "out")
    first = run_extract(spark, sample_crawl["manifest"], out)
    with pytest.raises(Exception):
        run_extract(spark, sample_crawl["manifest"], out, parser="no-such-parser")  # every task fails
    assert report_of(out) == first
    assert table(spark, out, "pages").count() == first["pages"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_unreadable_file_is_named_in_the_report(spark, tmp_path):
    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    inputs = [whirlwind, str(tmp_path / "missing.warc.gz")]
    # one of two files failed: more than --max-failed-files (0.05 by default) allows, so nothing is committed
    with pytest.raises(StageError, match=r"1 of 2 input files failed, more than --max-failed-files 0.05"):
        run_extract(spark, inputs, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "_CURRENT").exists()
    report = run_extract(spark, inputs, str(tmp_path / "out"), max_failed_files=0.5)
    assert report["files"]["total"] == 2 and report["files"]["read"] == 1
    (failed,) = report["files"]["failed"]
    assert failed["path"].endswith("missing.warc.gz") and failed["reason"] == "unreadable"
    assert report["pages"] == 1


def test_lf_only_file_is_listed_as_read_with_warcio_not_as_failed(spark, tmp_path):
    from test_records import lf_only_gz

    whirlwind = shared_file("warc", "whirlwind", "whirlwind.warc.gz")
    lf_only = tmp_path / "whirlwind-lf.warc.gz"
    lf_only.write_bytes(lf_only_gz(whirlwind.read_bytes())[0])
    report = run_extract(spark, [str(whirlwind), str(lf_only)], str(tmp_path / "out"))
    assert report["files"]["failed"] == [] and report["files"]["read"] == 2
    assert report["files"]["tolerant_reader"] == [f"file://{lf_only}"]  # paths as the run qualified them
    assert report["pages"] == 2 and report["rows_written"]["image_embeds"] == 2 * 41
    assert report["records_by_type"] == {"metadata": 2, "request": 2, "response": 2, "warcinfo": 2}


def test_report_keeps_failed_and_tolerant_files_apart():
    from imagerank.crawl.extract import build_report

    rows = [
        {"file": "a.warc.gz", "name": "file:failed_midway", "n": 1,
         "detail": "a.warc.gz: connection kept failing at byte 70000; 22 records and 7 pages read before it are kept"},
        {"file": "b.warc.gz", "name": "file:tolerant_reader", "n": 1, "detail": "LF alone"},
        {"file": "c.warc.gz", "name": "file:unreadable", "n": 1, "detail": "404"},
        {"file": None, "name": "rows:pages", "n": 9, "detail": None},
    ]
    files = build_report(rows, 3)["files"]
    assert files["read"] == 2 and files["tolerant_reader"] == ["b.warc.gz"]
    assert [(f["path"], f["reason"]) for f in files["failed"]] == [("a.warc.gz", "failed_midway"),
                                                                  ("c.warc.gz", "unreadable")]
    assert "7 pages read before it are kept" in files["failed"][0]["error"]


def test_a_run_that_reads_no_input_fails_and_keeps_the_previous_output(spark, sample_crawl, tmp_path):
    out = str(tmp_path / "out")
    first = run_extract(spark, sample_crawl["manifest"], out)
    with pytest.raises(StageError, match="not one of the 2 input files could be read"):
        run_extract(spark, [str(tmp_path / "missing.warc.gz"), str(tmp_path / "gone.warc.gz")], out)
    assert report_of(out) == first
    assert table(spark, out, "pages").count() == first["pages"]


def test_output_that_is_not_ours_is_refused(spark, sample_crawl, tmp_path):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(OutputError, match="holds files that no imagerank stage wrote"):
        run_extract(spark, sample_crawl["manifest"], str(mine))
    assert sorted(os.listdir(mine)) == ["holiday.jpg"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run_extract(spark, sample_crawl["manifest"], str(tmp_path / "a-file"))


def test_resume_continues_an_unfinished_run_file_by_file(spark, sample_crawl, tmp_path):
    """An unfinished run (one crawl file's parts and counters missing, a killed task's hidden temp
    file left behind) is continued: only that file is read again, and the tables come out whole."""
    out = tmp_path / "out"
    whole = run_extract(spark, sample_crawl["manifest"], str(out))
    unfinished = out / "_runs" / "29991231T000000Z-dead00"
    shutil.copytree(run_dir(out), unfinished)
    os.remove(unfinished / "_report.json")
    os.remove(unfinished / "_files" / "part-00001.json")
    for name in TABLES:
        os.replace(unfinished / name / "part-00001.parquet", unfinished / name / ".part-00001.parquet.tmp-killed")
    resumed = run_extract(spark, sample_crawl["manifest"], str(out), resume=True)
    assert resumed["run"] == unfinished.name and resumed["resumed"] and resumed["files_resumed"] == 2
    # the file that never finished is read, not counted as retried: its earlier attempt did not fail
    assert resumed["files_retried"] == {"total": 0, "by_reason": {}, "listed": []}
    for key in ("rows_written", "skipped", "records_by_type", "urls_dropped", "files"):
        assert resumed[key] == whole[key]
    for name in TABLES:
        assert table(spark, out, name).count() == whole["rows_written"][name]
        assert sorted(p.name for p in (unfinished / name).iterdir() if p.name.startswith("part-")) == [
            "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    # without --resume a fresh run starts
    fresh = run_extract(spark, sample_crawl["manifest"], str(out))
    assert fresh["run"] != unfinished.name and not fresh["resumed"] and fresh["files_resumed"] == 0


def test_an_output_that_contains_an_input_is_refused(spark, sample_crawl, tmp_path):
    """extract --input X/crawl/warc.paths.gz --output X would replace its own input: refused, nothing written."""
    import gzip

    crawl = tmp_path / "X" / "crawl"
    crawl.mkdir(parents=True)
    shutil.copy(shared_file("warc", "whirlwind", "whirlwind.warc.gz"), crawl / "w.warc.gz")
    with gzip.open(crawl / "warc.paths.gz", "wt") as fh:
        fh.write("w.warc.gz\n")
    with pytest.raises((StageError, OutputError)):
        run_extract(spark, str(crawl / "warc.paths.gz"), str(tmp_path / "X"))
    assert sorted(os.listdir(crawl)) == ["w.warc.gz", "warc.paths.gz"]
    # a stage writing over the output it reads, another stage's output: refused before anything is written
    from imagerank.graph.build import run_build_graph

    extract = str(tmp_path / "E")
    run_extract(spark, str(crawl / "warc.paths.gz"), extract)
    runs = sorted(os.listdir(tmp_path / "E" / "_runs"))
    with pytest.raises(OutputError, match=r"E holds an extract output \(run .*\); build_graph writes only into its own"):
        run_build_graph(spark, [extract], extract)
    assert sorted(os.listdir(tmp_path / "E" / "_runs")) == runs and report_of(extract)["job"] == "extract"


def test_unusable_input_never_replaces_a_good_output(spark, tmp_path):
    """A zero-byte, random-bytes, plain-text or PNG '.warc.gz', a manifest of missing files: each run
    fails in one line and the previous output stays current; files without a record are named."""
    import gzip
    import random

    out = str(tmp_path / "out")
    good = run_extract(spark, str(shared_file("warc", "whirlwind", "whirlwind.warc.gz")), out)
    bad = {
        "zero.warc.gz": b"",
        "random.warc.gz": random.Random(1).randbytes(5000),
        "text.warc.gz": b"just some text\n" * 100,
        "image.warc.gz": b"\x89PNG\r\n\x1a\n" + bytes(300),
    }
    # each is named as not a WARC file, and what it is: never as a --max-failed-files matter
    what = {"zero.warc.gz": "it is empty (0 bytes)", "random.warc.gz": "(unrecognized binary data)",
            "text.warc.gz": "(plain text)", "image.warc.gz": "(a PNG image)"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(StageError, match=rf"^file://\S+/{name} is not a WARC or WAT file: .*"
                                             rf"{re.escape(what[name])}; give WARC or WAT files as --input$"):
            run_extract(spark, str(tmp_path / name), out)
        assert report_of(out)["run"] == good["run"]
    with gzip.open(tmp_path / "missing.paths.gz", "wt") as fh:
        fh.write("nowhere/a.warc.gz\nnowhere/b.warc.gz\n")
    with pytest.raises(StageError, match="not one of the 2 input files could be read"):
        run_extract(spark, str(tmp_path / "missing.paths.gz"), out)
    assert report_of(out)["run"] == good["run"]
    # asked to tolerate them, the run still refuses: not one is a crawl file
    with pytest.raises(StageError, match=r"not one of the 4 input files is a WARC or WAT file \(first: \S+ is not"):
        run_extract(spark, [str(tmp_path / n) for n in bad], out, max_failed_files=1.0)
    report = run_extract(spark, [str(tmp_path / "text.warc.gz"), str(shared_file("warc", "whirlwind",
                                                                                     "whirlwind.warc.gz"))],
                         out, max_failed_files=0.5)
    (failed,) = report["files"]["failed"]
    assert (failed["reason"], failed["path"].rsplit("/", 1)[1]) == ("no_records", "text.warc.gz")
    assert failed["error"] == (f"{failed['path']} is not a WARC or WAT file: not one WARC record in its 1,500 bytes "
                               f"(plain text)")
