"""provider_authority: a provider's standing measured from the crawl, beside Openverse's static boost.

Openverse boosts every curated institution by 90, social media by 80, anything else by 85, chosen
by hand (``imagerank/conf/openverse_boost.yaml``). Here, per provider of the catalog:

- its sites: the registered domains its images' landing pages are on (each holding at least
  ``MIN_SITE_SHARE`` of its rows), and the domains the trusted-sources file names for it;
- ``domain_pagerank``, ``harmonic_centrality``, ``trust``: the largest over its sites in
  ``domain_rank``; ``main_site``: its site with the highest domain PageRank, and its ``spam_mass``;
- ``pages_showing``, ``domains_showing``: how many crawled pages, and registered domains, embed or
  link one of its images (images matched to the crawl by the published table's rules; needs the
  graph);
- ``median_image_authority``: the median published ``authority`` of its images that met the crawl;
- ``boost``: the measured replacement for Openverse's boost, 100 * x / (x + C) where x is the
  PageRank of its best site that trust explains, max over sites of pagerank * (1 - spam_mass)
  (= min(pagerank, good_share * trust); the PageRank itself where the crawl holds no seed), and C
  is Openverse's saturation constant of the same quantity over every domain of the crawl at the
  publish percentile: a provider whose site stands at the 85th percentile of the crawl's domains
  gets 85, Openverse's default. docs/design.md ("Provider authority") says why.

Small: one row per provider. The providers' sites are few (a catalog has hundreds of providers
and a few sites each): they are broadcast to cut the crawl's domain table to them. The saturation
constant is computed over the whole domain table, distributed (catalog.saturation). The pages and
domains showing are the one large step: the graph's image edges (10^10 at full scale) joined to
the catalog's matched images.
"""

from __future__ import annotations

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.catalog.saturation import saturate
from imagerank.graph.authority import IMAGE_EDGES
from imagerank.spark import package_conf

MIN_SITE_SHARE = 0.01  # of a provider's catalog rows whose landing pages are on a domain, for it to be a site


def openverse_boosts(spark: SparkSession) -> tuple[DataFrame, int]:
    """provider, openverse_type, openverse_boost (Openverse's static table) and its default boost."""
    config = yaml.safe_load(package_conf("openverse_boost.yaml"))
    boost = config["boost"]
    rows = [(provider, kind, int(boost[kind])) for provider, kind in sorted(config["providers"].items())]
    return spark.createDataFrame(rows, "provider string, openverse_type string, openverse_boost int"), int(
        boost["default"])


def provider_sites(table: DataFrame, trusted: dict[str, list[str]]) -> DataFrame:
    """provider, domain, site_rows (its catalog rows landing there), trusted: a provider's sites."""
    spark = table.sparkSession
    landing = (table.where(F.col("landing_domain").isNotNull())
               .groupBy("provider", "landing_domain").agg(F.count(F.lit(1)).alias("site_rows")))
    totals = table.groupBy("provider").agg(F.count(F.lit(1)).alias("rows"))
    measured = (landing.join(totals, on="provider", how="inner")
                .where(F.col("site_rows") >= F.lit(MIN_SITE_SHARE) * F.col("rows"))
                .select("provider", F.col("landing_domain").alias("domain"), "site_rows"))
    named = spark.createDataFrame([(p, d) for p, domains in sorted(trusted.items()) for d in domains]
                                  or [], "provider string, domain string")
    return (measured.join(named.withColumn("trusted", F.lit(True)), on=["provider", "domain"], how="full_outer")
            .join(totals.select("provider"), on="provider", how="left_semi")  # providers of this catalog only
            .select("provider", "domain", F.coalesce("site_rows", F.lit(0)).cast("long").alias("site_rows"),
                    F.coalesce("trusted", F.lit(False)).alias("trusted")))


def showing(table: DataFrame, images: DataFrame, edges: DataFrame, pages: DataFrame) -> DataFrame:
    """provider, pages_showing, domains_showing: distinct crawled pages (and their registered domains)
    with an embeds or links_to_image edge to one of the provider's images that met the crawl."""
    matched = (table.where(F.col("crawl_image_key").isNotNull())
               .select("provider", F.col("crawl_image_key").alias("image_key")).distinct()
               .join(images.select(F.col("id").alias("dst"), "image_key"), on="image_key", how="inner")
               .select("provider", "dst"))
    shown_on = (edges.where(F.col("kind").isin(*IMAGE_EDGES)).select(F.col("src").alias("page"), "dst")
                .join(matched, on="dst", how="inner")
                .select("provider", "page").distinct())
    with_domain = shown_on.join(pages.select(F.col("id").alias("page"), "domain"), on="page", how="left")
    return with_domain.groupBy("provider").agg(
        F.count(F.lit(1)).alias("pages_showing"), F.countDistinct("domain").alias("domains_showing"))


def provider_authority(table: DataFrame, domains: DataFrame, trusted: dict[str, list[str]], percentile: float,
                       shown: DataFrame | None) -> tuple[DataFrame, dict | None]:
    """One row per provider of the published table (see the module docstring); and the saturation
    constant of the boost. ``table``: provider, landing_domain, crawl_image_key, image_match,
    landing_match, authority; ``domains``: domain_rank; ``shown``: :func:`showing`, or None without a graph."""
    spark = table.sparkSession
    good = F.col("pagerank") * (F.lit(1.0) - F.coalesce(F.col("spam_mass"), F.lit(0.0)))
    ranked_domains, constant = saturate(domains.withColumn("good_pagerank", good), "good_pagerank", percentile)
    sites = provider_sites(table, trusted).cache()
    # the domain table is the crawl's (10^8 rows): cut to the sites' domains (few, broadcast) first
    site_domains = ranked_domains.join(F.broadcast(sites.select("domain").distinct()), on="domain", how="left_semi")
    site_ranks = sites.join(site_domains.select(
        "domain", "pagerank", "trust", "spam_mass", "harmonic_centrality", "good_pagerank"), on="domain", how="left")
    per_provider = site_ranks.groupBy("provider").agg(
        F.sort_array(F.collect_set("domain")).alias("sites"),
        F.max("trusted").alias("trusted"),
        F.max_by("domain", F.struct(F.coalesce("pagerank", F.lit(-1.0)), "domain")).alias("main_site"),
        F.max("pagerank").alias("domain_pagerank"),
        F.max("harmonic_centrality").alias("harmonic_centrality"),
        F.max("trust").alias("trust"),
        F.max_by("spam_mass", F.struct(F.coalesce("pagerank", F.lit(-1.0)), "domain")).alias("spam_mass"),
        F.max("good_pagerank").alias("good_pagerank"),
    )
    images = table.groupBy("provider").agg(
        F.count(F.lit(1)).alias("images"),
        F.count(F.when(F.col("image_match").isNotNull() | F.col("landing_match").isNotNull(), F.lit(1)))
        .alias("images_in_crawl"),
        F.percentile_approx(F.when(F.col("image_match").isNotNull(), F.col("authority")), 0.5, 10_000)
        .alias("median_image_authority"),
    )
    boosts, default_boost = openverse_boosts(spark)
    measured = (F.lit(100.0) * F.col("good_pagerank") / (F.col("good_pagerank") + F.lit(constant["constant"]))
                if constant else F.lit(None).cast("double"))
    result = (images.join(per_provider, on="provider", how="left")
              .join(F.broadcast(boosts), on="provider", how="left"))
    counts = ("pages_showing", "domains_showing")
    if shown is not None:  # a provider no crawled page shows: 0 pages
        result = result.join(shown, on="provider", how="left").fillna(0, subset=list(counts))
    else:  # no graph: not counted
        result = result.select("*", *[F.lit(None).alias(c) for c in counts])
    return result.select(
        "provider",
        F.coalesce("sites", F.array().cast("array<string>")).alias("sites"),
        F.coalesce("trusted", F.lit(False)).alias("trusted"),
        "main_site", "domain_pagerank", "harmonic_centrality", "trust", "spam_mass",
        "images", "images_in_crawl",
        *[F.col(c).cast("long").alias(c) for c in counts],
        "median_image_authority",
        F.round(measured, 2).alias("boost"),
        F.coalesce("openverse_type", F.lit("default")).alias("openverse_type"),
        F.coalesce("openverse_boost", F.lit(default_boost)).alias("openverse_boost"),
    ).orderBy(F.desc_nulls_last("boost"), "provider"), constant
