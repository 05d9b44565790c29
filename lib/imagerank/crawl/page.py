"""The page model both parsers fill (:class:`RawPage`), and from it to rows: resolved image
embeds and page links.

Shared by the HTML and the WAT paths, so both apply the same URL rules: base resolution,
fragment stripping, dropped schemes (counted by reason), ``<a>`` links straight to image files
becoming ``link_href`` embeds instead of page links (the graph stage turns one back into a page
link when the crawl fetched its target as a page), self-links dropped, one link row per target.
Every URL column comes with its host (from the same parse that resolved it) and registered domain
(:func:`imagerank.urls.registered_domain`, the rule of :func:`imagerank.urls.site_of`), computed here once so that later stages never parse URLs again.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from imagerank.urls import Resolver, UrlError, has_image_extension, image_key, registered_domain, resolve, site_of


OG_IMAGE = frozenset(("og:image", "og:image:url", "og:image:secure_url"))
TWITTER_IMAGE = frozenset(("twitter:image", "twitter:image:src"))
_SPACE = re.compile(r"\s+")


@dataclass(slots=True)
class RawImage:
    """One image URL as written in the page (not yet resolved)."""

    href: str
    source: str
    position: int
    alt: str | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class RawPage:
    """What a parser found in one page, before URL resolution."""

    title: str | None = None
    base_href: str | None = None
    images: list[RawImage] = field(default_factory=list)
    links: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (href, rel, title)


def clean_text(text: str | None) -> str | None:
    if text is None:
        return None
    text = _SPACE.sub(" ", text).strip()
    return text or None


def _has_nofollow(rel: str | None) -> bool:
    return rel is not None and "nofollow" in rel.lower().split()


def _resolve_all(resolver: Resolver, hrefs: list[str], counters: Counter) -> list[tuple[str, str] | None]:
    """(url, host) of each href, or None for one dropped (counted in ``counters``); each distinct
    href resolved once (pages repeat theirs), in one loop per page rather than a call per href."""
    known: dict[str, tuple[str, str] | str] = {}  # href -> (url, host), or the counter of its drop reason
    out: list[tuple[str, str] | None] = []
    for href in hrefs:
        hit = known.get(href)
        if hit is None:
            try:
                hit = resolver(href)
            except UrlError as err:
                hit = "url:" + err.reason
            known[href] = hit
        if hit.__class__ is str:
            counters[hit] += 1
            out.append(None)
        else:
            out.append(hit)
    return out


def page_rows(page_url: str, raw: RawPage, counters: Counter) -> tuple[list[tuple], list[tuple]]:
    """Image embed rows and page link rows of one page, each a tuple of its table's columns in
    schema order (:data:`imagerank.crawl.schemas.COLUMNS`); dropped URLs counted in ``counters``.

    The hot path of extraction (bench/bench_extract.py): no Python call per href but its resolution,
    and rows as tuples, which pyarrow turns into columns without a lookup per column and row."""
    base = page_url
    if raw.base_href:
        try:
            base = resolve(page_url, raw.base_href)
        except UrlError as err:
            counters["url:" + err.reason] += 1

    images, links = raw.images, raw.links
    resolved = _resolve_all(Resolver(base), [image.href for image in images] + [link[0] for link in links], counters)
    page_host, page_domain = site_of(page_url)
    keys: dict[str, tuple[str, str, str | None]] = {}  # url -> (image_key, host, domain)

    def embed(url: str, host: str, source: str, alt, title, width, height, position: int, nofollow) -> tuple:
        """An image embed row; each image URL's key, host and domain worked out once per page."""
        known = keys.get(url)
        if known is None:
            known = keys[url] = (image_key(url, host), host, registered_domain(host))
        return (page_url, url, known[0], known[1], known[2], source, alt, title, width, height, position, nofollow)

    embeds: list[tuple] = []
    seen: set[tuple[int, str]] = set()
    for image, hit in zip(images, resolved):
        if hit is None:
            continue
        url = hit[0]
        if (image.position, url) in seen:  # one element naming one URL twice (src and srcset)
            continue
        seen.add((image.position, url))
        embeds.append(embed(url, hit[1], image.source, image.alt, image.title, image.width, image.height,
                            image.position, None))

    position = images[-1].position + 1 if images else 0
    followed: dict[str, tuple[bool, str]] = {}  # link target -> (nofollow: False once any is followed, its host)
    for (_, rel, title), hit in zip(links, resolved[len(images):]):
        if hit is None:
            continue
        url = hit[0]
        if has_image_extension(url):  # a link straight to an image file: an embed
            embeds.append(embed(url, hit[1], "link_href", None, title, None, None, position, _has_nofollow(rel)))
            position += 1
            continue
        if url == page_url:
            counters["link:self"] += 1
            continue
        nofollow = _has_nofollow(rel)
        before = followed.get(url)
        if before is None or (before[0] and not nofollow):
            followed[url] = (nofollow, hit[1])

    return embeds, [(page_url, page_host, page_domain, dst, dst_host, registered_domain(dst_host), nofollow)
                    for dst, (nofollow, dst_host) in followed.items()]
