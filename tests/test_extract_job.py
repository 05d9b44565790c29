"""The extract stage under real Spark: tables, report, replacement and failure behaviour."""

import json
import os
from collections import Counter

import pytest

from imagerank.crawl.extract import run_extract
from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.crawl.schemas import TABLES

from conftest import shared_file


@pytest.fixture(scope="module")
def sample_extract(spark, sample_crawl, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("extract") / "out")
    report = run_extract(spark, sample_crawl["manifest"], out)
    return out, report


def test_sample_tables_and_report(spark, sample_extract):
    out, report = sample_extract
    assert sorted(os.listdir(out)) == ["_report.json", "image_embeds", "page_links", "pages"]
    assert json.load(open(os.path.join(out, "_report.json"))) == report
    pages = spark.read.parquet(f"{out}/pages")
    embeds = spark.read.parquet(f"{out}/image_embeds")
    links = spark.read.parquet(f"{out}/page_links")
    for name, df in (("pages", pages), ("image_embeds", embeds), ("page_links", links)):
        assert [f.name for f in df.schema] == [f.name for f in TABLES[name]]
        assert report["rows_written"][name] == df.count()
    # 300 pages generated; one sits in the corrupt gzip member
    assert report["pages"] == 299
    assert report["files"] == {"total": 3, "read": 3, "by_format": {"warc": 2, "wat": 1}, "failed": []}
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
    urls = {r["url"] for r in spark.read.parquet(f"{out}/pages").collect()}
    assert "https://an.wikipedia.org/wiki/Escopete" in urls and len(urls) == 17


def test_rerun_replaces_the_output_whole(spark, sample_crawl, tmp_path):
    out = str(tmp_path / "out")
    run_extract(spark, sample_crawl["manifest"], out)
    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    report = run_extract(spark, whirlwind, out)
    assert spark.read.parquet(f"{out}/pages").count() == 1 == report["pages"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or old folders left


def test_failed_run_keeps_the_previous_output(spark, sample_crawl, tmp_path):
    out = str(tmp_path / "out")
    first = run_extract(spark, sample_crawl["manifest"], out)
    with pytest.raises(Exception):
        run_extract(spark, sample_crawl["manifest"], out, parser="no-such-parser")  # every task fails
    assert json.load(open(os.path.join(out, "_report.json"))) == first
    assert spark.read.parquet(f"{out}/pages").count() == first["pages"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_unreadable_file_is_named_in_the_report(spark, tmp_path):
    whirlwind = str(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    report = run_extract(spark, [whirlwind, str(tmp_path / "missing.warc.gz")], str(tmp_path / "out"))
    assert report["files"]["total"] == 2 and report["files"]["read"] == 1
    (failed,) = report["files"]["failed"]
    assert failed["path"].endswith("missing.warc.gz") and failed["reason"] == "unreadable"
    assert report["pages"] == 1
