"""The graph stage on extraction outputs: ids, edge kinds, merging, host and domain graphs."""

import os
import shutil

import pytest
from pyspark.sql import functions as F

from imagerank.crawl.extract import run_extract
from imagerank.graph.build import run_build_graph

from conftest import shared_file, table


@pytest.fixture(scope="module")
def extract_dir(spark, sample_crawl, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("g") / "extract")
    run_extract(spark, sample_crawl["manifest"], out)
    return out


@pytest.fixture(scope="module")
def graph(spark, extract_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("g") / "graph")
    report = run_build_graph(spark, [extract_dir], out)
    return out, report, table(spark, out, "vertices"), table(spark, out, "edges")


def test_vertices_and_ids(spark, graph, extract_dir):
    _, report, vertices, _ = graph
    assert report["id_collisions"] == []
    assert vertices.count() == vertices.select("id").distinct().count()
    pages = table(spark, extract_dir, "pages")
    # every fetched page is a vertex; link targets that were never fetched are vertices too
    fetched = pages.select(F.col("url").alias("name")).distinct()
    page_vertices = vertices.filter("kind = 'page'")
    assert fetched.join(page_vertices, on="name", how="left_anti").count() == 0
    assert page_vertices.count() == report["vertices_by_kind"]["page"] >= fetched.count()
    # the id is xxhash64("kind:name"): recomputing it gives the same value
    row = vertices.filter("kind = 'domain' and name = 'citynews.co.uk'").collect()[0]
    expected = spark.sql("select xxhash64('domain:citynews.co.uk') as h").collect()[0]["h"]
    assert row["id"] == expected
    assert {r["name"] for r in vertices.filter("kind = 'domain'").collect()} == {
        "openmuseum.org", "photo-forum.net", "citynews.co.uk", "example.com", "travelnotes.io", "bigfarm-seo.biz"}


def test_edges_collapse_and_drop_self_loops(graph):
    _, report, vertices, edges = graph
    assert edges.filter("src = dst").count() == 0
    assert edges.count() == edges.select("src", "dst", "kind").distinct().count()
    ids = vertices.select(F.col("id").alias("src"))
    assert edges.join(ids, on="src", how="left_anti").count() == 0
    assert set(report["edges_by_kind"]) == {"links_to", "embeds", "links_to_image", "host_links_to", "domain_links_to"}
    assert edges.filter("kind = 'links_to'").filter("weight != 1.0").count() == 0
    assert edges.filter("kind = 'links_to_image'").filter("weight != 0.5").count() == 0
    # embeds carry the image's attention weight: og:image 2, <img> 1 (docs/design.md)
    embed_weights = {r["weight"] for r in edges.filter("kind = 'embeds'").select("weight").distinct().collect()}
    assert {1.0, 2.0} <= embed_weights <= {0.0, 0.1, 1.0, 2.0}


def test_vertices_know_their_site(graph):
    _, _, vertices, _ = graph
    assert vertices.filter("kind in ('page', 'image', 'host') and (host is null or domain is null)").count() == 0
    farm_page = vertices.filter("kind = 'page' and host = 'www.bigfarm-seo.biz'").collect()[0]
    assert farm_page["domain"] == "bigfarm-seo.biz" and farm_page["url"] == farm_page["name"]
    # an image's url is one of its variants and its host serves that url
    image = vertices.filter("kind = 'image' and name like 'wikimedia:%'").collect()[0]
    assert image["host"] == "upload.wikimedia.org" and image["domain"] == "wikimedia.org"
    assert image["url"].startswith("https://upload.wikimedia.org/")


def test_nofollow_links_carry_no_edge(spark, graph, extract_dir):
    _, _, vertices, edges = graph
    links = table(spark, extract_dir, "page_links")
    only_nofollow = links.filter("nofollow").select("src_url", "dst_url").limit(1).collect()[0]
    names = vertices.filter("kind = 'page'").select("id", "name")
    src = names.filter(F.col("name") == only_nofollow["src_url"]).collect()[0]["id"]
    dst = names.filter(F.col("name") == only_nofollow["dst_url"]).collect()[0]["id"]
    assert edges.filter((F.col("src") == src) & (F.col("dst") == dst) & (F.col("kind") == "links_to")).count() == 0


def test_host_graph_weight_counts_linking_pages(spark, graph):
    _, _, vertices, edges = graph
    hosts = vertices.filter("kind = 'host'").select("id", "name")
    host_edges = (edges.filter("kind = 'host_links_to'")
                  .join(hosts.withColumnRenamed("id", "src").withColumnRenamed("name", "src_host"), on="src")
                  .join(hosts.withColumnRenamed("id", "dst").withColumnRenamed("name", "dst_host"), on="dst"))
    assert host_edges.filter("src_host = dst_host").count() == 0
    assert host_edges.count() > 0 and host_edges.agg(F.max("weight")).collect()[0][0] > 1


def test_merging_extracts_and_refusing_incomplete_ones(spark, extract_dir, graph, tmp_path):
    out, report, _, _ = graph
    whirlwind = str(tmp_path / "whirlwind")
    run_extract(spark, str(shared_file("warc", "whirlwind", "whirlwind.warc.gz")), whirlwind)
    merged = run_build_graph(spark, [extract_dir, whirlwind], str(tmp_path / "merged"))
    assert merged["vertices_by_kind"]["page"] > report["vertices_by_kind"]["page"]
    # the whirlwind page links to 8 registered domains: archive.org, creativecommons.org,
    # mediawiki.org, wikidata.org, wikimedia.de, wikimedia.org, wikimediafoundation.org, wikipedia.org
    assert merged["vertices_by_kind"]["domain"] == report["vertices_by_kind"]["domain"] + 8
    again = run_build_graph(spark, [extract_dir, extract_dir], str(tmp_path / "twice"))
    assert again["vertices_by_kind"] == report["vertices_by_kind"]
    assert again["edges_by_kind"] == report["edges_by_kind"]
    broken = tmp_path / "broken"
    shutil.copytree(extract_dir, broken)
    os.remove(broken / "_CURRENT")
    with pytest.raises(Exception):
        run_build_graph(spark, [str(broken)], str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
