"""Remote inputs against servers on loopback: plain HTTP that fails on purpose, and S3 (moto)."""

import gzip
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.crawl import files, sources
from imagerank.crawl.sources import HttpStream, InputError, ReadFailed, expand_input

from conftest import extracted, shared_file


class FlakyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files, plan, fail_from=None, fail_how="500", faults=None):
        super().__init__(("127.0.0.1", 0), FlakyHandler)
        self.files = files
        self.plan = list(plan)  # per request: "ok", "503", or "cut" (half the bytes, then close)
        self.requests = []
        # failing for good past a byte: every answer stops there, and a range starting at or past
        # it gets a 500 ("500") or headers and no body ("cut")
        self.fail_from = fail_from
        self.fail_how = fail_how
        # per file, until lifted (faults.clear()): "503" answers every request for it with a 503; a
        # byte makes every answer for it stop there, and a range from there on get a 500
        self.faults = dict(faults or {})

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/"


class FlakyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        action = server.plan.pop(0) if server.plan else "ok"
        server.requests.append((name, self.headers.get("Range"), action))
        if name not in server.files:
            self.send_error(404)
            return
        fault = server.faults.get(name)
        if action == "503" or fault == "503":
            self.send_error(503)
            return
        fail_from, fail_how = (fault, "500") if isinstance(fault, int) else (server.fail_from, server.fail_how)
        data = server.files[name]
        start, end = 0, len(data)
        rng = self.headers.get("Range")
        if rng:
            first, last = rng.split("=")[1].split("-")
            start, end = int(first), min(len(data), int(last) + 1) if last else len(data)
        if fail_from is not None and start >= fail_from and fail_how == "500":
            self.send_error(500)
            return
        if rng:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:end]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fail_from is not None:
            self.wfile.write(body[: max(0, fail_from - start)])
            self.wfile.flush()
            self.close_connection = True
            return
        if action == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def serve():
    servers = []

    def start(files, plan=(), **failing):
        server = FlakyServer(files, plan, **failing)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def counted(path):
    tables, counters = Counter(), Counter()
    for table, row in extract_file(path, ExtractOptions()):
        if table == "counter":
            counters[row["name"]] += row["n"]
        else:
            tables[table] += 1
    return tables, counters


def test_http_503_then_cut_mid_file_still_reads_everything(serve):
    data = shared_file("warc", "resiliparse", "warcfile.warc.gz").read_bytes()
    local = counted(str(shared_file("warc", "resiliparse", "warcfile.warc.gz")))
    server = serve({"warcfile.warc.gz": data}, plan=["503", "cut", "503", "ok"])
    remote = counted(server.url + "warcfile.warc.gz")
    assert remote == local
    actions = [a for _, _, a in server.requests]
    assert actions[:4] == ["503", "cut", "503", "ok"]
    resumed = [r for _, r, a in server.requests[2:] if r]
    assert resumed and int(resumed[0].split("=")[1].rstrip("-")) > 0  # reconnected mid-file


def test_http_manifest_with_relative_paths(serve):
    data = shared_file("warc", "whirlwind", "whirlwind.warc.gz").read_bytes()
    manifest = gzip.compress(b"crawl-data/whirlwind.warc.gz\n\n# comment\n")
    server = serve({"warc.paths.gz": manifest, "crawl-data/whirlwind.warc.gz": data})
    paths = expand_input(server.url + "warc.paths.gz", server.url)
    assert paths == [server.url + "crawl-data/whirlwind.warc.gz"]
    tables, _ = counted(paths[0])
    assert tables["pages"] == 1 and tables["image_embeds"] == 41


def test_http_missing_file_is_reported_not_retried_forever(serve):
    server = serve({})
    tables, counters = counted(server.url + "missing.warc.gz")
    assert counters == Counter({"file:unreadable": 1}) and not tables
    assert len(server.requests) == 1  # a 404 is final


def test_http_gives_up_after_bounded_retries(serve):
    server = serve({"x.warc.gz": b"x"}, plan=["503"] * 20)
    stream = HttpStream(server.url + "x.warc.gz", retries=2, backoff=0.01)
    with pytest.raises(InputError):
        stream.read(10)
    assert len(server.requests) == 3


@pytest.mark.parametrize("fail_how", ["500", "cut"])
def test_http_failing_for_good_mid_file_is_named_with_what_was_read(serve, monkeypatch, fail_how):
    """Past byte 70,000 every request fails: the file is named as failed mid-way, with the byte it
    reached and what was read before it (kept), not counted as corrupt data and read past."""
    monkeypatch.setattr(sources, "RETRIES", 2)
    monkeypatch.setattr(sources, "BACKOFF", 0.01)
    local = shared_file("warc", "resiliparse", "warcfile.warc.gz")
    data = local.read_bytes()
    fail_from = 70_000  # inside the 23rd of the 50 gzip members (69,787 to 70,222)
    server = serve({"warcfile.warc.gz": data}, fail_from=fail_from, fail_how=fail_how)
    url = server.url + "warcfile.warc.gz"
    tables, counters, details = extracted(url)
    whole, _, _ = extracted(str(local))

    assert counters["file:failed_midway"] == 1 and "skip:corrupt_data" not in counters
    assert "file:unreadable" not in counters
    # the pages before the failure are kept: the first ones of the whole file, as read from it
    pages = tables["pages"]
    assert [p["url"] for p in pages] == [p["url"] for p in whole["pages"][:len(pages)]]
    # every record wholly before byte 70,000 is read (the 22 members before it: 7 responses)
    assert sum(n for name, n in counters.items() if name.startswith("records:")) == 22
    assert (len(pages), len(tables["image_embeds"]), len(tables["page_links"])) == (7, 43, 361)
    assert counters["pages"] == 7 and counters["format:warc"] == 1
    assert all(p["warc_record_offset"] + p["warc_record_length"] <= fail_from for p in pages)
    detail = details["file:failed_midway"]
    assert url in detail and f"byte {fail_from}" in detail
    why = {"500": "after 3 tries: HTTP 500", "cut": "connection kept failing at byte 70000, 3 tries"}
    assert why[fail_how] in detail
    assert "22 records and 7 pages read before it are kept" in detail
    # nothing was asked for past the failure: reading did not resume beyond it
    starts = [int(r.split("=")[1].rstrip("-")) if r else 0 for _, r, _ in server.requests]
    assert max(starts) == fail_from and starts.count(fail_from) == {"500": 3, "cut": 2}[fail_how]


def test_read_failed_carries_the_offset(serve, monkeypatch):
    server = serve({"x.warc.gz": bytes(1000)}, fail_from=600)
    stream = HttpStream(server.url + "x.warc.gz", retries=1, backoff=0.01)
    assert len(stream.read(600)) == 600
    with pytest.raises(ReadFailed) as failed:
        stream.read(10)
    assert failed.value.offset == 600 and isinstance(failed.value, InputError)
    assert "x.warc.gz" in str(failed.value) and "from byte 600" in str(failed.value)


def response_ranges(path):
    """(offset, length) of each response record of a real WARC file, as warcio (not our reader) finds them."""
    from warcio.archiveiterator import ArchiveIterator

    ranges = []
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream)
        for record in records:
            if record.rec_type == "response":
                record.content_stream().read()
                ranges.append((records.get_record_offset(), records.get_record_length()))
    return ranges


def test_records_selected_by_range_over_http_read_in_bounded_spans(serve, monkeypatch):
    """Every other response of a real WARC, read by byte ranges as Common Crawl's index gives them:
    neighbours in one bounded request; apart (no gap allowed), one request each, a 503 and a cut
    connection retried inside the record's range; the rows are those of the local file's records."""
    local = shared_file("warc", "resiliparse", "warcfile.warc.gz")
    ranges = response_ranges(local)[::2]
    expected, _, _ = extracted(str(local), ranges)
    assert len(expected["pages"]) == 8 and expected["image_embeds"] and expected["page_links"]
    server = serve({"warcfile.warc.gz": local.read_bytes()})
    url = server.url + "warcfile.warc.gz"
    tables, counters, _ = extracted(url, ranges)
    assert tables["pages"] == [dict(p, warc_filename=url) for p in expected["pages"]]
    assert tables["image_embeds"] == expected["image_embeds"] and tables["page_links"] == expected["page_links"]
    assert (counters["index:selected"], counters["index:read"], counters["index:failed"]) == (8, 8, 0)
    first, last = ranges[0], ranges[-1]
    assert server.requests == [("warcfile.warc.gz", f"bytes={first[0]}-{last[0] + last[1] - 1}", "ok")]

    monkeypatch.setattr(files, "SPAN_GAP", 0)
    server = serve({"warcfile.warc.gz": local.read_bytes()}, plan=["ok", "503", "cut"])
    url = server.url + "warcfile.warc.gz"
    tables, counters, _ = extracted(url, ranges)
    assert [p["url"] for p in tables["pages"]] == [p["url"] for p in expected["pages"]]
    assert counters["index:read"] == 8 and "file:ranges_failed" not in counters
    asked = [r for _, r, _ in server.requests]
    assert len(asked) == 8 + 2 and asked[0] == f"bytes={first[0]}-{first[0] + first[1] - 1}"
    assert all(r.endswith(f"-{offset + length - 1}") for r, (offset, length) in zip(asked[3:], ranges[1:]))


def test_a_failed_range_fails_its_records_not_the_file(serve, monkeypatch):
    """Past byte 70,000 every request fails: the records there count as failed, the others are
    read; the file is named once, with how many failed; a missing file fails every record."""
    monkeypatch.setattr(sources, "RETRIES", 1)
    monkeypatch.setattr(sources, "BACKOFF", 0.01)
    monkeypatch.setattr(files, "SPAN_GAP", 0)
    local = shared_file("warc", "resiliparse", "warcfile.warc.gz")
    ranges = response_ranges(local)
    server = serve({"warcfile.warc.gz": local.read_bytes()}, fail_from=70_000)
    tables, counters, details = extracted(server.url + "warcfile.warc.gz", ranges)
    late = sum(1 for offset, length in ranges if offset + length > 70_000)
    assert 0 < late < len(ranges)
    assert (counters["index:read"], counters["index:failed"]) == (len(ranges) - late, late)
    assert len(tables["pages"]) == len(ranges) - late
    assert counters["file:ranges_failed"] == 1 and "file:failed_midway" not in counters
    assert details["file:ranges_failed"].startswith(f"{late} of its {len(ranges)} selected records could not be read")
    tables, counters, details = extracted(server.url + "gone.warc.gz", ranges[:3])
    assert (counters["index:read"], counters["index:failed"], tables["pages"]) == (0, 3, [])
    assert "HTTP 404" in details["file:ranges_failed"]


def test_ranges_that_hold_no_record_are_failed_records(tmp_path):
    """An offset that points inside a record, and a range past the end of the file."""
    local = shared_file("warc", "resiliparse", "warcfile.warc.gz")
    (offset, length), size = response_ranges(local)[0], local.stat().st_size
    tables, counters, details = extracted(str(local), [(offset + 5, length), (size - 10, 100), (offset, length)])
    assert (counters["index:read"], counters["index:failed"], len(tables["pages"])) == (1, 2, 1)
    assert f"no WARC record at byte {offset + 5}" in details["file:ranges_failed"]


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    server.stop()


def test_s3_manifest_and_files(s3_server):
    import boto3

    data = shared_file("warc", "whirlwind", "whirlwind.warc.gz").read_bytes()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="commoncrawl")
    s3.put_object(Bucket="commoncrawl", Key="crawl-data/CC-MAIN-2024-22/whirlwind.warc.gz", Body=data)
    s3.put_object(Bucket="commoncrawl", Key="warc.paths", Body=b"crawl-data/CC-MAIN-2024-22/whirlwind.warc.gz\n")
    paths = expand_input("s3://commoncrawl/warc.paths", "s3://commoncrawl/")
    assert paths == ["s3://commoncrawl/crawl-data/CC-MAIN-2024-22/whirlwind.warc.gz"]
    rows = list(extract_file(paths[0], ExtractOptions()))
    pages = [r for t, r in rows if t == "pages"]
    assert len(pages) == 1 and pages[0]["crawl"] == "CC-MAIN-2024-22"
    tables, counters = counted("s3://commoncrawl/crawl-data/missing.warc.gz")
    assert counters["file:unreadable"] == 1
    selected, _, _ = extracted(paths[0], response_ranges(shared_file("warc", "whirlwind", "whirlwind.warc.gz")))
    assert selected["pages"] == pages


def test_a_manifest_line_with_a_scheme_of_its_own_is_read_as_it_is(tmp_path):
    """Lines naming hdfs://, gs://, s3a:// or file:// crawl files are absolute (they were once joined
    under the manifest's folder, as hdfs://nn/m/hdfs://nn/...); plain lines are joined under it."""
    manifest = tmp_path / "crawl.paths"
    lines = ["hdfs://nn:8020/crawl/a.warc.gz", "gs://bucket/b.warc.gz", "s3a://bucket/c.warc.gz",
             "file:///data/d.warc.gz", "/data/e.warc.gz", "segment/f.warc.gz"]
    manifest.write_text("\n".join(lines) + "\n")
    assert expand_input(str(manifest)) == lines[:5] + [str(tmp_path / "segment" / "f.warc.gz")]
