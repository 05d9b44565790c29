"""URL normalization, image keys, hosts and registered domains.

Every stage that names a page or an image goes through this module, so that extraction, the graph
and the catalog agree on identities. Resolution uses ada-url (WHATWG URL parsing: scheme and host
lowercased, IDNA hosts to punycode, default ports dropped, dot segments removed, percent-encoding
normalized); it resolved ~2.5x more URLs per second than ``urllib.parse.urljoin`` (see bench/),
and ~1.7x more again called through its C API with the host read from the same parse.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from ada_url._ada_wrapper import ffi as _ffi, lib as _ada
from publicsuffixlist import PublicSuffixList

# Schemes a crawler can fetch; everything else (data:, javascript:, mailto:, tel:, ...) is dropped.
FETCHABLE_SCHEMES = ("http:", "https:")

IMAGE_EXTENSIONS = frozenset(
    ("jpg", "jpeg", "jpe", "png", "gif", "webp", "svg", "bmp", "tif", "tiff", "avif", "ico", "heic")
)

_WIKIMEDIA_HOST = "upload.wikimedia.org"
# /wikipedia/<project>/[thumb/]<h>/<hh>/<Name>[/<NNNpx-Name>]
_WIKIMEDIA_PATH = re.compile(
    r"^/wikipedia/(?P<project>[^/]+)/(?:thumb/)?[0-9a-f]/[0-9a-f]{2}/(?P<name>[^/]+)(?:/[^/]*)?$"
)
# <server>/<id>_<secret>[_<size>].<ext>  (live.staticflickr.com, farmN.staticflickr.com, ...)
_FLICKR_FILE = re.compile(r"^(?P<id>\d+)_[0-9a-f]+(?:_[0-9a-z]+)?\.[a-z0-9]+$")


class UrlError(ValueError):
    """A URL that cannot be used; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str, value: str):
        super().__init__(f"{reason}: {value[:200]!r}")
        self.reason = reason


def classify_unusable(href: str) -> str | None:
    """The skip reason for a raw attribute value that is not a fetchable link, or None."""
    value = href.strip()
    if not value:
        return "url_empty"
    head = value[:11].lower()
    if head.startswith("data:"):
        return "url_data"
    if head.startswith("javascript:"):
        return "url_javascript"
    if head.startswith("mailto:"):
        return "url_mailto"
    return None


class Resolver:
    """Resolves the hrefs of one page against its base URL: (normalized URL, host) per href.

    Calls ada's C API (the cffi module ada-url ships) directly: one parse gives both the URL and
    its host, where ``ada_url.join_url`` plus :func:`host_of` parsed twice and spent most of the
    time in Python wrappers (bench/bench_extract.py measures the whole extraction).
    """

    __slots__ = ("base", "_base_bytes", "_origin", "_host")

    def __init__(self, base: str):
        self.base = base
        self._base_bytes = base.encode("utf-8", "surrogatepass")
        self._origin = self._host = None
        if _SIMPLE_ABSOLUTE.fullmatch(base):  # a normalized page URL: its origin serves root-relative hrefs
            cut = base.find("/", base.find("//") + 2)
            self._origin = base if cut < 0 else base[:cut]
            self._host = self._origin[self._origin.find("//") + 2 :]

    def __call__(self, href: str) -> tuple[str, str]:
        """(URL, host) of ``href``; raises UrlError (with a counter name) for values that are not
        fetchable http(s) URLs."""
        value = href.strip()
        if not value:
            raise UrlError("url_empty", href)
        # Fast paths, for hrefs that WHATWG parsing leaves as they are (tests/test_urls.py checks
        # them against ada on every href of the real WARCs): a root-relative path, or an absolute
        # http(s) URL, of plain characters, with no dot segment, port, credentials, IDNA or fragment.
        if value[0] == "/":
            if self._origin is not None and _SIMPLE_PATH.fullmatch(value) and "/." not in value:
                url = self._origin + value
                return (url[:-1] if url.endswith("?") else url), self._host
        elif value[0] == "h":
            simple = _SIMPLE_ABSOLUTE.fullmatch(value)
            if simple is not None and "/." not in value and "xn--" not in value:
                host = simple.group(1)
                url = value if simple.group(2) else value.replace(host, host + "/", 1)
                return (url[:-1] if url.endswith("?") else url), host
        try:
            data = value.encode()
        except UnicodeEncodeError:  # lone surrogates from a broken page
            raise UrlError("url_unparseable", href) from None
        base = self._base_bytes
        parsed = _ada.ada_parse_with_base(data, len(data), base, len(base))
        try:
            if not _ada.ada_is_valid(parsed):
                raise UrlError(classify_unusable(value) or "url_unparseable", href)
            text = _ada.ada_get_href(parsed)
            url = _ffi.unpack(text.data, text.length).decode()
            if not url.startswith(FETCHABLE_SCHEMES):
                raise UrlError(classify_unusable(value) or "url_other_scheme", href)
            parts = _ada.ada_get_components(parsed)  # offsets into the (ASCII) serialized URL
            start, end, fragment = parts.host_start, parts.host_end, parts.hash_start
        finally:
            _ada.ada_free(parsed)
        if url[start] == "@":  # host_start points at the '@' after credentials
            start += 1
        if fragment != _OMITTED:
            url = url[:fragment]
        # an empty query names the same resource: /company/? is /company/
        return (url[:-1] if url.endswith("?") else url), url[start:end]


_OMITTED = 0xFFFFFFFF  # ada's marker for a component the URL does not have
_PLAIN_PATH = r"/[A-Za-z0-9_~-][A-Za-z0-9/_.~-]*"
_PLAIN_QUERY = r"\?[A-Za-z0-9_.~=&;,+/-]*"
# lowercase labels, the last one starting with a letter (so never an IPv4 form such as 0x7f.1)
_PLAIN_HOST = r"((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z](?:[a-z0-9-]*[a-z0-9])?)"
_SIMPLE_ABSOLUTE = re.compile(rf"https?://{_PLAIN_HOST}((?:{_PLAIN_PATH}|/)?)(?:{_PLAIN_QUERY})?")
_SIMPLE_PATH = re.compile(rf"(?:{_PLAIN_PATH}|/)(?:{_PLAIN_QUERY})?")


def resolve(base: str, href: str) -> str:
    """Absolute, normalized form of ``href`` found on a page whose base URL is ``base``.

    Raises UrlError (with a counter name) for values that are not fetchable http(s) URLs.
    """
    return Resolver(base)(href)[0]


def normalize(url: str) -> str:
    """Normalized form of an absolute URL (the same rules as :func:`resolve`)."""
    return resolve(url, url)


def host_of(url: str) -> str:
    """Lowercased host name (no port) of a normalized URL."""
    start = url.find("//") + 2
    end = len(url)
    for sep in "/?":
        pos = url.find(sep, start)
        if 0 <= pos < end:
            end = pos
    host = url[start:end].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.split(":", 1)[0]


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # publicsuffixlist bundles a dated copy of the Public Suffix List: resolved offline. Unknown
    # top-level names are not accepted: ``www1.hollins`` has no public suffix.
    return PublicSuffixList(accept_unknown=False)


# A host name label as Common Crawl's host graph accepts it: letters, digits, '-' and '_' (seen
# on real hosts), not starting or ending with '-' or '_', at most 63 characters. IDNs arrive in
# punycode (xn--...), which matches.
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def is_ip(host: str) -> bool:
    """True for an IPv4 address or a bracketed IPv6 one (as a normalized URL writes them)."""
    return host.startswith("[") or bool(_IPV4.match(host))


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str | None:
    """Registered domain (public suffix + one label) of a valid host name, else None.

    An IP address is its own domain (the graph keeps IP hosts only when asked). None means the
    host is not a public host name and stays out of the host and domain graphs, as in Common
    Crawl's host graph: one label (``www1``, ``localhost``), an invalid label, more than 253
    characters, a top-level name not in the Public Suffix List (``www1.hollins``), or a bare
    public suffix (``co.uk``). A trailing dot is ignored.
    """
    if not host:
        return None
    if is_ip(host):
        return host
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or "." not in name:
        return None
    if not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return None
    return _psl().privatesuffix(name)


def site_of(url: str) -> tuple[str, str | None]:
    """(host, registered domain or None) of a normalized URL: the one rule for every URL column."""
    host = host_of(url)
    return host, registered_domain(host)


def has_image_extension(url: str) -> bool:
    """True if the URL's path ends in an image file extension (query and fragment ignored)."""
    path = url.split("?", 1)[0]
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return False
    return path[dot + 1 :].lower() in IMAGE_EXTENSIONS


def image_key(url: str, host: str | None = None) -> str:
    """Canonical identity of an image: size variants of one image share a key.

    - Wikimedia upload URLs (originals and ``/thumb/.../NNNpx-Name`` variants):
      ``wikimedia:<project>/<File_name>`` (percent-decoded, spaces as underscores).
    - Flickr static URLs (any farm/server, any size suffix): ``flickr:<photo id>``.
    - Anything else: the normalized URL itself.

    ``host``: the URL's host where the caller has it already.
    """
    host = host_of(url) if host is None else host
    if host == _WIKIMEDIA_HOST:
        path = url[url.find(host) + len(host) :].split("?", 1)[0]
        match = _WIKIMEDIA_PATH.match(path)
        if match:
            name = unquote(match.group("name")).replace(" ", "_")
            return f"wikimedia:{match.group('project')}/{name}"
    elif host.endswith("staticflickr.com") or host == "static.flickr.com":
        path = url.split("?", 1)[0]
        match = _FLICKR_FILE.match(path.rsplit("/", 1)[-1])
        if match:
            return f"flickr:{match.group('id')}"
    return url
