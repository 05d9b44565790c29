"""One crawl file to rows: pages, image embeds, page links, and counters of what was read and skipped.

Runs where the file is read (a Spark task, or plain Python in the benchmark). :func:`extract_pages`
yields each page's rows together, as ``("page", (page, embeds, links))`` (rows are tuples in
:data:`imagerank.crawl.schemas.COLUMNS` order), and the counters as ``("counter", dict)``;
:func:`extract_file` gives the same as ``(table, dict)`` a row at a time. A counter carries what the
report needs:
``{"file", "name", "n", "detail"}`` with names such as ``records:response``, ``skip:non_html``,
``url:url_javascript``, ``format:warc``, ``file:unreadable``. The ``file:`` counters name the file
in the report, with a detail: ``file:unreadable`` (nothing read), ``file:failed_midway`` (the
source failed for good part way: the rows read before are kept, and the detail says how far it got
and how much that was), ``file:tolerant_reader`` (read with warcio: WARC header lines in LF alone),
``file:ranges_failed`` (records selected through Common Crawl's index that could not be read; the
others are read, and ``index:selected``, ``index:read``, ``index:failed`` count them).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from imagerank.crawl.html import PARSERS
from imagerank.crawl.page import RawPage, page_rows
from imagerank.crawl.payload import PayloadError, content_type, html_markup, is_html, split_http
from imagerank.crawl.records import TOLERANT_READER, Record, iter_records
from imagerank.crawl.schemas import as_dict
from imagerank.crawl.sources import InputError, open_stream, read_span, stream_size
from imagerank.crawl.wat import parse_wat
from imagerank.urls import UrlError, normalize, site_of

CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")
FORMATS = ("auto", "warc", "wat")
SPAN_GAP = 1 << 20  # records selected through the index this close are read in one request
MAX_SPAN = 32 << 20  # the most bytes one such request reads


@dataclass(frozen=True)
class ExtractOptions:
    format: str = "auto"
    crawl: str | None = None
    parser: str = "selectolax"
    max_page_bytes: int = 5 << 20
    read_retries: int | None = None  # tries after the first for a remote source; None: sources.RETRIES
    read_backoff: float | None = None  # seconds before the first retry, doubled at each; None: sources.BACKOFF


def parse_warc_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def sniff_format(record: Record) -> str | None:
    """'warc' or 'wat' from the first telling record, or None if this record does not tell."""
    if record.record_type == "response":
        return "warc"
    if record.record_type == "metadata" and (record.content_type or "").startswith("application/json"):
        return "wat"
    return None


# the first bytes of formats found under a WARC name by mistake, for the no_records detail
MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
         (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "gzip data"))


def not_crawl_file(path: str, head: bytes | None, size: int | None) -> str:
    """The ``file:no_records`` detail: ``path`` is not a WARC or WAT file, and what it looks like
    from its first bytes ``head`` (None: unknown) and its ``size`` (None: unknown): empty, an image,
    gzip data, plain text, or unrecognized binary data."""
    if size == 0 or (size is None and head == b""):
        return f"{path} is not a WARC or WAT file: it is empty (0 bytes)"
    what = next((name for magic, name in MAGIC if head and head.startswith(magic)), None)
    if what is None and head:
        text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a character cut at the end is not binary
        if "\ufffd" not in text and all(c.isprintable() or c in "\t\r\n" for c in text):
            what = "plain text"
    return (f"{path} is not a WARC or WAT file: not one WARC record in its "
            f"{'' if size is None else f'{size:,} '}bytes ({what or 'unrecognized binary data'})")


class _FileExtractor:
    def __init__(self, path: str, options: ExtractOptions):
        self.path = path
        self.options = options
        self.parse_html = PARSERS[options.parser]
        self.counters: Counter = Counter()
        self.crawl = options.crawl or (CRAWL_ID.search(path).group(0) if CRAWL_ID.search(path) else None)

    # A page's rows come as one item, not one per row: they pass through the file's generator together.
    def _page(self, uri, date, status, title, raw: RawPage, source) -> list[tuple[str, tuple]]:
        try:
            url = normalize(uri or "")
        except UrlError:
            self.counters["skip:bad_target_uri"] += 1
            return []
        fetch_time = parse_warc_date(date)
        if fetch_time is None:
            self.counters["warn:bad_warc_date"] += 1
        embeds, links = page_rows(url, raw, self.counters)
        host, domain = site_of(url)
        self.counters["pages"] += 1
        if domain is None:
            self.counters["warn:page_host_not_public"] += 1
        page = (url, host, domain, self.crawl, fetch_time, status, title, len(embeds), len(links), *source)
        return [("page", (page, embeds, links))]

    def _warc_response(self, record: Record) -> list[tuple[str, tuple]]:
        status, headers, body = split_http(record.block)
        mime, charset = content_type(headers)
        if not is_html(mime, body):
            raise PayloadError("non_html")
        markup, lossy = html_markup(body, charset)
        if lossy:
            self.counters["warn:lossy_decode"] += 1
        raw = self.parse_html(markup)
        source = (self.path, record.offset, record.length)
        return self._page(record.target_uri, record.date, status, raw.title, raw, source)

    def _wat_metadata(self, record: Record) -> list[tuple[str, tuple]]:
        meta = parse_wat(record.block)
        if meta["kind"] != "response":
            self.counters["wat:" + meta["kind"]] += 1
            return []
        source = meta["source"]
        if source[0] is None:
            source = (self.path, record.offset, record.length)
        raw = meta["raw"]
        return self._page(meta["uri"], meta["date"], meta["status"], raw.title, raw, source)

    def _record_rows(self, record: Record, fmt: str | None) -> list[tuple[str, tuple]]:
        handler = None
        if fmt == "warc" and record.record_type == "response":
            handler = self._warc_response
        elif fmt == "wat" and record.record_type == "metadata":
            handler = self._wat_metadata
        if handler is None:
            return []
        if record.truncated:
            self.counters["skip:truncated_record"] += 1
            return []
        if record.oversized:
            self.counters["skip:oversized_record"] += 1
            return []
        try:
            return handler(record)
        except PayloadError as err:
            self.counters["skip:" + err.reason] += 1
        except Exception as err:  # noqa: BLE001 - one bad record never stops the file
            self.counters["skip:parse_error"] += 1
            self.counters["error:" + type(err).__name__] += 1
        return []

    def range_rows(self, ranges: list[tuple[int, int]]) -> Iterator[tuple[str, tuple | dict]]:
        """The rows of the WARC records at ``ranges`` ((offset, length) in the file, as Common
        Crawl's index gives them), read in spans of neighbouring records (:func:`spans`), then the
        counters. A span that cannot be read fails its records (``index:failed``), and the file
        is named once under ``file:ranges_failed`` (so ``--resume`` reads it again); the other
        spans are read on."""
        self.counters["index:selected"] += len(ranges)
        failures: list[tuple[int, str]] = []  # (records failed, first error) per failed span
        stream = None
        try:
            stream = open_stream(self.path, self.options.read_retries, self.options.read_backoff, connect=False)
            for start, end, members in spans(ranges):
                try:
                    data = read_span(stream, start, end)
                except InputError as err:
                    failures.append((len(members), str(err)))
                    continue
                for offset, length in members:
                    chunk = data[offset - start : offset - start + length]
                    problem = None if len(chunk) == length else (
                        f"{self.path} ends at byte {start + len(data)}, inside the record at {offset} (length {length})")
                    if problem is None:
                        problem = yield from self._range_record(chunk, offset, length)
                    if problem is not None:
                        failures.append((1, problem))
        except InputError as err:  # a local file that is not there
            failures.append((len(ranges), str(err)))
        finally:
            if stream is not None:
                stream.close()
        failed = sum(n for n, _ in failures)
        self.counters["index:failed"] += failed
        self.counters["index:read"] += len(ranges) - failed
        if failures:
            yield "counter", {"file": self.path, "name": "file:ranges_failed", "n": 1,
                              "detail": f"{failed} of its {len(ranges)} selected records could not be read "
                                        f"(first: {failures[0][1]})"}
        self.counters["format:warc"] += 1
        yield from self._counter_rows()

    def _range_record(self, chunk: bytes, offset: int, length: int):
        """Rows of the record(s) in one range's bytes (returns None), or why it holds none."""
        found = False
        for record in iter_records(io.BytesIO(chunk), self.counters, self.options.max_page_bytes, len(chunk)):
            found = True
            self.counters["records:" + record.record_type] += 1
            record.offset += offset  # its length, within the range's bytes, is the range's own
            yield from self._record_rows(record, "warc")
        return None if found else f"no WARC record at byte {offset} (length {length}) of {self.path}"

    def rows(self) -> Iterator[tuple[str, tuple | dict]]:
        fmt = None if self.options.format == "auto" else self.options.format
        try:
            stream = open_stream(self.path, self.options.read_retries, self.options.read_backoff)
        except InputError as err:
            self.counters["file:unreadable"] += 1
            yield "counter", {"file": self.path, "name": "file:unreadable", "n": 1, "detail": str(err)}
            return
        size, head, no_records = None, None, False
        try:
            size = stream_size(stream)
            records = iter_records(stream, self.counters, self.options.max_page_bytes, size)
            for record in records:
                self.counters["records:" + record.record_type] += 1
                if fmt is None:
                    fmt = sniff_format(record)
                yield from self._record_rows(record, fmt)
        except InputError as err:
            self.counters["file:failed_midway"] += 1
            records = sum(n for name, n in self.counters.items() if name.startswith("records:"))
            kept = (f"{records} records and {self.counters['pages']} pages read before it are kept "
                    f"(the rest of the file is not read)")
            yield "counter", {"file": self.path, "name": "file:failed_midway", "n": 1,
                              "detail": f"{err}; {kept}"}
        else:
            no_records = not any(name.startswith("records:") for name in self.counters)
            if no_records:
                head = _head(stream)
        finally:
            stream.close()
        if no_records:
            # opened, but not one WARC record in it: empty, or another format under a WARC name (a PNG, text)
            self.counters["file:no_records"] += 1
            yield "counter", {"file": self.path, "name": "file:no_records", "n": 1,
                              "detail": not_crawl_file(self.path, head, size)}
        if self.counters[TOLERANT_READER]:
            yield "counter", {"file": self.path, "name": TOLERANT_READER, "n": 1,
                              "detail": "WARC header lines end in LF alone, not CRLF: read with warcio, not FastWARC"}
        self.counters["format:" + (fmt or "unknown")] += 1
        yield from self._counter_rows()

    def _counter_rows(self) -> Iterator[tuple[str, dict]]:
        for name, n in sorted(self.counters.items()):
            if name.startswith("file:"):
                continue
            yield "counter", {"file": self.path, "name": name, "n": n, "detail": None}


def _head(stream) -> bytes | None:
    """The first bytes of a file that held no WARC record; None where they cannot be read again."""
    try:
        stream.seek(0)
        return stream.read(64) or b""
    except (OSError, ValueError):
        return None


def spans(ranges: list[tuple[int, int]]) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """(start, end, [(offset, length)...]) of the ``ranges`` in offset order, neighbours read
    together: a record starting at most :data:`SPAN_GAP` bytes after the span's end joins it while
    the span stays under :data:`MAX_SPAN` bytes. A gap costs its bytes; a request costs a round trip
    (tens of milliseconds to S3 or over HTTPS, a megabyte's transfer)."""
    start = end = None
    members: list[tuple[int, int]] = []
    for offset, length in sorted(ranges):
        if members and offset - end <= SPAN_GAP and max(end, offset + length) - start <= MAX_SPAN:
            members.append((offset, length))
            end = max(end, offset + length)
            continue
        if members:
            yield start, end, members
        start, end, members = offset, offset + length, [(offset, length)]
    if members:
        yield start, end, members


def extract_pages(path: str, options: ExtractOptions,
                  ranges: list[tuple[int, int]] | None = None) -> Iterator[tuple[str, tuple | dict]]:
    """Every page of one WARC or WAT file as ``("page", (page row, embed rows, link rows))``, then
    the file's counters as ``("counter", dict)``; with ``ranges``, the pages of the WARC records at
    those (offset, length) alone (:meth:`_FileExtractor.range_rows`). Rows are tuples in
    :data:`imagerank.crawl.schemas.COLUMNS` order. What the extract task writes."""
    extractor = _FileExtractor(path, options)
    return extractor.rows() if ranges is None else extractor.range_rows(ranges)


def extract_file(path: str, options: ExtractOptions,
                 ranges: list[tuple[int, int]] | None = None) -> Iterator[tuple[str, dict]]:
    """:func:`extract_pages` a row at a time: ``(table, dict by column name)``, tables ``pages``,
    ``image_embeds``, ``page_links`` and ``counter``."""
    for kind, item in extract_pages(path, options, ranges):
        if kind == "counter":
            yield kind, item
            continue
        page, embeds, links = item
        yield "pages", as_dict("pages", page)
        for row in embeds:
            yield "image_embeds", as_dict("image_embeds", row)
        for row in links:
            yield "page_links", as_dict("page_links", row)
