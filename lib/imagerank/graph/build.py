"""Build the graph from one or more extraction outputs (several crawls or batches merge).

Vertices are pages (normalized URLs, fetched or only linked to), images (``image_key``), hosts and
registered domains. Each has a stable 64-bit id, Spark's ``xxhash64`` of ``kind:name``, so re-runs
and later crawls agree; two names sharing an id are reported (and fail the run: ids must be keys).

Every vertex carries the ``host`` and registered ``domain`` it belongs to (an image: those of the
URL that serves it), and pages and images a ``url`` (an image: its most embedded URL variant).

Edges (duplicates collapse into one, self-loops drop):
- ``links_to``: page -> page, from followed links (``nofollow`` links carry no vote), weight 1;
- ``embeds``: page -> image, from every embed source but ``link_href``; the weight is the
  image's share of attention on the page (:func:`attention`, docs/design.md);
- ``links_to_image``: page -> image, from ``<a>`` links straight to image files (weight 0.5);
- ``host_links_to``: host -> host where at least one page of one links to a page of the other
  (Common Crawl's host graph, cc-webgraph); ``domain_links_to``: the same folded into registered
  domains; weight = number of distinct linking pages behind the edge.
"""

from __future__ import annotations

from functools import reduce
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.stage import Stage
from imagerank.urls import registered_domain

def vertex_id(kind: F.Column, name: F.Column) -> F.Column:
    """Stable 64-bit id of a vertex: xxhash64 of ``kind:name``."""
    return F.xxhash64(F.concat(kind, F.lit(":"), name))


# How much of a visitor's attention an image gets on a page, relative to an ordinary <img> (1.0).
PREVIEW_WEIGHT = 2.0  # og:image / twitter:image: the picture the page chose to stand for it
LINK_WEIGHT = 0.5  # <a href="x.jpg">: an offer to look, not a display
ICON_WEIGHT = 0.1  # declared at under ICON_PX in both dimensions: icons, buttons, spacers
ICON_PX = 50
PIXEL_PX = 2  # declared at most this in both dimensions: a tracking pixel, no attention at all


def attention(source: F.Column, width: F.Column, height: F.Column) -> F.Column:
    """Attention weight of one embed (see docs/design.md, "Image authority")."""
    declared = width.isNotNull() & height.isNotNull()
    largest = F.greatest(width, height)
    return (
        F.when(source.isin("og_image", "twitter_image"), F.lit(PREVIEW_WEIGHT))
        .when(source == "link_href", F.lit(LINK_WEIGHT))
        .when(declared & (largest <= PIXEL_PX), F.lit(0.0))
        .when(declared & (largest < ICON_PX), F.lit(ICON_WEIGHT))
        .otherwise(F.lit(1.0))
    )


def _domains(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for frame in batches:
        frame["domain"] = frame["host"].map(registered_domain)
        yield frame


def read_extracts(spark: SparkSession, folders: list[str]) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The extraction tables of several committed extract runs, unioned."""
    def union(table: str) -> DataFrame:
        frames = [spark.read.parquet(fs.join(folder, table)) for folder in folders]
        return reduce(DataFrame.unionByName, frames)

    return union("pages"), union("image_embeds"), union("page_links")


def _edges(df: DataFrame, src: str, src_kind: str, dst: str, dst_kind: str, kind: F.Column, via: str,
           weight: F.Column | None = None) -> DataFrame:
    """Edge candidates named by (kind, name) at both ends, with the page that gives each."""
    return df.select(
        F.col(src).alias("src_name"), F.col(dst).alias("dst_name"),
        F.lit(src_kind).alias("src_kind"), F.lit(dst_kind).alias("dst_kind"),
        kind.alias("kind"), F.col(via).alias("via"),
        (F.lit(1.0) if weight is None else weight).cast("double").alias("attention"),
    )


def _image_urls(embeds: DataFrame, host_domains: DataFrame) -> DataFrame:
    """One row per image_key: its most embedded URL variant (ties: the smallest), host, domain."""
    variants = (
        embeds.groupBy("image_key", "image_url")
        .agg(F.countDistinct("page_url").alias("n_pages"))
        .groupBy("image_key")
        .agg(F.min_by("image_url", F.struct(-F.col("n_pages"), F.col("image_url"))).alias("url"))
    )
    return (
        variants.withColumn("host", F.parse_url(F.col("url"), F.lit("HOST")))
        .join(host_domains, on="host", how="left")
        .select(F.col("image_key").alias("name"), "url", "host", "domain")
    )


def build_graph(pages: DataFrame, embeds: DataFrame, links: DataFrame) -> tuple[DataFrame, DataFrame]:
    followed = links.filter(~F.col("nofollow")).select("src_url", "dst_url")
    page_names = (
        pages.select(F.col("url").alias("name"))
        .union(links.select(F.col("src_url").alias("name")))
        .union(links.select(F.col("dst_url").alias("name")))
        .union(embeds.select(F.col("page_url").alias("name")))
        .distinct()
    )
    page_hosts = page_names.select("name", F.parse_url(F.col("name"), F.lit("HOST")).alias("host"))
    image_hosts = embeds.select(F.parse_url(F.col("image_url"), F.lit("HOST")).alias("host"))
    all_hosts = page_hosts.select("host").union(image_hosts).where(F.col("host").isNotNull()).distinct()
    site_of_host = all_hosts.mapInPandas(_domains, "host string, domain string").cache()
    # host and domain vertices are those of pages (cc-webgraph); image hosts only label images
    host_domains = page_hosts.select("host").distinct().join(site_of_host, on="host", how="inner")
    host_of_page = page_hosts.join(host_domains, on="host", how="inner")
    images = _image_urls(embeds, site_of_host)

    vertices = (
        page_hosts.join(host_domains, on="host", how="left")
        .select(F.lit("page").alias("kind"), "name", F.col("name").alias("url"), "host", "domain")
        .union(images.select(F.lit("image").alias("kind"), "name", "url", "host", "domain"))
        .union(host_domains.select(F.lit("host").alias("kind"), F.col("host").alias("name"),
                                   F.lit(None).cast("string").alias("url"), "host", "domain"))
        .union(host_domains.select(F.lit("domain").alias("kind"), F.col("domain").alias("name"),
                                   F.lit(None).cast("string").alias("url"), F.lit(None).cast("string").alias("host"),
                                   "domain").distinct())
        .select(vertex_id(F.col("kind"), F.col("name")).alias("id"), "name", "kind", "url", "host", "domain")
    )

    src_site = host_of_page.select(F.col("name").alias("src_url"), F.col("host").alias("src_host"),
                                   F.col("domain").alias("src_domain"))
    dst_site = host_of_page.select(F.col("name").alias("dst_url"), F.col("host").alias("dst_host"),
                                   F.col("domain").alias("dst_domain"))
    site_links = followed.join(src_site, on="src_url", how="inner").join(dst_site, on="dst_url", how="inner")
    image_kind = F.when(F.col("source") == "link_href", "links_to_image").otherwise("embeds")
    image_attention = attention(F.col("source"), F.col("width"), F.col("height"))
    parts = [
        _edges(followed, "src_url", "page", "dst_url", "page", F.lit("links_to"), "src_url"),
        _edges(embeds, "page_url", "page", "image_key", "image", image_kind, "page_url", image_attention),
        _edges(site_links, "src_host", "host", "dst_host", "host", F.lit("host_links_to"), "src_url"),
        _edges(site_links, "src_domain", "domain", "dst_domain", "domain", F.lit("domain_links_to"), "src_url"),
    ]
    edges = (
        reduce(DataFrame.unionByName, parts)
        .where(~((F.col("src_kind") == F.col("dst_kind")) & (F.col("src_name") == F.col("dst_name"))))
        .groupBy("src_kind", "src_name", "dst_kind", "dst_name", "kind")
        .agg(F.countDistinct("via").cast("double").alias("pages"), F.max("attention").alias("attention"))
        .select(
            vertex_id(F.col("src_kind"), F.col("src_name")).alias("src"),
            vertex_id(F.col("dst_kind"), F.col("dst_name")).alias("dst"),
            "kind",
            F.when(F.col("kind").isin("host_links_to", "domain_links_to"), F.col("pages"))
            .otherwise(F.col("attention")).alias("weight"),
        )
    )
    return vertices, edges


def id_collisions(vertices: DataFrame) -> list[dict]:
    """Ids shared by more than one (kind, name): each would merge two vertices."""
    shared = (
        vertices.groupBy("id")
        .agg(F.count(F.lit(1)).alias("n"), F.collect_list(F.concat_ws(":", "kind", "name")).alias("names"))
        .where(F.col("n") > 1)
    )
    return [{"id": r["id"], "names": r["names"][:10]} for r in shared.limit(100).collect()]


def run_build_graph(spark: SparkSession, inputs: list[str], output: str) -> dict:
    """Merge extraction outputs into GRAPH_DIR/vertices and GRAPH_DIR/edges; returns the report."""
    with Stage(spark, "build_graph", output, {"input": list(inputs)}) as stage:
        folders = [stage.input(path, "extract") for path in inputs]
        pages, embeds, links = read_extracts(spark, folders)
        vertices, edges = build_graph(pages, embeds, links)
        written_vertices = stage.write("vertices", vertices)
        written_edges = stage.write("edges", edges)
        collisions = id_collisions(written_vertices)
        if collisions:
            raise ValueError(f"vertex id collisions (xxhash64 of kind:name): {collisions[:3]}")
        stage.report.update({
            "vertices_by_kind": {r["kind"]: r["count"] for r in written_vertices.groupBy("kind").count().collect()},
            "edges_by_kind": {r["kind"]: r["count"] for r in written_edges.groupBy("kind").count().collect()},
            "id_collisions": collisions,
            "crawls": sorted(r["crawl"] for r in pages.select("crawl").where(F.col("crawl").isNotNull())
                             .distinct().collect()),
        })
    return stage.report
