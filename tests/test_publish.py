"""The published table on the sample: matching catalog images to the crawl, popularity, the score,
coverage, the TSV, and the output's all-or-nothing replacement."""

import json

import pytest

from imagerank.catalog.publish import SITE_WEIGHT, run_publish
from imagerank.sample import FLICKR_IDS

from conftest import most_shuffle_rows_per_task, run_dir, sql_conf, table, write_committed


@pytest.fixture(scope="module")
def published(spark, sample_published):
    root = sample_published["root"]
    return root, sample_published["report"], table(spark, root / "table", "authority")


def test_one_row_per_usable_catalog_image(published):
    root, report, table = published
    assert report["catalog"]["rows_read"] == 26
    assert report["catalog"]["skipped"] == {"missing_provider": 1, "duplicate_identifier": 1}
    assert report["warnings"] == [] and report["matching"]["with_popularity_row"] == sum(
        c["popularity_observed"] for c in report["coverage"]) > 0
    assert table.count() == report["rows_written"] == 24 == table.select("identifier").distinct().count()
    assert sorted(p.name for p in (run_dir(root / "table") / "authority").iterdir() if p.name.startswith("provider=")) == [
        "provider=flickr", "provider=openmuseum", "provider=wikimedia"]
    rows = table.collect()
    # each row names the crawls its crawl signals come from: none where nothing matched the crawl
    matched = [r for r in rows if r["image_match"] or r["landing_match"]]
    assert 0 < len(matched) < len(rows) and all(r["crawls"] == ["CC-MAIN-2099-01"] for r in matched)
    assert all(r["crawls"] == [] for r in rows if r not in matched) and rows[0]["computed_at"] is not None


def test_the_shuffles_are_sized_to_the_catalog_and_the_ranks(published, sample_pipeline):
    _, report, _ = published
    sizing = report["shuffle_sizing"]
    assert sizing["rows"] == {"catalog": 24, "rank": sum(sample_pipeline["rank_report"]["rows"].values())}
    assert sizing["partitions"] == report["shuffle_partitions"] == sizing["configured"] == 2  # the sample needs no more


def test_images_match_the_crawl_through_their_keys(spark, published, sample_pipeline):
    _, _, authority = published
    rows = {r["image_key"]: r for r in authority.collect()}
    images = {r["image_key"]: r for r in table(
        spark, sample_pipeline["root"] / "rank", "image_authority").collect()}
    # the catalog names Flickr's _b size variant; the crawl embeds other sizes: one key
    for photo_id in FLICKR_IDS:
        key = f"flickr:{photo_id}"
        assert rows[key]["authority_raw"] == images[key]["authority"] > 0
        assert 0 < rows[key]["authority"] < 1
    assert rows["flickr:52345678999"]["authority_raw"] is None  # on no crawled page
    # museum images: matched by image and by landing page (a page of the crawl)
    museum = authority.where("provider = 'openmuseum' and image_key like '%photos/0%'").collect()
    assert museum and all(r["landing_page_rank"] > 0 and r["domain_authority"] > 0 for r in museum)


def test_popularity_score_and_coverage(published):
    root, report, table = published
    rows = table.collect()
    by_provider = {}
    for r in rows:
        by_provider.setdefault(r["provider"], set()).add(r["popularity_source"])
    assert by_provider == {"flickr": {"observed"}, "wikimedia": {"observed"}, "openmuseum": {"none"}}
    for r in rows:
        authority, popularity = r["authority"] or 0.0, r["popularity"] or 0.0
        site = r["domain_authority"]
        c = report["saturation"]["domain_authority"]["constant"]
        site_saturated = 0.0 if site is None else site / (site + c)
        expected = 1 - (1 - authority) * (1 - popularity) * (1 - SITE_WEIGHT * site_saturated)
        assert r["score"] == pytest.approx(expected, abs=1e-12)
        assert 0.0 <= r["score"] <= 1.0
    # authority saturates like popularity: the 85th-percentile image scores 0.85
    constant = report["saturation"]["authority"]
    assert constant["value"] / (constant["value"] + constant["constant"]) == pytest.approx(0.85)
    coverage = {c["provider"]: c for c in report["coverage"]}
    assert coverage["flickr"] == {"provider": "flickr", "images": 5, "crawl_image": 4, "image_exact": 4,
                                  "image_match_key": 0, "landing_page": 0, "landing_exact": 0,
                                  "landing_match_key": 0, "landing_wikimedia_file": 0, "domain": 4, "nothing": 1,
                                  "popularity_observed": 5}
    assert coverage["openmuseum"]["landing_page"] == 12 and coverage["openmuseum"]["nothing"] == 0
    assert coverage["wikimedia"]["crawl_image"] == 5 and coverage["wikimedia"]["nothing"] == 1


def test_scores_tsv_is_bulk_loadable(published):
    root, _, table = published
    lines = [line for part in sorted((run_dir(root / "table") / "scores_tsv").glob("part-*"))
             for line in part.read_text().splitlines()]
    scores = {r["identifier"]: r["score"] for r in table.collect()}
    assert len(lines) == len(scores)
    for line in lines:
        identifier, value = line.split("\t")
        assert float(value) == pytest.approx(scores[identifier], abs=1e-9)


def test_publish_replaces_its_output_whole_and_refuses_unfinished_inputs(spark, published, sample_pipeline, tmp_path):
    root, report, _ = published
    again = run_publish(spark, sample_pipeline["catalog"], str(root / "rank"), str(root / "popularity"),
                        str(root / "table"))
    assert again["rows_written"] == report["rows_written"]
    assert table(spark, root / "table", "authority").count() == report["rows_written"]
    with pytest.raises(Exception, match="_CURRENT"):
        run_publish(spark, sample_pipeline["catalog"], str(tmp_path), str(root / "popularity"), str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()
    missing = tmp_path / "catalog.jsonl"
    missing.write_text('{"identifier": "x", "provider": "flickr", "url": "https://a.org/x.jpg"}\n')
    with pytest.raises(ValueError, match="foreign_landing_url"):
        run_publish(spark, str(missing), str(root / "rank"), str(root / "popularity"), str(tmp_path / "t"))


TORRE = "https://upload.wikimedia.org/wikipedia/commons/e/e2/TorreFerrer.jpg"  # a real Openverse record's


def _crawl(spark, root, images, pages, domains):
    """A committed rank output made by hand: image_authority, page_rank, domain_rank."""
    write_committed(spark, root / "rank", "rank", {
        "image_authority": spark.createDataFrame(
            [(i, key, key if key.startswith("http") else None, authority, site, domain)
             for i, (key, authority, site, domain) in enumerate(images)],
            "id long, image_key string, image_url string, authority double, domain_authority double, "
            "image_domain string"),
        "page_rank": spark.createDataFrame(
            [(i, url, None, domain, rank) for i, (url, domain, rank) in enumerate(pages)],
            "id long, url string, host string, domain string, pagerank double"),
        "domain_rank": spark.createDataFrame(list(enumerate(domains.items())),
                                             "id long, d struct<domain: string, pagerank: double>")
        .select("id", "d.domain", "d.pagerank"),
    }, {"crawls": ["TEST"]})


def _catalog(root, rows):
    path = root / "catalog.jsonl"
    path.write_text("".join(json.dumps({"identifier": i, "provider": p, "url": u, "foreign_landing_url": l,
                                        "meta_data": {"views": 1}}) + "\n" for i, p, u, l in rows))
    return str(path)


def test_catalog_meets_crawl_variants_and_coverage_counts_each_rule(spark, tmp_path):
    """http/https, cache busters, www., trailing slashes, tracking parameters, the old Flickr farm
    hosts and Commons' ?curid= landing pages all meet their crawl twins; crawl rows sharing a key
    count once, with their largest value; each rule is counted per provider."""
    _crawl(spark, tmp_path, images=[
        ("http://img.museum.org/a/1.jpg", 0.2, 0.3, "museum.org"),          # m1's, other scheme
        ("https://img.museum.org/a/1.jpg?ver=9", 0.3, 0.3, "museum.org"),   # m1's, another cache buster: larger
        ("https://img.museum.org/a/2.jpg", 0.1, 0.3, "museum.org"),         # m2's own URL
        ("http://img.museum.org/a/2.jpg", 0.05, 0.3, "museum.org"),         # m2's, other scheme: smaller
        ("https://elsewhere.net/a/1.jpg", 0.9, 0.1, "elsewhere.net"),       # a domain of no catalog row
        ("flickr:111", 0.4, 0.5, "staticflickr.com"),
        ("wikimedia:commons/TorreFerrer.jpg", 0.25, 0.6, "wikimedia.org"),
    ], pages=[
        ("http://www.museum.org/works/1", "museum.org", 0.05),
        ("https://museum.org/works/2", "museum.org", 0.04),
        ("https://www.museum.org/works/2/", "museum.org", 0.01),
        ("https://museum.org/works/3", "museum.org", 0.03),
        ("https://museum.org/works/5", None, 0.02),  # a URL whose domain the graph could not read
        ("https://flickr.com/photos/x/222", "flickr.com", 0.06),
        ("https://commons.wikimedia.org/wiki/File:TorreFerrer.jpg", "wikimedia.org", 0.07),
        ("https://commons.wikimedia.org/wiki/File:A_%28b%29.jpg", "wikimedia.org", 0.08),
    ], domains={"museum.org": 0.3, "flickr.com": 0.2, "staticflickr.com": 0.1, "wikimedia.org": 0.6,
                "elsewhere.net": 0.1})
    catalog = _catalog(tmp_path, [
        ("m1", "museum", "https://img.museum.org/a/1.jpg?v=3", "https://museum.org/works/1/"),
        ("m2", "museum", "https://img.museum.org/a/2.jpg", "https://museum.org/works/2"),
        ("m3", "museum", "https://img.museum.org/a/3.jpg", "https://museum.org/works/3?utm_source=feed"),
        ("m4", "museum", "https://other.example/x.jpg", None),
        ("m5", "museum", "https://img.museum.org/a/5.jpg", "https://museum.org/works/5/"),
        ("f1", "flickr", "http://farm3.static.flickr.com/2179/111_abcdef1234.jpg", None),
        ("f2", "flickr", "https://live.staticflickr.com/65535/222_abcdef1234_b.jpg",
         "https://www.flickr.com/photos/x/222/"),
        ("w1", "wikimedia", TORRE, "https://commons.wikimedia.org/w/index.php?curid=21214211"),
        ("w2", "wikimedia", "https://upload.wikimedia.org/wikipedia/commons/1/1a/A_(b).jpg",
         "https://commons.wikimedia.org/wiki/File:A_(b).jpg"),
    ])
    write_committed(spark, tmp_path / "pop", "popularity", {
        "popularity": spark.createDataFrame([], "identifier string, standardized double")}, {})
    report = run_publish(spark, catalog, str(tmp_path / "rank"), str(tmp_path / "pop"), str(tmp_path / "table"))
    rows = {r["identifier"]: r for r in table(spark, tmp_path / "table", "authority").collect()}
    got = {i: (r["authority_raw"], r["image_match"], r["landing_page_rank"], r["landing_match"], r["domain_authority"])
           for i, r in rows.items()}
    assert got == {
        "m1": (0.3, "match_key", 0.05, "match_key", 0.3),
        "m2": (0.1, "exact", 0.04, "exact", 0.3),
        "m3": (None, None, 0.03, "match_key", 0.3),
        "m4": (None, None, None, None, None),
        "m5": (None, None, 0.02, "match_key", 0.3),
        "f1": (0.4, "exact", None, None, 0.5),
        "f2": (None, None, 0.06, "match_key", 0.2),
        "w1": (0.25, "exact", 0.07, "wikimedia_file", 0.6),
        "w2": (None, None, 0.08, "match_key", 0.6),
    }
    assert rows["f1"]["image_key"] == "flickr:111"
    # a rank output without trust (written before TrustRank): trust is null, not 0; without --graph
    # nothing counts the pages showing a provider, so those are null too
    assert all(r["trust"] is None for r in rows.values())
    providers = {p["provider"]: p for p in report["provider_authority"]}
    assert providers["museum"]["sites"] == ["museum.org"] and providers["museum"]["domain_pagerank"] == 0.3
    assert providers["museum"]["trust"] is None and providers["museum"]["boost"] is not None
    assert all(p["pages_showing"] is None and p["domains_showing"] is None for p in providers.values())
    coverage = {c.pop("provider"): c for c in report["coverage"]}
    assert coverage == {
        "flickr": {"images": 2, "crawl_image": 1, "image_exact": 1, "image_match_key": 0, "landing_page": 1,
                   "landing_exact": 0, "landing_match_key": 1, "landing_wikimedia_file": 0, "domain": 2,
                   "nothing": 0, "popularity_observed": 0},
        "museum": {"images": 5, "crawl_image": 2, "image_exact": 1, "image_match_key": 1, "landing_page": 4,
                   "landing_exact": 1, "landing_match_key": 3, "landing_wikimedia_file": 0, "domain": 4,
                   "nothing": 1, "popularity_observed": 0},
        "wikimedia": {"images": 2, "crawl_image": 1, "image_exact": 1, "image_match_key": 0, "landing_page": 2,
                      "landing_exact": 0, "landing_match_key": 1, "landing_wikimedia_file": 1, "domain": 2,
                      "nothing": 0, "popularity_observed": 0},
    }


def _flickr_rows(spark, tmp_path, n: int) -> str:
    """A crawl with every third of n Flickr images and every seventh landing page, and a catalog of
    the n images (every second with a landing page), all under flickr.com and staticflickr.com."""
    _crawl(spark, tmp_path, images=[(f"flickr:{i}", 0.001 * (i % 50), 0.2, "staticflickr.com") for i in range(0, n, 3)],
           pages=[(f"https://www.flickr.com/photos/x/{i}", "flickr.com", 1e-4) for i in range(0, n, 7)],
           domains={"flickr.com": 0.2, "staticflickr.com": 0.1})
    return _catalog(tmp_path, [
        (f"f{i}", "flickr", f"https://live.staticflickr.com/65535/{i}_abcdef1234_b.jpg",
         f"https://www.flickr.com/photos/x/{i}/" if i % 2 else None) for i in range(n)])


def test_no_task_gathers_the_rows_of_one_domain(spark, tmp_path):
    """Every Flickr row has the same domains (flickr.com, staticflickr.com) and many have no landing
    page: no step of publish may send them all to one task. domain_rank is kept from being broadcast
    on its own (as at a full crawl's scale, ~1e8 domains), and AQE from merging the small partitions."""
    n = 3000
    catalog = _flickr_rows(spark, tmp_path, n)
    write_committed(spark, tmp_path / "pop", "popularity", {
        "popularity": spark.createDataFrame([], "identifier string, standardized double")}, {})
    report = {}
    with sql_conf(spark, {"spark.sql.shuffle.partitions": "8", "spark.sql.autoBroadcastJoinThreshold": "-1",
                          "spark.sql.adaptive.coalescePartitions.enabled": "false"}):
        most = most_shuffle_rows_per_task(spark, lambda: report.update(run_publish(
            spark, catalog, str(tmp_path / "rank"), str(tmp_path / "pop"), str(tmp_path / "table"))))
    flickr = report["coverage"][0]
    assert flickr["images"] == n and flickr["crawl_image"] == n // 3
    assert flickr["landing_page"] == len([i for i in range(0, n, 7) if i % 2])
    assert flickr["domain"] == n
    # one task holding the Flickr rows reads all n of them; spread over 8 tasks, a stage reading the
    # shuffles of two or three tables of n rows reads under 3n/8 per task
    assert most < n / 2, most


def test_trust_and_provider_authority_on_the_sample(spark, sample_pipeline, tmp_path):
    """The sample's museum is its trusted seed; flickr and wikimedia are measured, not trusted."""
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    report = run_publish(spark, catalog, str(root / "rank"), str(root / "popularity"), str(tmp_path / "table"),
                         graph=str(root / "graph"))
    rows = table(spark, tmp_path / "table", "authority").collect()
    images = {r["image_key"]: r for r in table(spark, root / "rank", "image_authority").collect()}
    for r in rows:  # trust is the image's trust saturated as authority is; null off the crawl
        if r["authority_raw"] is None:
            assert r["trust"] is None
        else:
            assert 0 <= r["trust"] < 1
    museum = [r for r in rows if r["provider"] == "openmuseum" and r["trust"] is not None]
    assert museum and max(r["trust"] for r in museum) > 0
    providers = {r["provider"]: r for r in table(spark, tmp_path / "table", "provider_authority").collect()}
    assert set(providers) == {"flickr", "openmuseum", "wikimedia"}
    museum_row = providers["openmuseum"]
    assert museum_row["sites"] == ["openmuseum.org"] and museum_row["trusted"] and museum_row["main_site"] == "openmuseum.org"
    domains = {r["domain"]: r for r in table(spark, root / "rank", "domain_rank").collect()}
    assert museum_row["domain_pagerank"] == domains["openmuseum.org"]["pagerank"]
    assert museum_row["trust"] == domains["openmuseum.org"]["trust"] and museum_row["spam_mass"] == 0.0
    assert 0 < museum_row["boost"] <= 100 and museum_row["openverse_boost"] == 85
    assert providers["flickr"]["openverse_type"] == "social_media" and providers["flickr"]["openverse_boost"] == 80
    assert providers["flickr"]["sites"] == ["flickr.com"] and providers["flickr"]["domain_pagerank"] is None
    assert providers["flickr"]["boost"] is None  # flickr.com is no crawled site of the sample
    # pages and domains showing: distinct crawled pages with an edge to one of the provider's matched images
    edges = table(spark, root / "graph", "edges").where("kind in ('embeds', 'links_to_image')").collect()
    pages = {r["id"]: r["domain"] for r in table(spark, root / "rank", "page_rank").collect()}
    # (Flickr's image keys are their own match keys: the catalog's key is the crawl's)
    matched = {images[r["image_key"]]["id"] for r in rows if r["provider"] == "flickr" and r["image_match"]}
    showing_pages = {e["src"] for e in edges if e["dst"] in matched}
    assert providers["flickr"]["pages_showing"] == len(showing_pages) > 0
    assert providers["flickr"]["domains_showing"] == len({pages[p] for p in showing_pages})
    assert report["provider_authority"][0]["provider"] == max(
        providers.values(), key=lambda r: (r["boost"] is not None, r["boost"] or 0))["provider"]
    assert report["saturation"]["provider_boost"]["constant"] > 0
    assert report["warnings"] == []


def test_a_catalog_with_too_many_domains_to_broadcast_publishes_the_same_rows(spark, tmp_path, monkeypatch):
    """Past MAX_BROADCAST_DOMAINS the catalog's domain sets are shuffle-joined, not broadcast: the
    same table comes out."""
    from imagerank.catalog import publish

    n = 300
    catalog = _flickr_rows(spark, tmp_path, n)
    from imagerank.catalog.read import PUBLISH_COLUMNS, read_catalog
    from imagerank.commit import current_run

    rank = current_run(str(tmp_path / "rank"))
    frame, _ = read_catalog(spark, catalog, required=PUBLISH_COLUMNS)
    keys = publish.catalog_keys(frame).drop("bad_url", "bad_landing_url")
    images, pages, domains = [publish._with_trust(spark.read.parquet(f"{rank}/{name}"))
                              for name in ("image_authority", "page_rank", "domain_rank")]
    popularity = spark.createDataFrame([], "identifier string, standardized double")
    columns = ["identifier", "authority_raw", "landing_page_rank", "domain_authority", "image_match", "landing_match"]
    tables = []
    for limit in (publish.MAX_BROADCAST_DOMAINS, 0):
        monkeypatch.setattr(publish, "MAX_BROADCAST_DOMAINS", limit)
        with sql_conf(spark, {"spark.sql.autoBroadcastJoinThreshold": "-1"}):  # the hints alone broadcast
            plan = publish.published_table(frame, keys, images, pages, domains, popularity)
            broadcasts = plan._jdf.queryExecution().executedPlan().toString().count("BroadcastExchange")
            tables.append((broadcasts, sorted(tuple(r) for r in plan.select(*columns).collect())))
    (wide, rows), (narrow, same) = tables
    assert wide >= 4 and narrow == 0, (wide, narrow)  # the catalog's domain sets broadcast, then not
    assert len(rows) == n and rows == same
    assert sum(1 for r in rows if r[1] is not None) == n // 3
