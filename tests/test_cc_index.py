"""extract --cc-index: records selected through a columnar index (Common Crawl's schema) built from
real WARC files' records, read by range, against the whole files' extraction."""

import pytest

from imagerank.commands import parser_for
from imagerank.crawl.extract import run_extract
from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.stage import StageError
from imagerank.urls import site_of

from conftest import report_of, shared_file, table

FILES = (("resiliparse", "warcfile.warc.gz"), ("whirlwind", "whirlwind.warc.gz"),
         ("resiliparse", "clueweb-quirk.warc.gz"))
CRAWL = "CC-MAIN-2024-10"


def index_rows(folder, name):
    """The index's rows for one WARC file: each response record's URL and place, as warcio finds them."""
    from warcio.archiveiterator import ArchiveIterator

    rows = []
    with open(folder / name, "rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            if record.rec_type != "response":
                continue
            url = record.rec_headers.get_header("WARC-Target-URI")
            mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0] or None
            status = int(record.http_headers.get_statuscode())
            record.content_stream().read()
            host, domain = site_of(url)
            rows.append({"url": url, "url_host_name": host, "url_host_registered_domain": domain,
                         "fetch_status": status, "content_mime_type": mime, "content_mime_detected": mime,
                         "warc_filename": f"crawl-data/{name}", "warc_record_offset": records.get_record_offset(),
                         "warc_record_length": records.get_record_length(), "crawl": CRAWL, "subset": "warc"})
    return rows


@pytest.fixture(scope="module")
def cc_index(spark, tmp_path_factory):
    """An index over three real WARC files (relative names, as Common Crawl's), partitioned by crawl
    and subset, plus a row of another crawl and a row without an offset."""
    base = tmp_path_factory.mktemp("bucket")
    (base / "crawl-data").mkdir()
    rows = []
    for folder, name in FILES:
        source = shared_file("warc", folder, name)
        (base / "crawl-data" / name).symlink_to(source)
        rows += index_rows(source.parent, name)
    other = dict(rows[0], crawl="CC-MAIN-2023-50")
    broken = dict(rows[1], warc_record_offset=None)
    path = write_index(spark, rows + [other, broken], tmp_path_factory.mktemp("index") / "warc")
    return {"path": path, "base": str(base) + "/", "rows": rows}


def write_index(spark, rows: list[dict], path) -> str:
    """``rows`` as a columnar index (the columns extraction reads), partitioned as Common Crawl's."""
    (spark.createDataFrame(rows, "url string, url_host_name string, url_host_registered_domain string, "
                                 "fetch_status int, content_mime_type string, content_mime_detected string, "
                                 "warc_filename string, warc_record_offset int, warc_record_length int, crawl string, "
                                 "subset string")
     .write.partitionBy("crawl", "subset").parquet(str(path)))
    return str(path)


def test_selected_records_give_the_rows_of_those_pages(spark, cc_index, tmp_path):
    """The pages of two domains through the index: the same rows as the whole files' extraction
    restricted to those pages; the report counts what was selected, read and failed."""
    domains = ("wikipedia.org", "live-radsport.ch", "uraharajuku.st")  # in each of the three files
    chosen = [r for r in cc_index["rows"] if r["url_host_registered_domain"] in domains]
    assert 3 <= len(chosen) < len(cc_index["rows"]) - 3 and cc_index["rows"][1] not in chosen
    where = (f"crawl = '{CRAWL}' AND subset = 'warc' AND url_host_registered_domain IN {domains} "
             f"AND warc_record_offset IS NOT NULL OR url = '{cc_index['rows'][1]['url']}'")
    out = str(tmp_path / "out")
    report = run_extract(spark, None, out, cc_index=cc_index["path"], index_filter=where,
                         input_base_url=cc_index["base"])

    urls = {r["url"] for r in chosen} | {cc_index["rows"][1]["url"]}
    expected = {"pages": [], "image_embeds": [], "page_links": []}
    for folder, name in FILES:
        path = cc_index["base"] + "crawl-data/" + name
        for kind, row in extract_file(path, ExtractOptions()):
            key = {"pages": "url", "image_embeds": "page_url", "page_links": "src_url"}.get(kind)
            if key and row[key] in urls:
                expected[kind].append(row)
    assert len(expected["pages"]) == len(urls)  # the row without an offset is not read
    for kind, rows in expected.items():
        got = [r.asDict() for r in table(spark, out, kind).collect()]
        assert sorted(got, key=repr) == sorted(rows, key=repr), kind
    index = report["cc_index"]
    assert index == {"path": cc_index["path"], "filter": where, "warc_files": 3, "records_selected": len(urls) + 1,
                     "rows_unusable": 1, "rows_duplicate": 0, "records_read": len(urls), "records_failed": 0}
    assert report["pages"] == len(urls) and report["files"]["failed"] == []
    assert report_of(out) == report


def test_a_file_that_is_gone_fails_its_records(spark, cc_index, tmp_path):
    """A WARC file missing from the bucket: its record fails (named, counted), the others are read
    while the fraction stays under --max-failed-files; over it, the run is not committed, and
    --resume reads that file again once it is back."""
    base = tmp_path / "bucket"
    (base / "crawl-data").mkdir(parents=True)
    (base / "crawl-data" / "warcfile.warc.gz").symlink_to(shared_file("warc", "resiliparse", "warcfile.warc.gz"))
    where = "subset = 'warc' AND warc_filename <> 'crawl-data/clueweb-quirk.warc.gz'"
    out = str(tmp_path / "out")
    report = run_extract(spark, None, out, cc_index=cc_index["path"], index_filter=where,
                         input_base_url=str(base), max_failed_files=0.1)
    index = report["cc_index"]  # warcfile's first record is also listed under another crawl: read once
    assert (index["records_read"], index["records_failed"], index["rows_duplicate"]) == (16, 1, 1)
    [failed] = report["files"]["failed"]
    assert failed["path"].endswith("crawl-data/whirlwind.warc.gz") and failed["reason"] == "ranges_failed"
    assert failed["error"].startswith("1 of its 1 selected records could not be read")
    with pytest.raises(StageError, match="1 of the 17 records selected through --cc-index could not be read, "
                                         "more than --max-failed-files 0.05"):
        run_extract(spark, None, str(tmp_path / "strict"), cc_index=cc_index["path"], index_filter=where,
                    input_base_url=str(base))
    # the file comes back: --resume reads its records again, and not warcfile's
    (base / "crawl-data" / "whirlwind.warc.gz").symlink_to(shared_file("warc", "whirlwind", "whirlwind.warc.gz"))
    report = run_extract(spark, None, str(tmp_path / "strict"), cc_index=cc_index["path"], index_filter=where,
                         input_base_url=str(base), resume=True)
    assert report["files_resumed"] == 1 and report["files_retried"]["by_reason"] == {"ranges_failed": 1}
    assert (report["cc_index"]["records_read"], report["cc_index"]["records_failed"], report["pages"]) == (17, 0, 17)


@pytest.mark.parametrize("where, problem", [
    ("crawl = 'CC-MAIN-1999-01'", "selects no record of --cc-index"),
    ("url_host_registered_domain ==", "--index-filter 'url_host_registered_domain ==': "),
    ("no_such_column = 1", "write a SQL WHERE clause over the index's columns (url, url_host_name"),
])
def test_a_filter_that_selects_nothing_or_does_not_parse_is_named(spark, cc_index, tmp_path, where, problem):
    with pytest.raises(StageError) as error:
        run_extract(spark, None, str(tmp_path / "out"), cc_index=cc_index["path"], index_filter=where,
                    input_base_url=cc_index["base"])
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_an_index_that_is_not_one_or_relative_names_without_a_base(spark, cc_index, tmp_path):
    not_index = str(tmp_path / "pages")
    spark.createDataFrame([("https://a.example/", 1)], "url string, n int").write.parquet(not_index)
    with pytest.raises(StageError, match=r"has no column warc_filename, warc_record_offset, warc_record_length; "
                                         r"it is not Common Crawl's columnar index"):
        run_extract(spark, None, str(tmp_path / "a"), cc_index=not_index, index_filter="n = 1")
    with pytest.raises(StageError, match=r"names WARC files relative to a bucket \(crawl-data/.*\); give "
                                         r"--input-base-url s3://commoncrawl/"):
        run_extract(spark, None, str(tmp_path / "b"), cc_index=cc_index["path"], index_filter="subset = 'warc'")
    with pytest.raises(ValueError, match="--cc-index needs --index-filter"):
        run_extract(spark, None, str(tmp_path / "c"), cc_index=cc_index["path"])
    with pytest.raises(ValueError, match="not both"):
        run_extract(spark, "x.warc.gz", str(tmp_path / "d"), cc_index=cc_index["path"], index_filter="true")
    parser = parser_for("extract")
    args = parser.parse_args(["--cc-index", "s3://commoncrawl/cc-index/table/cc-main/warc/", "--index-filter",
                              "crawl = 'CC-MAIN-2024-10'", "--output", "out"])
    assert (args.input, args.cc_index) == (None, "s3://commoncrawl/cc-index/table/cc-main/warc/")
    with pytest.raises(SystemExit):
        parser.parse_args(["--cc-index", "idx", "--input", "x.warc.gz", "--output", "out"])
