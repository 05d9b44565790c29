"""Fetching untrusted image URLs: against real HTTP(S) servers on loopback, no Spark."""

import collections
import datetime
import functools
import gzip
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from imagerank.content import fetch as fetch_mod
from imagerank.content.fetch import FETCH_SKIPS, FetchOptions, fetch, fetch_all, refused_reason

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"
LOCAL = FetchOptions(allow_private=True, timeout=2.0, retries=0, backoff=0.01)
ENCODERS = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress, "identity": bytes}


def encode(body, codings, members=1):
    """``body`` with each coding applied in the order given (unknown ones leave it as it is)."""
    for coding in codings:
        if coding == "gzip" and members > 1:
            step = -(-len(body) // members)
            body = b"".join(gzip.compress(body[i:i + step]) for i in range(0, len(body), step))
        else:
            body = ENCODERS.get(coding, bytes)(body)
    return body


@functools.lru_cache(maxsize=None)
def gzip_bomb(size):
    """``size`` zero bytes, gzipped a megabyte at a time (never ``size`` bytes in memory)."""
    packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS), bytes(2**20)
    parts = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(parts) + packer.flush()


class Server:
    """A loopback HTTP server whose paths behave as the tests need, counting what it sees."""

    def __init__(self, host="127.0.0.1", family=socket.AF_INET, tls=None):
        self.hits = collections.Counter()
        self.written = {}  # /stream path -> bytes written before the client went away
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                with server.lock:
                    server.hits[path] += 1
                    hits = server.hits[path]
                head, _, arg = path[1:].partition("/")
                if head == "img":
                    self.reply(200, JPEG)
                elif head == "echo-host":
                    self.reply(200, self.headers["Host"].encode())
                elif head == "echo-accept-encoding":
                    self.reply(200, (self.headers["Accept-Encoding"] or "").encode())
                elif head == "encoded":  # ?ce=CODINGS (repeated: a header each), zeros=N: a gzip bomb
                    values = query.get("ce", [])
                    codings = [c.strip().lower() for value in values for c in value.split(",")]
                    if "raw" in query:  # the header says so, the body is not
                        body = JPEG
                    elif "zeros" in query:
                        body = gzip_bomb(int(query["zeros"][0]))
                    else:
                        body = encode(JPEG, codings, int(query.get("members", ["1"])[0]))
                    if "cut" in query:  # the encoded data ends early
                        body = body[: len(body) // 2]
                    body += query.get("trailing", [""])[0].encode()
                    self.reply(200, body, [("Content-Encoding", value) for value in values])
                elif head == "status":
                    self.reply(int(arg), b"no")
                elif head == "flaky":  # /flaky/N: N answers 503, then the image
                    self.reply(503, b"busy") if hits <= int(arg) else self.reply(200, JPEG)
                elif head == "retry-after":  # /retry-after/SECONDS: one 429 saying so, then the image
                    if hits == 1:
                        self.reply(429, b"slow down", {"Retry-After": arg})
                    else:
                        self.reply(200, JPEG)
                elif head == "slow":
                    time.sleep(float(arg))
                    self.reply(200, JPEG)
                elif head == "bytes":  # /bytes/N: N bytes, with their Content-Length
                    self.stream(int(arg), declared=True)
                elif head == "stream":  # /stream/N: N bytes, no Content-Length (ends at close)
                    self.stream(int(arg), declared=False)
                elif head == "redirect":
                    self.reply(302, b"", {"Location": query["to"][0]})
                elif head == "loop":
                    self.reply(302, b"", {"Location": "/loop"})
                elif head == "concurrent":  # /concurrent/I?sleep=S: body I, tracking concurrency
                    with server.lock:
                        server.inflight += 1
                        server.max_inflight = max(server.max_inflight, server.inflight)
                    time.sleep(float(query["sleep"][0]))
                    with server.lock:
                        server.inflight -= 1
                    self.reply(200, arg.encode())
                else:
                    self.reply(404, b"")

            def reply(self, status, body, headers=()):
                self.send_response(status)
                for name, value in (headers.items() if isinstance(headers, dict) else headers):
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def stream(self, size, declared):
                self.send_response(200)
                if declared:
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                written, chunk = 0, b"x" * 65536
                try:
                    while written < size:
                        part = chunk[: size - written]
                        self.wfile.write(part)
                        written += len(part)
                except OSError:
                    pass
                server.written[self.path] = written

        class Httpd(ThreadingHTTPServer):
            address_family = family
            block_on_close = False  # sleeping handlers do not hold up the teardown

            def handle_error(self, request, client_address):
                pass  # clients that hang up early are expected here

        self.httpd = Httpd((host, 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path, host="127.0.0.1", scheme="http"):
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Dripper:
    """A raw TCP server on loopback: on each connection it reads the request, sends ``prefix``, then
    ``drip`` every ``interval`` seconds, ``count`` times at most, or until the client goes away."""

    def __init__(self, prefix, drip, interval=1.0, count=30, tls=False):
        self.prefix, self.drip, self.interval, self.count, self.tls = prefix, drip, interval, count, tls
        self.dripped = []  # per connection that ended: drips sent before the client went away (or count)
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        sent = 0
        with conn:
            conn.settimeout(2.0)
            try:
                request = part = conn.recv(4096)  # a TLS ClientHello, or an HTTP request
                while not self.tls and part and b"\r\n\r\n" not in request:
                    part = conn.recv(4096)
                    request += part
                conn.sendall(self.prefix)
                while sent < self.count and not self.stop.wait(self.interval):
                    conn.sendall(self.drip)
                    sent += 1
            except OSError:
                pass  # the client hung up
        self.dripped.append(sent)

    def url(self, path="/", scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def server():
    server = Server()
    yield server
    server.close()


@pytest.fixture
def loopback_is_public(monkeypatch):
    """127.0.0.1 (only) passes the address check, so that a test server can play a public site."""
    real = fetch_mod.refused_reason
    monkeypatch.setattr(fetch_mod, "refused_reason", lambda address: None if address == "127.0.0.1" else real(address))


def resolving(monkeypatch, names):
    """socket.getaddrinfo answering ``names`` (name -> list of addresses, given out in turn); calls noted."""
    real, calls = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            calls.append(host)
            answers = names[host]
            host = answers[min(len([c for c in calls if c == host]), len(answers)) - 1]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_refused_addresses():
    refused = {
        "10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.254": "private", "192.168.1.1": "private",
        "127.0.0.1": "loopback", "127.8.9.10": "loopback", "169.254.169.254": "cloud metadata service",
        "169.254.1.1": "link-local", "100.64.0.1": "carrier-grade NAT", "100.100.100.200": "cloud metadata service",
        "0.0.0.0": "unspecified", "::": "unspecified", "::1": "loopback", "fe80::1": "link-local",
        "fe80::1%eth0": "link-local", "fc00::1": "unique-local", "fd12:3456::1": "unique-local",
        "::ffff:127.0.0.1": "loopback (IPv4 127.0.0.1 inside)", "::ffff:10.0.0.1": "private (IPv4 10.0.0.1 inside)",
        "64:ff9b::a9fe:a9fe": "cloud metadata service (IPv4 169.254.169.254 inside)",
        "fd00:ec2::254": "cloud metadata service", "224.0.0.1": "multicast", "ff02::1": "multicast",
        "240.0.0.1": "private", "255.255.255.255": "private", "192.0.2.1": "private",
        "not-an-address": "not an IP address",
    }
    for address, reason in refused.items():
        assert refused_reason(address) == reason, address
    for address in ("8.8.8.8", "1.1.1.1", "208.80.154.224", "2606:4700::1111", "2a00:1450:4001:82a::200e",
                    "::ffff:8.8.8.8", "100.128.0.1", "172.32.0.1"):
        assert refused_reason(address) is None, address


def test_image_fetched_from_an_allowed_address(server):
    got = fetch(server.url("/img"), LOCAL)
    assert (got.data, got.status, got.reason, got.detail) == (JPEG, 200, None, None)
    assert got.final_url == got.url == server.url("/img")


def test_loopback_and_its_other_spellings_are_refused(server):
    options = FetchOptions(timeout=2.0)
    for host in ("127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1"):
        got = fetch(server.url("/img", host=host), options)
        assert (got.reason, got.data) == ("refused_address", None), host
        assert "127.0.0.1 (loopback)" in got.detail, got.detail
    for host in ("localhost", "[::1]", "[::ffff:127.0.0.1]", "[::]", "0.0.0.0"):
        got = fetch(f"http://{host}:{server.port}/img", options)
        assert got.reason == "refused_address", host
    assert server.hits["/img"] == 0
    # the check reads the address as the connection does: allowed, the decimal form reaches the server
    assert fetch(server.url("/img", host="2130706433"), LOCAL).data == JPEG


def test_ipv6_loopback():
    try:
        server = Server(host="::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        url = server.url("/echo-host", host="[::1]")
        assert fetch(url, LOCAL).data == f"[::1]:{server.port}".encode()
        got = fetch(url, FetchOptions(timeout=2.0))
        assert got.reason == "refused_address" and "::1 (loopback)" in got.detail
        assert server.hits["/echo-host"] == 1
    finally:
        server.close()


def test_metadata_names_refused_without_resolving(monkeypatch):
    calls = resolving(monkeypatch, {})
    for url in ("http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.google.internal./",
                "https://metadata.goog/"):
        got = fetch(url, FetchOptions(timeout=1.0))
        assert got.reason == "refused_address" and "metadata" in got.detail, url
    assert calls == []


def test_bad_urls():
    for url in ("file:///etc/passwd", "ftp://example.com/a.jpg", "data:image/png;base64,iVBORw0KGgo=",
                "gopher://example.com/", "javascript:alert(1)", "//example.com/a.jpg", "example.com/a.jpg",
                "http:///a.jpg", "http://user:secret@example.com/a.jpg", "http://user@example.com/a.jpg",
                "http://example.com:0/a.jpg", "http://example.com:65536/a.jpg", "http://example.com:http/",
                "http://[::1/a.jpg", "http://exa mple.com/a.jpg", "http://a..b/", "", "   ", None):
        got = fetch(url, FetchOptions(timeout=1.0))
        assert (got.reason, got.data, got.status) == ("bad_url", None, None), url
        assert got.detail


def test_every_redirect_hop_is_checked(server, loopback_is_public):
    options = FetchOptions(timeout=2.0, retries=0)
    port = server.port
    refused = {
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 (cloud metadata service)",
        "http://metadata.google.internal/computeMetadata/v1/": "cloud metadata service",
        f"http://127.0.0.2:{port}/img": "127.0.0.2 (loopback)",  # a real check would not reach it anyway
        f"http://[::1]:{port}/img": "::1 (loopback)",
        "http://10.0.0.1/": "10.0.0.1 (private)",
    }
    for target, detail in refused.items():
        got = fetch(server.url(f"/redirect?to={target}"), options)
        assert (got.reason, got.status, got.final_url) == ("refused_address", 302, target), target
        assert detail in got.detail
    got = fetch(server.url("/redirect?to=file:///etc/passwd"), options)
    assert (got.reason, got.status, got.final_url) == ("bad_url", 302, "file:///etc/passwd")
    assert server.hits["/redirect"] == len(refused) + 1 and server.hits["/img"] == 0
    # an allowed hop is followed; a relative Location is resolved against the hop that sent it
    got = fetch(server.url("/redirect?to=/img"), options)
    assert (got.data, got.status, got.final_url) == (JPEG, 200, server.url("/img"))


def test_connection_goes_to_the_checked_address(server, loopback_is_public, monkeypatch):
    # a name whose second answer is internal (DNS rebinding): the one checked is the one connected to
    calls = resolving(monkeypatch, {"images.example": ["127.0.0.1", "10.255.255.1"]})
    got = fetch(f"http://images.example:{server.port}/echo-host", FetchOptions(timeout=1.0, retries=0))
    assert (got.data, got.reason) == (f"images.example:{server.port}".encode(), None)
    assert calls == ["images.example"]


def test_https_is_pinned_and_verified_by_the_urls_name(tmp_path, monkeypatch):
    crypto = pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    del crypto
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.example")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client's trusted roots: this certificate
    calls = resolving(monkeypatch, {"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    server = Server(tls=tls)
    try:
        options = FetchOptions(timeout=2.0, retries=1, backoff=0.01, allow_private=True)
        got = fetch(server.url("/echo-host", host="images.example", scheme="https"), options)
        assert (got.data, got.reason) == (f"images.example:{server.port}".encode(), None)
        # same address, another name: the certificate does not match it, and that is not retried
        got = fetch(server.url("/echo-host", host="other.example", scheme="https"), options)
        assert got.reason == "connection_error" and "other.example" in got.detail
        assert server.hits["/echo-host"] == 1 and calls == ["images.example", "other.example"]
    finally:
        server.close()


def test_client_errors_are_final(server):
    got = fetch(server.url("/status/404"), FetchOptions(allow_private=True, retries=2, backoff=0.01))
    assert (got.reason, got.status, got.data) == ("http_error", 404, None)
    assert server.hits["/status/404"] == 1


def test_server_errors_are_retried(server):
    options = FetchOptions(allow_private=True, timeout=2.0, retries=2, backoff=0.01)
    got = fetch(server.url("/flaky/2"), options)
    assert (got.data, got.status) == (JPEG, 200) and server.hits["/flaky/2"] == 3
    got = fetch(server.url("/flaky/5"), options)
    assert (got.reason, got.status, got.data) == ("http_error", 503, None) and server.hits["/flaky/5"] == 3


def test_retry_after_is_honoured_up_to_ten_seconds(server):
    options = FetchOptions(allow_private=True, timeout=2.0, retries=1, backoff=0.01)
    start = time.monotonic()
    assert fetch(server.url("/retry-after/1"), options).data == JPEG
    assert time.monotonic() - start >= 0.9
    start = time.monotonic()
    assert fetch(server.url("/retry-after/3600"), options).data == JPEG  # not waited for: the back-off is
    assert time.monotonic() - start < 0.9


def test_bodies_over_the_cap_are_too_large(server):
    options = FetchOptions(allow_private=True, timeout=2.0, retries=0, max_bytes=100_000)
    assert fetch(server.url("/bytes/100000"), options).data == b"x" * 100_000  # exactly the cap
    got = fetch(server.url("/bytes/100001"), options)
    assert (got.reason, got.status, got.data) == ("too_large", 200, None) and "Content-Length" in got.detail
    # no Content-Length: read up to the cap, then the connection is closed under the server
    size = 64 * 2**20
    got = fetch(server.url(f"/stream/{size}"), options)
    assert (got.reason, got.detail) == ("too_large", "body over 100000 bytes")
    deadline = time.monotonic() + 10
    while f"/stream/{size}" not in server.written and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.written[f"/stream/{size}"] < size


def test_slow_server_times_out(server):
    options = FetchOptions(allow_private=True, timeout=0.3, retries=1, backoff=0.01)
    got = fetch(server.url("/slow/1.5"), options)
    assert (got.reason, got.data) == ("timeout", None) and "after 2 tries" in got.detail
    assert server.hits["/slow/1.5"] == 2


def test_closed_port_is_a_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    got = fetch(f"http://127.0.0.1:{port}/img", FetchOptions(allow_private=True, timeout=1.0, retries=1, backoff=0.01))
    assert got.reason == "connection_error" and "refused" in got.detail.lower()


def test_redirect_loop(server):
    got = fetch(server.url("/loop"), FetchOptions(allow_private=True, timeout=2.0, max_redirects=3))
    assert (got.reason, got.status, got.final_url) == ("too_many_redirects", 302, server.url("/loop"))
    assert server.hits["/loop"] == 4


def test_fetch_all_bounds_each_host_and_keeps_input_order(server):
    # slow and fast answers mixed, so that they finish out of order
    urls = [server.url(f"/concurrent/{i}?sleep={0.12 if i % 3 == 0 else 0.02}") for i in range(20)]
    options = FetchOptions(allow_private=True, timeout=5.0, retries=0, per_host=2, threads=8)
    results = list(fetch_all(urls, options))
    assert [r.url for r in results] == urls
    assert [r.data for r in results] == [str(i).encode() for i in range(20)]
    assert server.max_inflight == 2


def test_fetch_all_reads_its_input_as_results_are_taken(server):
    pulled = []

    def urls():
        for i in range(100):
            pulled.append(i)
            yield "ftp://example.com/a.jpg" if i % 2 else server.url("/status/404")

    options = FetchOptions(allow_private=True, timeout=2.0, retries=0, threads=3)
    results = fetch_all(urls(), options)
    first = next(results)
    assert (first.reason, first.status) == ("http_error", 404)
    assert len(pulled) <= 2 * options.threads
    rest = list(results)
    assert [r.reason for r in rest] == ["bad_url", "http_error"] * 49 + ["bad_url"]
    assert all(r.reason in FETCH_SKIPS for r in rest)


def test_options_are_checked():
    for bad in (dict(deadline=0), dict(deadline=-1.0), dict(timeout=0), dict(threads=0)):
        with pytest.raises(ValueError):
            FetchOptions(**bad)


def test_no_encoding_is_asked_for(server):
    assert fetch(server.url("/echo-accept-encoding"), LOCAL).data == b"identity"


def test_one_gzip_or_deflate_coding_is_decoded(server):
    for query in (dict(ce="gzip"), dict(ce="x-gzip"), dict(ce="deflate"), dict(ce="GZip"), dict(ce="identity"),
                  dict(ce="identity, gzip"), dict(ce="gzip", members=3), dict(ce="gzip", trailing="\0\0junk")):
        got = fetch(server.url("/encoded?" + urlencode(query)), LOCAL)
        assert (got.data, got.reason) == (JPEG, None), query
    # the cap counts decoded bytes: this JPEG compresses well under its size
    options = FetchOptions(allow_private=True, timeout=2.0, retries=0, max_bytes=len(JPEG) - 1)
    got = fetch(server.url("/encoded?ce=gzip"), options)
    assert (got.reason, got.status, got.data) == ("too_large", 200, None)
    assert got.detail == f"gzip body decodes to over {len(JPEG) - 1} bytes"


def test_a_gzip_bomb_is_cut_at_the_cap_without_being_held(server):
    size, cap = 200 * 2**20, 2**20  # 200 MiB of zeros in ~200 KB of gzip
    assert len(gzip_bomb(size)) < cap  # built before the measure: it passes the Content-Length check
    options = FetchOptions(allow_private=True, timeout=5.0, retries=0, max_bytes=cap)
    tracemalloc.start()
    try:
        start = time.monotonic()
        got = fetch(server.url(f"/encoded?ce=gzip&zeros={size}"), options)
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (got.reason, got.status, got.data) == ("too_large", 200, None)
    assert got.detail == f"gzip body decodes to over {cap} bytes"
    assert peak < 4 * cap, peak  # the cap and a chunk or two, never the bomb
    assert elapsed < 5


def test_chained_and_unknown_encodings_are_refused(server):
    for values in (["gzip, gzip"], ["gzip", "gzip"], ["deflate, gzip"], ["gzip", "identity", "deflate"], ["br"],
                   ["zstd"], ["compress"], ["gzip, br"]):
        got = fetch(server.url("/encoded?" + urlencode({"ce": values}, doseq=True)), LOCAL)
        assert (got.reason, got.status, got.data) == ("bad_encoding", 200, None), values
        assert got.detail.startswith(f"Content-Encoding {', '.join(values)!r}"), got.detail
    # a gzip bomb inside a gzip: refused before a byte is decoded
    bomb = FetchOptions(allow_private=True, timeout=5.0, retries=0, max_bytes=2**20)
    got = fetch(server.url("/encoded?ce=gzip&ce=gzip&zeros=" + str(50 * 2**20)), bomb)
    assert got.reason == "bad_encoding"


def test_encoded_data_that_does_not_decode(server):
    got = fetch(server.url("/encoded?ce=gzip&raw=1"), LOCAL)  # a JPEG said to be gzip
    assert (got.reason, got.status, got.data) == ("bad_encoding", 200, None)
    assert got.detail.startswith("gzip data: Error -3"), got.detail
    got = fetch(server.url("/encoded?ce=gzip&ce=identity&cut=1"), LOCAL)
    assert (got.reason, got.detail, got.status) == ("bad_encoding", "gzip data ends early", 200)
    got = fetch(server.url("/encoded?ce=deflate&cut=1"), LOCAL)
    assert (got.reason, got.detail) == ("bad_encoding", "deflate data ends early")


DRIPS = {  # a server that sends a byte a second, within any read timeout, and would go on for minutes
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"x"),
    "body to the close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x"),  # its cut looks like an end
    "headers": (b"HTTP/1.1 200 OK\r\nX-Drip: ", b"a"),
    "TLS handshake": (b"\x16\x03\x03\x40\x00", b"\x00"),  # a 16 KiB handshake record, a byte at a time
}


@pytest.mark.parametrize("where", DRIPS)
def test_a_dripping_server_is_cut_at_the_deadline(where):
    prefix, drip = DRIPS[where]
    dripper = Dripper(prefix, drip, interval=1.0, count=300, tls=where.startswith("TLS"))
    try:
        deadline = 3.0
        options = FetchOptions(allow_private=True, timeout=10.0, retries=2, backoff=0.01, deadline=deadline)
        start = time.monotonic()
        got = fetch(dripper.url(scheme="https" if dripper.tls else "http"), options)
        elapsed = time.monotonic() - start
        assert (got.reason, got.data) == ("deadline", None), got
        assert got.detail.endswith("over the 3 s deadline"), got.detail
        assert elapsed < deadline + 1.5, elapsed
        assert got.status == (None if dripper.tls else 200)  # the status line came before the drip
        waited = time.monotonic() + 5  # the server sees the client go (at its next byte or two)
        while not dripper.dripped and time.monotonic() < waited:
            time.sleep(0.05)
        assert dripper.dripped and dripper.dripped[0] < 10, dripper.dripped
    finally:
        dripper.close()


def test_a_back_off_past_the_deadline_is_not_waited_for(server):
    options = FetchOptions(allow_private=True, timeout=2.0, retries=5, backoff=0.6, deadline=1.0)
    start = time.monotonic()
    got = fetch(server.url("/flaky/100"), options)
    assert time.monotonic() - start < 1.5  # tries at 0 s and 0.6 s; waiting for the next would end at 1.8 s
    assert (got.reason, got.status, got.data) == ("http_error", 503, None) and server.hits["/flaky/100"] == 2
    assert got.detail == "HTTP 503 after 2 tries (no time left for another try in the 1 s deadline)"


def test_waits_for_a_per_host_slot_are_not_counted(server):
    # one at a time: the sixth waits ~2 s for its slot, past the deadline, then takes 0.4 s of its own
    urls = [server.url(f"/concurrent/{i}?sleep=0.4") for i in range(6)]
    options = FetchOptions(allow_private=True, timeout=5.0, retries=0, per_host=1, threads=6, deadline=1.5)
    results = list(fetch_all(urls, options))
    assert [(r.reason, r.data) for r in results] == [(None, str(i).encode()) for i in range(6)]
    assert server.max_inflight == 1
