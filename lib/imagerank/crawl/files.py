"""One crawl file to rows: pages, image embeds, page links, and counters of what was read and skipped.

Runs where the file is read (a Spark task, or plain Python in the benchmark). Rows are yielded
as ``(table, dict)``; the ``"counter"`` table carries what the report needs:
``{"file", "name", "n", "detail"}`` with names such as ``records:response``, ``skip:non_html``,
``url:url_javascript``, ``format:warc``, ``file:unreadable``. The ``file:`` counters name the file
in the report, with a detail: ``file:unreadable`` (nothing read), ``file:failed_midway`` (the
source failed for good part way: the rows read before are kept, and the detail says how far it got
and how much that was), ``file:tolerant_reader`` (read with warcio: WARC header lines in LF alone).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from imagerank.crawl.html import PARSERS
from imagerank.crawl.page import RawPage, page_rows
from imagerank.crawl.payload import PayloadError, content_type, decode_html, is_html, split_http
from imagerank.crawl.records import TOLERANT_READER, Record, iter_records
from imagerank.crawl.sources import InputError, open_stream, stream_size
from imagerank.crawl.wat import parse_wat
from imagerank.urls import UrlError, normalize, site_of

CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")
FORMATS = ("auto", "warc", "wat")


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

    def _page(self, uri, date, status, title, raw: RawPage, source) -> Iterator[tuple[str, dict]]:
        try:
            url = normalize(uri or "")
        except UrlError:
            self.counters["skip:bad_target_uri"] += 1
            return
        fetch_time = parse_warc_date(date)
        if fetch_time is None:
            self.counters["warn:bad_warc_date"] += 1
        embeds, links = page_rows(url, raw, self.counters)
        host, domain = site_of(url)
        self.counters["pages"] += 1
        if domain is None:
            self.counters["warn:page_host_not_public"] += 1
        yield "pages", {
            "url": url,
            "host": host,
            "domain": domain,
            "crawl": self.crawl,
            "fetch_time": fetch_time,
            "status": status,
            "title": title,
            "n_images": len(embeds),
            "n_links": len(links),
            "warc_filename": source[0],
            "warc_record_offset": source[1],
            "warc_record_length": source[2],
        }
        for row in embeds:
            yield "image_embeds", row
        for row in links:
            yield "page_links", row

    def _warc_response(self, record: Record) -> Iterator[tuple[str, dict]]:
        status, headers, body = split_http(record.block)
        mime, charset = content_type(headers)
        if not is_html(mime, body):
            raise PayloadError("non_html")
        text, lossy = decode_html(body, charset)
        if lossy:
            self.counters["warn:lossy_decode"] += 1
        raw = self.parse_html(text)
        source = (self.path, record.offset, record.length)
        yield from self._page(record.target_uri, record.date, status, raw.title, raw, source)

    def _wat_metadata(self, record: Record) -> Iterator[tuple[str, dict]]:
        meta = parse_wat(record.block)
        if meta["kind"] != "response":
            self.counters["wat:" + meta["kind"]] += 1
            return
        source = meta["source"]
        if source[0] is None:
            source = (self.path, record.offset, record.length)
        raw = meta["raw"]
        yield from self._page(meta["uri"], meta["date"], meta["status"], raw.title, raw, source)

    def rows(self) -> Iterator[tuple[str, dict]]:
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
                handler = None
                if fmt == "warc" and record.record_type == "response":
                    handler = self._warc_response
                elif fmt == "wat" and record.record_type == "metadata":
                    handler = self._wat_metadata
                if handler is None:
                    continue
                if record.truncated:
                    self.counters["skip:truncated_record"] += 1
                    continue
                if record.oversized:
                    self.counters["skip:oversized_record"] += 1
                    continue
                try:
                    yield from handler(record)
                except PayloadError as err:
                    self.counters["skip:" + err.reason] += 1
                except Exception as err:  # noqa: BLE001 - one bad record never stops the file
                    self.counters["skip:parse_error"] += 1
                    self.counters["error:" + type(err).__name__] += 1
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


def extract_file(path: str, options: ExtractOptions) -> Iterator[tuple[str, dict]]:
    """All rows from one WARC or WAT file, then its counters."""
    return _FileExtractor(path, options).rows()
