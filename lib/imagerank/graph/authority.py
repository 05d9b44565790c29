"""Image authority from page PageRank (the definition is in docs/design.md, "Image authority").

A random surfer browses by PageRank's rules and, on each page visited, looks at one of its images,
chosen in proportion to the images' attention weights (the ``weight`` of the graph's ``embeds`` and
``links_to_image`` edges). ``surfer_share`` is the probability that the image looked at is this one:

    surfer_share(i) ∝ sum over pages p showing i of PR(p) * w(p, i) / sum over images j of p of w(p, j)

``authority`` is the same sum with one vote per registered domain: a domain's pages add up to no
more than its best page's term, so a site cannot manufacture authority by repeating an image on
many pages. Both are normalized to sum to 1 over images. ``crawls``: the crawls whose fetches of
the pages showing the image these come from.

``trust`` is ``authority`` with page TrustRank in place of page PageRank (the same attention
weights and the same one vote per domain), normalized to sum to 1; null where page trust is (no
seed domain in the crawl).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

IMAGE_EDGES = ("embeds", "links_to_image")


def image_authority(vertices: DataFrame, edges: DataFrame, page_rank: DataFrame, domain_rank: DataFrame,
                    page_trust: bool = True) -> DataFrame:
    """One row per image vertex; see docs/tables.md for the columns. ``page_trust``: whether
    page_rank's ``trust`` was computed (a seed domain is in the crawl); image trust is null if not."""
    images = vertices.where(F.col("kind") == "image").select(
        F.col("id").alias("image"), F.col("name").alias("image_key"), F.col("url").alias("image_url"),
        F.col("domain").alias("image_domain"))
    pages = page_rank.select(F.col("id").alias("page"), F.col("url").alias("page_url"), "pagerank", "trust", "host",
                             "domain", "crawl")
    shown = (
        edges.where(F.col("kind").isin(*IMAGE_EDGES))
        .groupBy(F.col("src").alias("page"), F.col("dst").alias("image"))
        .agg(F.max("weight").alias("weight"))
    )
    page_attention = shown.groupBy("page").agg(F.sum("weight").alias("page_weight"))
    terms = (
        shown.join(page_attention, on="page", how="inner")
        .join(pages, on="page", how="inner")
        .withColumn("share", F.when(F.col("page_weight") > 0, F.col("weight") / F.col("page_weight")).otherwise(0.0))
        .withColumn("term", F.col("pagerank") * F.col("share"))
        .withColumn("trust_term", F.col("trust") * F.col("share"))
    )
    # No countDistinct: Spark expands every row once per distinct aggregate for it (three of them
    # were four times the 10^10 rows of a release). A (page, image) pair is one row of terms, so
    # n_pages is a count; sites and hosts are counted from their own groupings.
    domain_votes = (  # a page without a public host name votes as its own host, never with all such pages
        terms.groupBy("image", F.coalesce("domain", "host").alias("site"))
        .agg(F.max("term").alias("vote"), F.max("trust_term").alias("trust_vote"),
             F.max(F.col("domain").isNotNull().cast("long")).alias("is_domain"))  # a host is never a domain
        .groupBy("image")
        .agg(F.sum("vote").alias("authority_raw"), F.sum("trust_vote").alias("trust_raw"),
             F.sum("is_domain").alias("n_domains"))
    )
    host_counts = terms.select("image", "host").distinct().groupBy("image").agg(F.count("host").alias("n_hosts"))
    site_rank = domain_rank.select(F.col("domain"), F.col("pagerank").alias("domain_pagerank"))
    per_image = (
        terms.join(site_rank, on="domain", how="left")
        .groupBy("image")
        .agg(
            F.sum("term").alias("surfer_raw"),
            F.count(F.lit(1)).alias("n_pages"),
            F.max_by("page_url", F.struct("pagerank", "page_url")).alias("best_page"),
            F.max("domain_pagerank").alias("page_domain_rank"),
            F.sort_array(F.collect_set("crawl")).alias("crawls"),
        )
        .join(domain_votes, on="image", how="inner")
        .join(host_counts, on="image", how="inner")
    )
    totals = per_image.agg(F.sum("surfer_raw").alias("surfer_total"), F.sum("authority_raw").alias("authority_total"),
                           F.sum("trust_raw").alias("trust_total"))
    trusted = F.lit(None).cast("double") if not page_trust else F.coalesce(
        F.try_divide("trust_raw", "trust_total"), F.lit(0.0))
    serving_rank = site_rank.select(F.col("domain").alias("image_domain"), F.col("domain_pagerank").alias("file_domain_rank"))
    return (
        images.join(per_image, on="image", how="left")
        .join(serving_rank, on="image_domain", how="left")
        .crossJoin(totals)
        .select(
            F.col("image").alias("id"),
            "image_key",
            "image_url",
            F.coalesce(F.try_divide("authority_raw", "authority_total"), F.lit(0.0)).alias("authority"),
            F.coalesce(F.try_divide("surfer_raw", "surfer_total"), F.lit(0.0)).alias("surfer_share"),
            trusted.alias("trust"),
            F.coalesce("n_pages", F.lit(0)).cast("long").alias("n_pages"),
            F.coalesce("n_hosts", F.lit(0)).cast("long").alias("n_hosts"),
            F.coalesce("n_domains", F.lit(0)).cast("long").alias("n_domains"),
            "best_page",
            F.greatest(F.coalesce("page_domain_rank", F.lit(0.0)),
                       F.coalesce("file_domain_rank", F.lit(0.0))).alias("domain_authority"),
            F.col("image_domain").alias("image_domain"),
            "crawls",
        )
    )

