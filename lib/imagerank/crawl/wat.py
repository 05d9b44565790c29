"""Pages and links from Common Crawl WAT records (the JSON that ia-web-commons writes).

Path: Envelope -> Payload-Metadata -> HTTP-Response-Metadata -> HTML-Metadata, with ``Head``
(``Title``, ``Base``, ``Metas``) and ``Links`` (``{"path": "IMG@/src", "url": ...}``,
``{"path": "A@/href", "url": ..., "rel": ...}``). ia-web-commons writes attribute values as they
stand in the HTML, character references included (``?a=1&amp;b=2``); they are decoded here, as an
HTML parser decodes them on the WARC path, so both paths name a URL alike.
"""

from __future__ import annotations

import json
from html import unescape

from imagerank.crawl.page import OG_IMAGE, TWITTER_IMAGE, RawImage, RawPage, clean_text
from imagerank.crawl.payload import PayloadError
from imagerank.crawl.records import strip_target_uri

LINK_PATHS = frozenset(("A@/href", "AREA@/href"))


def parse_wat(block: bytes) -> dict:
    """The WAT record's metadata for a response, or PayloadError with the reason it has none.

    Returns dict(kind='response', uri, date, status, raw=RawPage, source=(file, offset, length)) for an HTML
    response, dict(kind=<WARC-Type>) for the request/metadata envelopes WATs also hold.
    """
    try:
        document = json.loads(block)
        envelope = document["Envelope"]
        header = envelope["WARC-Header-Metadata"]
    except (ValueError, KeyError, TypeError):
        raise PayloadError("bad_wat_json") from None
    kind = header.get("WARC-Type", "unknown")
    if kind != "response":
        return {"kind": kind}
    http = (envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata") or {}
    html = http.get("HTML-Metadata")
    if html is None:
        raise PayloadError("non_html")
    status = (http.get("Response-Message") or {}).get("Status")
    head = html.get("Head") or {}
    base = head.get("Base")
    raw = RawPage(title=clean_text(head.get("Title")), base_href=unescape(base) if base else base)
    position = 0
    for meta in head.get("Metas") or ():
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        if key in OG_IMAGE or key in TWITTER_IMAGE:
            source = "og_image" if key in OG_IMAGE else "twitter_image"
            if meta.get("content") is not None:
                raw.images.append(RawImage(unescape(meta["content"]), source, position))
                position += 1
    for link in html.get("Links") or ():
        path, url = link.get("path"), link.get("url")
        if url is None:
            continue
        url = unescape(url)
        if path == "IMG@/src":
            raw.images.append(
                RawImage(url, "wat_img", position, alt=link.get("alt"), title=link.get("title"))
            )
            position += 1
        elif path in LINK_PATHS:
            raw.links.append((url, link.get("rel"), link.get("title")))
    return {
        "kind": "response",
        "uri": strip_target_uri(header.get("WARC-Target-URI")),  # as the WARC path does
        "date": header.get("WARC-Date"),
        "status": int(status) if str(status or "").isdigit() else None,
        "raw": raw,
        "source": container_source(document.get("Container") or {}),
    }


def container_source(container: dict) -> tuple[str | None, int | None, int | None]:
    """(filename, offset, length) of the WARC record a WAT record describes."""
    try:
        offset = int(container["Offset"])
    except (KeyError, TypeError, ValueError):
        return None, None, None
    gz = container.get("Gzip-Metadata") or {}
    try:
        length = sum(int(gz[k]) for k in ("Header-Length", "Deflate-Length", "Footer-Length"))
    except (KeyError, TypeError, ValueError):
        length = None
    return container.get("Filename"), offset, length
