"""A deterministic synthetic web, written as real WARC and WAT files (the embedded sample).

A few dozen hosts under a handful of registered domains, a few hundred pages whose link and
embed counts are heavy-tailed (Pareto), targets chosen by Zipf popularity so in-degrees follow a
power law, images shared across pages and hosts, Wikimedia thumbnails and Flickr size variants of
one image, nofollow links, every embed kind the extractor knows, a link farm (one domain whose
pages link only to each other and all show one image), and a few broken records: a non-HTML
response, a binary body labelled text/html, a corrupt gzip member, a truncated record. Beside it,
a small catalog in Openverse's CSV format (``catalog_rows``).

    python -m imagerank.sample --output data/sample
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CRAWL = "CC-MAIN-2099-01"
DOMAINS = {  # registered domain -> host prefixes
    "openmuseum.org": ["www", "collections", "blog"],
    "photo-forum.net": ["www", "gallery", "m", "forum"],
    "citynews.co.uk": ["www", "sport", "culture"],
    "hobbyist.example.com": ["www", "wiki"],
    "travelnotes.io": ["www", "eu", "us", "asia"],
    "bigfarm-seo.biz": ["www", "a", "b", "c", "d", "e", "f", "g"],
}
FARM_DOMAIN = "bigfarm-seo.biz"
IMAGE_HOSTS = {
    "openmuseum.org": "img.openmuseum.org",
    "photo-forum.net": "cdn.photo-forum.net",
    "citynews.co.uk": "static.citynews.co.uk",
    "travelnotes.io": "media.travelnotes.io",
}
WIKIMEDIA_FILES = ["Mona_Lisa.jpg", "Starry_Night.jpg", "Great_Wave.jpg", "Water_Lilies.jpg", "The_Scream.jpg"]
FLICKR_IDS = [52345678901, 52345678902, 52345678903, 52345678904]
FLICKR_SIZES = ["", "_b", "_m", "_z", "_w"]


@dataclass
class Page:
    url: str
    host: str
    title: str
    links: list = field(default_factory=list)  # (url, nofollow)
    images: list = field(default_factory=list)  # (url, kind)


def _wikimedia_url(rng: random.Random, name: str) -> str:
    import hashlib

    digest = hashlib.md5(name.encode()).hexdigest()
    original = f"https://upload.wikimedia.org/wikipedia/commons/{digest[0]}/{digest[:2]}/{name}"
    if rng.random() < 0.3:
        return original
    width = rng.choice([120, 320, 640, 1024])
    return f"https://upload.wikimedia.org/wikipedia/commons/thumb/{digest[0]}/{digest[:2]}/{name}/{width}px-{name}"


def _flickr_url(rng: random.Random, photo_id: int) -> str:
    return f"https://live.staticflickr.com/65535/{photo_id}_a1b2c3d4e5{rng.choice(FLICKR_SIZES)}.jpg"


def build_web(seed: int = 7, n_pages: int = 300, n_images: int = 120) -> list[Page]:
    rng = random.Random(seed)
    hosts = [f"{prefix}.{domain}" for domain, prefixes in DOMAINS.items() for prefix in prefixes]
    pages = []
    for i in range(n_pages):
        host = hosts[min(int(rng.paretovariate(1.2)) - 1, len(hosts) - 1)] if rng.random() < 0.5 else rng.choice(hosts)
        path = "/" if i < len(hosts) and host == hosts[i] else f"/article/{i}.html"
        pages.append(Page(url=f"https://{host}{path}", host=host, title=f"Page {i} on {host}"))
    # Zipf popularity for link targets and images.
    page_weight = [1.0 / (rank + 1) ** 1.1 for rank in range(n_pages)]
    order = list(range(n_pages))
    rng.shuffle(order)
    weights = [0.0] * n_pages
    for rank, idx in enumerate(order):
        weights[idx] = page_weight[rank]
    images = []
    for j in range(n_images):
        domain = rng.choice(list(IMAGE_HOSTS))
        ext = rng.choice(["jpg", "jpg", "png", "webp"])
        images.append(f"https://{IMAGE_HOSTS[domain]}/photos/{j:04d}.{ext}")
    image_weight = [1.0 / (rank + 1) ** 1.0 for rank in range(n_images)]
    # The SEO farm is a link farm: its pages link only to each other, and no real site links to it.
    in_farm = [page.host.endswith(FARM_DOMAIN) for page in pages]
    farm_weights = [w if farm else 0.0 for w, farm in zip(weights, in_farm)]
    web_weights = [0.0 if farm else w for w, farm in zip(weights, in_farm)]
    for page, farm in zip(pages, in_farm):
        n_links = min(int(rng.paretovariate(1.3) * 2), 60)
        for target in rng.choices(pages, weights=farm_weights if farm else web_weights, k=n_links):
            if target is not page:
                page.links.append((target.url, rng.random() < 0.1))
        n_embeds = min(int(rng.paretovariate(1.4)), 25)
        for url in rng.choices(images, weights=image_weight, k=n_embeds):
            page.images.append((url, rng.choice(["img", "img", "img", "srcset", "picture", "lazy", "link"])))
        if rng.random() < 0.25:
            page.images.append((_wikimedia_url(rng, rng.choice(WIKIMEDIA_FILES)), "img"))
        if rng.random() < 0.2:
            page.images.append((_flickr_url(rng, rng.choice(FLICKR_IDS)), "img"))
        if rng.random() < 0.4 and page.images:
            page.images.insert(0, (page.images[0][0], "og"))
    # One domain farms a single image across all its hosts' pages (authority manipulation).
    farm = [p for p in pages if p.host.endswith(FARM_DOMAIN)]
    for page in farm:
        page.images.append((images[-1], "img"))
    return pages


def _relative(page: Page, url: str, rng: random.Random) -> str:
    """Write the URL as a page author might: absolute, protocol-relative, or root-relative."""
    if url.startswith(f"https://{page.host}/") and rng.random() < 0.5:
        return url[len(f"https://{page.host}") :]
    if rng.random() < 0.2:
        return url[len("https:") :]
    return url


def render_html(page: Page, rng: random.Random) -> str:
    head = [f"<title>{page.title}</title>"]
    body = []
    for url, kind in page.images:
        src = _relative(page, url, rng)
        alt = f"photo {url.rsplit('/', 1)[-1]}"
        if kind == "og":
            head.append(f'<meta property="og:image" content="{url}">')
        elif kind == "img":
            body.append(f'<img src="{src}" alt="{alt}" width="{rng.choice([64, 300, 800])}" height="200">')
        elif kind == "srcset":
            body.append(f'<img src="{src}" srcset="{src} 1x, {src}?w=2x 2x" alt="{alt}">')
        elif kind == "picture":
            body.append(f'<picture><source srcset="{src}" type="image/webp"><img src="{src}" alt="{alt}"></picture>')
        elif kind == "lazy":
            body.append(f'<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="{src}" alt="{alt}">')
        elif kind == "link":
            body.append(f'<a href="{src}">full size</a>')
    for url, nofollow in page.links:
        rel = ' rel="nofollow"' if nofollow else ""
        body.append(f'<p><a href="{_relative(page, url, rng)}#section"{rel}>{url}</a></p>')
    body.append('<a href="javascript:void(0)">menu</a><a href="mailto:editor@example.org">mail</a>')
    return "<!DOCTYPE html><html><head>" + "".join(head) + "</head><body>" + "\n".join(body) + "</body></html>"


def wat_json(page: Page, filename: str, offset: int) -> dict:
    """The WAT metadata ia-web-commons would write for the page (the fields imagerank reads)."""
    metas = [{"property": "og:image", "content": url} for url, kind in page.images if kind == "og"]
    links = []
    for url, kind in page.images:
        if kind in ("img", "srcset", "picture"):
            links.append({"path": "IMG@/src", "url": url, "alt": f"photo {url.rsplit('/', 1)[-1]}"})
        elif kind == "link":
            links.append({"path": "A@/href", "url": url, "text": "full size"})
    for url, nofollow in page.links:
        link = {"path": "A@/href", "url": url + "#section", "text": url}
        if nofollow:
            link["rel"] = "nofollow"
        links.append(link)
    return {
        "Container": {"Filename": filename, "Compressed": True, "Offset": str(offset)},
        "Envelope": {
            "Format": "WARC",
            "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": page.url, "WARC-Date": "2099-01-02T03:04:05Z"},
            "Payload-Metadata": {
                "Actual-Content-Type": "application/http; msgtype=response",
                "HTTP-Response-Metadata": {
                    "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
                    "HTML-Metadata": {"Head": {"Title": page.title, "Metas": metas}, "Links": links},
                },
            },
        },
    }


def _response(writer: WARCWriter, url: str, body: bytes, ctype: str, date: datetime) -> None:
    http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=http,
        warc_headers_dict={"WARC-Date": date.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )
    writer.write_record(record)


def _corrupt_member(data: bytes, index: int) -> bytes:
    """Damage the deflate stream of the index-th gzip member (its header stays intact)."""
    pos = 0
    for _ in range(index):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[pos:])
        pos = len(data) - len(inflater.unused_data)
    damaged = bytearray(data)
    for k in range(pos + 40, pos + 80):
        damaged[k] ^= 0x5A
    return bytes(damaged)


def write_sample(output: str, seed: int = 7) -> dict:
    """Write the sample crawl under ``output``; returns what was written."""
    rng = random.Random(seed + 1)
    pages = build_web(seed)
    crawl_dir = os.path.join(output, "crawl", CRAWL)
    os.makedirs(crawl_dir, exist_ok=True)
    start = datetime(2099, 1, 2, tzinfo=timezone.utc)
    n_files = 3
    shards = [pages[i::n_files] for i in range(n_files)]
    names = []
    for shard_no, shard in enumerate(shards[:-1]):
        name = f"{CRAWL}-{shard_no:05d}.warc.gz"
        buffer = io.BytesIO()
        writer = WARCWriter(buffer, gzip=True)
        writer.write_record(writer.create_warcinfo_record(name, {"software": "imagerank.sample", "isPartOf": CRAWL}))
        for k, page in enumerate(shard):
            _response(writer, page.url, render_html(page, rng).encode("utf-8"), "text/html; charset=utf-8",
                      start + timedelta(minutes=k))
        # broken records: a JPEG, a binary body labelled HTML, then a corrupt member
        _response(writer, f"https://img.openmuseum.org/raw/{shard_no}.jpg", b"\xff\xd8\xff\xe0" + bytes(200), "image/jpeg", start)
        _response(writer, f"https://www.openmuseum.org/broken-{shard_no}.html", b"\x00\x01\x02binary" * 50, "text/html", start)
        data = buffer.getvalue()
        if shard_no == 0:
            data = _corrupt_member(data, 3)  # warcinfo is member 0: page 3 of this shard is lost
        else:
            data = data[: len(data) - 150]  # the file ends inside its last record
        with open(os.path.join(crawl_dir, name), "wb") as fh:
            fh.write(data)
        names.append(name)
    # The last shard as a WAT file.
    name = f"{CRAWL}-{n_files - 1:05d}.warc.wat.gz"
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    writer.write_record(writer.create_warcinfo_record(name, {"software": "imagerank.sample"}))
    for k, page in enumerate(shards[-1]):
        payload = json.dumps(wat_json(page, name.replace(".wat", ""), k * 1000)).encode("utf-8")
        record = writer.create_warc_record(
            page.url, "metadata", payload=io.BytesIO(payload),
            warc_headers_dict={"Content-Type": "application/json", "WARC-Date": "2099-01-02T03:04:05Z"},
        )
        writer.write_record(record)
    with open(os.path.join(crawl_dir, name), "wb") as fh:
        fh.write(buffer.getvalue())
    names.append(name)
    manifest = os.path.join(output, "crawl", "warc.paths.gz")
    with gzip.open(manifest, "wt") as fh:
        fh.write("".join(f"{CRAWL}/{n}\n" for n in names))
    return {"manifest": manifest, "files": names, "pages": len(pages), "catalog": write_catalog(output, seed),
            "demo_catalog": write_demo_catalog(output, seed), "trusted_sources": write_trusted_sources(output)}


TRUSTED_SOURCES = {  # TrustRank's seeds for the sample web: its museum (wikimedia.org has no crawled page)
    "openmuseum": ["openmuseum.org"],
    "wikimedia": ["wikimedia.org"],
}


def write_trusted_sources(output: str) -> str:
    """The sample's trusted-sources file (the shape of the package's trusted_sources.yaml); returns its path."""
    path = os.path.join(output, "trusted_sources.yaml")
    os.makedirs(output, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# TrustRank's seeds for the sample web: provider -> registered domains\n")
        fh.writelines(f"{provider}: [{', '.join(domains)}]\n" for provider, domains in TRUSTED_SOURCES.items())
    return path


CATALOG_COLUMNS = ["identifier", "created_on", "updated_on", "ingestion_type", "provider", "source",
                   "foreign_identifier", "foreign_landing_url", "url", "thumbnail", "width", "height", "filesize",
                   "license", "license_version", "creator", "creator_url", "title", "meta_data", "tags"]


def catalog_rows(seed: int = 7) -> list[dict]:
    """Openverse-schema image rows for the sample web: Flickr (views) and Wikimedia Commons
    (global_usage_count) publish a metric, a museum does not; most images are embedded by the
    sample crawl (as other size variants), a few are not, and two rows are bad on purpose."""
    import hashlib
    import uuid

    rng = random.Random(seed + 2)
    web = build_web(seed)
    museum_images = sorted({url for page in web for url, _ in page.images
                            if url.startswith("https://img.openmuseum.org/")})
    landing_pages = {}
    for page in web:
        for url, _ in page.images:
            if url in museum_images and page.host.endswith("openmuseum.org"):
                landing_pages.setdefault(url, page.url)

    def row(provider: str, foreign_id: str, url: str, landing: str, meta: dict) -> dict:
        return {
            "identifier": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{provider}:{foreign_id}")),
            "created_on": "2099-01-01 00:00:00", "updated_on": "2099-01-01 00:00:00", "ingestion_type": "sample",
            "provider": provider, "source": provider, "foreign_identifier": foreign_id,
            "foreign_landing_url": landing, "url": url, "thumbnail": "", "width": "1024", "height": "768",
            "filesize": "", "license": "by", "license_version": "4.0", "creator": f"{provider} creator",
            "creator_url": "", "title": f"{provider} {foreign_id}", "meta_data": json.dumps(meta),
            "tags": json.dumps([{"name": "sample", "provider": provider}]),
        }

    rows = []
    for photo_id in FLICKR_IDS + [52345678999]:  # the last one is not on any crawled page
        url = f"https://live.staticflickr.com/65535/{photo_id}_a1b2c3d4e5_b.jpg"
        rows.append(row("flickr", str(photo_id), url, f"https://www.flickr.com/photos/someone/{photo_id}/",
                        {"views": rng.randint(10, 50_000), "license_url": "https://creativecommons.org/licenses/by/4.0/"}))
    for name in WIKIMEDIA_FILES + ["Unused_Sketch.png"]:
        digest = hashlib.md5(name.encode()).hexdigest()
        url = f"https://upload.wikimedia.org/wikipedia/commons/{digest[0]}/{digest[:2]}/{name}"
        rows.append(row("wikimedia", name, url, f"https://commons.wikimedia.org/wiki/File:{name}",
                        {"global_usage_count": rng.randint(0, 400)}))
    for url in museum_images[:12]:
        number = url.rsplit("/", 1)[-1].split(".")[0]
        rows.append(row("openmuseum", number, url, landing_pages.get(url, "https://www.openmuseum.org/"), {}))
    rows.append(row("openmuseum", "not-crawled", "https://img.openmuseum.org/photos/9999.jpg",
                    "https://www.openmuseum.org/collection/9999", {}))
    broken = row("openmuseum", "broken", "https://img.openmuseum.org/photos/broken.jpg", "", {})
    broken["provider"] = ""  # a row without a provider: counted, not published
    rows.append(broken)
    rows.append(dict(rows[0], updated_on="2098-12-31 00:00:00"))  # an older copy of the first row
    return rows


def write_catalog(output: str, seed: int = 7) -> str:
    """The sample catalog as an Openverse sample-data CSV; returns its path."""
    return _write_catalog_csv(os.path.join(output, "catalog", "catalog.csv"), catalog_rows(seed))


def _write_catalog_csv(path: str, rows: list[dict]) -> str:
    import csv

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CATALOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


# The demo catalog's generated rows: providers that publish a metric, on their own raw scales (the
# scales Openverse's standardization exists for), and providers that publish none. A row's metric
# follows the subject its title, tags and description name (APPEAL), times log-normal noise: a
# relation planted in the text, for the popularity model and the 2020 text baseline to find.
DEMO_PROVIDERS = {  # provider -> (meta_data key or None, typical value of an average subject, rows)
    "flickr": ("views", 4000.0, 40),
    "wikimedia": ("global_usage_count", 12.0, 40),
    "stocksnap": ("downloads_raw", 900.0, 30),
    "nappy": ("downloads", 250.0, 30),
    "brooklynmuseum": (None, 0.0, 25),
    "openmuseum": (None, 0.0, 15),
}
APPEAL = {"sunset": 4.0, "kitten": 3.5, "waterfall": 2.5, "mountain": 2.0, "portrait": 1.5, "street": 1.0,
          "bridge": 0.8, "invoice": 0.25, "diagram": 0.2, "parking lot": 0.15}
DEMO_NOTE = ("Generated sample: the crawl, the catalog and every metric are synthetic (imagerank.sample), with a "
             "relation between an image's subject and its metric planted on purpose. Its figures show that each "
             "part runs and what the report holds; they say nothing about real providers.")


def demo_catalog_rows(seed: int = 7) -> list[dict]:
    """The sample catalog (``catalog_rows``) and generated rows for the demo's popularity model:
    enough providers with a metric, and rows each, to leave one provider out, and providers
    without one for predict_popularity to fill (``DEMO_PROVIDERS``, ``APPEAL``)."""
    import uuid

    rng = random.Random(seed + 3)
    rows = catalog_rows(seed)
    template = dict(rows[0])
    subjects = sorted(APPEAL)
    for provider, (metric, typical, n) in DEMO_PROVIDERS.items():
        for k in range(n):
            subject = subjects[rng.randrange(len(subjects))]
            foreign_id = f"demo-{k:03d}"
            meta = {}
            if metric:
                meta[metric] = max(0, round(typical * APPEAL[subject] * rng.lognormvariate(0.0, 0.5)))
            rows.append(dict(
                template, identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{provider}:{foreign_id}")),
                provider=provider, source=provider, foreign_identifier=foreign_id,
                url=f"https://images.{provider}.example/{foreign_id}.jpg",
                foreign_landing_url=f"https://www.{provider}.example/item/{foreign_id}",
                creator=f"{provider} creator", title=f"{subject.capitalize()}, {provider} {foreign_id}",
                meta_data=json.dumps(meta), tags=json.dumps([{"name": subject}, {"name": "sample"}])))
    return rows


def write_demo_catalog(output: str, seed: int = 7) -> str:
    """The demo catalog (``demo_catalog_rows``) beside the sample catalog; returns its path."""
    return _write_catalog_csv(os.path.join(output, "catalog", "demo.csv"), demo_catalog_rows(seed))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic sample crawl")
    parser.add_argument("--output", default="data/sample")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(write_sample(args.output, args.seed), indent=2))


if __name__ == "__main__":
    main()
