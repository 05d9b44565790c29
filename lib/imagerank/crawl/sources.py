"""Where crawl files come from: manifests, globs and single files; local, file://, s3://, https://,
and any other store of :mod:`imagerank.fs` (gs://, hdfs://).

Every input opens as a seekable binary stream, so the record reader can skip over damage. Remote
streams survive a failed request (5xx, 429, a transient error of the store) or a connection cut
mid-file: they reconnect at the byte where they stopped, with exponential back-off, up to a bounded
number of tries. HTTP(S) and S3 are read with range requests (:class:`HttpStream`,
:class:`S3Stream`); every other remote store (``gs://``, ``hdfs://``, ``viewfs://``) through its
pyarrow filesystem, reopened and positioned at that byte (:class:`ArrowStream`). A missing or
refused object is final at once. Once the tries are spent mid-file the stream raises
:class:`ReadFailed`: the record reader does not take that for damage in the file (it would skip
over it and read on), the file is reported as failed mid-way, with the byte it reached. Local
files are read as they are, without retries.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import time
from typing import BinaryIO
from urllib.parse import urljoin

from imagerank import fs

MANIFEST_SUFFIXES = (".paths", ".paths.gz", ".txt", ".txt.gz", ".lst", ".manifest")
RETRY_STATUS = frozenset((408, 429, 500, 502, 503, 504))
RETRIES = 6  # tries after the first, per (re)connection and per run of failed reads
BACKOFF = 0.5  # seconds before the first retry, doubled at each


class InputError(OSError):
    """An input that cannot be read (missing, refused, retries exhausted): the source failed, not the data."""


class ReadFailed(InputError):
    """A remote stream that failed for good at byte ``offset`` (retries spent, or a final answer)."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


local_path = fs.local_path


def join_path(base: str, path: str) -> str:
    """``path`` made absolute against ``base`` (a URL or a folder), as cc-pyspark does; a path with a
    scheme of its own (``hdfs://``, ``gs://``, ``s3://``, ``file://``...) is already absolute."""
    if fs.scheme_of(path) or os.path.isabs(path):
        return path
    if base.startswith(("http://", "https://")):
        return urljoin(base if base.endswith("/") else base + "/", path)
    if not fs.is_local(base):  # s3://, gs://, hdfs:// are not schemes urljoin knows
        return base.rstrip("/") + "/" + path.lstrip("/")
    return os.path.join(local_path(base), path)


def is_manifest(path: str) -> bool:
    return path.endswith(MANIFEST_SUFFIXES)


def expand_input(spec: str, base_url: str | None = None) -> list[str]:
    """The list of crawl files named by ``spec``: a manifest, a glob, or one file. A manifest that
    cannot be read, or a local glob that matches nothing, raises :class:`InputError` naming ``spec``."""
    if is_manifest(spec):
        if fs.is_local(spec) and not os.path.exists(local_path(spec)):
            raise InputError(f"{spec}: the manifest does not exist; check the path")
        with open_stream(spec) as raw:
            data = raw.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        base = base_url or (spec.rsplit("/", 1)[0] if "/" in spec else ".")
        lines = (line.strip() for line in data.decode("utf-8").splitlines())
        return [join_path(base, line) for line in lines if line and not line.startswith("#")]
    if fs.is_local(spec) and any(ch in spec for ch in "*?["):
        paths = sorted(glob.glob(local_path(spec)))
        if not paths:
            raise InputError(f"{spec}: no file matches this pattern; check the path")
        return paths
    return [join_path(base_url, spec) if base_url else spec]


class RangeStream(io.RawIOBase):
    """A seekable read-only stream over a remote object, read with range requests and retries."""

    def __init__(self, name: str, retries: int | None = None, backoff: float | None = None):
        self.name = name
        self.retries = RETRIES if retries is None else retries
        self.backoff = BACKOFF if backoff is None else backoff
        self.pos = 0
        self.size: int | None = None
        self.limit: int | None = None  # set by read_span: requests end before this byte
        self.body = None
        self.failure: ReadFailed | None = None  # raised again, without new tries, at the same byte

    # subclasses: open the object from byte ``pos`` (up to ``self.limit`` where set); return
    # (file-like body, total size or None)
    def _open(self, pos: int):
        raise NotImplementedError

    def _is_retryable(self, err: Exception) -> bool:
        return True

    # subclasses may move the open body to ``offset`` themselves (a seek in an open file) and return
    # True; by default a seek drops the body and the next read reconnects there
    def _move_body(self, offset: int) -> bool:
        return False

    def _connect(self) -> None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.body, size = self._open(self.pos)
                if size is not None:
                    self.size = size
                return
            except Exception as err:  # noqa: BLE001 - classified below
                if attempt == self.retries or not self._is_retryable(err):
                    where = f" from byte {self.pos}" if self.pos else ""
                    tries = f" after {attempt + 1} tries" if attempt else ""
                    raise ReadFailed(f"cannot read {self.name}{where}{tries}: {err}", self.pos) from err
                time.sleep(delay)
                delay *= 2

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.pos
        elif whence == io.SEEK_END:
            if self.size is None:
                self._connect()
            offset += self.size
        if offset != self.pos:
            if self.body is None or not self._move_body(offset):
                self._close_body()
            self.pos = offset
        return self.pos

    def _close_body(self) -> None:
        if self.body is not None:
            try:
                self.body.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.body = None

    def readinto(self, buffer) -> int:
        if self.size is not None and self.pos >= self.size:
            return 0
        if self.failure is not None and self.failure.offset == self.pos:
            raise self.failure
        view, got = memoryview(buffer).cast("B"), 0
        while got < len(view):  # fill the buffer, as one blocking read would
            try:
                n = self._readinto(view[got:])
            except ReadFailed as err:
                self.failure = err
                if got:
                    return got  # the bytes that came first; the failure comes at the next read
                raise
            if not n:
                break
            got += n
        return got

    def _readinto(self, buffer) -> int:
        failures = 0
        while True:
            if self.body is None:
                if self._at_limit():
                    return 0
                self._connect()
                if self.size is not None and self.pos >= self.size:
                    return 0
            try:
                # read1 where the body has it (urllib3): what has arrived, so a connection cut
                # inside a large read loses none of the bytes it delivered and resumes after them
                data = getattr(self.body, "read1", self.body.read)(len(buffer))
            except Exception as err:  # noqa: BLE001 - a cut connection, reset, timeout
                data = None
                error = err
            if data:
                buffer[: len(data)] = data
                self.pos += len(data)
                return len(data)
            if data == b"" and (self.size is None or self.pos >= self.size or self._at_limit()):
                return 0
            # Cut before the end: reconnect at self.pos.
            self._close_body()
            failures += 1
            if failures > self.retries:
                cause = f": {error}" if data is None else " (connection closed early)"
                raise ReadFailed(f"{self.name}: connection kept failing at byte {self.pos}, "
                                 f"{failures} tries{cause}", self.pos) from (error if data is None else None)
            time.sleep(self.backoff * (2 ** (failures - 1)))

    def _at_limit(self) -> bool:
        return self.limit is not None and self.pos >= self.limit

    def read_span(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive), fewer where the object ends first, read with
        requests bounded to that span (reconnecting inside it on failure, as any read does).
        Raises :class:`ReadFailed` once the tries are spent."""
        self.seek(start)
        self._close_body()  # an open body may run past the span: a bounded request instead
        self.limit = end
        try:
            buffer = bytearray(end - start)
            view, got = memoryview(buffer), 0
            while got < len(buffer):
                n = self._readinto(view[got:])
                if not n:
                    break
                got += n
            return bytes(buffer[:got])
        finally:
            self._close_body()
            self.limit = None

    def close(self) -> None:
        self._close_body()
        super().close()


class HttpStream(RangeStream):
    """http(s):// objects, read with ``Range: bytes=pos-``."""

    def __init__(self, url: str, timeout: float = 60.0, **kwargs):
        super().__init__(url, **kwargs)
        import urllib3

        self.timeout = timeout
        self.pool = urllib3.PoolManager(retries=False)

    def _open(self, pos: int):
        end = "" if self.limit is None else self.limit - 1
        headers = {"Range": f"bytes={pos}-{end}"} if pos or self.limit is not None else {}
        resp = self.pool.request(
            "GET", self.name, headers=headers, preload_content=False, timeout=self.timeout
        )
        if resp.status in (200, 206):
            if pos and resp.status == 200:  # server ignored Range: skip ahead ourselves
                resp.read(pos)
            length = resp.headers.get("Content-Length")
            total = None
            if resp.status == 206 and "/" in resp.headers.get("Content-Range", ""):
                tail = resp.headers["Content-Range"].rsplit("/", 1)[1]
                total = int(tail) if tail.isdigit() else None
            elif length is not None:
                total = int(length)
            return resp, total
        if resp.status == 416:  # range starts at or past the end
            resp.release_conn()
            return io.BytesIO(b""), pos
        resp.release_conn()
        raise _HttpStatus(resp.status, self.name)

    def _close_body(self) -> None:
        # a span read to its end leaves the connection clean: back to the pool for the next span
        if self.body is not None and self._at_limit() and getattr(self.body, "status", None) == 206:
            try:
                self.body.drain_conn()
                self.body.release_conn()
            except Exception:  # noqa: BLE001 - a broken connection: dropped below
                pass
        super()._close_body()

    def _is_retryable(self, err: Exception) -> bool:
        return not isinstance(err, _HttpStatus) or err.status in RETRY_STATUS


class _HttpStatus(OSError):
    def __init__(self, status: int, url: str):
        super().__init__(f"HTTP {status} for {url}")
        self.status = status


class S3Stream(RangeStream):
    """s3:// objects, with the usual AWS credentials or anonymously where there are none.

    ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) points it at an S3-compatible server.
    """

    def __init__(self, url: str, **kwargs):
        super().__init__(url, **kwargs)
        bucket_key = url.split("://", 1)[1]
        self.bucket, _, self.key = bucket_key.partition("/")
        self.client = fs.s3_client()

    def _open(self, pos: int):
        end = "" if self.limit is None else self.limit - 1
        resp = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={pos}-{end}")
        content_range = resp.get("ContentRange") or ""
        total = content_range.rsplit("/", 1)[1] if "/" in content_range else None
        return resp["Body"], int(total) if total and total.isdigit() else None

    def _is_retryable(self, err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        return code not in ("NoSuchKey", "NoSuchBucket", "AccessDenied", "404", "403")


# a store's answer that retrying cannot change: the object is not there, or not ours to read
FINAL_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError)


class ArrowStream(RangeStream):
    """Objects of every other store of :mod:`imagerank.fs` (``gs://``, ``hdfs://``, ``viewfs://``),
    read through its pyarrow filesystem.

    A (re)connection opens the file and seeks to the byte reached; a seek moves the open file. A
    read that raises (a reset, a timeout, the store's 5xx: OSError) is retried there, as a cut
    connection is for HTTP; a missing file, a refused one or an unknown scheme is final at once.
    """

    def _open(self, pos: int):
        filesystem, inner = fs.resolve(self.name)  # raises FsError for a scheme imagerank.fs lacks
        body = filesystem.open_input_file(inner)
        try:
            size = body.size()
            if pos:
                body.seek(pos)
        except BaseException:
            body.close()
            raise
        return body, size

    def _is_retryable(self, err: Exception) -> bool:
        return not isinstance(err, (fs.FsError, *FINAL_ERRORS))

    def _move_body(self, offset: int) -> bool:
        try:
            self.body.seek(offset)
        except Exception:  # noqa: BLE001 - a broken file: reconnect at the next read
            return False
        return True


class _RemoteReader(io.BufferedReader):
    """A buffered remote stream whose ``read(n)`` hands over the bytes that came before a failure
    for good (io.BufferedReader's drops them with the error) and raises it at the next read: the
    records whole before the failure are read, however large the reads asking for them."""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return super().read(size)
        chunks, got = [], 0
        while got < size:
            try:
                available = len(self.peek(1))  # fills the empty buffer with one raw read
            except ReadFailed:
                if got:
                    break
                raise
            if not available:
                break
            chunk = self.read1(min(size - got, available))  # from the buffer: no raw read
            chunks.append(chunk)
            got += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def open_stream(path: str, retries: int | None = None, backoff: float | None = None,
                connect: bool = True) -> BinaryIO:
    """A seekable binary stream over any supported path.

    Remote paths (everything but local files) get a retrying stream: ``retries`` tries after the
    first, per (re)connection and per run of failed reads (default :data:`RETRIES`), the first
    after ``backoff`` seconds (default :data:`BACKOFF`), doubled at each. A path that cannot be
    opened at all raises :class:`InputError`; with ``connect`` False a remote path is not opened
    before the first read (:func:`read_span` then opens it for a span alone).
    """
    if fs.is_local(path):
        try:
            return open(local_path(path), "rb")
        except OSError as err:
            raise InputError(f"cannot read {path}: {err}") from err
    if path.startswith(("http://", "https://")):
        raw: RangeStream = HttpStream(path, retries=retries, backoff=backoff)
    elif path.startswith(("s3://", "s3a://")):
        raw = S3Stream(path, retries=retries, backoff=backoff)
    else:
        raw = ArrowStream(path, retries=retries, backoff=backoff)
    if connect:
        raw._connect()  # a missing or refused object fails here, as unreadable
    return _RemoteReader(raw, buffer_size=1 << 20)


def read_span(stream: BinaryIO, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of a stream from :func:`open_stream`: one bounded
    range request for a remote one (retried inside the span), a seek and a read for a local file.
    Raises :class:`InputError` where the bytes cannot be read."""
    raw = getattr(stream, "raw", stream)
    if isinstance(raw, RangeStream):
        return raw.read_span(start, end)
    try:
        stream.seek(start)
        return stream.read(end - start)
    except OSError as err:
        raise InputError(f"cannot read bytes {start}-{end - 1} of {getattr(stream, 'name', '?')}: {err}") from err


def stream_size(stream: BinaryIO) -> int | None:
    raw = getattr(stream, "raw", stream)
    if isinstance(raw, RangeStream):
        if raw.size is None:
            raw.seek(0, io.SEEK_END)
            raw.seek(0)
        return raw.size
    return os.fstat(stream.fileno()).st_size
