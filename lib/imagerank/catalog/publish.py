"""The published table: one row per catalog image with its authority, popularity and score.

Catalog images meet the crawl through the names extraction uses (``imagerank.urls``): the image's
``url`` becomes an ``image_key`` (so a Flickr size variant or a Wikimedia thumbnail meets its
original) and matches ``image_authority``; ``foreign_landing_url``, normalized, matches
``page_rank``; the registered domains of both match ``domain_rank``. The score is defined in
docs/design.md ("The published score").
"""

from __future__ import annotations

from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.catalog.read import PUBLISH_COLUMNS, read_catalog
from imagerank.catalog.saturation import saturate
from imagerank.commit import now_iso
from imagerank.stage import Stage
from imagerank.urls import UrlError, host_of, image_key, normalize, registered_domain

SITE_WEIGHT = 0.5  # how much a site's standing alone lifts the score (docs/design.md)
KEYS_SCHEMA = ("identifier string, image_key string, landing_url string, file_domain string, "
               "landing_domain string, bad_url boolean, bad_landing_url boolean")


def _normalized(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
        return None
    try:
        return normalize(str(value).strip())
    except UrlError:
        return None


def _keys(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for frame in batches:
        image_urls = frame["url"].map(_normalized)
        landing_urls = frame["foreign_landing_url"].map(_normalized)
        yield pd.DataFrame({
            "identifier": frame["identifier"],
            "image_key": image_urls.map(lambda u: image_key(u) if u else None),
            "landing_url": landing_urls,
            "file_domain": image_urls.map(lambda u: registered_domain(host_of(u)) if u else None),
            "landing_domain": landing_urls.map(lambda u: registered_domain(host_of(u)) if u else None),
            "bad_url": image_urls.isna() & frame["url"].notna(),
            "bad_landing_url": landing_urls.isna() & frame["foreign_landing_url"].notna(),
        })


def published_table(catalog: DataFrame, keys: DataFrame, images: DataFrame, pages: DataFrame, domains: DataFrame,
                    popularity: DataFrame) -> DataFrame:
    """The published columns before saturation, scoring and stamping (see run_publish)."""
    domain_rank = domains.select("domain", F.col("pagerank").alias("domain_pagerank"))
    return (
        catalog.select("identifier", "provider")
        .join(keys, on="identifier", how="left")
        .join(images.select("image_key", F.col("authority").alias("authority_raw"),
                            F.col("domain_authority").alias("image_domain_authority")), on="image_key", how="left")
        .join(pages.select(F.col("url").alias("landing_url"), F.col("pagerank").alias("landing_page_rank")),
              on="landing_url", how="left")
        .join(domain_rank.withColumnRenamed("domain", "landing_domain")
              .withColumnRenamed("domain_pagerank", "landing_domain_rank"), on="landing_domain", how="left")
        .join(domain_rank.withColumnRenamed("domain", "file_domain")
              .withColumnRenamed("domain_pagerank", "file_domain_rank"), on="file_domain", how="left")
        .join(popularity.select("identifier", F.col("standardized").alias("popularity")), on="identifier", how="left")
        .select(
            "identifier", "provider", "image_key", "authority_raw", "landing_page_rank",
            F.greatest("image_domain_authority", "landing_domain_rank", "file_domain_rank").alias("domain_authority"),
            "popularity",
            F.when(F.col("popularity").isNotNull(), F.lit("observed")).otherwise(F.lit("none"))
            .alias("popularity_source"),
        )
    )


def score(authority: F.Column, popularity: F.Column, site: F.Column) -> F.Column:
    """1 - (1 - authority)(1 - popularity)(1 - SITE_WEIGHT * site); a missing signal counts 0."""
    return F.lit(1.0) - (
        (F.lit(1.0) - F.coalesce(authority, F.lit(0.0)))
        * (F.lit(1.0) - F.coalesce(popularity, F.lit(0.0)))
        * (F.lit(1.0) - F.lit(SITE_WEIGHT) * F.coalesce(site, F.lit(0.0)))
    )


def coverage(table: DataFrame) -> DataFrame:
    """Per provider: images, and how many matched a crawl image, a landing page, a domain, nothing."""
    crawl_image = F.col("authority_raw").isNotNull()
    landing = F.col("landing_page_rank").isNotNull()
    domain = F.col("domain_authority").isNotNull()
    return table.groupBy("provider").agg(
        F.count(F.lit(1)).alias("images"),
        F.sum(crawl_image.cast("long")).alias("crawl_image"),
        F.sum(landing.cast("long")).alias("landing_page"),
        F.sum(domain.cast("long")).alias("domain"),
        F.sum((~(crawl_image | landing | domain)).cast("long")).alias("nothing"),
        F.sum(F.col("popularity").isNotNull().cast("long")).alias("popularity_observed"),
    )


def run_publish(spark: SparkSession, catalog_path: str, ranks: str, popularity_dir: str, output: str,
                percentile: float = 0.85, catalog_format: str = "auto") -> dict:
    """Write ``authority`` (partitioned by provider), ``coverage`` and ``scores_tsv`` under ``output``."""
    args = {"catalog": catalog_path, "ranks": ranks, "popularity": popularity_dir, "percentile": percentile,
            "catalog_format": catalog_format}
    with Stage(spark, "publish", output, args) as stage:
        ranks_folder = stage.input(ranks, "rank")
        rank_report = stage.input_report(ranks_folder)
        popularity_folder = stage.input(popularity_dir, "popularity")
        catalog, catalog_report = read_catalog(spark, stage.qualify(catalog_path), required=PUBLISH_COLUMNS,
                                               fmt=catalog_format)
        keys = catalog.select("identifier", "url", "foreign_landing_url").mapInPandas(_keys, KEYS_SCHEMA).cache()
        base = published_table(
            catalog, keys.drop("bad_url", "bad_landing_url"),
            *[spark.read.parquet(fs.join(ranks_folder, name)) for name in ("image_authority", "page_rank",
                                                                           "domain_rank")],
            spark.read.parquet(fs.join(popularity_folder, "popularity")),
        ).cache()
        with_authority, authority_constant = saturate(base, "authority_raw", percentile)
        with_site, site_constant = saturate(with_authority, "domain_authority", percentile)
        computed_at = now_iso()
        table = with_site.select(
            "identifier", "provider", "image_key",
            F.col("authority_raw_saturated").alias("authority"), "authority_raw", "landing_page_rank",
            "domain_authority", "popularity", "popularity_source",
            score(F.col("authority_raw_saturated"), F.col("popularity"),
                  F.col("domain_authority_saturated")).alias("score"),
            F.array(*[F.lit(c) for c in rank_report.get("crawls", [])]).cast("array<string>").alias("crawls"),
            F.to_timestamp(F.lit(computed_at)).alias("computed_at"),
        )
        written = stage.write("authority", table, partition_by=["provider"])
        coverage_table = stage.write("coverage", coverage(written).orderBy("provider").coalesce(1))
        (written.select("identifier", F.format_number("score", 9).alias("score"))
         .write.mode("overwrite").options(sep="\t", header="false").csv(stage.table("scores_tsv")))
        bad = keys.agg(F.sum(F.col("bad_url").cast("long")).alias("url"),
                       F.sum(F.col("bad_landing_url").cast("long")).alias("landing")).first()
        stage.report.update({
            "catalog": catalog_report,
            "crawls": rank_report.get("crawls", []),
            "computed_at": computed_at,
            "rows_written": written.count(),
            "unparseable_urls": {"url": bad["url"] or 0, "foreign_landing_url": bad["landing"] or 0},
            "saturation": {"authority": authority_constant, "domain_authority": site_constant},
            "coverage": [r.asDict() for r in coverage_table.orderBy("provider").collect()],
        })
        base.unpersist()
        keys.unpersist()
    return stage.report
