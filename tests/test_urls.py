import json

import pytest

from imagerank.urls import (UrlError, has_image_extension, host_of, image_key, image_match_key, is_wikimedia_curid,
                            match_key, normalize, registered_domain, resolve, site_of, wikimedia_file_page)

from conftest import shared_file


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
        # the older hosts, still in the catalog: farmN.static.flickr.com ends in static.flickr.com
        "http://farm3.static.flickr.com/2179/52345678901_a1b2c3d4e5.jpg",
        "https://static.flickr.com/65/52345678901_a1b2c3d4e5_o.jpg",
        "https://c2.staticflickr.com/8/7001/52345678901_a1b2c3d4e5_z.jpg",
    ]
    assert {image_key(u) for u in urls} == {"flickr:52345678901"}
    assert {image_match_key(u) for u in urls} == {"flickr:52345678901"}
    # a host that only ends in the same letters is not Flickr's
    other = "https://notstaticflickr.com/1/52345678901_a1b2c3d4e5.jpg"
    assert image_key(other) == other


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

    if not href.strip("".join(map(chr, range(0x21)))):  # WHATWG's trim: C0 controls and space
        return None  # an empty href is no link (it would resolve to the page itself)
    try:
        url = ada_url.join_url(base, href)  # ada trims as WHATWG says
    except ValueError:
        return None
    if not url.startswith(("http:", "https:")):
        return None
    url = url.split("#", 1)[0]
    url = url[:-1] if url.endswith("?") else url
    return url, host_of(url)


# hrefs at the edges of the resolver's fast paths (dot segments, escaped ones too; ports, hosts in
# capitals, IPv4 forms, empty queries; scheme-relative ones; characters the path keeps and the query
# encodes), checked against ada with each real page's base beside that page's own hrefs
EDGES = ["/a/./b", "https://A.org", "https://x.org:443/", "/b?", "https://0x7f.1/", "/a/%2e%2E/b", "/a/%2E/b",
         "/a%2eb/c", "https://x.org/a/%2e%2e/b", "//Upload.Example.org/x%20y.jpg", "//x.org", "//x.org/a?b=1",
         "///x.org/a", "//user@x.org/a", "//x.org:8080/a", "//xn--bcher-kva.example/a", "/p(1)!*,;=:@+&$/x",
         "/q?a='b'", "/q?x=%zz&y=(1)", "/%", "/a/b%2Fc", "https://x.org/a@b/c:d", "https://x.org?q=1",
         "/a?b?c", "//x.org/./a", "//1.2.3.4/a", "//x.org?", "//x.org/a?", "//x.org?q=a@b", "https://x.org?q=a@b.c/d",
         "//x.org./a", "/\\x.org/a", "//x.org/%2e%2e/a", "//x.org/a?b'c", "/a%zz/b", "/a/.%2e/b", "//x.org:443/a",
         "//user:pw@x.org/a", "//x.o\trg/a", "/a|b", "/a[b]", "/a^b", "/a{b}", "/a b", "\xa0/a", "\u3000/a\u3000", "/a\\b", " \t/a\n"]
# bases beside the real pages' own: an http one, one with a query, one with no path
BASES = ["http://example.org/dir/page.html", "https://example.org/dir/?q=1", "https://example.org"]


def test_the_resolver_agrees_with_ada_on_every_href_of_the_real_warcs():
    from collections import Counter

    from imagerank.crawl.html import parse_selectolax
    from imagerank.crawl.payload import decode_html, split_http
    from imagerank.crawl.records import iter_records
    from imagerank.urls import Resolver

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
                for href in hrefs + EDGES:
                    assert _resolved(resolver, href) == _ada_reference(base, href), (base, href)
                    checked += 1
    for base in BASES:
        resolver = Resolver(base)
        for href in EDGES:
            assert _resolved(resolver, href) == _ada_reference(base, href), (base, href)
    assert checked > 5000


def _resolved(resolver, href: str):
    """What the resolver gives for ``href``, None where it refuses it."""
    try:
        return resolver(href)
    except UrlError:
        return None


@pytest.mark.parametrize(
    "variants, key",
    [
        # scheme, www., host case, trailing slash
        (["https://www.Example.org/a/b/", "http://example.org/a/b", "HTTP://WWW.EXAMPLE.ORG:80/a/b//"],
         "org,example)/a/b"),
        (["https://example.org", "http://www.example.org/"], "org,example)/"),
        # query parameters in any order; tracking parameters and empty ones dropped
        (["https://ex.org/p?b=2&a=1", "https://ex.org/p?a=1&utm_source=x&b=2&UTM_Medium=y&&fbclid=z#frag"],
         "org,ex)/p?a=1&b=2"),
        # percent-escapes of unreserved characters are the characters; other escapes in upper case
        (["https://ex.org/%7euser/%41b%2f", "https://ex.org/~user/Ab%2F"], "org,ex)/~user/Ab%2F"),
        # a port that is not the default stays; IP addresses are not reversed
        (["http://10.0.0.1:8080/x/"], "10.0.0.1:8080)/x"),
        # Wikimedia: mobile host, title= form, the title escaped or not
        (["https://commons.wikimedia.org/wiki/File:A_(b),_c%27d.jpg",
          "https://commons.m.wikimedia.org/wiki/File:A_%28b%29%2C_c'd.jpg",
          "https://commons.wikimedia.org/w/index.php?title=File:A+(b),+c%27d.jpg",
          "http://commons.wikimedia.org/w/index.php?title=File%3AA%20(b)%2C%20c'd.jpg"],
         "org,wikimedia,commons)/wiki/File:A_(b),_c%27d.jpg"),
    ],
)
def test_match_key_folds_variants_of_one_url(variants, key):
    assert {match_key(v) for v in variants} == {key}


def test_match_key_keeps_what_selects_content():
    # the path's case, a parameter's value, a page's v= or t=
    assert match_key("https://ex.org/A.jpg") != match_key("https://ex.org/a.jpg")
    assert match_key("https://ex.org/p?id=1") != match_key("https://ex.org/p?id=2")
    assert match_key("https://www.youtube.com/watch?v=abc") == "com,youtube)/watch?v=abc"
    assert match_key("https://forum.ex.org/viewtopic.php?t=12") == "org,ex,forum)/viewtopic.php?t=12"
    # an edit page is not the article
    assert match_key("https://en.wikipedia.org/w/index.php?title=X&action=edit") == \
        "org,wikipedia,en)/w/index.php?action=edit&title=X"
    # a page id cannot be turned into a title without Wikimedia's database: kept as it is
    assert match_key("https://commons.wikimedia.org/w/index.php?curid=21214211") == \
        "org,wikimedia,commons)/w/index.php?curid=21214211"
    with pytest.raises(UrlError):
        match_key("mailto:a@b.c")
    with pytest.raises(UrlError):
        match_key("http://[::1")


def test_image_match_key_drops_cache_busters_of_image_files():
    same = ["https://cdn.shop.com/files/x.jpg?v=1571234567", "http://cdn.shop.com/files/x.jpg",
            "https://cdn.shop.com/files/x.jpg?ver=5.2&_=1699999&utm_campaign=a", "https://cdn.shop.com/files/x.jpg?t=1"]
    assert {image_match_key(u) for u in same} == {"com,shop,cdn)/files/x.jpg"}
    # other parameters stay (a size is another rendition); a script's v= may pick the image
    assert image_match_key("https://cdn.shop.com/files/x.jpg?width=200&v=3") == "com,shop,cdn)/files/x.jpg?width=200"
    assert image_match_key("https://ex.org/img.php?v=3") == "org,ex)/img.php?v=3"
    # identity keys are their own match keys; the crawl's image_key of a URL gives the same key
    assert image_match_key("wikimedia:commons/Name.jpg") == "wikimedia:commons/Name.jpg"
    assert image_match_key("https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/Name.jpg/64px-Name.jpg") == \
        "wikimedia:commons/Name.jpg"
    assert image_match_key(image_key(same[0])) == image_match_key(same[0])


def test_wikimedia_landing_pages_meet_through_the_file_name():
    """Openverse's Wikimedia rows name their landing page by page id (``?curid=N``); the file page
    that the crawl holds is named by the file, which the image URL gives. Real API records: the file
    page made from each image URL is the record's own descriptionurl."""
    records = []
    for name in ("wikimedia_continuation_wmc_pretty4.json", "wikimedia_continuation_wmc_raw.json"):
        for page in json.loads(shared_file("openverse", name).read_text())["query"]["pages"].values():
            records.extend(page.get("imageinfo", []))
    assert len(records) == 78
    for info in records:
        assert is_wikimedia_curid(info["descriptionshorturl"])
        page = wikimedia_file_page(image_key(info["url"]))
        assert match_key(page) == match_key(info["descriptionurl"]), info["url"]
        assert page == info["descriptionurl"]  # MediaWiki's own escaping, exactly
    assert wikimedia_file_page("wikimedia:en/Name.jpg") is None and wikimedia_file_page("flickr:1") is None
    assert not is_wikimedia_curid("https://commons.wikimedia.org/wiki/File:X.jpg")
