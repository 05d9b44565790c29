"""Image and link extraction from one HTML page.

Two parsers fill the same :class:`RawPage`: selectolax (Lexbor, HTML5) on the hot path, and
BeautifulSoup with lxml as the reference. Everything after the parse (URL resolution, which
``<a>`` points at an image file, self-links, counting) is shared, in :mod:`imagerank.crawl.page`.
Measured on the real Common Crawl pages in ../shared/data (bench/bench_extract.py): selectolax
parses ~30x more pages per second than BeautifulSoup+lxml on one core.
"""

from __future__ import annotations

import re

from imagerank.crawl.page import OG_IMAGE, TWITTER_IMAGE, RawImage, RawPage, clean_text

# Attributes that lazy-loading scripts read instead of src / srcset.
LAZY_SRC_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url")
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset")
_LAZY_ATTRS = frozenset(LAZY_SRC_ATTRS + LAZY_SRCSET_ATTRS)

_LEADING_INT = re.compile(r"\s*(\d{1,9})")


def parse_dimension(value: str | None) -> int | None:
    """Declared width/height: the leading non-negative integer ("300px" is 300), else None."""
    if value is None:
        return None
    match = _LEADING_INT.match(value)
    return int(match.group(1)) if match else None


def srcset_urls(value: str) -> list[str]:
    """Candidate URLs of a srcset attribute (HTML's srcset parsing, descriptors dropped)."""
    urls = []
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            while pos < end and value[pos] != ",":
                pos += 1  # skip descriptors up to the next candidate
        if url:
            urls.append(url)
    return urls


class _Collector:
    """Turns a stream of (tag, attrs, parent tag) in document order into a RawPage."""

    def __init__(self) -> None:
        self.page = RawPage()
        self.position = 0

    def _add(self, href: str | None, source: str, attrs: dict | None = None) -> None:
        if href is None:
            return
        attrs = attrs or {}
        self.page.images.append(
            RawImage(
                href=href,
                source=source,
                position=self.position,
                alt=attrs.get("alt"),
                title=attrs.get("title"),
                width=parse_dimension(attrs.get("width")),
                height=parse_dimension(attrs.get("height")),
            )
        )

    def element(self, tag: str, attrs: dict, parent: str | None) -> None:
        page = self.page
        if tag == "a" or tag == "area":  # most elements of most pages: first, and cheapest
            href = attrs.get("href")
            if href is not None:
                page.links.append((href, attrs.get("rel"), attrs.get("title")))
        elif tag == "img" or (tag == "source" and parent == "picture"):
            before = len(page.images)
            if tag == "img":
                self._add(attrs.get("src"), "img_src", attrs)
                srcset_source = "img_srcset"
            else:
                srcset_source = "picture_source"
            srcset = attrs.get("srcset")
            if srcset:
                for url in srcset_urls(srcset):
                    self._add(url, srcset_source, attrs)
            if len(attrs) > 1 and not _LAZY_ATTRS.isdisjoint(attrs):
                for name in LAZY_SRC_ATTRS:
                    self._add(attrs.get(name), "lazy_src", attrs)
                for name in LAZY_SRCSET_ATTRS:
                    for url in srcset_urls(attrs.get(name) or ""):
                        self._add(url, "lazy_src", attrs)
            if len(page.images) > before:
                self.position += 1
        elif tag == "meta":
            key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
            if key in OG_IMAGE or key in TWITTER_IMAGE:
                self._add(attrs.get("content"), "og_image" if key in OG_IMAGE else "twitter_image")
                self.position += 1
        elif tag == "base":
            if page.base_href is None and attrs.get("href"):
                page.base_href = attrs["href"]


# Elements either parser reports, in document order.
SELECTOR = "base, img, source, a, area, meta"
TAGS = ("base", "img", "source", "a", "area", "meta")


def parse_selectolax(markup: str | bytes) -> RawPage:
    """Fast path: selectolax's Lexbor HTML5 parser. ``markup``: the page's text, or its UTF-8 bytes
    (:func:`imagerank.crawl.payload.html_markup`), which Lexbor reads as they are."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    collector = _Collector()
    element = collector.element
    for node in tree.css(SELECTOR):
        tag = node.tag
        parent = node.parent if tag == "source" else None  # only a <source> asks its parent
        element(tag, node.attributes, parent.tag if parent is not None else None)
    title = tree.css_first("title")
    collector.page.title = clean_text(title.text()) if title is not None else None
    return collector.page


def parse_bs4(markup: str | bytes) -> RawPage:
    """Reference path: BeautifulSoup over lxml's HTML parser. ``markup``: as :func:`parse_selectolax`
    reads it (bytes are UTF-8)."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    text = markup.decode("utf-8") if isinstance(markup, bytes) else markup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)  # XHTML pages parse as HTML, as browsers do
        soup = BeautifulSoup(text, "lxml")
    collector = _Collector()
    for node in soup.find_all(TAGS):
        attrs = {k: (" ".join(v) if isinstance(v, list) else v) for k, v in node.attrs.items()}
        parent = node.parent.name if node.parent is not None else None
        collector.element(node.name, attrs, parent)
    title = soup.find("title")
    collector.page.title = clean_text(title.get_text()) if title is not None else None
    return collector.page


PARSERS = {"selectolax": parse_selectolax, "bs4": parse_bs4}
