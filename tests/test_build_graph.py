"""The graph stage on extraction outputs: ids, edge kinds, merging, host and domain graphs."""

import os
import shutil

import pytest
from pyspark.sql import functions as F

from imagerank.crawl.extract import run_extract
from imagerank.graph.build import run_build_graph
from imagerank.urls import normalize

from conftest import shared_file, table, write_committed


@pytest.fixture(scope="module")
def extract_dir(sample_pipeline):
    """The session's extraction of the sample (sample_pipeline's); read here, never written."""
    return str(sample_pipeline["root"] / "extract")


@pytest.fixture(scope="module")
def graph(spark, sample_pipeline):
    """The session's graph of the sample (sample_pipeline's: build_graph's defaults)."""
    out = str(sample_pipeline["root"] / "graph")
    return out, sample_pipeline["graph_report"], table(spark, out, "vertices"), table(spark, out, "edges")


def test_vertices_and_ids(spark, graph, extract_dir):
    _, report, vertices, _ = graph
    # dense ids: 0..N-1, the position of (kind, name) in sorted order; they cannot collide
    assert report["vertex_ids"] == {"vertices": vertices.count(), "max_id": vertices.count() - 1}
    assert vertices.count() == vertices.select("id").distinct().count()
    ordered = [(r["kind"], r["name"]) for r in vertices.orderBy("id").collect()]
    assert ordered == sorted(ordered)
    pages = table(spark, extract_dir, "pages")
    # every fetched page is a vertex; link targets that were never fetched are vertices too
    fetched = pages.select(F.col("url").alias("name")).distinct()
    page_vertices = vertices.filter("kind = 'page'")
    assert fetched.join(page_vertices, on="name", how="left_anti").count() == 0
    assert page_vertices.count() == report["vertices_by_kind"]["page"] >= fetched.count()
    assert {r["name"] for r in vertices.filter("kind = 'domain'").collect()} == {
        "openmuseum.org", "photo-forum.net", "citynews.co.uk", "example.com", "travelnotes.io", "bigfarm-seo.biz"}


@pytest.mark.parametrize("adaptive", [False, True], ids=["planned", "adaptive"])
def test_the_vertices_read_the_links_once_and_collapse_in_the_sort_that_numbers_them(spark, extract_dir, adaptive):
    """The vertex plan, as planned and as adaptive execution (the jobs' default) ran it: the page
    links are scanned once (the host and domain rows reuse the page rows' shuffle), and the rows
    of one vertex become one inside the range partitions of the numbering sort, with no shuffle
    of their own on (kind, name)."""
    import re

    from imagerank import commit
    from imagerank.graph.build import assign_ids, build_graph, collapse_vertices, read_extracts

    saved = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", str(adaptive).lower())
    ordered = None
    try:
        rows, _ = build_graph(*read_extracts(spark, [commit.current_run(extract_dir, "extract")]))
        _, ordered = assign_ids(rows, collapse=collapse_vertices)  # runs: its offsets are collected
        plan = ordered._jdf.queryExecution().executedPlan().toString()  # with the persisted plan under it
    finally:
        if ordered is not None:
            ordered.unpersist()
        spark.conf.set("spark.sql.adaptive.enabled", saved)
    if adaptive:
        assert "isFinalPlan=true" in plan
        plan = plan.split("== Initial Plan ==")[0]  # the persisted plan as it ran
    assert len(re.findall(r"FileScan parquet \[[^\]]*dst_host#", plan)) == 1  # page_links (its path is cut short)
    assert plan.count("Exchange rangepartitioning(kind") == 1
    assert not re.search(r"Exchange hashpartitioning\(kind#\d+, name#\d+, \d+\)", plan)


def test_the_report_says_what_spark_shuffled_per_input_row(spark, graph, sample_pipeline):
    """The graph stage's report: the rows it read (what its extraction wrote) and what Spark
    counted for its own jobs alone (a job run after it, or before it, is not its)."""
    from imagerank.spark_metrics import SparkAccounting

    _, report, _, edges = graph
    written = sample_pipeline["extract_report"]["rows_written"]
    assert report["input_rows"] == written["pages"] + written["image_embeds"] + written["page_links"] > 0
    counted = report["spark"]
    assert counted["jobs"] > 3 and counted["stage_attempts"] > counted["jobs"] // 2
    assert counted["stages_not_retained"] == 0 and counted["failed_tasks"] == 0
    assert counted["shuffle_write_bytes"] > 0 and counted["shuffle_read_bytes"] > 0
    assert counted["shuffle_write_bytes_per_input_row"] == round(counted["shuffle_write_bytes"] / report["input_rows"], 1)
    assert counted["output_bytes"] > 0 and counted["executor_run_seconds"] > 0
    assert counted["shuffle_write_seconds"] > 0 and counted["jvm_gc_seconds"] >= 0  # a shuffle took time to write
    # the accounting on its own: one shuffle after entry, inside a group the thread already had
    spark.sparkContext.setJobGroup("outer", "a caller's group")
    try:
        edges.groupBy("kind").count().collect()  # before entry: not counted
        accounting = SparkAccounting(spark, "probe")
        assert accounting.group == "outer"
        edges.repartition(3).groupBy("src").count().collect()
        totals = accounting.totals()
        accounting.close()
        assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") == "outer"
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert totals["jobs"] >= 1 and totals["shuffle_write_records"] >= edges.count()
    fresh = SparkAccounting(spark, "probe")
    assert fresh.group.startswith("imagerank-probe-") and fresh.totals()["jobs"] == 0
    fresh.close()
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def test_shuffles_are_sized_to_the_input_and_the_setting_put_back(spark, graph, extract_dir, tmp_path):
    """The stage raises the shuffle partitions to its input (input rows x its bytes per row over
    spark.imagerank.shufflePartitionBytes), never lowers them, reports how, and puts the session's
    setting back; the graph is the same at any count. A size that is not one fails in one line."""
    from conftest import sql_conf
    from imagerank.graph.build import SHUFFLE_BYTES_PER_ROW
    from imagerank.stage import StageError

    _, report, vertices, edges = graph
    configured = int(spark.conf.get("spark.sql.shuffle.partitions"))
    rows = report["input_rows"]
    assert report["shuffle_sizing"] == {"rows": {"input": rows}, "bytes_per_row": {"input": SHUFFLE_BYTES_PER_ROW},
                                        "partition_bytes": 128 * 2**20, "configured": configured,
                                        "partitions": configured}  # the sample needs no more
    target = rows * SHUFFLE_BYTES_PER_ROW // (configured + 2)  # a few partitions more than configured
    with sql_conf(spark, {"spark.imagerank.shufflePartitionBytes": f"{target}b"}):
        raised = run_build_graph(spark, [extract_dir], str(tmp_path / "raised"))
        assert spark.conf.get("spark.sql.shuffle.partitions") == str(configured)
    wanted = -(-rows * SHUFFLE_BYTES_PER_ROW // target)
    assert wanted > configured
    assert raised["shuffle_sizing"]["partitions"] == raised["shuffle_partitions"] == wanted
    assert raised["vertex_ids"] == report["vertex_ids"]
    assert table(spark, tmp_path / "raised", "vertices").exceptAll(vertices).count() == 0
    assert table(spark, tmp_path / "raised", "edges").exceptAll(edges).count() == 0
    with sql_conf(spark, {"spark.imagerank.shufflePartitionBytes": "lots"}):
        with pytest.raises(StageError, match="shufflePartitionBytes='lots' is not a size"):
            run_build_graph(spark, [extract_dir], str(tmp_path / "refused"))
    assert not (tmp_path / "refused" / "_CURRENT").exists()


def test_keys_that_collide_still_give_every_edge_its_own_vertices(spark, graph, extract_dir, tmp_path, monkeypatch):
    """The edges are collapsed and numbered on 64-bit vertex keys; narrowed to 5 bits, most of the
    sample's vertices share a key with another, and the graph is still the same, edge for edge."""
    from imagerank.graph import build

    _, report, vertices, edges = graph
    assert report["key_collisions"] == 0
    monkeypatch.setattr(build, "KEY_BITS", 5)
    narrow = run_build_graph(spark, [extract_dir], str(tmp_path / "narrow"))
    assert narrow["key_collisions"] > vertices.count() // 2  # 32 keys for every vertex
    assert narrow["vertex_ids"] == report["vertex_ids"]

    def rows(frame):
        return sorted(tuple(r) for r in frame.select("src", "dst", "kind", "weight").collect())

    assert rows(table(spark, tmp_path / "narrow", "edges")) == rows(edges)
    assert table(spark, tmp_path / "narrow", "vertices").exceptAll(vertices).count() == 0


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
    shutil.rmtree(broken / "_commits")  # runs, none committed
    with pytest.raises(Exception, match="has no committed run"):
        run_build_graph(spark, [str(broken)], str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def _extract_of(spark, folder, pages, embeds, links, crawl="CC-TEST"):
    """A committed extract run from rows made the way extraction makes them (imagerank.urls.site_of)."""
    from imagerank.crawl.schemas import IMAGE_EMBEDS, PAGE_LINKS, PAGES
    from imagerank.urls import image_key, site_of

    def page(url):
        host, domain = site_of(url)
        return {"url": url, "host": host, "domain": domain, "crawl": crawl, "fetch_time": None, "status": 200,
                "title": None, "n_images": 0, "n_links": 0, "warc_filename": None, "warc_record_offset": None,
                "warc_record_length": None}

    def embed(page_url, image_url, source, nofollow=None):
        host, domain = site_of(image_url)
        return {"page_url": page_url, "image_url": image_url, "image_key": image_key(image_url), "image_host": host,
                "image_domain": domain, "source": source, "alt": None, "title": None, "width": None, "height": None,
                "position": 0, "nofollow": nofollow}

    def link(src, dst, nofollow=False):
        (src_host, src_domain), (dst_host, dst_domain) = site_of(src), site_of(dst)
        return {"src_url": src, "src_host": src_host, "src_domain": src_domain, "dst_url": dst, "dst_host": dst_host,
                "dst_domain": dst_domain, "nofollow": nofollow}

    write_committed(spark, folder, "extract", {
        "pages": spark.createDataFrame([page(u) for u in pages], PAGES),
        "image_embeds": spark.createDataFrame([embed(*e) for e in embeds], IMAGE_EMBEDS),
        "page_links": spark.createDataFrame([link(*lk) for lk in links], PAGE_LINKS),
    }, {})


def test_hosts_come_from_extraction_and_fetched_pages_are_pages(spark, tmp_path):
    """Real-world URLs Spark's parse_url fails on, typo hosts, IP hosts, and Wikimedia's File: pages."""
    main, file_page = "https://commons.example.org/wiki/Main", "https://commons.example.org/wiki/File:Foo.jpg"
    underscore, typo, ip = "http://my_site.example.org/", "http://www1/intranet", "http://10.0.0.1/admin"
    braces = normalize("https://a.org/s?q={{id}}|^%")
    _extract_of(
        spark, str(tmp_path / "extract"),
        pages=[main, file_page, underscore, typo],
        embeds=[(main, file_page, "link_href"), (main, "https://img.example.org/x.jpg", "link_href"),
                (main, "https://img.example.org/y.png", "img_src"), (underscore, "https://img.example.org/y.png", "img_src")],
        links=[(main, underscore), (underscore, main), (main, typo), (main, ip), (main, braces), (typo, main)],
    )
    run_build_graph(spark, [str(tmp_path / "extract")], str(tmp_path / "graph"))
    vertices = table(spark, tmp_path / "graph", "vertices")
    edges = table(spark, tmp_path / "graph", "edges")
    named = {r["id"]: (r["kind"], r["name"]) for r in vertices.collect()}
    got = {(named[r["src"]], named[r["dst"]], r["kind"]) for r in edges.collect()}
    # the crawl fetched File:Foo.jpg as a page: a page link, not an image; an unfetched .jpg stays an image
    assert (("page", main), ("page", file_page), "links_to") in got
    assert ("image", file_page) not in named.values()
    assert (("page", main), ("image", "https://img.example.org/x.jpg"), "links_to_image") in got
    # hosts with '_' and URLs with {}|^% are in the host graph; one-label and IP hosts are not
    assert {n for k, n in named.values() if k == "host"} == {"commons.example.org", "my_site.example.org", "a.org"}
    assert {n for k, n in named.values() if k == "domain"} == {"example.org", "a.org"}
    assert (("host", "commons.example.org"), ("host", "my_site.example.org"), "host_links_to") in got
    assert (("host", "commons.example.org"), ("host", "a.org"), "host_links_to") in got
    typo_page = vertices.where(F.col("name") == typo).first()
    assert (typo_page["host"], typo_page["domain"]) == ("www1", None)  # a page still, with no domain
    assert (("page", typo), ("page", main), "links_to") in got
    image = vertices.where(F.col("name") == "https://img.example.org/y.png").first()
    assert (image["host"], image["domain"]) == ("img.example.org", "example.org")
    # asked for, IP hosts are kept
    report = run_build_graph(spark, [str(tmp_path / "extract")], str(tmp_path / "with_ip"), keep_ip_hosts=True)
    assert report["vertices_by_kind"]["host"] == 4 and report["pages_without_public_host"] == 1


def test_an_image_is_its_most_embedded_variant(spark, tmp_path):
    """Size variants of one Flickr photo fold into one image vertex, named by its key: the URL is
    the variant the most pages embed (here served from another host than the rest), ties going to
    the smallest URL; the host and domain are that URL's."""
    photo = "65535/51234567890_abcdef1234"
    large, medium = f"https://farm1.staticflickr.com/{photo}_b.jpg", f"https://live.staticflickr.com/{photo}_z.jpg"
    tied_a, tied_b = "https://live.staticflickr.com/1/222_aa_b.jpg", "https://live.staticflickr.com/1/222_aa_z.jpg"
    pages = [f"https://a.org/{i}" for i in range(3)]
    _extract_of(spark, str(tmp_path / "extract"), pages=pages, links=[],
                embeds=[(pages[0], large, "img_src"), (pages[1], large, "img_src"),
                        # more rows than the large one, from one page: pages count, not rows
                        (pages[2], medium, "img_src"), (pages[2], medium, "img_srcset"), (pages[2], medium, "lazy_src"),
                        (pages[0], tied_b, "img_src"), (pages[1], tied_a, "img_src")])
    report = run_build_graph(spark, [str(tmp_path / "extract")], str(tmp_path / "graph"))
    assert report["vertices_by_kind"]["image"] == 2
    images = {r["name"]: (r["url"], r["host"], r["domain"])
              for r in table(spark, tmp_path / "graph", "vertices").where("kind = 'image'").collect()}
    assert images == {"flickr:51234567890": (large, "farm1.staticflickr.com", "staticflickr.com"),
                      "flickr:222": (tied_a, "live.staticflickr.com", "staticflickr.com")}


def test_a_host_is_one_vertex_whatever_domain_its_rows_carry(spark, tmp_path):
    """Two extractions, the second of a later crawl made with a Public Suffix List where
    example.com is a public suffix (www.a.example.com's registered domain: a.example.com, not
    example.com). The host stays one vertex, so its edges are not doubled; ids stay 0..N-1, one
    per (kind, name)."""
    one, two, three = (f"https://www.a.example.com/{i}" for i in (1, 2, 3))
    other = "https://b.org/"
    _extract_of(spark, str(tmp_path / "old"), pages=[one, two, other], embeds=[],
                links=[(one, other), (two, other), (other, one)])
    _extract_of(spark, str(tmp_path / "later"), pages=[one, three, other], embeds=[],
                links=[(one, other), (three, other), (other, one)])
    newer = F.create_map(F.lit("www.a.example.com"), F.lit("a.example.com"))

    def relabel(frame, host, domain):  # the later extraction's domains, as its suffix list gives them
        return frame.withColumn(domain, F.coalesce(newer[F.col(host)], F.col(domain)))

    later = {name: table(spark, tmp_path / "later", name) for name in ("pages", "image_embeds", "page_links")}
    write_committed(spark, tmp_path / "new", "extract", {
        "pages": relabel(later["pages"], "host", "domain"),
        "image_embeds": later["image_embeds"],
        "page_links": relabel(relabel(later["page_links"], "src_host", "src_domain"), "dst_host", "dst_domain"),
    }, {})
    single = run_build_graph(spark, [str(tmp_path / "old")], str(tmp_path / "single"))
    merged = run_build_graph(spark, [str(tmp_path / "old"), str(tmp_path / "new")], str(tmp_path / "merged"))
    vertices = table(spark, tmp_path / "merged", "vertices")
    edges = table(spark, tmp_path / "merged", "edges")
    hosts = vertices.where("kind = 'host' AND name = 'www.a.example.com'").collect()
    assert len(hosts) == 1 and hosts[0]["domain"] == "a.example.com"  # the longer, more specific domain
    host_id = hosts[0]["id"]
    host_edges = edges.where(F.col("kind") == "host_links_to")
    assert host_edges.where(F.col("src") == host_id).count() == 1  # to b.org, once
    assert host_edges.where(F.col("dst") == host_id).count() == 1  # from b.org, once
    assert merged["edges_by_kind"]["host_links_to"] == single["edges_by_kind"]["host_links_to"] == 2
    assert merged["vertices_by_kind"]["host"] == single["vertices_by_kind"]["host"] == 2
    assert merged["vertices_by_kind"]["page"] == 4  # a page is one vertex too, with the same domain as its host
    assert {r["domain"] for r in vertices.where(F.col("name").isin(one, two, three)).collect()} == {
        "example.com", "a.example.com"}  # two was only seen with the old list; one with both: the longer
    assert vertices.where(F.col("name") == one).first()["domain"] == "a.example.com"
    # ids: one per (kind, name), dense
    n = vertices.count()
    assert merged["vertex_ids"] == {"vertices": n, "max_id": n - 1}
    assert vertices.select("id").distinct().count() == vertices.select("kind", "name").distinct().count() == n
    # both registered domains stay domain vertices: the domain edges come from each row's own domain
    assert {r["name"] for r in vertices.where("kind = 'domain'").collect()} == {"example.com", "a.example.com",
                                                                                   "b.org"}


def _named_edges(spark, folder):
    vertices = {r["id"]: (r["kind"], r["name"]) for r in table(spark, folder, "vertices").collect()}
    return {(vertices[r["src"]][1], vertices[r["dst"]][1], r["kind"], r["weight"])
            for r in table(spark, folder, "edges").collect()}


def test_a_later_crawl_replaces_the_pages_it_fetched_again(spark, tmp_path):
    """Next month: the second crawl fetches page a again (other links, another image), fetches a
    new page d, and not b. Built as --previous GRAPH --input NEW: a's edges are the second crawl's
    alone, b keeps the first crawl's, each page vertex names the crawl its links come from. With
    --max-crawl-age 1, b is no longer a fetched page and its links are gone."""
    a, b, c, d = (f"https://site{i}.org/" for i in "abcd")
    img = [f"https://img.org/{i}.jpg" for i in range(4)]
    old, new = "CC-MAIN-2024-10", "CC-MAIN-2024-18"
    _extract_of(spark, str(tmp_path / "march"), pages=[a, b], crawl=old,
                embeds=[(a, img[1], "img_src"), (b, img[2], "img_src")], links=[(a, b), (a, c), (b, a)])
    _extract_of(spark, str(tmp_path / "april"), pages=[a, d], crawl=new,
                embeds=[(a, img[3], "img_src"), (d, img[1], "img_src")], links=[(a, d), (d, a)])
    run_build_graph(spark, [str(tmp_path / "march")], str(tmp_path / "graph"))
    report = run_build_graph(spark, [str(tmp_path / "april")], str(tmp_path / "graph"), previous=str(tmp_path / "graph"))
    pages = {(s, t) for s, t, kind, _ in _named_edges(spark, tmp_path / "graph") if kind == "links_to"}
    images = {(s, t) for s, t, kind, _ in _named_edges(spark, tmp_path / "graph") if kind == "embeds"}
    assert pages == {(a, d), (d, a), (b, a)} and images == {(a, img[3]), (d, img[1]), (b, img[2])}
    crawls = {r["name"]: r["crawl"] for r in table(spark, tmp_path / "graph", "vertices").where("kind = 'page'").collect()}
    assert crawls == {a: new, b: old, d: new}  # c, linked from a's old version alone, is gone with it
    assert [(e["input"].rsplit("/", 1)[1], e["crawls"]) for e in report["extractions"]] == [("march", [old]),
                                                                                           ("april", [new])]
    assert report["pages_superseded"] == 1 and report["crawls"] == [old, new] and report["extractions_expired"] == []
    aged = run_build_graph(spark, [str(tmp_path / "april")], str(tmp_path / "aged"), previous=str(tmp_path / "graph"),
                           max_crawl_age=1)
    assert {(s, t) for s, t, kind, _ in _named_edges(spark, tmp_path / "aged") if kind == "links_to"} == {(a, d), (d, a)}
    assert [e["input"].rsplit("/", 1)[1] for e in aged["extractions_expired"]] == ["march"]
    assert aged["crawls"] == [new] and aged["pages_superseded"] is None
