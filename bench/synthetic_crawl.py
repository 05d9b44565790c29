"""A synthetic crawl of N pages for the scale benchmark (bench/bench_scale.py), written fast.

The embedded sample's web (lib/imagerank/sample.py) grown to any size: registered domains (N/100)
and hosts (N/20) grow with N, a domain's host count and a host's page count are heavy-tailed
(half Zipf, half uniform), every host has its home page. Per page (counts drawn from Pareto
distributions, capped): 13 links on average, 40% to pages of its own host, 50% to pages chosen
by Zipf popularity (in-degrees follow a power law), 10% to pages of other hosts that were never
crawled, 10% of them nofollow; 3.2 image embeds (og:image included; none on 10% of pages), 60%
the page's own images (one page each), 40% from a shared pool of N images chosen by Zipf
popularity, a tenth of them Wikimedia Commons uploads (originals and thumbnails) and a tenth
Flickr photos (size variants); every embed kind the extractor knows (``sample.render_html`` writes
the HTML, relative URLs included).

Written as real crawl files: gzipped WARC response records, one gzip member per record written
with zlib (no WARC library: a record is a few string joins and one compress call; 10^5 pages take
about 7 s on one core), 5,000 pages per file, a manifest beside them, and a
catalog CSV in the sample's Openverse format (``sample.CATALOG_COLUMNS``) with N/10 rows: Flickr
(``views``) and Wikimedia (``global_usage_count``) images drawn from the pool, a third of them with
a crawled page as their landing page. Deterministic for a given N and seed.

    python bench/synthetic_crawl.py --pages 100000 --output /tmp/crawl [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import time
import uuid
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from imagerank.sample import CATALOG_COLUMNS, FLICKR_SIZES, Page, render_html  # noqa: E402

CRAWL = "CC-MAIN-2099-02"
PAGES_PER_FILE = 5000
TLDS = ["com", "org", "net", "io", "co.uk", "de", "fr", "com.au"]
EMBED_KINDS = ["img", "img", "img", "srcset", "picture", "lazy", "link"]
WARC_DATE = "2099-01-09T03:04:05Z"


def zipf_sampler(n: int, exponent: float, rng: np.random.Generator):
    """A function drawing k indices in 0..n-1 with P(i) ~ 1 / (rank(i) + 1)^exponent, ranks shuffled."""
    cdf = np.cumsum(1.0 / np.arange(1, n + 1) ** exponent)
    cdf /= cdf[-1]
    by_rank = rng.permutation(n)
    return lambda k: by_rank[np.minimum(np.searchsorted(cdf, rng.random(k)), n - 1)]


def pareto_counts(rng: np.random.Generator, k: int, scale: float, alpha: float, cap: int) -> np.ndarray:
    """k counts floor(scale * X), X Pareto(alpha) with minimum 1 (mean scale * alpha / (alpha - 1)), capped."""
    return np.minimum((scale * (1.0 + rng.pareto(alpha, k))).astype(np.int64), cap)


class Web:
    """Domains, hosts, pages and the image pool of an N-page web; links and embeds are drawn per file."""

    def __init__(self, n_pages: int, seed: int):
        self.n = n_pages
        self.rng = np.random.default_rng([seed, n_pages])
        self.py_rng = random.Random(seed * 1_000_003 + n_pages)  # for render_html's URL spellings
        rng = self.rng
        n_domains = max(n_pages // 100, 5)
        n_hosts = max(n_pages // 20, n_domains)
        self.domains = [f"site{d}.{TLDS[d % len(TLDS)]}" for d in range(n_domains)]
        # every domain has its www host; further hosts go to domains half by Zipf, half uniformly
        extra = n_hosts - n_domains
        host_domain = np.concatenate([np.arange(n_domains), self._mixed(n_domains, extra)])
        self.host_domain = host_domain
        self.hosts = [f"www.{self.domains[d]}" for d in range(n_domains)] + [
            f"h{h}.{self.domains[host_domain[h]]}" for h in range(n_domains, n_hosts)]
        # every host has its home page (pages 0..n_hosts-1); the other pages go to hosts likewise
        self.page_host = np.concatenate([np.arange(n_hosts), self._mixed(n_hosts, max(n_pages - n_hosts, 0))])
        self.page_host = self.page_host[:n_pages]
        self.host_of = self.page_host.tolist()  # plain ints: fast to index in the per-page loop
        by_host = np.argsort(self.page_host, kind="stable")
        self.host_pages = by_host
        self.host_start = np.searchsorted(self.page_host[by_host], np.arange(len(self.hosts)))
        self.host_count = np.bincount(self.page_host, minlength=len(self.hosts))
        self.popular_page = zipf_sampler(n_pages, 1.0, rng)
        self.popular_image = zipf_sampler(n_pages, 1.0, rng)  # a pool of N shared images
        self.random_host = zipf_sampler(len(self.hosts), 1.0, rng)

    def _mixed(self, n: int, k: int) -> np.ndarray:
        """k draws in 0..n-1: half by Zipf popularity (heavy tail), half uniform."""
        zipf = zipf_sampler(n, 1.0, self.rng)(k)
        return np.where(self.rng.random(k) < 0.5, zipf, self.rng.integers(0, n, k))

    def page_url(self, i: int) -> str:
        host = self.hosts[self.host_of[i]]
        return f"https://{host}/" if i < len(self.hosts) else f"https://{host}/a/{i}.html"

    def pool_image_url(self, j: int) -> str:
        """The shared pool: j % 10 == 0 Wikimedia Commons, == 1 Flickr, else a site's image CDN."""
        if j % 10 == 0:
            name = f"Picture_{j}.jpg"
            digest = hashlib.md5(name.encode()).hexdigest()
            folder = f"{digest[0]}/{digest[:2]}"
            if self.py_rng.random() < 0.3:
                return f"https://upload.wikimedia.org/wikipedia/commons/{folder}/{name}"
            width = self.py_rng.choice([120, 320, 640, 1024])
            return f"https://upload.wikimedia.org/wikipedia/commons/thumb/{folder}/{name}/{width}px-{name}"
        if j % 10 == 1:
            return f"https://live.staticflickr.com/65535/{flickr_id(j)}_a1b2c3d4e5{self.py_rng.choice(FLICKR_SIZES)}.jpg"
        return f"https://img.{self.domains[j % len(self.domains)]}/photos/{j}.jpg"

    def pages(self, first: int, last: int):
        """Pages first..last-1 with their links and embeds (numpy draws for the whole range at once)."""
        rng, k = self.rng, last - first
        n_links = pareto_counts(rng, k, 5.0, 1.5, 300)
        n_embeds = np.where(rng.random(k) < 0.1, 0, pareto_counts(rng, k, 1.5, 1.6, 50))
        total_links, total_embeds = int(n_links.sum()), int(n_embeds.sum())
        # link targets: same host (40%), popular pages (50%), never-crawled pages elsewhere (10%)
        sources = np.repeat(np.arange(first, last), n_links)
        choice = rng.random(total_links)
        src_host = self.page_host[sources]
        same_host = self.host_pages[self.host_start[src_host]
                                    + (rng.random(total_links) * self.host_count[src_host]).astype(np.int64)]
        targets = np.where(choice < 0.4, same_host, self.popular_page(total_links)).tolist()
        uncrawled = (choice >= 0.9).tolist()
        outside_host = self.random_host(total_links).tolist()
        nofollow = (rng.random(total_links) < 0.1).tolist()
        # embeds: the page's own images (60%) or the shared pool (40%); the kind of each embed
        own = (rng.random(total_embeds) < 0.6).tolist()
        pool = self.popular_image(total_embeds).tolist()
        kinds = rng.integers(0, len(EMBED_KINDS), total_embeds).tolist()
        og = (rng.random(k) < 0.4).tolist()
        n_links, n_embeds = n_links.tolist(), n_embeds.tolist()
        link_at, embed_at = 0, 0
        for offset in range(k):
            i = first + offset
            url = self.page_url(i)
            host = self.hosts[self.host_of[i]]
            page = Page(url=url, host=host, title=f"Page {i} on {host}")
            for m in range(link_at, link_at + n_links[offset]):
                if uncrawled[m]:
                    page.links.append((f"https://{self.hosts[outside_host[m]]}/x/{targets[m]}.html", nofollow[m]))
                elif targets[m] != i:
                    page.links.append((self.page_url(targets[m]), nofollow[m]))
            link_at += n_links[offset]
            domain = self.domains[self.host_domain[self.host_of[i]]]
            for e in range(embed_at, embed_at + n_embeds[offset]):
                image = (f"https://img.{domain}/own/{i}-{e - embed_at}.jpg" if own[e]
                         else self.pool_image_url(pool[e]))
                page.images.append((image, EMBED_KINDS[kinds[e]]))
            embed_at += n_embeds[offset]
            if og[offset] and page.images:
                page.images.insert(0, (page.images[0][0], "og"))
            yield page


def flickr_id(j: int) -> int:
    return 50_000_000_000 + j


def warc_member(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """One WARC record as one gzip member."""
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(block)}\r\n\r\n"
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    return deflate.compress(head.encode() + block + b"\r\n\r\n") + deflate.flush()


def response_member(url: str, html: str, record: int) -> bytes:
    body = html.encode("utf-8")
    http = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return warc_member([("WARC-Type", "response"), ("WARC-Record-ID", f"<urn:uuid:{uuid.UUID(int=record)}>"),
                        ("WARC-Date", WARC_DATE), ("WARC-Target-URI", url),
                        ("Content-Type", "application/http; msgtype=response")], http)


def write_crawl(web: Web, crawl_dir: Path) -> dict:
    """The WARC files (PAGES_PER_FILE pages each) and a manifest of their absolute paths."""
    crawl_dir.mkdir(parents=True, exist_ok=True)
    names, counts = [], {"pages": 0, "links": 0, "embeds": 0, "bytes": 0}
    for number, first in enumerate(range(0, web.n, PAGES_PER_FILE)):
        name = f"{CRAWL}-{number:05d}.warc.gz"
        info = b"software: imagerank bench/synthetic_crawl.py\r\nisPartOf: " + CRAWL.encode() + b"\r\n"
        with open(crawl_dir / name, "wb") as out:
            out.write(warc_member([("WARC-Type", "warcinfo"), ("WARC-Date", WARC_DATE),
                                   ("WARC-Record-ID", f"<urn:uuid:{uuid.UUID(int=(1 << 64) + number)}>"),
                                   ("WARC-Filename", name), ("Content-Type", "application/warc-fields")], info))
            for page in web.pages(first, min(first + PAGES_PER_FILE, web.n)):
                out.write(response_member(page.url, render_html(page, web.py_rng), counts["pages"]))
                counts["pages"] += 1
                counts["links"] += len(page.links)
                counts["embeds"] += len(page.images)
            counts["bytes"] += out.tell()
        names.append(name)
    manifest = crawl_dir.parent / "warc.paths"
    manifest.write_text("".join(f"{crawl_dir / n}\n" for n in names))
    return {"manifest": str(manifest), "files": len(names), **counts}


def write_catalog(web: Web, path: Path) -> dict:
    """N/10 Openverse rows for pool images of Flickr and Wikimedia, half each; a third land on a crawled page."""
    rng = web.rng
    candidates = np.arange(web.n)[np.arange(web.n) % 10 < 2]
    chosen = np.sort(rng.choice(candidates, size=min(max(web.n // 10, 1), len(candidates)), replace=False))
    crawled_landing = rng.random(len(chosen)) < 1 / 3
    landing_pages = rng.integers(0, web.n, len(chosen))
    metric = (rng.pareto(1.2, len(chosen)) * 100).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CATALOG_COLUMNS)
        for j, on_crawl, landing_page, value in zip(chosen.tolist(), crawled_landing, landing_pages, metric):
            if j % 10 == 0:
                provider, foreign_id = "wikimedia", f"Picture_{j}.jpg"
                digest = hashlib.md5(foreign_id.encode()).hexdigest()
                url = f"https://upload.wikimedia.org/wikipedia/commons/{digest[0]}/{digest[:2]}/{foreign_id}"
                landing = f"https://commons.wikimedia.org/wiki/File:{foreign_id}"
                meta = {"global_usage_count": int(value) // 10}
            else:
                provider, foreign_id = "flickr", str(flickr_id(j))
                url = f"https://live.staticflickr.com/65535/{foreign_id}_a1b2c3d4e5_b.jpg"
                landing = f"https://www.flickr.com/photos/someone/{foreign_id}/"
                meta = {"views": int(value), "license_url": "https://creativecommons.org/licenses/by/4.0/"}
            if on_crawl:
                landing = web.page_url(int(landing_page))
            writer.writerow([
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"{provider}:{foreign_id}")), "2099-01-01 00:00:00",
                "2099-01-01 00:00:00", "bench", provider, provider, foreign_id, landing, url, "", "1024", "768",
                "", "by", "4.0", f"{provider} creator", "", f"{provider} {foreign_id}", json.dumps(meta),
                json.dumps([{"name": "bench", "provider": provider}])])
    return {"catalog": str(path), "catalog_rows": int(len(chosen))}


def generate(n_pages: int, output: Path, seed: int = 1) -> dict:
    """Write the crawl and catalog under ``output`` unless already there; returns what was written
    (``generated.json``, written last, marks a finished crawl)."""
    done = output / "generated.json"
    if done.exists():
        return json.loads(done.read_text())
    started = time.time()
    web = Web(n_pages, seed)
    written = {"n": n_pages, "seed": seed, "domains": len(web.domains), "hosts": len(web.hosts),
               **write_crawl(web, output / "crawl" / CRAWL), **write_catalog(web, output / "catalog" / "catalog.csv")}
    written["seconds"] = round(time.time() - started, 1)
    done.write_text(json.dumps(written, indent=2))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(generate(args.pages, Path(args.output), args.seed), indent=2))


if __name__ == "__main__":
    main()
