"""Damaged input: each case is counted, and the records around it are still read."""

import gzip
import io
import zlib
from collections import Counter

import pytest

from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.crawl.records import iter_records
from imagerank.crawl.sources import ReadFailed

from conftest import extracted, shared_file


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


def test_wat_urls_are_decoded_as_an_html_parser_decodes_them():
    """ia-web-commons writes attribute values as the HTML has them, character references included
    (webarchive-commons 3.0.4 on whirlwind.warc.gz: 43 of its 207 links hold ``&amp;``); the WAT
    path decodes them, so a link, an image and an og:image name the URLs the WARC path gives."""
    import json

    from imagerank.crawl.wat import parse_wat
    from imagerank.sample import Page, wat_json

    page = Page(url="https://an.wikipedia.org/wiki/Escopete", host="an.wikipedia.org", title="Escopete",
                links=[("https://an.wikipedia.org/w/index.php?title=Escopete&amp;action=edit", False)],
                images=[("https://img.example.org/a.jpg?w=1&amp;h=2", "img"),
                        ("https://img.example.org/og.jpg?x=1&#38;y=2", "og")])
    raw = parse_wat(json.dumps(wat_json(page, "x.warc.gz", 0)).encode())["raw"]
    assert [url for url, _, _ in raw.links] == ["https://an.wikipedia.org/w/index.php?title=Escopete&action=edit#section"]
    assert sorted(image.href for image in raw.images) == ["https://img.example.org/a.jpg?w=1&h=2",
                                                          "https://img.example.org/og.jpg?x=1&y=2"]


# WARC header lines in LF alone (the spec asks CRLF; warcio reads them, FastWARC misreads them)


def lf_only(record: bytes) -> bytes:
    """One record with its WARC header lines ended in LF alone; the block and its end left as they were."""
    head, sep, rest = record.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"WARC/")
    return head.replace(b"\r\n", b"\n") + b"\n\n" + rest


def lf_only_gz(data: bytes, first: int = 0) -> tuple[bytes, list[int]]:
    """A .warc.gz rewritten member by member from member ``first`` on; and its member offsets."""
    members, bounds = [], member_offsets(data) + [len(data)]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        plain = zlib.decompressobj(31).decompress(data[a:b])  # a clipped last member inflates in part
        members.append(data[a:b] if i < first else gzip.compress(lf_only(plain)))
    offsets = [sum(len(m) for m in members[:i]) for i in range(len(members))]
    return b"".join(members), offsets


def lf_only_warc(data: bytes) -> tuple[bytes, list[int]]:
    """An uncompressed WARC (or a .warc.gz, inflated) rewritten record by record; and its record offsets."""
    if data[:2] == b"\x1f\x8b":
        data = b"".join(zlib.decompress(data[a:b], 31)
                        for a, b in zip(member_offsets(data), member_offsets(data)[1:] + [len(data)]))
    starts = [r.offset for r in iter_records(io.BytesIO(data), Counter(), 10 << 20, len(data))]
    records = [lf_only(data[a:b]) for a, b in zip(starts, starts[1:] + [len(data)])]
    return b"".join(records), [sum(len(r) for r in records[:i]) for i in range(len(records))]


def without_offsets(tables):
    """The rows with the record offsets and lengths taken out (they change with the header bytes)."""
    out = {}
    for name, rows in tables.items():
        out[name] = sorted(repr(sorted((k, v) for k, v in row.items()
                                       if k not in ("warc_record_offset", "warc_record_length", "warc_filename")))
                           for row in rows)
    return out


def test_lf_only_gz_is_read_with_warcio_at_the_offsets_of_its_members(warcfile):
    data, offsets = lf_only_gz(warcfile)
    records, counters = read_all(data)
    assert counters == Counter({"file:tolerant_reader": 1})
    assert [r.offset for r in records] == offsets
    assert [r.length for r in records] == [b - a for a, b in zip(offsets, offsets[1:] + [len(data)])]
    assert [(r.record_type, r.target_uri, r.content_length, r.block) for r in records] == [
        (r.record_type, r.target_uri, r.content_length, r.block) for r in read_all(warcfile)[0]]


def test_lf_only_uncompressed_is_read_at_the_offsets_of_its_records(warcfile):
    data, offsets = lf_only_warc(warcfile)
    records, counters = read_all(data)
    assert counters == Counter({"file:tolerant_reader": 1})
    assert [r.offset for r in records] == offsets and len(records) == 50
    assert [r.length for r in records] == [b - a for a, b in zip(offsets, offsets[1:] + [len(data)])]


def test_lf_only_from_mid_file_switches_there(warcfile):
    """FastWARC reads the CRLF records; from the first LF-only one on, warcio reads the rest."""
    data, offsets = lf_only_gz(warcfile, first=20)
    records, counters = read_all(data)
    assert counters == Counter({"file:tolerant_reader": 1})
    assert [r.offset for r in records] == offsets and len(records) == 50
    assert records[19].length == offsets[20] - offsets[19]


def test_lf_only_and_damaged_is_resynced_in_the_tolerant_reader(warcfile):
    data, offsets = lf_only_gz(warcfile)
    damaged = bytearray(data)
    damaged[offsets[10] + 30 : offsets[10] + 60] = bytes(30)
    records, counters = read_all(bytes(damaged))
    assert counters == Counter({"file:tolerant_reader": 1, "skip:corrupt_data": 1})
    assert [r.offset for r in records] == offsets[:10] + offsets[11:]


@pytest.mark.parametrize("kind", ["gz", "uncompressed"])
def test_lf_only_warc_gives_the_same_pages_and_links(warcfile, tmp_path, kind):
    rewrite = lf_only_gz if kind == "gz" else lf_only_warc
    path = tmp_path / ("lf-only.warc.gz" if kind == "gz" else "lf-only.warc")
    path.write_bytes(rewrite(warcfile)[0])
    original, counted, _ = extracted(shared_file("warc", "resiliparse", "warcfile.warc.gz"))
    tables, counters, details = extracted(path)
    # 1025 links: /company/? on /company/ is the page itself, not a link
    assert (len(tables["pages"]), len(tables["image_embeds"]), len(tables["page_links"])) == (16, 150, 1025)
    assert without_offsets(tables) == without_offsets(original)
    assert counters["file:tolerant_reader"] == 1 and "LF alone" in details["file:tolerant_reader"]
    assert counters - Counter({"file:tolerant_reader": 1}) == counted
    # each page's offset and length are those of its record in the rewritten file
    data = path.read_bytes()
    for page in tables["pages"]:
        offset, length = page["warc_record_offset"], page["warc_record_length"]
        record = data[offset : offset + length]
        if kind == "gz":
            record = zlib.decompress(record, 31)
        assert record.startswith(b"WARC/1.0\nWARC-Type: response\n")


def test_lf_only_clueweb_warc_018_and_clipped_record(tmp_path):
    clueweb = tmp_path / "clueweb-lf.warc.gz"
    clueweb.write_bytes(lf_only_gz(shared_file("warc", "resiliparse", "clueweb-quirk.warc.gz").read_bytes())[0])
    tables, counters, _ = extracted(clueweb)
    assert (len(tables["pages"]), len(tables["image_embeds"]), len(tables["page_links"])) == (29, 1252, 2538)
    assert counters["file:tolerant_reader"] == 1 and counters["warn:bad_warc_date"] == 29
    clipped = tmp_path / "clipped-lf.warc.gz"
    clipped.write_bytes(lf_only_gz(shared_file("warc", "resiliparse", "clipped.warc.gz").read_bytes())[0])
    tables, counters, _ = extracted(clipped)
    assert not tables["pages"]
    assert counters == Counter({"file:tolerant_reader": 1, "format:warc": 1, "records:response": 1,
                                "skip:truncated_record": 1})


def test_lf_only_wat_is_still_read_as_a_wat(tmp_path):
    original = shared_file("warc", "whirlwind", "whirlwind.warc.wat.gz")
    path = tmp_path / "whirlwind-lf.warc.wat.gz"
    path.write_bytes(lf_only_gz(original.read_bytes())[0])
    _, counters, _ = extracted(path)
    _, expected, _ = extracted(original)
    assert expected == Counter({"format:wat": 1, "records:metadata": 1, "records:warcinfo": 1, "wat:request": 1})
    assert counters == expected + Counter({"file:tolerant_reader": 1})


def test_crlf_files_stay_on_fastwarc(warcfile):
    assert "file:tolerant_reader" not in read_all(warcfile)[1]
    data = shared_file("warc", "ia-web-commons", "link-extraction-test.warc").read_bytes()
    assert "file:tolerant_reader" not in read_all(data)[1]


class FailsOnceAt(io.RawIOBase):
    """A stream whose source fails for good at one byte the first time it gets there."""

    def __init__(self, data: bytes, at: int):
        self.data, self.at, self.pos, self.failed = data, at, 0, False

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        self.pos = offset + (self.pos if whence == io.SEEK_CUR else len(self.data) if whence == io.SEEK_END else 0)
        return self.pos

    def readinto(self, buffer):
        if self.pos == self.at and not self.failed:
            self.failed = True
            raise ReadFailed(f"x.warc.gz: connection kept failing at byte {self.pos}", self.pos)
        stop = self.at if self.pos < self.at and not self.failed else len(self.data)
        end = min(len(self.data), self.pos + len(buffer), stop)
        buffer[: end - self.pos] = self.data[self.pos : end]
        n, self.pos = end - self.pos, end
        return n


def test_a_source_failing_for_good_is_raised_not_read_past_as_corrupt_data(warcfile):
    """Not counted as corrupt data and resumed after (losing records unnamed): raised, after the
    records read whole before it."""
    offsets = member_offsets(warcfile)
    at = offsets[30] + 100
    counters, records = Counter(), []
    with pytest.raises(ReadFailed) as failed:
        for record in iter_records(FailsOnceAt(warcfile, at), counters, 10 << 20, len(warcfile)):
            records.append(record)
    assert failed.value.offset == at and not counters
    assert [r.offset for r in records] == offsets[:30]
    assert records[-1].length is None  # the next record's offset was never reached
