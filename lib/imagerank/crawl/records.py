"""Reading WARC records robustly from a seekable byte stream (FastWARC underneath).

A corrupt gzip member or a damaged uncompressed record does not end the file: the reader counts
it, scans forward to the next record start and carries on. A record cut short by the end of the
file is marked ``truncated``. Record offsets and lengths are those of the file (compressed bytes
for .gz), as Common Crawl's index gives them.

FastWARC wants the WARC header lines to end in CRLF, as the spec asks; a record whose header
lines end in LF alone (some writers do this, warcio reads it) runs its header block into the
first header's value. From the first such record, the rest of the file is read with warcio
instead, and the file is counted once under ``file:tolerant_reader``.

A remote source that fails for good (:class:`~imagerank.crawl.sources.InputError`, raised once its
retries are spent) is not damage in the file: it ends the reading and is raised to the caller,
after the last record read whole.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from fastwarc.warc import ArchiveIterator

from imagerank.crawl.sources import InputError

GZIP_MAGIC = b"\x1f\x8b\x08"
SCAN_CHUNK = 1 << 20
MAX_MEMBER_CHECK = 64 << 20  # inflate at most this much to check a resume point
TOLERANT_READER = "file:tolerant_reader"  # counter: this file needed warcio (header lines in LF alone)


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


class _LfOnlyHeaders(Exception):
    """FastWARC met a record whose WARC header lines end in LF alone, at ``offset``."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


def lf_only_header(stream: BinaryIO, pos: int, gzipped: bool) -> bool:
    """The record at ``pos`` opens with a WARC version line ended by LF alone, not CRLF."""
    stream.seek(pos)
    head = stream.read(4096)
    if gzipped:
        try:
            head = zlib.decompressobj(31).decompress(head, 256)
        except zlib.error:
            return False
    line, newline, _ = head.partition(b"\n")
    return bool(newline) and line.startswith(b"WARC/") and not line.endswith(b"\r")


def _fast_records(stream: BinaryIO, base: int, max_bytes: int) -> Iterator[Record]:
    stream.seek(base)
    for rec in ArchiveIterator(stream, parse_http=False, strict_mode=False):
        headers = rec.headers
        record_type = headers.get("WARC-Type")
        if record_type is None or "\n" in record_type:
            # LF-only header lines: FastWARC splits the version line but reads the header lines
            # up to a CRLF, so the whole header block (and more) lands in one header's value.
            if any("\n" in value for _, value in headers.astuples()):
                raise _LfOnlyHeaders(rec.stream_pos)
        length = rec.content_length
        oversized = length > max_bytes
        block = b"" if oversized else rec.reader.read()
        yield Record(
            record_type=record_type or "unknown",
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


def _tolerant_records(stream: BinaryIO, base: int, max_bytes: int) -> Iterator[Record]:
    """The records from ``base`` on, read with warcio: header lines may end in LF alone.

    Slower than FastWARC; its errors (damaged gzip, a line that is no WARC header) come out as
    OSError, as FastWARC's do, so the same resync applies.
    """
    from warcio.archiveiterator import ArchiveIterator as WarcioIterator

    stream.seek(base)
    try:
        records = WarcioIterator(stream, no_record_parse=True)
        for rec in records:
            headers = rec.rec_headers
            length = rec.length or 0
            oversized = length > max_bytes
            block = b"" if oversized else rec.raw_stream.read(length)
            offset = records.get_record_offset()  # reads to the record's end (and past its blank lines)
            yield Record(
                record_type=rec.rec_type or "unknown",
                target_uri=strip_target_uri(headers.get_header("WARC-Target-URI")),
                date=headers.get_header("WARC-Date"),
                content_type=headers.get_header("Content-Type"),
                offset=offset,
                length=None,
                content_length=length,
                block=block,
                truncated=not oversized and len(block) < length,
                oversized=oversized,
            )
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - warcio's ArchiveLoadFailed, zlib.error, ValueError, ...
        raise OSError(f"{type(err).__name__}: {err}") from err


def iter_records(
    stream: BinaryIO, counters: Counter, max_bytes: int, size: int | None = None
) -> Iterator[Record]:
    """Every readable record of a WARC/WAT file, each with its offset and length in the file.

    Each damaged stretch is counted once under ``skip:corrupt_data`` (the record being read there
    is lost with it) and reading resumes at the next record start after it. A file whose header
    lines end in LF alone is read with warcio from the first such record on, counted once under
    ``file:tolerant_reader``. An :class:`InputError` (the source failed for good) ends the reading
    and is raised, after the last record read whole.
    """
    stream.seek(0)
    gzipped = stream.read(3) == GZIP_MAGIC
    base = 0
    tolerant = False
    pending: Record | None = None  # held back until the next record's offset gives its length
    while True:
        last_offset = base
        if not tolerant and lf_only_header(stream, base, gzipped):
            tolerant = True  # FastWARC may refuse such a record outright rather than misread it
            counters[TOLERANT_READER] = 1
        reader = _tolerant_records if tolerant else _fast_records
        try:
            for record in reader(stream, base, max_bytes):
                if pending is not None:
                    pending.length = record.offset - pending.offset
                    yield pending
                pending = record
                last_offset = record.offset
        except _LfOnlyHeaders as switch:
            tolerant = True
            counters[TOLERANT_READER] = 1
            if pending is not None:
                pending.length = switch.offset - pending.offset
                yield pending
                pending = None
            base = switch.offset
            continue
        except InputError:
            if pending is not None:
                yield pending  # read whole before the source failed; its length is unknown
            raise
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
