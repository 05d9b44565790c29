"""Extraction throughput on real Common Crawl HTML (make bench).

The real WARCs in ../shared/data are concatenated (whole gzip members) into a file of a few tens
of MB, then read by, in one run on this machine:
  1. a reading-only pass: FastWARC iterates records and reads every body, nothing parsed;
  2. the baseline: warcio + BeautifulSoup(lxml) + urllib's urljoin, the same extraction rules;
  3. imagerank's extraction as plain Python on one core (FastWARC + selectolax + ada-url);
  4. what one Spark task runs (extraction + writing Parquet parts), called as plain Python;
  (2-4 in turn, BENCH_EXTRACT_ROUNDS times, 3 by default: each one's fastest round is kept)
  5. the Spark job, local[1] (one core), session start excluded;
  6. imagerank's extraction of the same pages from WAT files instead (links and images as Common
     Crawl's WAT lists them: no HTML parse), plain Python on one core.
Every figure is pages per second per core, printed with its ratio to the baseline.
Also: URL resolution alone, urljoin against ada-url, on the links of those pages; and what the WAT
path misses against the WARC path on the same pages (image embeds by kind, page links).

The WAT files are made from the WARCs by webarchive-commons (org.netpreserve.commons, Maven
Central), the library whose ResourceExtractor writes Common Crawl's WAT files (Common Crawl runs its
fork, commoncrawl/ia-web-commons), recompressed record by record as Common Crawl ships them; fetched
with Maven at first use and cached beside bench_scale's crawls. Without Maven or Maven Central the
WAT part is skipped, and says so.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMAGERANK_SHARED_DATA", ROOT.parent / "shared" / "data"))
SOURCES = ["whirlwind/whirlwind.warc.gz", "resiliparse/warcfile.warc.gz", "resiliparse/clueweb-quirk.warc.gz"]
TARGET_MB = float(os.environ.get("BENCH_MB", "24"))
ROUNDS = int(os.environ.get("BENCH_EXTRACT_ROUNDS", "3"))  # turns of the baseline and imagerank's plain paths
WEBARCHIVE_COMMONS = "org.netpreserve.commons:webarchive-commons:3.0.4"
CACHE = Path("/tmp/imagerank-bench-scale") / "wat"


def build_input(path: Path, sources: list[Path] | None = None) -> None:
    """Whole files (gzip members, WARC records) concatenated to about BENCH_MB megabytes: the
    WARCs of SOURCES, or ``sources`` (their WATs) as many times as the WARCs were."""
    warcs = [(SHARED / "warc" / name).read_bytes() for name in SOURCES]
    repeats = -(-int(TARGET_MB * 1e6) // sum(len(chunk) for chunk in warcs))
    chunks = warcs if sources is None else [source.read_bytes() for source in sources]
    with open(path, "wb") as out:
        for _ in range(repeats):
            for chunk in chunks:
                out.write(chunk)


def webarchive_commons() -> str | None:
    """The classpath of webarchive-commons and its dependencies (Maven, cached), with pyspark's jars
    (its ResourceExtractor is a Hadoop Tool); None, printed why, where Maven cannot fetch it."""
    import shutil
    import subprocess

    import pyspark

    lib = CACHE / "lib"
    if not (lib / ".complete").exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            print("WAT path skipped: no mvn on PATH to fetch " + WEBARCHIVE_COMMONS)
            return None
        group, artifact, version = WEBARCHIVE_COMMONS.split(":")
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "pom.xml").write_text(
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            "<groupId>imagerank.bench</groupId><artifactId>wat</artifactId><version>1</version>"
            f"<dependencies><dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency></dependencies></project>")
        done = subprocess.run([mvn, "-B", "-q", "-f", str(CACHE / "pom.xml"),
                               "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                               f"-DoutputDirectory={lib}"], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:]
            print(f"WAT path skipped: Maven could not fetch {WEBARCHIVE_COMMONS} ({''.join(last)})")
            return None
        (lib / ".complete").write_text("")
    return f"{lib}/*:{Path(pyspark.__file__).parent / 'jars'}/*"


def wat_of(warc: Path, classpath: str) -> Path:
    """The WAT file of a WARC, as ResourceExtractor writes it, each record gzipped on its own (as
    Common Crawl's .warc.wat.gz files are); cached."""
    import subprocess

    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    out = CACHE / (warc.name.split(".warc")[0] + ".warc.wat.gz")
    if not out.exists():
        plain = out.with_suffix(".plain")
        with open(plain, "wb") as fh:
            subprocess.run(["java", "-cp", classpath, "org.archive.extract.ResourceExtractor", "-wat", str(warc)],
                           stdout=fh, stderr=subprocess.DEVNULL, check=True, timeout=600)
        partial = out.with_suffix(".partial")
        with open(plain, "rb") as source, open(partial, "wb") as target:
            writer = WARCWriter(target, gzip=True)
            for record in ArchiveIterator(source):
                writer.write_record(record)
        partial.rename(out)
        plain.unlink()
    return out


def wat_misses(warc_path: str, wat_path: str) -> tuple[Counter, Counter, int, int, int, int]:
    """What the WAT path misses against the WARC path, on the pages both give: (image embeds of
    the WARC path that the WAT path lacks, by kind; all of them by kind), then page links both ways
    (the WARC path's that the WAT path lacks, the WAT path's the WARC path lacks), then the WARC
    path's distinct pages and how many of them the WAT path lacks."""
    from imagerank.crawl.files import ExtractOptions, extract_file

    def rows(path: str) -> tuple[set, dict, set]:
        pages, embeds, links = set(), {}, set()
        for table, row in extract_file(path, ExtractOptions()):
            if table == "pages":
                pages.add(row["url"])
            elif table == "image_embeds":
                embeds.setdefault((row["page_url"], row["image_url"]), row["source"])
            elif table == "page_links":
                links.add((row["src_url"], row["dst_url"]))
        return pages, embeds, links

    warc_pages, warc_embeds, warc_links = rows(warc_path)
    wat_pages, wat_embeds, wat_links = rows(wat_path)
    both = warc_pages & wat_pages
    missed, total = Counter(), Counter()
    for (page, image), source in warc_embeds.items():
        if page in both:
            total[source] += 1
            if (page, image) not in wat_embeds:
                missed[source] += 1
    warc_links = {pair for pair in warc_links if pair[0] in both}
    wat_links = {pair for pair in wat_links if pair[0] in both}
    return (missed, total, len(warc_links - wat_links), len(wat_links - warc_links), len(warc_pages),
            len(warc_pages - wat_pages))


def reading_only(path: str) -> int:
    from fastwarc.warc import ArchiveIterator

    pages = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, parse_http=False):
            record.reader.read()
            pages += record.headers.get("WARC-Type") == "response"
    return pages


def imagerank_python(path: str) -> int:
    """The extraction alone (the task's, without the Parquet parts), rows produced and dropped."""
    from imagerank.crawl.files import ExtractOptions, extract_pages

    return sum(1 for kind, _ in extract_pages(path, ExtractOptions()) if kind == "page")


def imagerank_task(path: str, out: str) -> int:
    """What one Spark task runs (extraction + Parquet part files), called outside Spark."""
    from imagerank.crawl.extract import extract_files
    from imagerank.crawl.files import ExtractOptions

    counters = list(extract_files([(0, path, None)], out, ExtractOptions()))
    return next(c["n"] for c in counters if c["name"] == "rows:pages")


def charsets(path: str) -> Counter:
    """The HTML pages of the input by the encoding their text is decoded from (None: none decoded it)."""
    from fastwarc.warc import ArchiveIterator

    from imagerank.crawl.payload import PayloadError, content_type, decode_html, is_html, split_http

    found: Counter = Counter()
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, parse_http=False):
            if record.headers.get("WARC-Type") != "response":
                continue
            try:
                _, headers, body = split_http(record.reader.read())
                mime, charset = content_type(headers)
                if is_html(mime, body):
                    found[decode_html(body, charset)[2]] += 1
            except PayloadError:
                continue
    return found


def baseline(path: str) -> int:
    """warcio + BeautifulSoup(lxml) + urljoin, the same rules (img/srcset/lazy/og/a, self-links)."""
    from warcio.archiveiterator import ArchiveIterator

    from imagerank.crawl.html import parse_bs4
    from imagerank.crawl.payload import content_type, decode_html, is_html

    pages = rows = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type != "response":
                continue
            body = record.content_stream().read()
            headers = {k.lower(): v for k, v in (record.http_headers.headers if record.http_headers else [])}
            mime, charset = content_type(headers)
            if not is_html(mime, body):
                continue
            try:
                text, _, _ = decode_html(body, charset)
            except ValueError:
                continue
            page_url = record.rec_headers.get_header("WARC-Target-URI").strip("<>")
            raw = parse_bs4(text)
            base = urljoin(page_url, raw.base_href) if raw.base_href else page_url
            images = [urljoin(base, i.href.strip()).split("#")[0] for i in raw.images]
            links = {urljoin(base, h.strip()).split("#")[0] for h, _, _ in raw.links}
            links.discard(page_url)
            rows += len(images) + len(links)  # the rows a table would get
            pages += 1
    return pages


def spark_job(path: str, out: str) -> tuple[int, float]:
    from imagerank.crawl.extract import run_extract
    from imagerank.spark import get_spark

    spark = get_spark("bench-extract", master="local[1]")
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(10).count()  # warm the JVM
    start = time.perf_counter()
    report = run_extract(spark, path, out)
    seconds = time.perf_counter() - start
    spark.stop()
    return report["pages"], seconds


def url_resolution(path: str) -> tuple[float, float, int]:
    from imagerank.crawl.html import parse_selectolax
    from imagerank.crawl.payload import decode_html, split_http
    from imagerank.crawl.records import iter_records
    from imagerank.urls import UrlError, resolve

    pairs = []
    with open(SHARED / "warc" / "resiliparse" / "warcfile.warc.gz", "rb") as fh:
        for record in iter_records(fh, Counter(), 10 << 20):
            if record.record_type == "response":
                _, _, body = split_http(record.block)
                raw = parse_selectolax(decode_html(body, None)[0])
                pairs += [(record.target_uri, h) for h, _, _ in raw.links] + [(record.target_uri, i.href) for i in raw.images]
    pairs = pairs * 20
    start = time.perf_counter()
    for base, href in pairs:
        urljoin(base, href)
    t_urljoin = time.perf_counter() - start
    start = time.perf_counter()
    for base, href in pairs:
        try:
            resolve(base, href)
        except UrlError:
            pass
    t_ada = time.perf_counter() - start
    return len(pairs) / t_urljoin, len(pairs) / t_ada, len(pairs)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> int:
    if not (SHARED / "warc").exists():
        print(f"skipped: {SHARED}/warc is absent")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.warc.gz")
        build_input(path)
        mb = os.path.getsize(path) / 1e6
        print(f"input: {mb:.1f} MB of real Common Crawl WARC members ({', '.join(SOURCES)})")
        mix = ", ".join(f"{name or 'none (lossy)'} {n}" for name, n in charsets(path).most_common())
        print(f"its HTML pages by the encoding they decode from: {mix}")
        n_read, t_read = timed(reading_only, path)
        imagerank_python(path)  # warm-up: imports, the Public Suffix List
        # the baseline and imagerank's two plain-Python paths in turn, ROUNDS times, each one's
        # fastest round kept: this machine's speed drifts by 2x within minutes, and taking turns
        # exposes each to the same drift
        best: dict = {}
        for _ in range(ROUNDS):
            for name, fn, args in (("base", baseline, ()), ("fast", imagerank_python, ()),
                                   ("task", imagerank_task, (os.path.join(tmp, "task"),))):
                n, t = timed(fn, path, *args)
                best[name] = (n, min(t, best.get(name, (0, float("inf")))[1]))
        (n_base, t_base), (n_fast, t_fast), (n_task, t_task) = best["base"], best["fast"], best["task"]
        n_spark, t_spark = spark_job(path, os.path.join(tmp, "out"))
        base_rate = n_base / t_base
        rows = [
            ("reading only (FastWARC, bodies read)", n_read, t_read),
            ("baseline: warcio + BeautifulSoup(lxml) + urljoin", n_base, t_base),
            ("imagerank extraction, plain Python, 1 core", n_fast, t_fast),
            ("imagerank task + Parquet, plain Python, 1 core", n_task, t_task),
            ("imagerank Spark job, local[1]", n_spark, t_spark),
        ]
        print(f"{'':52s} {'pages':>6s} {'seconds':>8s} {'pages/s':>8s} {'x baseline':>10s}")
        for name, n, t in rows:
            print(f"{name:52s} {n:6d} {t:8.2f} {n / t:8.0f} {n / t / base_rate:10.1f}")
        print(f"imagerank / reading-only: {(n_fast / t_fast) / (n_read / t_read):.2f} of the reading-only rate")
        print(f"Spark job / the same task code outside Spark: {t_spark / t_task:.2f}x the time")
        classpath = webarchive_commons()
        if classpath is not None:
            wat_path = os.path.join(tmp, "bench.warc.wat.gz")
            build_input(wat_path, [wat_of(SHARED / "warc" / name, classpath) for name in SOURCES])
            imagerank_python(wat_path)  # warm-up
            n_wat, t_wat = timed(imagerank_python, wat_path)
            print(f"{'imagerank extraction from the WATs, 1 core':52s} {n_wat:6d} {t_wat:8.2f} {n_wat / t_wat:8.0f} "
                  f"{n_wat / t_wat / base_rate:10.1f}   ({os.path.getsize(wat_path) / 1e6:.1f} MB of WAT, "
                  f"{(n_wat / t_wat) / (n_fast / t_fast):.1f}x the WARC path)")
            missed, total, links_missed, links_extra, pages, pages_missed = wat_misses(path, wat_path)
            kinds = ", ".join(f"{kind} {missed[kind]}/{total[kind]}" for kind in sorted(total))
            print(f"the WAT path lacks {pages_missed} of the WARC path's {pages} distinct pages (no HTML metadata "
                  f"in their WAT records); on the pages both give, {sum(missed.values())} of its "
                  f"{sum(total.values())} distinct image embeds (by kind, missed/all: {kinds}), and {links_missed} "
                  f"of its page links ({links_extra} links the other way)")
        urljoin_rate, ada_rate, n_urls = url_resolution(path)
        print(f"URL resolution on {n_urls} real (base, href) pairs: urljoin {urljoin_rate:,.0f}/s, "
              f"imagerank.urls.resolve (ada-url) {ada_rate:,.0f}/s = {ada_rate / urljoin_rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
