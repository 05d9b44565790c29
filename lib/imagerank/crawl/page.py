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


class _Resolver:
    """:class:`imagerank.urls.Resolver` remembering answers: pages repeat the same hrefs many times."""

    def __init__(self, base: str, counters: Counter):
        self.resolve = Resolver(base)
        self.counters = counters
        self.known: dict[str, tuple[str | None, str | None]] = {}  # href -> (url, host) or (None, drop reason)

    def __call__(self, href: str) -> tuple[str | None, str | None]:
        """(url, host), or (None, None) for a dropped value (counted)."""
        hit = self.known.get(href)
        if hit is None:
            try:
                hit = self.resolve(href)
            except UrlError as err:
                hit = (None, "url:" + err.reason)
            self.known[href] = hit
        if hit[0] is None:
            self.counters[hit[1]] += 1
            return None, None
        return hit


def page_rows(page_url: str, raw: RawPage, counters: Counter) -> tuple[list[dict], list[dict]]:
    """Image embed rows and page link rows of one page; dropped URLs counted in ``counters``."""
    base = page_url
    if raw.base_href:
        try:
            base = resolve(page_url, raw.base_href)
        except UrlError as err:
            counters["url:" + err.reason] += 1

    resolve_href = _Resolver(base, counters)
    page_host, page_domain = site_of(page_url)
    keys: dict[str, tuple[str, str, str | None]] = {}  # url -> (image_key, host, domain)

    def image_identity(url: str, host: str) -> tuple[str, str, str | None]:
        known = keys.get(url)
        if known is None:
            known = keys[url] = (image_key(url, host), host, registered_domain(host))
        return known

    embeds: list[dict] = []
    seen: set[tuple[int, str]] = set()
    for image in raw.images:
        url, host = resolve_href(image.href)
        if url is None:
            continue
        if (image.position, url) in seen:  # one element naming one URL twice (src and srcset)
            continue
        seen.add((image.position, url))
        key, host, domain = image_identity(url, host)
        embeds.append(
            {
                "page_url": page_url,
                "image_url": url,
                "image_key": key,
                "image_host": host,
                "image_domain": domain,
                "source": image.source,
                "alt": image.alt,
                "title": image.title,
                "width": image.width,
                "height": image.height,
                "position": image.position,
                "nofollow": None,
            }
        )

    position = raw.images[-1].position + 1 if raw.images else 0
    followed: dict[str, bool] = {}  # dst -> nofollow (False once any occurrence is followed)
    hosts: dict[str, str] = {}  # link target -> its host
    for href, rel, title in raw.links:
        url, host = resolve_href(href)
        if url is None:
            continue
        if has_image_extension(url):
            key, host, domain = image_identity(url, host)
            embeds.append(
                {
                    "page_url": page_url,
                    "image_url": url,
                    "image_key": key,
                    "image_host": host,
                    "image_domain": domain,
                    "source": "link_href",
                    "alt": None,
                    "title": title,
                    "width": None,
                    "height": None,
                    "position": position,
                    "nofollow": _has_nofollow(rel),
                }
            )
            position += 1
            continue
        if url == page_url:
            counters["link:self"] += 1
            continue
        nofollow = _has_nofollow(rel)
        followed[url] = followed.get(url, True) and nofollow
        hosts[url] = host

    links = []
    for dst, nofollow in followed.items():
        dst_host = hosts[dst]
        links.append({"src_url": page_url, "src_host": page_host, "src_domain": page_domain,
                      "dst_url": dst, "dst_host": dst_host, "dst_domain": registered_domain(dst_host),
                      "nofollow": nofollow})
    return embeds, links
