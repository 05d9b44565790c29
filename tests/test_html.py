from collections import Counter

import pytest

from imagerank.crawl.files import ExtractOptions, extract_file
from imagerank.crawl.html import parse_bs4, parse_selectolax, srcset_urls
from imagerank.crawl.page import page_rows
from imagerank.crawl.schemas import as_dict

from conftest import shared_file

PAGE = """<!DOCTYPE html><html><head><title>  A  page </title>
<base href="https://cdn.example.org/base/">
<meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="tw.png">
</head><body>
<img src="a.jpg" srcset="a.jpg 1x, a-2x.jpg 2x" alt="A" width="300px" height="x">
<picture><source srcset="b.webp 1x, b2.webp 2x" type="image/webp"><img src="b.jpg"></picture>
<video><source src="movie.mp4"></video>
<img src="data:image/gif;base64,AAAA" data-src="lazy.jpg">
<a href="full/photo.PNG">full</a>
<a href="other.html" rel="nofollow">x</a><a href="other.html">again</a>
<a href="https://cdn.example.org/base/self.html">self</a><a href="/base/self.html?">self again</a>
<a href="http://www1/intranet">typo host</a><a href="https://upload.example.org/x.jpg" rel="nofollow">nf</a>
<a href="javascript:void(0)">js</a><a href="mailto:x@y">m</a>
</body></html>"""


@pytest.mark.parametrize("parse", [parse_selectolax, parse_bs4])
def test_page_rows(parse):
    counters = Counter()
    raw = parse(PAGE)
    assert raw.title == "A page"
    embeds, links = page_rows("https://cdn.example.org/base/self.html", raw, counters)
    # rows are tuples in the schema's column order: named here by the schema
    embeds, links = [as_dict("image_embeds", e) for e in embeds], [as_dict("page_links", link) for link in links]
    got = [(e["source"], e["image_url"], e["position"]) for e in embeds]
    assert got == [
        ("og_image", "https://cdn.example.org/og.jpg", 0),
        ("twitter_image", "https://cdn.example.org/base/tw.png", 1),
        ("img_src", "https://cdn.example.org/base/a.jpg", 2),
        ("img_srcset", "https://cdn.example.org/base/a-2x.jpg", 2),
        ("picture_source", "https://cdn.example.org/base/b.webp", 3),
        ("picture_source", "https://cdn.example.org/base/b2.webp", 3),
        ("img_src", "https://cdn.example.org/base/b.jpg", 4),
        ("lazy_src", "https://cdn.example.org/base/lazy.jpg", 5),
        ("link_href", "https://cdn.example.org/base/full/photo.PNG", 6),
        ("link_href", "https://upload.example.org/x.jpg", 7),
    ]
    first = embeds[2]
    assert (first["alt"], first["width"], first["height"]) == ("A", 300, None)
    # every URL column comes with its host and registered domain; a link to an image file keeps its nofollow
    assert (first["image_host"], first["image_domain"], first["nofollow"]) == ("cdn.example.org", "example.org", None)
    assert [(e["image_host"], e["nofollow"]) for e in embeds[-2:]] == [("cdn.example.org", False),
                                                                         ("upload.example.org", True)]
    # one row per target; followed once means followed; self-links (also with an empty query) and
    # js/mailto dropped; a host that is no public name has no domain
    site = {"src_url": "https://cdn.example.org/base/self.html", "src_host": "cdn.example.org",
            "src_domain": "example.org"}
    assert links == [
        {**site, "dst_url": "https://cdn.example.org/base/other.html", "dst_host": "cdn.example.org",
         "dst_domain": "example.org", "nofollow": False},
        {**site, "dst_url": "http://www1/intranet", "dst_host": "www1", "dst_domain": None, "nofollow": False},
    ]
    assert counters == Counter({"url:url_data": 1, "url:url_javascript": 1, "url:url_mailto": 1, "link:self": 2})


def test_a_utf8_body_reaches_the_parser_as_its_bytes_and_gives_the_same_rows():
    """html_markup hands Lexbor a UTF-8 body as it is (no decoded copy to encode again); any other
    encoding, and a body that is not the UTF-8 it claims, still arrive decoded, as decode_html decodes."""
    from imagerank.crawl.payload import decode_html, html_markup

    text = PAGE.replace("A  page", "Café ★ page").replace("full/photo.PNG", "fotos/café.PNG")
    body = text.encode("utf-8")
    markup, lossy = html_markup(body, "UTF-8")
    assert markup is body and not lossy
    assert html_markup(body, None) == (body, False)  # no charset: UTF-8, the last candidate
    latin = text.replace("★", "*").encode("windows-1252")
    assert html_markup(latin, "windows-1252") == (text.replace("★", "*"), False)
    # declared UTF-8, but windows-1252 bytes, with a <meta charset> that says so: the meta wins, as text
    meta = b'<meta charset="windows-1252">' + latin
    assert html_markup(meta, "utf-8") == (decode_html(meta, "utf-8")[0], False)
    assert isinstance(html_markup(meta, "utf-8")[0], str)
    assert html_markup(b"<p>\xff\xfe broken", None) == ("<p>\ufffd\ufffd broken", True)
    # any label of UTF-8 or ASCII gives the bytes; a BOM stays, as it does in the decoded text
    plain = b"<p>plain</p>"
    assert all(html_markup(plain, label)[0] is plain for label in ("US-ASCII", "utf8", "UTF_8", "cp65001"))
    with_bom = b"\xef\xbb\xbf" + body
    assert html_markup(with_bom, "utf-8")[0] is with_bom and parse_selectolax(with_bom) == parse_selectolax(text)
    # a charset whose codec fails with a plain UnicodeError (punycode) falls back like any other
    assert html_markup(body, "punycode") == (body, False)
    for parse in (parse_selectolax, parse_bs4):
        from_bytes, from_text = parse(body), parse(text)
        assert from_bytes == from_text and from_bytes.title == "Café ★ page"
        url = "https://cdn.example.org/base/self.html"
        assert page_rows(url, from_bytes, Counter()) == page_rows(url, from_text, Counter())
        assert any(link[0] == "fotos/café.PNG" for link in from_bytes.links)


def test_srcset_parsing():
    assert srcset_urls("a.jpg 1x, b.jpg 2x") == ["a.jpg", "b.jpg"]
    assert srcset_urls("a.jpg 1x,b.jpg 100w ,  c.jpg,") == ["a.jpg", "b.jpg", "c.jpg"]
    assert srcset_urls("img.php?x=1,2 2x") == ["img.php?x=1,2"]
    assert srcset_urls("  ") == []


def _rows(path, parser):
    rows = {"image_embeds": [], "page_links": [], "pages": []}
    for table, row in extract_file(str(path), ExtractOptions(parser=parser)):
        if table in rows:
            rows[table].append(tuple(sorted((k, str(v)) for k, v in row.items())))
    return rows


@pytest.mark.parametrize(
    "name", ["whirlwind/whirlwind.warc.gz", "resiliparse/warcfile.warc.gz",
             "resiliparse/clueweb-quirk.warc.gz", "ia-web-commons/link-extraction-test.warc"]
)
def test_fast_and_reference_parsers_agree_on_real_warcs(name):
    path = shared_file("warc", *name.split("/"))
    fast, reference = _rows(path, "selectolax"), _rows(path, "bs4")
    for table in ("pages", "image_embeds", "page_links"):
        assert sorted(fast[table]) == sorted(reference[table]), table
    assert fast["image_embeds"] and fast["page_links"]
