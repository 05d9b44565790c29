"""URL normalization, image keys, hosts and registered domains.

Every stage that names a page or an image goes through this module, so that extraction, the graph
and the catalog agree on identities. Resolution uses ada-url (WHATWG URL parsing: scheme and host
lowercased, IDNA hosts to punycode, default ports dropped, dot segments removed, characters outside
a component's allowed set percent-encoded, escapes already there kept as written); it resolved
~2.5x more URLs per second than ``urllib.parse.urljoin`` (see bench/), and ~1.7x more again called
through its C API with the host read from the same parse.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote

import ada_url
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
# <server>/<id>_<secret>[_<size>].<ext>  (live.staticflickr.com, farmN.staticflickr.com,
# farmN.static.flickr.com, ...)
_FLICKR_FILE = re.compile(r"^(?P<id>\d+)_[0-9a-f]+(?:_[0-9a-z]+)?\.[a-z0-9]+$")


class UrlError(ValueError):
    """A URL that cannot be used; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str, value: str):
        super().__init__(f"{reason}: {value[:200]!r}")
        self.reason = reason


# What the URL parser trims from both ends of an href (WHATWG: C0 controls and space), not Python's
# whitespace: a no-break or ideographic space is part of the URL, percent-encoded by the parser.
URL_SPACE = "".join(map(chr, range(0x21)))


def classify_unusable(href: str) -> str | None:
    """The skip reason for a raw attribute value that is not a fetchable link, or None."""
    value = href.strip(URL_SPACE)
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

    __slots__ = ("base", "_base_bytes", "_origin", "_host", "_scheme")

    def __init__(self, base: str):
        self.base = base
        self._base_bytes = base.encode("utf-8", "surrogatepass")
        self._origin = self._host = self._scheme = None
        if _SIMPLE_ABSOLUTE.fullmatch(base):  # a normalized page URL: its origin serves root-relative hrefs
            cut = base.find("/", base.find("//") + 2)
            self._origin = base if cut < 0 else base[:cut]
            self._host = self._origin[self._origin.find("//") + 2 :]
            self._scheme = base[: base.find(":") + 1]  # and its scheme, scheme-relative ones (//host/path)

    def __call__(self, href: str) -> tuple[str, str]:
        """(URL, host) of ``href``; raises UrlError (with a counter name) for values that are not
        fetchable http(s) URLs."""
        value = href.strip(URL_SPACE)
        if not value:
            raise UrlError("url_empty", href)
        # Fast paths, for hrefs that WHATWG parsing leaves as they are (tests/test_urls.py checks
        # them against ada on every href of the real WARCs): a root-relative path, or an absolute or
        # scheme-relative http(s) URL, of plain characters (percent escapes kept as written), with no
        # dot segment (also escaped: %2e), port, credentials, IDNA or fragment.
        head = value[0]
        if head == "/":
            if value[1:2] != "/":
                if (self._origin is not None and _SIMPLE_PATH.fullmatch(value) and "/." not in value
                        and ("%" not in value or ("%2e" not in value and "%2E" not in value))):
                    url = self._origin + value
                    return (url[:-1] if url.endswith("?") else url), self._host
            elif self._scheme is not None:  # //host/path: the base's scheme, as the parser gives it
                value, head = self._scheme + value, "h"
        if head == "h":
            simple = _SIMPLE_ABSOLUTE.fullmatch(value)
            if (simple is not None and "/." not in value and "xn--" not in value
                    and ("%" not in value or ("%2e" not in value and "%2E" not in value))):
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
# Characters WHATWG's path and query states keep as they are, for http(s) (outside their
# percent-encode sets; ' is encoded in the query of such URLs, so not there): a path of these, the
# first one after its slash not a dot or a slash; a query of these
_PLAIN_PATH = r"/[A-Za-z0-9_~%()!*,;=:@+&$-][A-Za-z0-9/_.~%()!*,;=:@+&$-]*"
_PLAIN_QUERY = r"\?[A-Za-z0-9_.~=&;,+/%()!*:@$-]*"
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


@lru_cache(maxsize=1)
def _icann_psl() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False, only_icann=True)


@lru_cache(maxsize=65536)
def icann_domain(host: str) -> str | None:
    """:func:`registered_domain` under the ICANN section of the Public Suffix List alone (no private
    suffixes such as ``blogspot.com`` or ``github.io``): the domains of Common Crawl's domain graph."""
    domain = registered_domain(host)
    if domain is None or is_ip(domain):
        return domain
    return _icann_psl().privatesuffix(host[:-1] if host.endswith(".") else host)


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


def _is_flickr_static(host: str) -> bool:
    """Flickr's static file hosts: (farmN|live|cN.)staticflickr.com and the older (farmN.)static.flickr.com."""
    return host.endswith(_FLICKR_STATIC) and (host in _FLICKR_STATIC or host.endswith(_FLICKR_STATIC_SUBDOMAINS))


_FLICKR_STATIC = ("staticflickr.com", "static.flickr.com")
_FLICKR_STATIC_SUBDOMAINS = tuple("." + base for base in _FLICKR_STATIC)


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
    elif _is_flickr_static(host):
        path = url.split("?", 1)[0]
        match = _FLICKR_FILE.match(path.rsplit("/", 1)[-1])
        if match:
            return f"flickr:{match.group('id')}"
    return url


# --- Match keys ------------------------------------------------------------------------------------
#
# A match key names the URLs that are one resource for matching the catalog against the crawl. It
# is SURT-like, as in Common Crawl's index (``com,example)/path?a=1&b=2``), with fewer folds than
# Common Crawl's canonicalizer (which also lowercases the path and the query): what is folded here
# is only what cannot select different content.

# Dropped from every URL: campaign and click identifiers added for analytics, never read by the
# server to choose what it sends (Google Analytics' utm_*, _ga, _gl; ad click ids).
TRACKING_PARAMS = frozenset(("fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid",
                             "igshid", "_ga", "_gl"))
TRACKING_PREFIXES = ("utm_",)
# Dropped from image file URLs only (a path ending in an image extension): the version stamps and
# cache busters that sites append to a static file (WordPress ``ver``, Shopify ``v``, jQuery's
# ``_``, ``t=<timestamp>``). On a page they may select content (YouTube's ``v``, a forum's ``t``),
# so landing pages keep them.
CACHE_BUSTING_PARAMS = frozenset(("_", "cb", "v", "ver", "version", "t", "ts", "timestamp"))

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_WIKI_SITES = ("wikimedia.org", "wikipedia.org")
# Characters MediaWiki leaves unescaped in its canonical page URLs (wfUrlencode), besides A-Z a-z 0-9 - . _ ~
_MEDIAWIKI_SAFE = ";@$!*(),/~:"
_COMMONS_HOST = "commons.wikimedia.org"


def _percent_normalized(text: str) -> str:
    """RFC 3986 6.2.2: percent-escapes of unreserved characters decoded, the others in upper case."""
    def fold(match: re.Match) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()
    return _PERCENT.sub(fold, text) if "%" in text else text


def _wiki_title(title: str) -> str:
    """A MediaWiki page title in the form of MediaWiki's own URLs: decoded, spaces as underscores,
    re-escaped as wfUrlencode does (``File:A_(b),_c.jpg``, ``%27`` for an apostrophe)."""
    return quote(unquote(title).replace(" ", "_"), safe=_MEDIAWIKI_SAFE)


def _is_wiki_host(host: str) -> bool:
    return any(host == site or host.endswith("." + site) for site in _WIKI_SITES)


def match_key(url: str, image: bool = False) -> str:
    """SURT-like match key of an http(s) URL (raises UrlError where it is not one).

    - The URL is normalized as :func:`normalize` does; scheme, user info and fragment are dropped,
      so http and https meet.
    - Host: lower case (the normalization's), one leading ``www.`` dropped, labels reversed and
      joined by commas (IP addresses kept as they are), a non-default port kept, then ``)``.
    - Path: kept with its case; percent-escapes of unreserved characters decoded and the others
      upper-cased (RFC 3986 6.2.2); a trailing slash dropped (the root stays ``/``).
    - Query: empty parameters and :data:`TRACKING_PARAMS` (and ``utm_*``) dropped; with
      ``image=True`` and a path ending in an image extension, :data:`CACHE_BUSTING_PARAMS` too;
      the rest sorted, as SURT sorts them.
    - Wikimedia and Wikipedia hosts: the mobile host (``commons.m.wikimedia.org``) is the desktop
      one; ``/w/index.php?title=T`` with no other parameter is ``/wiki/T``; a ``/wiki/`` title is
      written as MediaWiki writes it (:func:`_wiki_title`), whether it came escaped or not.
      ``/w/index.php?curid=N`` (Openverse's Wikimedia landing pages) is kept as it is: the page id
      names a title only through Wikimedia's database, which the pipeline does not have (publish
      meets it through the file name instead: :func:`wikimedia_file_page`).
    """
    try:
        parts = ada_url.parse_url(url.strip())  # normalizes as normalize() does
    except ValueError:
        raise UrlError("url_unparseable", url) from None
    if parts["protocol"] not in FETCHABLE_SCHEMES:
        raise UrlError("url_other_scheme", url)
    host = parts["hostname"]
    if host.startswith("www."):
        host = host[4:]
    path, query = parts["pathname"], parts["search"][1:]
    params = [p for p in query.split("&") if p] if query else []
    if _is_wiki_host(host):
        host = host.replace(".m.", ".", 1) if ".m." in host else host
        if path == "/w/index.php" and len(params) == 1 and params[0].startswith("title=") and len(params[0]) > 6:
            path, params = "/wiki/" + params[0][6:].replace("+", "%20"), []  # a query's + is a space
        if path.startswith("/wiki/"):
            path = "/wiki/" + _wiki_title(path[6:])
    if parts["host_type"] == ada_url.HostType.DEFAULT:
        host = ",".join(reversed(host.split(".")))
    if parts["port"]:
        host = f"{host}:{parts['port']}"
    path = _percent_normalized(path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    drop_cache = image and has_image_extension(path)
    kept = []
    for param in params:
        name = unquote(param.split("=", 1)[0]).lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        if drop_cache and name in CACHE_BUSTING_PARAMS:
            continue
        kept.append(_percent_normalized(param))
    kept.sort()
    return f"{host}){path}" + ("?" + "&".join(kept) if kept else "")


IDENTITY_KEY_PREFIXES = ("wikimedia:", "flickr:")


def image_match_key(url: str) -> str:
    """Match key of an image: its :func:`image_key` where that is an identity (``wikimedia:``,
    ``flickr:``), else :func:`match_key` of the URL with ``image=True``. Takes a URL or an
    ``image_key`` (the crawl's); raises UrlError for what is neither."""
    if url.startswith(IDENTITY_KEY_PREFIXES):
        return url
    key = image_key(normalize(url))
    return key if key.startswith(IDENTITY_KEY_PREFIXES) else match_key(key, image=True)


def wikimedia_file_page(key: str) -> str | None:
    """The Commons file description page of a ``wikimedia:commons/<File_name>`` image key
    (``https://commons.wikimedia.org/wiki/File:<File_name>``), or None for any other key."""
    if not key.startswith("wikimedia:commons/"):
        return None
    return f"https://{_COMMONS_HOST}/wiki/File:{_wiki_title(key[len('wikimedia:commons/'):])}"


def is_wikimedia_curid(url: str) -> bool:
    """True for a Commons page named by page id: ``commons.wikimedia.org/w/index.php?curid=N``."""
    try:
        key = match_key(url)
    except UrlError:
        return False
    return re.fullmatch(r"org,wikimedia,commons\)/w/index\.php\?curid=\d+", key) is not None
