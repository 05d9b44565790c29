"""The published table on the sample: matching catalog images to the crawl, popularity, the score,
coverage, the TSV, and the output's all-or-nothing replacement."""

import pytest

from imagerank.catalog.popularity import run_popularity
from imagerank.catalog.publish import SITE_WEIGHT, run_publish
from imagerank.sample import FLICKR_IDS

from conftest import run_dir, table


@pytest.fixture(scope="module")
def published(spark, sample_pipeline):
    root, catalog = sample_pipeline["root"], sample_pipeline["catalog"]
    run_popularity(spark, catalog, str(root / "popularity"))
    report = run_publish(spark, catalog, str(root / "rank"), str(root / "popularity"), str(root / "table"))
    return root, report, table(spark, root / "table", "authority")


def test_one_row_per_usable_catalog_image(published):
    root, report, table = published
    assert report["catalog"]["rows_read"] == 26
    assert report["catalog"]["skipped"] == {"missing_provider": 1, "duplicate_identifier": 1}
    assert table.count() == report["rows_written"] == 24 == table.select("identifier").distinct().count()
    assert sorted(p.name for p in (run_dir(root / "table") / "authority").iterdir() if p.name.startswith("provider=")) == [
        "provider=flickr", "provider=openmuseum", "provider=wikimedia"]
    row = table.first()
    assert row["crawls"] == ["CC-MAIN-2099-01"] and row["computed_at"] is not None


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
    assert coverage["flickr"] == {"provider": "flickr", "images": 5, "crawl_image": 4, "landing_page": 0,
                                  "domain": 4, "nothing": 1, "popularity_observed": 5}
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
