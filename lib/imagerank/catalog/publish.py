"""The published table: one row per catalog image with its authority, popularity and score.

Catalog images meet the crawl through match keys (``imagerank.urls``; docs/design.md, "Matching
the catalog"): the image's ``url`` becomes its ``image_match_key`` (the ``image_key`` where that
is an identity, ``wikimedia:`` or ``flickr:``, so a Flickr size variant or a Wikimedia thumbnail
meets its original; else the SURT-like ``match_key``, so http/https and cache-busting variants
meet) and is compared with the same key of ``image_authority.image_key``; ``foreign_landing_url``
meets ``page_rank.url`` by ``match_key`` on both sides (a Commons ``?curid=N`` landing page by the
file page the image URL names); the registered domains of both meet ``domain_rank``. Several crawl
rows sharing a key count as one: the largest authority, PageRank and domain authority among them.
Which rule matched is kept per row (``image_match``, ``landing_match``) and counted per provider in
``coverage``. The score is defined in docs/design.md ("The published score").

Written for a full crawl's scale (~3e9 pages, ~5e8 catalog rows): no collect, no step whose rows
all go to one task. The catalog's domains are few (providers' sites and file hosts): they are
counted once, and where there are at most ``MAX_BROADCAST_DOMAINS`` they are reduced to their
``domain_rank`` rows and broadcast, so rows sharing a domain (every Flickr row) never meet in one
task, and the page and image tables are cut to them by a broadcast join before any Python runs on
them; a catalog with more domains gets shuffle joins, where adaptive execution splits the
partition of a domain that holds many rows (its skew join) and may still broadcast what it measures
small. The tables are cut to the catalog's keys (a semi-join) before
the join with the catalog.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.catalog.provider_authority import provider_authority, showing
from imagerank import postgres
from imagerank.catalog.read import DEFAULT_TABLE, PUBLISH_COLUMNS, read_catalog
from imagerank.catalog.saturation import saturable, saturate_columns
from imagerank.graph.cc_webgraph import read_ranks
from imagerank.commit import now_iso
from imagerank.postgres import PublishTarget, is_postgres
from imagerank.progress import say
from imagerank.stage import Stage, StageError
from imagerank.urls import (IDENTITY_KEY_PREFIXES, UrlError, host_of, icann_domain, image_key, image_match_key,
                            is_wikimedia_curid,
                            match_key, normalize, registered_domain, wikimedia_file_page)

SITE_WEIGHT = 0.5  # how much a site's standing alone lifts the score (docs/design.md)
MIN_MATCH_FRACTION = 0.01  # of catalog rows with a popularity row, under which publish warns
MIN_CRAWL_MATCH_FRACTION = 0.001  # of catalog rows matched to a crawl image or page, under which publish warns
KEYS_SCHEMA = ("identifier string, image_key string, image_match_key string, landing_url string, landing_key string, "
               "landing_from_file boolean, file_domain string, landing_domain string, landing_host string, "
               "landing_cc_domain string, bad_url boolean, bad_landing_url boolean")
# Match rules, as written in image_match / landing_match and counted in coverage
EXACT, MATCH_KEY, WIKIMEDIA_FILE = "exact", "match_key", "wikimedia_file"


def _normalized(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
        return None
    try:
        return normalize(str(value).strip())
    except UrlError:
        return None


def _or_none(function: Callable[[str], str]) -> Callable[[str | None], str | None]:
    def apply(value):
        if not isinstance(value, str):  # None, or pandas' NaN for a missing string
            return None
        try:
            return function(value)
        except UrlError:
            return None
    return apply


def _landing_key(landing_url: str | None, key: str | None) -> tuple[str | None, bool]:
    """The landing page's match key, and whether it was made from the file name: a Commons page
    named by page id (``?curid=N``, Openverse's Wikimedia landing pages) is the file page of the
    row's Commons image, whose title the pipeline knows (the page id it does not)."""
    if landing_url is None:
        return None, False
    page = wikimedia_file_page(key) if key else None
    if page and is_wikimedia_curid(landing_url):
        return match_key(page), True
    return _or_none(match_key)(landing_url), False


def _domain(url: str | None) -> str | None:
    return registered_domain(host_of(url)) if url else None


def _keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    # Python lists, not Series.map: pandas turns a missing string into NaN (a float, and truthy)
    for frame in batches:
        image_urls = [_normalized(v) for v in frame["url"]]
        landing_urls = [_normalized(v) for v in frame["foreign_landing_url"]]
        image_keys = [image_key(u) if u else None for u in image_urls]
        landing = [_landing_key(u, k) for u, k in zip(landing_urls, image_keys)]
        yield pd.DataFrame({
            "identifier": frame["identifier"],
            "image_key": pd.Series(image_keys, index=frame.index, dtype=object),
            "image_match_key": pd.Series([_or_none(image_match_key)(k) for k in image_keys], index=frame.index,
                                         dtype=object),
            "landing_url": pd.Series(landing_urls, index=frame.index, dtype=object),
            "landing_key": pd.Series([k for k, _ in landing], index=frame.index, dtype=object),
            "landing_from_file": pd.Series([f for _, f in landing], index=frame.index, dtype=bool),
            "file_domain": pd.Series([_domain(u) for u in image_urls], index=frame.index, dtype=object),
            "landing_domain": pd.Series([_domain(u) for u in landing_urls], index=frame.index, dtype=object),
            "landing_host": pd.Series([host_of(u) if u else None for u in landing_urls], index=frame.index,
                                      dtype=object),
            "landing_cc_domain": pd.Series([icann_domain(host_of(u)) if u else None for u in landing_urls],
                                           index=frame.index, dtype=object),
            "bad_url": pd.Series([u is None for u in image_urls], index=frame.index) & frame["url"].notna(),
            "bad_landing_url": pd.Series([u is None for u in landing_urls], index=frame.index)
            & frame["foreign_landing_url"].notna(),
        })


def catalog_keys(catalog: DataFrame) -> DataFrame:
    """identifier and the names it meets the crawl by (KEYS_SCHEMA), from url and foreign_landing_url."""
    return catalog.select("identifier", "url", "foreign_landing_url").mapInPandas(_keys, KEYS_SCHEMA)


def _keyed(column: str, function: Callable[[str], str]) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function adding ``key`` = function(column) and dropping rows without one."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        apply = _or_none(function)
        for frame in batches:
            frame.insert(0, "key", frame[column].map(apply))
            yield frame[frame["key"].notna()]
    return run


def _url_image_match_key(key: str) -> str:
    """image_match_key of a crawl image_key that is a URL (normalized already, not an identity)."""
    return match_key(key, image=True)


def _key_hash(key: str, spread_nulls_by: str | None = None) -> F.Column:
    """64-bit hash of a match key, the first of the two join columns (hash, key).

    Match keys are SURT strings, whose first bytes repeat across a whole site
    (``org,wikimedia,commons)/wiki/File:...``); Spark's sort-merge join sorts on the join columns
    with an 8-byte prefix of the first, which for such strings almost never decides, so every
    comparison reads on into the strings. A leading xxhash64 makes the prefix decide (the key is
    still compared, so hash collisions, likely among 3e9 keys, cannot join wrong rows). Where the
    key is null the row can match nothing; its hash is then taken from ``spread_nulls_by`` (a unique
    column), so that the catalog's rows without a key do not all hash, and shuffle, to one task.
    """
    hashed = F.xxhash64(key)
    if spread_nulls_by is None:
        return hashed
    return F.when(F.col(key).isNotNull(), hashed).otherwise(F.xxhash64(spread_nulls_by))


def _wanted(keys: DataFrame, column: str) -> DataFrame:
    """The distinct non-null values of a catalog key column, as key_hash, key (made distinct on both,
    so that the shuffle that dedups them is the one the semi-join needs)."""
    return (keys.select(F.col(column).alias("key")).where(F.col("key").isNotNull())
            .select(_key_hash("key").alias("key_hash"), "key").distinct())


# the catalog's distinct domains broadcast to every task at most this many (about 100 bytes each)
MAX_BROADCAST_DOMAINS = 1_000_000
# Shuffle bytes per row of publish's largest exchange, for Stage.size_shuffles, per input: a catalog
# row's keys (123 bytes measured on bench_scale's catalog at 10^5 pages) and a rank row (3.0: the
# crawl tables are cut to the catalog's domains before they are shuffled), taken at 160 and 4
SHUFFLE_BYTES_PER_ROW = {"catalog": 160, "rank": 4}


def _small(frame: DataFrame, broadcast: bool) -> DataFrame:
    return F.broadcast(frame) if broadcast else frame


def _catalog_domains(keys: DataFrame) -> DataFrame:
    """The registered domains of the catalog's files and landing pages, distinct."""
    return (keys.select(F.col("file_domain").alias("domain"))
            .unionByName(keys.select(F.col("landing_domain").alias("domain")))
            .where(F.col("domain").isNotNull()).distinct())


def _in_catalog_domains(table: DataFrame, column: str, domains: DataFrame, broadcast: bool) -> DataFrame:
    """Rows of a crawl table whose domain is one of the catalog's (broadcast where they are few),
    and those without a domain (a URL Spark's parser could not read)."""
    wanted = domains.select(F.col("domain").alias(column), F.lit(True).alias("_wanted"))
    return (table.join(_small(wanted, broadcast), on=column, how="left")
            .where(F.col("_wanted") | F.col(column).isNull()).drop("_wanted"))


def crawl_images_by_key(keys: DataFrame, images: DataFrame, broadcast: bool = True) -> DataFrame:
    """image_authority reduced to the catalog's image match keys: key_hash, key, authority_raw,
    trust_raw, image_domain_authority (the largest among crawl images sharing the key) and
    crawl_image_key (the image_key that gave authority_raw)."""
    identity = F.col("image_key").startswith(IDENTITY_KEY_PREFIXES[0])
    for prefix in IDENTITY_KEY_PREFIXES[1:]:
        identity = identity | F.col("image_key").startswith(prefix)
    columns = ["image_key", "authority", "trust", "domain_authority", "crawls"]
    # Wikimedia and Flickr keys are their own match keys: no Python for them
    by_identity = images.where(identity).select(F.col("image_key").alias("key"), *columns)
    file_domains = keys.select(F.col("file_domain").alias("domain")).where(F.col("domain").isNotNull()).distinct()
    by_url = (_in_catalog_domains(images.where(~identity), "image_domain", file_domains, broadcast).select(*columns)
              .mapInPandas(_keyed("image_key", _url_image_match_key),
                           "key string, image_key string, authority double, trust double, domain_authority double, "
                           "crawls array<string>"))
    return (
        by_identity.unionByName(by_url)
        .withColumn("key_hash", _key_hash("key"))
        .join(_wanted(keys, "image_match_key"), on=["key_hash", "key"], how="left_semi")
        .groupBy("key_hash", "key")
        .agg(F.max("authority").alias("authority_raw"),
             F.max("trust").alias("trust_raw"),
             F.max("domain_authority").alias("image_domain_authority"),
             F.max_by("image_key", F.struct("authority", "image_key")).alias("crawl_image_key"),
             F.max_by("crawls", F.struct("authority", "image_key")).alias("image_crawls"))
    )


def crawl_pages_by_key(keys: DataFrame, pages: DataFrame, broadcast: bool = True) -> DataFrame:
    """page_rank reduced to the catalog's landing page keys: key_hash, key, landing_page_rank (the
    largest PageRank among crawl pages sharing the key), landing_crawl_url (its page) and
    landing_crawl (the crawl that page's fetch came from)."""
    landing_domains = keys.select(F.col("landing_domain").alias("domain")).where(
        F.col("domain").isNotNull()).distinct()
    return (
        _in_catalog_domains(pages.select("url", "domain", "pagerank", "crawl"), "domain", landing_domains, broadcast)
        .select("url", "pagerank", "crawl")
        .mapInPandas(_keyed("url", match_key), "key string, url string, pagerank double, crawl string")
        .withColumn("key_hash", _key_hash("key"))
        .join(_wanted(keys, "landing_key"), on=["key_hash", "key"], how="left_semi")
        .groupBy("key_hash", "key")
        .agg(F.max("pagerank").alias("landing_page_rank"),
             F.max_by("url", F.struct("pagerank", "url")).alias("landing_crawl_url"),
             F.max_by("crawl", F.struct("pagerank", "url")).alias("landing_crawl"))
    )


def catalog_domain_ranks(keys: DataFrame, domains: DataFrame, broadcast: bool = True) -> DataFrame:
    """domain, domain_pagerank for the catalog's domains (files' and landing pages')."""
    return (domains.select("domain", F.col("pagerank").alias("domain_pagerank"))
            .join(_small(_catalog_domains(keys), broadcast), on="domain", how="inner"))


def published_table(catalog: DataFrame, keys: DataFrame, images: DataFrame, pages: DataFrame, domains: DataFrame,
                    popularity: DataFrame) -> DataFrame:
    """The published columns before saturation, scoring and stamping (see run_publish)."""
    broadcast = _catalog_domains(keys).count() <= MAX_BROADCAST_DOMAINS  # one small job; keys are cached
    site = catalog_domain_ranks(keys, domains, broadcast)
    image_rank = crawl_images_by_key(keys, images, broadcast).withColumnRenamed("key_hash", "image_hash") \
        .withColumnRenamed("key", "image_match_key")
    page_rank = crawl_pages_by_key(keys, pages, broadcast).withColumnRenamed("key_hash", "landing_hash") \
        .withColumnRenamed("key", "landing_key")
    image_matched = F.col("crawl_image_key").isNotNull()
    landing_matched = F.col("landing_crawl_url").isNotNull()
    return (
        catalog.select("identifier", "provider")
        .join(keys, on="identifier", how="left")
        .withColumn("image_hash", _key_hash("image_match_key", spread_nulls_by="identifier"))
        .withColumn("landing_hash", _key_hash("landing_key", spread_nulls_by="identifier"))
        .join(image_rank, on=["image_hash", "image_match_key"], how="left")
        .join(page_rank, on=["landing_hash", "landing_key"], how="left")
        .join(_small(site.select(F.col("domain").alias("landing_domain"),
                                 F.col("domain_pagerank").alias("landing_domain_rank")), broadcast),
              on="landing_domain", how="left")
        .join(_small(site.select(F.col("domain").alias("file_domain"),
                                 F.col("domain_pagerank").alias("file_domain_rank")), broadcast),
              on="file_domain", how="left")
        .join(popularity.select("identifier", F.col("standardized").alias("popularity"),
                                F.lit(True).alias("popularity_row")), on="identifier", how="left")
        .select(
            "identifier", "provider", "image_key", "authority_raw", "trust_raw", "landing_page_rank",
            "crawl_image_key", "landing_domain", "landing_host", "landing_cc_domain",
            F.when(image_matched & (F.col("crawl_image_key") == F.col("image_key")), F.lit(EXACT))
            .when(image_matched, F.lit(MATCH_KEY)).alias("image_match"),
            F.when(landing_matched & F.col("landing_from_file"), F.lit(WIKIMEDIA_FILE))
            .when(landing_matched & (F.col("landing_crawl_url") == F.col("landing_url")), F.lit(EXACT))
            .when(landing_matched, F.lit(MATCH_KEY)).alias("landing_match"),
            F.greatest("image_domain_authority", "landing_domain_rank", "file_domain_rank").alias("domain_authority"),
            "popularity",
            F.when(F.col("popularity").isNotNull(), F.lit("observed")).otherwise(F.lit("none"))
            .alias("popularity_source"),
            F.coalesce(F.col("popularity_row"), F.lit(False)).alias("popularity_row"),
            row_crawls(F.col("image_crawls"), F.col("landing_crawl")).alias("crawls"),
        )
    )


def row_crawls(image_crawls: F.Column, landing_crawl: F.Column) -> F.Column:
    """The crawls a published row's crawl signals come from, sorted: those of the pages showing
    its matched crawl image, and its landing page's; empty where nothing matched the crawl."""
    landing = F.when(landing_crawl.isNotNull(), F.array(landing_crawl)).otherwise(F.array().cast("array<string>"))
    return F.array_sort(F.array_distinct(F.concat(F.coalesce(image_crawls, F.array().cast("array<string>")), landing)))


CC_COLUMNS = ("cc_domain_pagerank", "cc_domain_harmonic", "cc_host_pagerank", "cc_host_harmonic")


def with_cc_ranks(base: DataFrame, cc_ranks: dict[str, tuple[DataFrame, dict]]) -> tuple[DataFrame, dict]:
    """``base`` with CC_COLUMNS, unsaturated: the PageRank and harmonic centrality Common Crawl's
    web graph gives the landing page's registered domain (under the ICANN suffixes alone, as its
    domain graph has them) and host (its leading ``www.`` and a trailing dot dropped, as the host
    graph drops them), null where a file is not given or does not hold the name; and what was read
    and matched. ``cc_ranks``: level -> :func:`imagerank.graph.cc_webgraph.read_ranks`' rows and
    report. The rank files are cut to the catalog's names (broadcast where they number at most
    MAX_BROADCAST_DOMAINS) before any join with the catalog."""
    frame = base.withColumn("_cc_host", F.regexp_replace(F.lower("landing_host"), r"^www\.|\.$", ""))
    report: dict = {}
    for level, column in (("domain", "landing_cc_domain"), ("host", "_cc_host")):
        names = [f"cc_{level}_pagerank", f"cc_{level}_harmonic"]
        if level not in cc_ranks:
            frame = frame.select("*", *[F.lit(None).cast("double").alias(n) for n in names])
            continue
        ranks, read = cc_ranks[level]
        wanted = frame.select(F.col(column).alias("name")).where(F.col("name").isNotNull()).distinct()
        few = wanted.count() <= MAX_BROADCAST_DOMAINS
        found = (ranks.join(_small(wanted, few), on="name", how="left_semi")
                 .groupBy("name").agg(F.max("pagerank").alias(names[0]), F.max("harmonic").alias(names[1]))
                 .withColumnRenamed("name", column)).cache()  # small: read once, not again by each later pass
        frame = frame.join(_small(found, few), on=column, how="left")
        counted = frame.agg(F.count(F.col(column)).alias("with_name"), F.count(names[0]).alias("matched")).first()
        report[level] = {**read, "catalog_rows_with_name": counted["with_name"], "matched": counted["matched"],
                         "not_in_file": counted["with_name"] - counted["matched"]}
    return frame.drop("_cc_host", "landing_cc_domain"), report


def cc_domain_tables(spark: SparkSession, ranks: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The rank tables of publish without a crawl (``--cc-domain-ranks`` and no ``--ranks``): no
    crawl images, no crawl pages, and Common Crawl's domain ranks (``ranks``, as read by
    :func:`imagerank.graph.cc_webgraph.read_ranks`) as ``domain_rank`` (its PageRank and harmonic
    centrality), so domain authority, the score's site term and provider authority come from
    Common Crawl's web graph."""
    images = spark.createDataFrame([], "image_key string, image_domain string, authority double, "
                                       "domain_authority double, crawls array<string>")
    pages = spark.createDataFrame([], "url string, domain string, pagerank double, crawl string")
    domains = (ranks.groupBy(F.col("name").alias("domain"))  # a name twice (two releases in one glob): its largest
               .agg(F.max("pagerank").alias("pagerank"), F.max("harmonic").alias("harmonic_centrality")))
    return images, pages, domains


def score(authority: F.Column, popularity: F.Column, site: F.Column) -> F.Column:
    """1 - (1 - authority)(1 - popularity)(1 - SITE_WEIGHT * site); a missing signal counts 0."""
    return F.lit(1.0) - (
        (F.lit(1.0) - F.coalesce(authority, F.lit(0.0)))
        * (F.lit(1.0) - F.coalesce(popularity, F.lit(0.0)))
        * (F.lit(1.0) - F.lit(SITE_WEIGHT) * F.coalesce(site, F.lit(0.0)))
    )


def site_score(domain_authority: F.Column, constant: float | None) -> F.Column:
    """The site's standing as the score takes it: domain authority saturated with the run's constant."""
    if constant is None:
        return F.lit(None).cast("double")
    return F.when(saturable(domain_authority), domain_authority / (domain_authority + F.lit(constant)))


def write_scores_tsv(stage: Stage, table: DataFrame) -> None:
    """``scores_tsv``: identifier and score, tab-separated, for a loader that reads no Parquet."""
    (table.select("identifier", F.format_number("score", 9).alias("score"))
     .write.mode("overwrite").options(sep="\t", header="false").csv(stage.table("scores_tsv")))


def coverage(table: DataFrame) -> DataFrame:
    """Per provider: images; how many matched a crawl image, a landing page (each by rule), a domain, nothing."""
    crawl_image = F.col("image_match").isNotNull()
    landing = F.col("landing_match").isNotNull()
    domain = F.col("domain_authority").isNotNull()

    def count(condition: F.Column, name: str) -> F.Column:
        return F.sum(F.coalesce(condition, F.lit(False)).cast("long")).alias(name)

    return table.groupBy("provider").agg(
        F.count(F.lit(1)).alias("images"),
        count(crawl_image, "crawl_image"),
        count(F.col("image_match") == EXACT, "image_exact"),
        count(F.col("image_match") == MATCH_KEY, "image_match_key"),
        count(landing, "landing_page"),
        count(F.col("landing_match") == EXACT, "landing_exact"),
        count(F.col("landing_match") == MATCH_KEY, "landing_match_key"),
        count(F.col("landing_match") == WIKIMEDIA_FILE, "landing_wikimedia_file"),
        count(domain, "domain"),
        count(~(crawl_image | landing | domain), "nothing"),
        count(F.col("popularity").isNotNull(), "popularity_observed"),
    )


def _fraction(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def matching_warnings(matching: dict, catalog_report: dict, popularity_report: dict, min_match_fraction: float,
                      min_crawl_match_fraction: float) -> list[str]:
    """What says the inputs of a publish do not belong together: few catalog rows with a popularity
    row (when the popularity output has any), few matched to the crawl, or popularity made from
    another catalog (another path, or the same path read with another number of rows)."""
    warnings = []
    n, pop = matching["catalog_rows"], matching["with_popularity_row"]
    if matching["popularity_rows"] and n and pop / n < min_match_fraction:
        warnings.append(f"{pop:,} of {n:,} catalog rows ({pop / n:.2%}) have a popularity row, under "
                        f"--min-match-fraction {min_match_fraction:g} (the popularity output holds "
                        f"{matching['popularity_rows']:,} rows): was it made from another catalog?")
    crawl = matching["crawl_matched"]
    if n and crawl / n < min_crawl_match_fraction:
        warnings.append(f"{crawl:,} of {n:,} catalog rows ({crawl / n:.2%}) matched the crawl by image or landing "
                        f"page, under --min-crawl-match-fraction {min_crawl_match_fraction:g}")
    read_by_popularity = popularity_report.get("catalog")
    if isinstance(read_by_popularity, dict) and "path" in read_by_popularity:
        if (read_by_popularity["path"], read_by_popularity.get("rows_read")) != (catalog_report["path"],
                                                                                 catalog_report["rows_read"]):
            warnings.append(f"publish reads catalog {catalog_report['path']} ({catalog_report['rows_read']} rows); "
                            f"the popularity output was made from {read_by_popularity['path']} "
                            f"({read_by_popularity.get('rows_read')} rows)")
    return warnings


CONTENT_COLUMNS = {  # the image's own signals; null where the embed / visualrank outputs are not given
    "width": "int", "height": "int", "camera_make": "string", "camera_model": "string", "capture_time": "string",
    "gps": "boolean", "family_size": "long", "near_duplicate_of": "string", "visualrank": "double"}


def content_signals(spark: SparkSession, signals_folder: str | None, visualrank_folder: str | None) -> DataFrame:
    """identifier + CONTENT_COLUMNS from the embed and visualrank outputs (read as tables: publish
    imports nothing of the content stages). ``visualrank`` is relative to its group's mean (score x
    group size: 1.0 is an average image of its group), the best over the image's groups."""
    frames = []
    if signals_folder:
        features = spark.read.parquet(fs.join(signals_folder, "image_features")).select(
            "identifier", "width", "height", F.col("make").alias("camera_make"),
            F.col("model").alias("camera_model"), "capture_time", "gps")
        families = spark.read.parquet(fs.join(signals_folder, "families")).select(
            "identifier", "family_size", "near_duplicate_of")
        frames.append(features.join(families, on="identifier", how="left")
                      .withColumn("family_size", F.coalesce("family_size", F.lit(1).cast("long"))))
    if visualrank_folder:
        ranks = spark.read.parquet(fs.join(visualrank_folder, "visualrank"))
        sizes = ranks.groupBy("group").agg(F.count(F.lit(1)).alias("size"))
        frames.append(ranks.join(F.broadcast(sizes), on="group", how="inner")
                      .groupBy("identifier").agg(F.max(F.col("visualrank") * F.col("size")).alias("visualrank")))
    joined = None
    for frame in frames:
        joined = frame if joined is None else joined.join(frame, on="identifier", how="full_outer")
    if joined is None:
        joined = spark.createDataFrame([], "identifier string")
    return joined.select("identifier", *[
        (F.col(name) if name in joined.columns else F.lit(None)).cast(kind).alias(name)
        for name, kind in CONTENT_COLUMNS.items()])


# columns rank tables gained after their first release: trust, and the crawls behind a page or image
LATER_COLUMNS = {"trust": "double", "spam_mass": "double", "harmonic_centrality": "double", "crawl": "string",
                 "crawls": "array<string>"}


def _with_trust(frame: DataFrame) -> DataFrame:
    """A rank table with the later columns it lacks as nulls (a rank output written before them)."""
    for name, kind in LATER_COLUMNS.items():
        if name not in frame.columns:
            frame = frame.withColumn(name, F.lit(None).cast(kind))
    return frame


UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def to_database(spark: SparkSession, stage: Stage, database: postgres.Database, target: PublishTarget,
                table: DataFrame, rows: int, popularity_folder: str) -> dict:
    """Load ``table`` (identifier a uuid primary key, plus ``run``) and popularity's provider
    constants (key provider, metric) into ``database`` under this run's names; the stage swaps them
    in once it commits, or drops them where it fails (:mod:`imagerank.postgres`)."""
    bad = table.where(~F.col("identifier").rlike(UUID)).select("identifier").limit(3).collect()
    if bad:
        raise StageError(f"--to-postgres: identifiers such as {bad[0]['identifier']!r} are not UUIDs; the table's "
                         f"identifier is a uuid, as in Openverse's image table")
    tables = [postgres.Table(target.table, table, rows, key=("identifier",), uuid_columns=("identifier",))]
    if target.constants_table:
        constants = spark.read.parquet(fs.join(popularity_folder, "provider_constants"))
        tables.append(postgres.Table(target.constants_table, constants, constants.count(), key=("provider", "metric")))
    say("publish", f"loading {rows:,} rows into PostgreSQL {database.where}")
    staged = postgres.stage_tables(spark, database, tables, stage.run, stage.output, target.connections)
    stage.after_commit("PostgreSQL", staged.swap, staged.drop)
    return {"database": database.url.split("?")[0], "user": database.user,
            "tables": {t.name: t.rows for t in tables}}


def run_publish(spark: SparkSession, catalog_path: str, ranks: str, popularity_dir: str, output: str,
                percentile: float = 0.85, catalog_format: str = "auto",
                min_match_fraction: float = MIN_MATCH_FRACTION,
                min_crawl_match_fraction: float = MIN_CRAWL_MATCH_FRACTION,
                signals: str | None = None, visualrank: str | None = None, graph: str | None = None,
                catalog_table: str = DEFAULT_TABLE, to_postgres: PublishTarget | None = None,
                cc_domain_ranks: str | None = None, cc_host_ranks: str | None = None) -> dict:
    """Write ``authority`` (partitioned by provider), ``coverage``, ``provider_authority`` and
    ``scores_tsv`` under ``output``; inputs that do not belong together (:func:`matching_warnings`)
    are warned of in the report's ``warnings`` and on standard error. ``graph`` (the graph the
    ranks were computed from) gives provider_authority its pages and domains showing each provider.
    ``to_postgres``: the authority table (and popularity's provider constants) also go into that
    database, swapped in once the run is committed (:func:`to_database`). ``cc_domain_ranks`` /
    ``cc_host_ranks``: Common Crawl's web-graph rank files, giving CC_COLUMNS (:func:`with_cc_ranks`),
    saturated as our own columns are."""
    args = {"catalog": catalog_path, "ranks": ranks, "popularity": popularity_dir, "percentile": percentile,
            "catalog_format": catalog_format, "min_match_fraction": min_match_fraction,
            "min_crawl_match_fraction": min_crawl_match_fraction, "signals": signals, "visualrank": visualrank,
            "graph": graph, **({"catalog_table": catalog_table} if is_postgres(catalog_path) else {}),
            **({"to_postgres": asdict(to_postgres)} if to_postgres else {}),
            **({"cc_domain_ranks": cc_domain_ranks} if cc_domain_ranks else {}),
            **({"cc_host_ranks": cc_host_ranks} if cc_host_ranks else {})}
    with Stage(spark, "publish", output, args) as stage:
        signals_folder = stage.input(signals, "embed", tables=("image_features", "families")) if signals else None
        visualrank_folder = stage.input(visualrank, "visualrank", tables=("visualrank",)) if visualrank else None
        if ranks is None and not cc_domain_ranks:
            raise StageError("give --ranks (a rank output), or --cc-domain-ranks alone for authority from Common "
                             "Crawl's web graph")
        ranks_folder = stage.input(ranks, "rank", tables=("image_authority", "page_rank", "domain_rank")) if ranks \
            else None
        rank_report = stage.input_report(ranks_folder) if ranks_folder else {}
        # each rank file read (and counted) once, before the work: a wrong path or format fails now
        cc_ranks = {level: read_ranks(spark, stage.qualify(path), level)
                    for level, path in (("domain", cc_domain_ranks), ("host", cc_host_ranks)) if path}
        graph_folder = stage.input(graph, "build_graph", tables=("edges",)) if graph else None
        popularity_folder = stage.input(popularity_dir, "popularity", tables=("popularity",))
        database = postgres.database(to_postgres.url, spark) if to_postgres else None
        if database is not None:
            database.connect().close()  # a wrong password or host fails now, before the work
        catalog, catalog_report = read_catalog(spark, stage.qualify(catalog_path), required=PUBLISH_COLUMNS,
                                               fmt=catalog_format, table=catalog_table)
        keys = catalog_keys(catalog).cache()
        stage.size_shuffles({"catalog": keys.count(), "rank": sum((rank_report.get("rows") or {}).values())},
                            SHUFFLE_BYTES_PER_ROW)
        popularity = spark.read.parquet(fs.join(popularity_folder, "popularity"))
        if ranks_folder:
            images, pages, domains = [_with_trust(spark.read.parquet(fs.join(ranks_folder, name)))
                                      for name in ("image_authority", "page_rank", "domain_rank")]
        else:
            images, pages, domains = [_with_trust(t) for t in cc_domain_tables(spark, cc_ranks["domain"][0])]
        base = published_table(catalog, keys.drop("bad_url", "bad_landing_url"), images, pages, domains,
                               popularity).cache()
        counted = base.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("popularity_row"), F.lit(1))).alias("popularity"),
            F.count(F.when(F.col("image_match").isNotNull() | F.col("landing_match").isNotNull(),
                           F.lit(1))).alias("crawl"),
        ).first()
        matching = {"catalog_rows": counted["rows"], "popularity_rows": popularity.count(),
                    "with_popularity_row": counted["popularity"],
                    "popularity_fraction": _fraction(counted["popularity"], counted["rows"]),
                    "crawl_matched": counted["crawl"], "crawl_fraction": _fraction(counted["crawl"], counted["rows"]),
                    "min_match_fraction": min_match_fraction, "min_crawl_match_fraction": min_crawl_match_fraction}
        warnings = matching_warnings(matching, catalog_report, stage.input_report(popularity_folder),
                                     min_match_fraction, min_crawl_match_fraction if ranks_folder else 0.0)
        ranked_from = [i.get("run") for i in rank_report.get("inputs", {}).get("build_graph", [])]
        if graph_folder and ranked_from and graph_folder.rsplit("/", 1)[1] not in ranked_from:
            warnings.append(f"--graph {graph} is run {graph_folder.rsplit('/', 1)[1]}; the ranks were computed "
                            f"from run {ranked_from[0]}: pages and domains showing a provider may not match")
        for warning in warnings:
            say("publish", f"warning: {warning}")
        with_cc, cc_report = with_cc_ranks(base, cc_ranks)
        for level, counts in cc_report.items():
            if counts["catalog_rows_with_name"] and counts["matched"] / counts["catalog_rows_with_name"] < \
                    max(min_crawl_match_fraction, 0.01):
                warning = (f"{counts['matched']:,} of {counts['catalog_rows_with_name']:,} catalog rows found their "
                           f"landing page's {level} in --cc-{level}-ranks: a file of another level, or cut short?")
                warnings.append(warning)
                say("publish", f"warning: {warning}")
        # every saturated column's constant from one pass over the table; a Common Crawl column whose
        # file is not given stays null and has no constant in the report
        cc_given = [name for name in CC_COLUMNS if name.split("_")[1] in cc_report]
        with_cc, constants_found = saturate_columns(
            with_cc, ["authority_raw", "trust_raw", "domain_authority", *cc_given], percentile)
        for name in CC_COLUMNS:
            if name not in cc_given:
                with_cc = with_cc.withColumn(f"{name}_saturated", F.lit(None).cast("double"))
        cc_constants = {name: constants_found[name] for name in cc_given}
        computed_at = now_iso()
        content = content_signals(spark, signals_folder, visualrank_folder)
        with_content = with_cc.join(content, on="identifier", how="left")
        table = with_content.select(
            "identifier", "provider", "image_key",
            F.col("authority_raw_saturated").alias("authority"), "authority_raw",
            F.col("trust_raw_saturated").alias("trust"), "landing_page_rank",
            "image_match", "landing_match", "domain_authority", "popularity", "popularity_source",
            *CONTENT_COLUMNS,
            *[F.col(f"{name}_saturated").alias(name) for name in CC_COLUMNS],
            score(F.col("authority_raw_saturated"), F.col("popularity"),
                  F.col("domain_authority_saturated")).alias("score"),
            "crawls",
            F.to_timestamp(F.lit(computed_at)).alias("computed_at"),
        )
        written = stage.write("authority", table, partition_by=["provider"])
        coverage_table = stage.write("coverage", coverage(written).orderBy("provider").coalesce(1))
        trusted = (rank_report.get("trusted_sources") or {}).get("providers") or {}
        shown = None
        if graph_folder and ranks_folder:  # without a crawl there is no page showing an image
            shown = showing(base, images, spark.read.parquet(fs.join(graph_folder, "edges")), pages)
        providers, boost_constant = provider_authority(
            base.join(written.select("identifier", "authority"), on="identifier", how="inner"), domains,
            trusted if isinstance(trusted, dict) else {}, percentile, shown)
        providers = stage.write("provider_authority", providers.coalesce(1))
        write_scores_tsv(stage, written)
        # the written table read once for its three counts (at a release, 5e8 rows: one scan, not three)
        counts = written.agg(F.count(F.lit(1)).alias("rows"), F.count("width").alias("with_features"),
                             F.count("visualrank").alias("with_visualrank")).first()
        rows_written = counts["rows"]
        if database is not None:
            stage.report["postgres"] = to_database(spark, stage, database, to_postgres, written.select(table.columns),
                                                   rows_written, popularity_folder)
        bad = keys.agg(F.sum(F.col("bad_url").cast("long")).alias("url"),
                       F.sum(F.col("bad_landing_url").cast("long")).alias("landing")).first()
        stage.report.update({
            "catalog": catalog_report,
            "crawls": rank_report.get("crawls", []),
            "computed_at": computed_at,
            "rows_written": rows_written,
            "unparseable_urls": {"url": bad["url"] or 0, "foreign_landing_url": bad["landing"] or 0},
            "saturation": {"authority": constants_found["authority_raw"], "trust": constants_found["trust_raw"],
                           "domain_authority": constants_found["domain_authority"],
                           "provider_boost": boost_constant, **cc_constants},
            **({"cc_webgraph": cc_report} if cc_report else {}),
            "coverage": [r.asDict() for r in coverage_table.orderBy("provider").collect()],
            "matching": matching,
            "provider_authority": [r.asDict() for r in providers.orderBy(F.desc_nulls_last("boost"), "provider")
                                   .collect()],
            "content": {"signals": bool(signals_folder), "visualrank": bool(visualrank_folder),
                        "with_features": counts["with_features"], "with_visualrank": counts["with_visualrank"]},
            "warnings": warnings,
        })
        base.unpersist()
        keys.unpersist()
    return stage.report
