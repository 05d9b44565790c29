"""Fetching catalog image URLs, which are untrusted: the catalog's ``url`` and ``thumbnail`` point
anywhere, and a fetcher run on cluster workers must not become a way into the cluster's network.

Every hop (the URL, then each redirect target) is checked before a byte is sent:

- only http and https, a host, no credentials, a port in 1..65535; else ``bad_url``;
- the host is resolved once (``socket.getaddrinfo``, which also reads the odd IPv4 forms
  ``2130706433`` and ``0x7f.1`` as the connection would) and refused (``refused_address``) when any
  of its addresses is not a public one (:func:`refused_reason`), or when it is a cloud metadata
  name, unless ``allow_private``;
- the connection goes to the address that was checked, never to a second resolution: a name whose
  DNS answer changes between the check and the connection (DNS rebinding) cannot move the request
  to an internal address. urllib3 resolves a pool's host itself, so each pool is opened on the
  checked IP literal, with the URL's host in the ``Host`` header and, for https, as the TLS server
  name and the name the certificate must match (``server_hostname``, ``assert_hostname``). This
  keeps urllib3's connection handling, TLS and body streaming; the only thing taken from it is the
  choice of address. (A custom resolver hook or a patched ``create_connection`` would do the same
  with more moving parts, and a proxy such as smokescreen needs a service beside the cluster.)

Redirects are followed here, not by urllib3, so that each target is checked as the first URL was.
Connection errors, timeouts, 429 and 5xx are retried with back-off, as the crawl reader retries its
remote reads (:mod:`imagerank.crawl.sources`); other answers are final.

Bodies are streamed and cut at ``max_bytes``, counted both as sent and as decoded (``too_large``).
The request asks for ``Accept-Encoding: identity``; urllib3 never decodes (``decode_content=False``,
so its decompressors and their bombs, CVE-2025-66471 and CVE-2025-66418, are off this path whatever
its version). A body that comes encoded anyway is decoded here, as it arrives, by zlib with a bound
on each call's output, so a gzip bomb is cut at ``max_bytes`` with no more than that in memory. One
coding only, ``gzip`` (several members allowed) or ``deflate``; any other, or a chain of them
(``gzip, gzip``), is refused as ``bad_encoding``, and so is data that does not decode or ends early.

Each URL has a ``deadline``: seconds for the whole fetch, its redirects, tries, back-off and body,
not counting waits for a per-host slot (those are other URLs' time). ``timeout`` bounds each
connect and read, and so does what is left of the deadline; a server that sends one byte just
within each read timeout is cut at the deadline by a timer that shuts the request's socket down.
A URL out of time is a skip ``deadline``; a back-off that would end past the deadline is not waited
for, and the failure at hand is the answer. The deadline holds to a fraction of a second, except
for a name being resolved (the resolver's own timeouts) and a connection being opened: the connect
and the TLS handshake each run to at most what was left when the try began.

One URL's problem never raises: it is a :class:`Fetched` with a ``reason``.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import urllib3
import urllib3.connection
from urllib3.exceptions import NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

FETCH_SKIPS = ("bad_url", "refused_address", "http_error", "too_large", "timeout", "connection_error",
               "too_many_redirects", "bad_encoding", "deadline")
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUS = frozenset((301, 302, 303, 307, 308))
RETRY_AFTER_MAX = 10  # seconds: a longer Retry-After is not waited for (the usual back-off is)
CHUNK = 64 * 1024
POOLS_KEPT = 64  # connection pools kept open (one per address, port and host), least recently used out
METADATA_NAMES = frozenset(("metadata.google.internal", "metadata.goog"))
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
    "fd00:ec2::254",  # AWS over IPv6
    "169.254.170.2",  # AWS ECS task credentials
    "100.100.100.200",  # Alibaba Cloud
))
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses, reached through a translator
HOST_NAME = re.compile(r"[a-z0-9_.-]+")
CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # zlib wbits


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = 20.0  # seconds, connect + each read
    max_bytes: int = 20 * 2**20  # body cap; longer bodies are a skip "too_large"
    retries: int = 2  # extra tries on connection errors, timeouts, 429, 5xx (not on 4xx)
    backoff: float = 0.5  # seconds, doubled per try
    per_host: int = 4  # concurrent requests per host (a bound inside one process)
    threads: int = 16  # concurrent requests in all, per process
    max_redirects: int = 5
    deadline: float = 60.0  # seconds for one URL in all: hops, tries, back-off, body (not per-host slot waits)
    allow_private: bool = False  # allow private, loopback, link-local, ... addresses (tests on loopback)
    user_agent: str = "imagerank/0.3 (+https://github.com/imagerank)"

    def __post_init__(self):
        if self.threads < 1 or self.per_host < 1:
            raise ValueError("threads and per_host must be at least 1")
        if (self.timeout <= 0 or self.deadline <= 0 or self.max_bytes < 0 or self.retries < 0 or self.backoff < 0
                or self.max_redirects < 0):
            raise ValueError(f"invalid fetch options: {self}")


@dataclass(frozen=True)
class Fetched:
    url: str
    data: bytes | None
    status: int | None  # last HTTP status
    reason: str | None  # None when data is not None; else one of FETCH_SKIPS
    detail: str | None  # short text: the address refused, the exception, ...
    final_url: str | None  # after redirects


def refused_reason(address: str) -> str | None:
    """Why a connection to the IP address ``address`` is refused, or None when it is a public one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return "not an IP address"
    if ip.version == 6:  # an IPv4 address inside: IPv4-mapped, NAT64, 6to4
        inner = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if inner is not None:
            why = refused_reason(str(inner))
            return why and f"{why} (IPv4 {inner} inside)"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata service"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in CARRIER_GRADE_NAT:
        return "carrier-grade NAT"
    if ip in UNIQUE_LOCAL:
        return "unique-local"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


class _Skip(Exception):
    """A final answer for one URL: one of FETCH_SKIPS, with a detail and the HTTP status if any."""

    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


class _RetryStatus(Exception):
    def __init__(self, status: int, wait: float | None):
        super().__init__(f"HTTP {status}")
        self.status, self.wait = status, wait


_running = threading.local()  # .clock: the _Clock of the request this thread is making, if any


class _Clock:
    """One URL's deadline. While a try runs (:meth:`running`), a timer shuts the socket of the request
    down when the time is up, so that a read blocked on a server that drips bytes returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._fired = False
        self._sock = None
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def passed(self, where: str) -> _Skip:
        return _Skip("deadline", f"{where}over the {self.seconds:g} s deadline")

    def paused(self, seconds: float) -> None:
        """``seconds`` not counted (a wait for a per-host slot); only called outside :meth:`running`."""
        self.end += seconds

    def timeout(self, seconds: float) -> urllib3.Timeout:
        left = max(min(seconds, self.remaining()), 0.01)
        return urllib3.Timeout(connect=left, read=left)

    @contextlib.contextmanager
    def running(self):
        if self.expired:
            raise self.passed("")
        timer = threading.Timer(self.remaining(), self._fire)
        timer.daemon = True
        _running.clock = self
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            _running.clock = None
            self.forget()

    def watch(self, sock) -> None:
        """``sock`` carries the request now; shut down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sock = sock
            if self._fired:
                _shut(sock)

    def forget(self) -> None:
        """The socket is not the request's any more (it may go back to the pool): leave it alone."""
        with self._lock:
            self._sock = None

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock) -> None:
    try:  # the plain socket's shutdown, also under TLS: the blocked read sees the end of the stream
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


class _Watched:
    """A urllib3 connection that hands its socket to the running deadline before the answer is read."""

    def getresponse(self, *args, **kwargs):
        clock = getattr(_running, "clock", None)
        if clock is not None and self.sock is not None:
            clock.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


@dataclass(frozen=True)
class _Target:
    """One hop, checked: where to connect (``addresses``, all allowed) and what to ask for."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA), no brackets
    port: int
    addresses: tuple[str, ...]
    host_header: str
    target: str  # path and query


def _check_url(url: str, options: FetchOptions) -> _Target:
    """The hop ``url`` checked and resolved; raises _Skip (bad_url, refused_address, connection_error)."""
    if not isinstance(url, str) or not url.strip():
        raise _Skip("bad_url", "no URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise _Skip("bad_url", str(err)) from None
    if parts.scheme not in DEFAULT_PORTS:
        raise _Skip("bad_url", f"scheme {parts.scheme or 'missing'!r}: only http and https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _Skip("bad_url", "credentials in the URL")
    if port is None:
        port = DEFAULT_PORTS[parts.scheme]
    elif not 1 <= port <= 65535:
        raise _Skip("bad_url", f"port {port}")
    host = parts.hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = ""
        if not HOST_NAME.fullmatch(host) or not host.strip("."):
            raise _Skip("bad_url", f"host {parts.hostname!r}")
        if not options.allow_private and host.rstrip(".") in METADATA_NAMES:
            raise _Skip("refused_address", f"{host} (cloud metadata service)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as err:
        raise _Skip("connection_error", f"cannot resolve {host}: {err}") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise _Skip("connection_error", f"no address for {host}")
    if not options.allow_private:
        for address in addresses:
            why = refused_reason(address)
            if why:
                raise _Skip("refused_address", f"{host} is {address} ({why})")
    named = f"[{host}]" if literal is not None and literal.version == 6 else host
    host_header = named if port == DEFAULT_PORTS[parts.scheme] else f"{named}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(url, parts.scheme, host, port, addresses, host_header,
                   quote(target, safe="!#$%&'()*+,/:;=?@[]~"))


class Pools:
    """What fetches share: connection pools (opened on checked addresses only) and the per-host bound.

    Pass one to :func:`fetch` to reuse connections across URLs; :func:`fetch_all` makes its own.
    """

    def __init__(self, options: FetchOptions, size: int = POOLS_KEPT):
        self.options, self.size = options, size
        self._pools: collections.OrderedDict = collections.OrderedDict()
        self._slots: dict[str, list] = {}  # host -> [semaphore, threads holding or waiting]
        self._lock = threading.Lock()

    def connection_pool(self, target: _Target, address: str):
        key = (target.scheme, address, target.port, target.host)
        with self._lock:
            pool = self._pools.pop(key, None) or self._open(target, address)
            self._pools[key] = pool
            while len(self._pools) > self.size:
                self._pools.popitem(last=False)[1].close()  # connections in use close when returned
        return pool

    def _open(self, target: _Target, address: str):
        common = dict(timeout=urllib3.Timeout(connect=self.options.timeout, read=self.options.timeout),
                      maxsize=self.options.per_host, block=False, retries=False)
        if target.scheme == "https":
            return _HTTPSPool(address, target.port, server_hostname=target.host, assert_hostname=target.host,
                              cert_reqs="CERT_REQUIRED", **common)
        return _HTTPPool(address, target.port, **common)

    @contextlib.contextmanager
    def slot(self, host: str, clock: _Clock | None = None):
        """Held while one request to ``host`` runs: at most ``per_host`` at a time. The wait for it is
        not counted against ``clock``."""
        with self._lock:
            entry = self._slots.get(host)
            if entry is None:
                entry = self._slots[host] = [threading.Semaphore(self.options.per_host), 0]
            entry[1] += 1
        try:
            waiting = time.monotonic()
            with entry[0]:
                if clock is not None:
                    clock.paused(time.monotonic() - waiting)
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._slots[host]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), collections.OrderedDict()
        for pool in pools:
            pool.close()


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 300 else text[:297] + "..."


def _failure_reason(err: Exception) -> str:
    # urllib3's NewConnectionError (refused, unreachable) derives from its ConnectTimeoutError
    if isinstance(err, (Urllib3Timeout, TimeoutError)) and not isinstance(err, NewConnectionError):
        return "timeout"
    return "connection_error"


def _retry_after(resp) -> float | None:
    value = (resp.headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() and int(value) <= RETRY_AFTER_MAX else None


def _coding(resp, status: int) -> str | None:
    """The body's one content coding (a key of CODINGS), None for none; raises _Skip bad_encoding."""
    value = resp.headers.get("Content-Encoding") or ""  # repeated headers come joined: "gzip, gzip"
    codings = [c for c in (c.strip().lower() for c in value.split(",")) if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in CODINGS:
        raise _Skip("bad_encoding", f"Content-Encoding {value[:100]!r}: one of gzip, deflate only", status)
    return codings[0]


class _Inflate:
    """A gzip or deflate body decoded as it arrives: one :meth:`feed` gives at most ``limit`` bytes."""

    def __init__(self, coding: str):
        self.coding, self.wbits = coding, CODINGS[coding]
        self.zlib = zlib.decompressobj(self.wbits)
        self.members = 0  # gzip members decoded whole
        self.trailing = False  # bytes after the data that are not another member: ignored, as urllib3 does

    @property
    def done(self) -> bool:
        return self.zlib.eof or self.trailing

    def feed(self, data: bytes, limit: int) -> bytes:
        out, n = [], 0
        while data and n < limit and not self.trailing:
            if self.zlib.eof:
                self.members += 1
                if self.coding == "deflate":
                    self.trailing = True
                    break
                self.zlib = zlib.decompressobj(self.wbits)  # the next gzip member
            try:
                part = self.zlib.decompress(data, limit - n)
            except zlib.error as err:
                if not self.members:
                    raise _Skip("bad_encoding", f"{self.coding} data: {err}") from None
                self.trailing = True
                break
            out.append(part)
            n += len(part)
            rest = self.zlib.unused_data if self.zlib.eof else self.zlib.unconsumed_tail
            if not part and len(rest) >= len(data):
                break  # no progress (cannot happen with zlib; a guard for the loop)
            data = rest
        return b"".join(out)


def _read_body(resp, max_bytes: int, status: int) -> bytes:
    """The body, decoded, at most ``max_bytes`` as sent and as decoded; raises _Skip."""
    length = (resp.headers.get("Content-Length") or "").strip()
    if length.isdigit() and int(length) > max_bytes:
        raise _Skip("too_large", f"Content-Length {length} over {max_bytes} bytes", status)
    coding = _coding(resp, status)
    inflate = _Inflate(coding) if coding else None
    chunks, sent, got = [], 0, 0
    try:
        while True:
            chunk = resp.read(min(CHUNK, max_bytes + 1 - sent), decode_content=False)
            if not chunk:
                break
            sent += len(chunk)
            if sent > max_bytes:
                raise _Skip("too_large", f"body over {max_bytes} bytes", status)
            if inflate is not None:
                chunk = inflate.feed(chunk, max_bytes + 1 - got)
            chunks.append(chunk)
            got += len(chunk)
            if got > max_bytes:
                raise _Skip("too_large", f"{coding} body decodes to over {max_bytes} bytes", status)
    except _Skip as skip:
        skip.status = status
        raise
    if inflate is not None and not inflate.done:
        raise _Skip("bad_encoding", f"{coding} data ends early", status)
    return b"".join(chunks)


def _once(target: _Target, address: str, options: FetchOptions, pools: Pools, clock: _Clock):
    """One request: (status, body, None) or (status, None, Location); raises _Skip or _RetryStatus."""
    headers = {"Host": target.host_header, "User-Agent": options.user_agent, "Accept": "image/*,*/*;q=0.5",
               "Accept-Encoding": "identity"}
    resp = pools.connection_pool(target, address).urlopen(
        "GET", target.target, headers=headers, retries=False, redirect=False, assert_same_host=False,
        preload_content=False, decode_content=False, timeout=clock.timeout(options.timeout))
    complete = False
    try:
        status = resp.status
        if status in REDIRECT_STATUS and resp.headers.get("Location"):
            return status, None, resp.headers["Location"]
        if status == 429 or 500 <= status <= 599:
            raise _RetryStatus(status, _retry_after(resp))
        if not 200 <= status <= 299:
            raise _Skip("http_error", f"HTTP {status}", status)
        try:
            data = _read_body(resp, options.max_bytes, status)
        except Exception:  # noqa: BLE001 - a read cut by the deadline fails in any of several ways
            if not clock.expired:
                raise
            data = None
        if clock.expired:  # also when the cut looked like the end of the body
            skip = clock.passed(f"{address}: ")
            skip.status = status
            raise skip
        complete = True
        return status, data, None
    finally:
        clock.forget()  # before the connection can go back to the pool
        if not complete or clock.expired:  # unread body, or the timer may have shut it: close, not pool
            resp.close()
        resp.release_conn()


def _request(target: _Target, options: FetchOptions, pools: Pools, clock: _Clock):
    """_once with retries; the addresses of the host are tried in turn."""
    delay = options.backoff
    for attempt in range(options.retries + 1):
        final = attempt == options.retries
        address = target.addresses[attempt % len(target.addresses)]
        tries = f" after {attempt + 1} tries" if attempt else ""
        try:
            with pools.slot(target.host, clock), clock.running():
                return _once(target, address, options, pools, clock)
        except _Skip:
            raise
        except _RetryStatus as err:
            if final:
                raise _Skip("http_error", f"HTTP {err.status} after {attempt + 1} tries", err.status) from None
            failure = _Skip("http_error", f"HTTP {err.status}{tries or ' after 1 try'}", err.status)
            wait = delay if err.wait is None else err.wait
        except Exception as err:  # noqa: BLE001 - every network failure is classified here
            if clock.expired:
                raise clock.passed(f"{address}{tries}: ") from None
            failure = _Skip(_failure_reason(err), f"{address}{tries}: {_describe(err)}")
            if final or isinstance(err, SSLError):  # a certificate stays wrong: no retry
                raise failure from None
            wait = delay
        if wait >= clock.remaining():  # the next try would begin past the deadline
            failure.detail += f" (no time left for another try in the {clock.seconds:g} s deadline)"
            raise failure
        time.sleep(wait)
        delay *= 2
    raise AssertionError("unreachable")


def fetch(url: str, options: FetchOptions, pool: Pools | None = None) -> Fetched:
    """One URL, its redirects followed and each hop checked. ``pool``: a :class:`Pools` to share."""
    pools = pool if pool is not None else Pools(options)
    current, status, clock = url, None, _Clock(options.deadline)
    try:
        for _ in range(options.max_redirects + 1):
            target = _check_url(current, options)
            if clock.expired:  # the name took the time left to resolve
                raise clock.passed("")
            status, data, location = _request(target, options, pools, clock)
            if location is None:
                return Fetched(url, data, status, None, None, current)
            try:
                current = urljoin(current, location.strip())
            except ValueError as err:
                raise _Skip("bad_url", f"Location {location!r}: {err}") from None
        raise _Skip("too_many_redirects", f"more than {options.max_redirects} redirects")
    except _Skip as skip:
        return Fetched(url, None, status if skip.status is None else skip.status, skip.reason, skip.detail,
                       current if isinstance(current, str) else None)
    except Exception as err:  # noqa: BLE001 - a last guard: one URL never fails the batch
        return Fetched(url, None, status, "connection_error", _describe(err),
                       current if isinstance(current, str) else None)
    finally:
        if pool is None:
            pools.close()


def fetch_all(urls: Iterable[str], options: FetchOptions) -> Iterator[Fetched]:
    """Each URL fetched, in input order; ``threads`` at a time, ``per_host`` at a time per host.

    The input is read as results are taken: at most ``2 * threads`` URLs are in flight.
    """
    pools = Pools(options)
    executor = ThreadPoolExecutor(options.threads, thread_name_prefix="imagerank-fetch")
    pending: collections.deque = collections.deque()
    try:
        for url in urls:
            pending.append(executor.submit(fetch, url, options, pools))
            if len(pending) >= 2 * options.threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        pools.close()
