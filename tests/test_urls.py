import pytest

from imagerank.urls import (UrlError, has_image_extension, host_of, image_key, normalize, registered_domain, resolve,
                            site_of)


@pytest.mark.parametrize(
    "base, href, expected",
    [
        ("https://an.wikipedia.org/wiki/X", "/static/a.png", "https://an.wikipedia.org/static/a.png"),
        ("https://an.wikipedia.org/wiki/X", "//upload.wikimedia.org/a.png", "https://upload.wikimedia.org/a.png"),
        ("http://ex.com/a/b/c.html", "../d.jpg", "http://ex.com/a/d.jpg"),
        ("http://ex.com/a", "page.html#frag", "http://ex.com/page.html"),
        ("http://ex.com/", "HTTP://EX.COM:80/X", "http://ex.com/X"),
        ("https://ex.com/", "https://Ex.com:443/y", "https://ex.com/y"),
        ("http://ex.com/", "http://bücher.de/x", "http://xn--bcher-kva.de/x"),
        ("http://ex.com/", "  /padded.png ", "http://ex.com/padded.png"),
        ("http://ex.com/", "http://ex.com:8080/keep-port", "http://ex.com:8080/keep-port"),
    ],
)
def test_resolve(base, href, expected):
    assert resolve(base, href) == expected


@pytest.mark.parametrize(
    "href, reason",
    [
        ("", "url_empty"),
        ("   ", "url_empty"),
        ("data:image/gif;base64,R0lGOD", "url_data"),
        ("JavaScript:void(0)", "url_javascript"),
        ("mailto:a@b.c", "url_mailto"),
        ("tel:+123", "url_other_scheme"),
        ("http://[::1", "url_unparseable"),
    ],
)
def test_unusable_urls_raise_with_reason(href, reason):
    with pytest.raises(UrlError) as err:
        resolve("http://ex.com/", href)
    assert err.value.reason == reason


def test_image_key_folds_wikimedia_thumbnails():
    original = "https://upload.wikimedia.org/wikipedia/commons/a/ab/Name.jpg"
    thumb = "https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/Name.jpg/640px-Name.jpg"
    assert image_key(original) == image_key(thumb) == "wikimedia:commons/Name.jpg"
    escaped = "https://upload.wikimedia.org/wikipedia/commons/thumb/0/0a/Escudo_%28G%29.svg/70px-Escudo_%28G%29.svg.png"
    assert image_key(escaped) == "wikimedia:commons/Escudo_(G).svg"
    assert image_key("https://upload.wikimedia.org/wikipedia/en/a/ab/Name.jpg") == "wikimedia:en/Name.jpg"


def test_image_key_folds_flickr_sizes():
    urls = [
        "https://live.staticflickr.com/65535/52345678901_a1b2c3d4e5_b.jpg",
        "https://live.staticflickr.com/65535/52345678901_a1b2c3d4e5.jpg",
        "https://farm1.staticflickr.com/123/52345678901_a1b2c3d4e5_m.jpg",
    ]
    assert {image_key(u) for u in urls} == {"flickr:52345678901"}


def test_image_key_is_the_url_otherwise():
    url = "https://img.example.org/photos/0001.jpg?w=2x"
    assert image_key(url) == url


def test_hosts_and_registered_domains():
    assert host_of("https://user@www.BBC.co.uk:8080/x?y") == "www.BBC.co.uk"
    assert registered_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("a.b.example.com") == "example.com"
    assert registered_domain("foo.github.io") == "foo.github.io"  # private suffix
    assert registered_domain("192.168.0.1") == "192.168.0.1"


@pytest.mark.parametrize("host", ["www1", "localhost", "www1.hollins", "co.uk", "-a.example.org", "a..b.org",
                                  "a" * 64 + ".example.org", ""])
def test_names_that_are_not_public_hosts_have_no_domain(host):
    """As in Common Crawl's host graph: one label, invalid labels, unknown top-level names, bare suffixes."""
    assert registered_domain(host) is None


def test_real_host_names_with_underscores_and_idns_have_domains():
    url = resolve("http://my_site.example.org/a", "b?q={{id}}|^%")
    assert site_of(url) == ("my_site.example.org", "example.org")
    assert site_of(normalize("http://bücher.de/")) == ("xn--bcher-kva.de", "xn--bcher-kva.de")
    assert site_of("http://example.org./x") == ("example.org.", "example.org")


def test_an_empty_query_is_the_same_page():
    assert resolve("https://a.org/company/", "/company/?") == "https://a.org/company/"
    assert resolve("https://a.org/", "x?#top") == "https://a.org/x"
    assert resolve("https://a.org/", "x?a=1") == "https://a.org/x?a=1"


def test_image_extension():
    assert has_image_extension("http://x.org/a/B.JPG?x=1")
    assert not has_image_extension("http://x.org/a.jpg/page")
    assert not has_image_extension("http://x.org/index.html")


def _ada_reference(base: str, href: str):
    """What WHATWG parsing gives, through ada-url's own Python API (no fast path)."""
    import ada_url

    if not href.strip():
        return None  # an empty href is no link (it would resolve to the page itself)
    try:
        url = ada_url.join_url(base, href.strip())
    except ValueError:
        return None
    if not url.startswith(("http:", "https:")):
        return None
    url = url.split("#", 1)[0]
    url = url[:-1] if url.endswith("?") else url
    return url, host_of(url)


def test_the_resolver_agrees_with_ada_on_every_href_of_the_real_warcs():
    from collections import Counter

    from imagerank.crawl.html import parse_selectolax
    from imagerank.crawl.payload import decode_html, split_http
    from imagerank.crawl.records import iter_records
    from imagerank.urls import Resolver
    from conftest import shared_file

    checked = 0
    for parts in (("warc", "resiliparse", "warcfile.warc.gz"), ("warc", "resiliparse", "clueweb-quirk.warc.gz"),
                  ("warc", "whirlwind", "whirlwind.warc.gz")):
        with open(shared_file(*parts), "rb") as fh:
            for record in iter_records(fh, Counter(), 10 << 20):
                if record.record_type != "response":
                    continue
                base = normalize(record.target_uri)
                raw = parse_selectolax(decode_html(split_http(record.block)[2], None)[0])
                resolver = Resolver(base)
                hrefs = [i.href for i in raw.images] + [h for h, _, _ in raw.links]
                for href in hrefs + ["/a/./b", "https://A.org", "https://x.org:443/", "/b?", "https://0x7f.1/"]:
                    try:
                        got = resolver(href)
                    except UrlError:
                        got = None
                    assert got == _ada_reference(base, href), (base, href)
                    checked += 1
    assert checked > 5000
