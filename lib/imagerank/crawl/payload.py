"""The HTTP response inside a WARC response record: status, content type, decoded HTML."""

from __future__ import annotations

import codecs
import re

HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)


class PayloadError(ValueError):
    """A response that yields no page; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


HEADER_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")  # CRLF as HTTP asks; LF alone, as some crawlers wrote


def split_http(block: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """(status, lowercased headers, body) of an HTTP response block.

    The headers end at the first blank line, whichever line ending it uses: headers ending their
    lines in LF alone, followed by a body that holds a CRLF CRLF somewhere, split there, not inside
    the body (ClueWeb09's WARCs do this)."""
    found = [(pos, len(end)) for end in HEADER_ENDS if (pos := block.find(end)) >= 0]
    if not found or not block.startswith(b"HTTP/"):
        raise PayloadError("bad_http_headers")
    end, sep = min(found)
    lines = block[:end].decode("latin-1").splitlines()
    parts = lines[0].split(None, 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, block[end + sep :]


def content_type(headers: dict[str, str]) -> tuple[str, str | None]:
    """(mime type, charset or None) from a Content-Type header."""
    value = headers.get("content-type", "")
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return mime.strip().lower(), charset


def is_html(mime: str, body: bytes) -> bool:
    if mime:
        return mime in HTML_TYPES
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def decode_html(body: bytes, charset: str | None) -> tuple[str, bool, str | None]:
    """(text, lossy, encoding): decoded with the declared charset, else a <meta charset>, else
    UTF-8 (``encoding``: the label that decoded it, lowercased, as written: ``utf8`` and ``utf-8``
    are two labels of one codec); never raises for text: where none
    decodes it, UTF-8 with replacement characters (lossy, encoding None). Binary bodies (NUL bytes
    up front) raise PayloadError("undecodable_body")."""
    if b"\x00" in body[:4096]:
        raise PayloadError("undecodable_body")
    candidates = [charset]
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for encoding in candidates:
        if not encoding:
            continue
        try:
            return body.decode(encoding), False, encoding.lower()
        except (LookupError, UnicodeError):  # UnicodeError: some codecs (punycode) raise no UnicodeDecodeError
            continue
    return body.decode("utf-8", "replace"), True, None


def html_markup(body: bytes, charset: str | None) -> tuple[str | bytes, bool]:
    """(what the HTML parser reads, lossy): :func:`decode_html`'s text, or the body itself where
    that text was decoded from it as UTF-8, so that a parser reading UTF-8 bytes (Lexbor) is handed
    them as they are instead of a decoded copy that it encodes again."""
    text, lossy, encoding = decode_html(body, charset)
    utf8 = encoding is not None and codecs.lookup(encoding).name in ("utf-8", "ascii")  # any label of either
    return (body if utf8 else text), lossy
