"""Damaged input: each case is counted, and the records around it are still read."""

import io
import zlib
from collections import Counter

import pytest

from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.crawl.records import iter_records

from conftest import shared_file


def member_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[pos:])
        pos = len(data) - len(inflater.unused_data)
    return offsets


def read_all(data: bytes):
    counters = Counter()
    records = list(iter_records(io.BytesIO(data), counters, 10 << 20, len(data)))
    return records, counters


@pytest.fixture(scope="module")
def warcfile():
    return shared_file("warc", "resiliparse", "warcfile.warc.gz").read_bytes()


def test_offsets_and_lengths_are_the_gzip_members(warcfile):
    records, counters = read_all(warcfile)
    offsets = member_offsets(warcfile)
    assert [r.offset for r in records] == offsets
    assert [r.length for r in records] == [b - a for a, b in zip(offsets, offsets[1:] + [len(warcfile)])]
    assert not counters


@pytest.mark.parametrize("where", [30, 300])
def test_corrupt_gzip_member_is_skipped_and_counted(warcfile, where):
    offsets = member_offsets(warcfile)
    damaged = bytearray(warcfile)
    start = offsets[10] + where
    damaged[start : start + 30] = bytes(30)
    records, counters = read_all(bytes(damaged))
    assert counters == Counter({"skip:corrupt_data": 1})
    assert [r.offset for r in records] == offsets[:10] + offsets[11:]


def test_garbage_between_members(warcfile):
    offsets = member_offsets(warcfile)
    data = warcfile[: offsets[5]] + b"not a gzip member" + warcfile[offsets[5] :]
    records, counters = read_all(data)
    assert len(records) == len(offsets)
    assert counters["skip:corrupt_data"] == 1


def test_file_cut_inside_last_record_header(warcfile):
    offsets = member_offsets(warcfile)
    records, _ = read_all(warcfile[: offsets[-1] + 100])
    assert len(records) == len(offsets)
    assert records[-1].truncated and not records[-2].truncated


def test_uncompressed_warc_resyncs_on_a_damaged_header():
    data = shared_file("warc", "ia-web-commons", "link-extraction-test.warc").read_bytes()
    cut = data.find(b"WARC/1.0", 2000)
    records, counters = read_all(data[:cut] + b"XXXX" + data[cut + 4 :])
    assert len(records) == 9 and counters["skip:corrupt_data"] == 1


def test_oversized_and_undecodable_and_non_html(tmp_path):
    from imagerank.sample import write_sample

    info = write_sample(str(tmp_path))
    path = tmp_path / "crawl" / "CC-MAIN-2099-01" / info["files"][0]
    counters = Counter()
    for table, row in extract_file(str(path), ExtractOptions(max_page_bytes=1000)):
        if table == "counter":
            counters[row["name"]] = row["n"]
    assert counters["skip:oversized_record"] > 0
    assert counters["skip:non_html"] == 1  # the JPEG
    assert counters["skip:corrupt_data"] == 1


def test_unreadable_file_is_named():
    rows = list(extract_file("/no/such/file.warc.gz", ExtractOptions()))
    assert rows == [("counter", {"file": "/no/such/file.warc.gz", "name": "file:unreadable", "n": 1,
                                 "detail": rows[0][1]["detail"]})]
    assert "No such file" in rows[0][1]["detail"]


def test_wat_target_uri_in_angle_brackets_is_stripped_as_in_warcs():
    """WATs made from WARCs whose WARC-Target-URI is bracketed (<https://...>) keep their pages."""
    import json

    from imagerank.crawl.wat import parse_wat
    from imagerank.sample import Page, wat_json

    page = Page(url="https://www.openmuseum.org/a.html", host="www.openmuseum.org", title="A")
    document = wat_json(page, "x.warc.gz", 0)
    header = document["Envelope"]["WARC-Header-Metadata"]
    header["WARC-Target-URI"] = "<" + header["WARC-Target-URI"] + ">"
    assert parse_wat(json.dumps(document).encode())["uri"] == "https://www.openmuseum.org/a.html"
