"""Reading WARC records robustly from a seekable byte stream (FastWARC underneath).

A corrupt gzip member or a damaged uncompressed record does not end the file: the reader counts
it, scans forward to the next record start and carries on. A record cut short by the end of the
file is marked ``truncated``. Record offsets and lengths are those of the file (compressed bytes
for .gz), as Common Crawl's index gives them.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from fastwarc.warc import ArchiveIterator

GZIP_MAGIC = b"\x1f\x8b\x08"
SCAN_CHUNK = 1 << 20
MAX_MEMBER_CHECK = 64 << 20  # inflate at most this much to check a resume point


@dataclass
class Record:
    record_type: str
    target_uri: str | None
    date: str | None
    content_type: str | None
    offset: int
    length: int | None
    content_length: int
    block: bytes
    truncated: bool  # the file ended inside this record
    oversized: bool  # content longer than the cap: block left unread


def _is_record_start(stream: BinaryIO, pos: int, gzipped: bool) -> bool:
    """A WARC header starts at ``pos``; for gzip, its whole member must also inflate cleanly."""
    stream.seek(pos)
    if not gzipped:
        return stream.read(8).startswith(b"WARC/")
    inflater = zlib.decompressobj(31)
    head = b""
    read = 0
    try:
        while not inflater.eof and read < MAX_MEMBER_CHECK:
            chunk = stream.read(SCAN_CHUNK)
            if not chunk:
                return False
            read += len(chunk)
            if len(head) < 5:
                head += inflater.decompress(chunk, 5 - len(head))
                chunk = inflater.unconsumed_tail
            while chunk and not inflater.eof:
                inflater.decompress(chunk, SCAN_CHUNK)
                chunk = inflater.unconsumed_tail
    except zlib.error:
        return False
    return head.startswith(b"WARC/")


def find_next_record(stream: BinaryIO, start: int, gzipped: bool) -> int | None:
    """Offset of the first plausible record start at or after ``start``, or None at end of file."""
    marker = GZIP_MAGIC if gzipped else b"\nWARC/"
    pos = start
    while True:
        stream.seek(pos)
        chunk = stream.read(SCAN_CHUNK + len(marker))
        if not chunk:
            return None
        idx = chunk.find(marker)
        while idx >= 0:
            candidate = pos + idx + (0 if gzipped else 1)
            if candidate >= start and _is_record_start(stream, candidate, gzipped):
                return candidate
            idx = chunk.find(marker, idx + 1)
        if len(chunk) <= SCAN_CHUNK:
            return None
        pos += SCAN_CHUNK


def strip_target_uri(uri: str | None) -> str | None:
    # WARC/1.1 drafts and some writers put the target URI in angle brackets.
    if uri and uri.startswith("<") and uri.endswith(">"):
        return uri[1:-1]
    return uri


def _records_from(stream: BinaryIO, base: int, max_bytes: int) -> Iterator[Record]:
    stream.seek(base)
    for rec in ArchiveIterator(stream, parse_http=False, strict_mode=False):
        headers = rec.headers
        length = rec.content_length
        oversized = length > max_bytes
        block = b"" if oversized else rec.reader.read()
        yield Record(
            record_type=headers.get("WARC-Type") or "unknown",
            target_uri=strip_target_uri(headers.get("WARC-Target-URI")),
            date=headers.get("WARC-Date"),
            content_type=headers.get("Content-Type"),
            offset=rec.stream_pos,  # FastWARC counts from the start of the stream
            length=None,
            content_length=length,
            block=block,
            truncated=not oversized and len(block) < length,
            oversized=oversized,
        )


def iter_records(
    stream: BinaryIO, counters: Counter, max_bytes: int, size: int | None = None
) -> Iterator[Record]:
    """Every readable record of a WARC/WAT file, each with its offset and length in the file.

    Each damaged stretch is counted once under ``skip:corrupt_data`` (the record being read there
    is lost with it) and reading resumes at the next record start after it.
    """
    stream.seek(0)
    gzipped = stream.read(3) == GZIP_MAGIC
    base = 0
    pending: Record | None = None  # held back until the next record's offset gives its length
    while True:
        last_offset = base
        try:
            for record in _records_from(stream, base, max_bytes):
                if pending is not None:
                    pending.length = record.offset - pending.offset
                    yield pending
                pending = record
                last_offset = record.offset
        except OSError:
            counters["skip:corrupt_data"] += 1
            if pending is not None:
                yield pending  # read whole before the damage; its length is unknown
                pending = None
            resume = find_next_record(stream, last_offset + 1, gzipped)
            if resume is None:
                return
            base = resume
            continue
        if pending is not None:
            if size is not None:
                pending.length = size - pending.offset
            if gzipped and not pending.truncated and not _is_record_start(stream, pending.offset, True):
                pending.truncated = True  # the file ends inside the last member, maybe in its header
            yield pending
        return
