"""Provider popularity: Openverse's standardization reproduced on its own rows, on real provider API
records, and on the edge cases of its formula; catalog reading errors."""

import csv
import json
import math

import pytest

from imagerank.catalog.popularity import run_popularity
from imagerank.catalog.read import CatalogError, read_catalog

from conftest import most_shuffle_rows_per_task, shared_file, sql_conf, table


def openverse_expected(values: list, p: float = 0.85) -> tuple[float, list]:
    """Plain-Python reference: PostgreSQL percentile_disc, C, x / (x + C) (None stays None)."""
    present = sorted(v for v in values if v is not None)
    value = present[max(1, math.ceil(p * len(present))) - 1]
    constant = (1 - p) / p * (value if value != 0 else 1.0)
    return constant, [None if v is None else v / (v + constant) for v in values]


def _popularity(spark, output):
    return {r["identifier"]: r for r in table(spark, output, "popularity").collect()}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_reproduces_openverse_standardized_popularity(spark, tmp_path):
    source = shared_file("openverse", "sample_audio_data.csv")
    report = run_popularity(spark, str(source), str(tmp_path / "pop"))
    with open(source, newline="", encoding="utf-8") as fh:
        expected = {r["identifier"]: float(r["standardized_popularity"]) for r in csv.DictReader(fh)}
    got = _popularity(spark, tmp_path / "pop")
    assert len(expected) == len(got) == 100
    assert max(abs(got[k]["standardized"] - v) for k, v in expected.items()) < 1e-9
    constants = report["constants"]
    assert [(c["provider"], c["metric"], c["value"]) for c in constants] == [("jamendo", "listens", 53734.0)]
    assert constants[0]["constant"] == pytest.approx(0.15 / 0.85 * 53734.0, rel=1e-15)
    assert report["catalog"]["rows_read"] == 100 and report["catalog"]["skipped"] == {}


def _flickr():
    photos = json.loads(shared_file("openverse", "flickr_flickr_example_pretty.json").read_text())["photos"]["photo"]
    return [{"identifier": f"flickr-{p['id']}", "provider": "flickr", "url": p.get("url_l"),
             "meta_data": {"views": p["views"]}} for p in photos]


def _stocksnap():
    rows = []
    for name in ("stocksnap_full_response.json", "stocksnap_last_full_response.json"):
        for item in json.loads(shared_file("openverse", name).read_text())["results"]:
            rows.append({"identifier": f"stocksnap-{item['img_id']}", "provider": "stocksnap",
                         "meta_data": {"downloads_raw": item["downloads_raw"], "page_views_raw": item["page_views_raw"]}})
    return rows


def _wikimedia():
    rows = {}
    for name in ("wikimedia_continuation_wmc_pretty4.json", "wikimedia_continuation_wmc_raw.json"):
        for page_id, page in json.loads(shared_file("openverse", name).read_text())["query"]["pages"].items():
            # Openverse's metric: the number of article pages using the file
            rows[page_id] = {"identifier": f"wikimedia-{page_id}", "provider": "wikimedia",
                             "meta_data": {"global_usage_count": len(page.get("globalusage", []))}}
    return list(rows.values())


def _nappy():
    images = json.loads(shared_file("openverse", "nappy_images.json").read_text())["images"]
    return [{"identifier": f"nappy-{i['foreign_identifier']}", "provider": "nappy",
             "meta_data": {"downloads": i["downloads"], "views": i["views"]}} for i in images]


def test_real_provider_records(spark, tmp_path):
    """Flickr views, StockSnap downloads, Wikimedia global usage (mostly 0: V = 0 is taken as 1), Nappy."""
    sources = {"flickr": (_flickr(), "views"), "stocksnap": (_stocksnap(), "downloads_raw"),
               "wikimedia": (_wikimedia(), "global_usage_count"), "nappy": (_nappy(), "downloads")}
    rows = [row for provider_rows, _ in sources.values() for row in provider_rows]
    catalog = _write_jsonl(tmp_path / "catalog.jsonl", rows)
    report = run_popularity(spark, catalog, str(tmp_path / "pop"))
    got = _popularity(spark, tmp_path / "pop")
    constants = {c["provider"]: c for c in report["constants"]}
    for provider, (provider_rows, metric) in sources.items():
        values = [float(r["meta_data"][metric]) for r in provider_rows]
        constant, standardized = openverse_expected(values)
        assert constants[provider]["constant"] == pytest.approx(constant, rel=1e-12), provider
        for row, value in zip(provider_rows, standardized):
            assert got[row["identifier"]]["standardized"] == pytest.approx(value, abs=1e-12)
    assert constants["wikimedia"]["value"] == 0.0 and constants["wikimedia"]["constant"] == pytest.approx(0.15 / 0.85)
    assert report["providers"]["flickr"] == {"rows": 30, "with_metric": 30, "not_numeric": 0, "not_finite": 0,
                                          "negative": 0, "bad_meta_data": 0}


def test_formula_edge_cases_and_counted_problems(spark, tmp_path):
    rows = [{"identifier": f"a{i}", "provider": "flickr", "meta_data": {"views": i}} for i in range(1, 21)]
    rows += [
        {"identifier": "no-metric", "provider": "flickr", "meta_data": {"faves": 3}},
        {"identifier": "text", "provider": "flickr", "meta_data": {"views": "many"}},
        {"identifier": "no-meta", "provider": "flickr", "meta_data": None},
        {"identifier": "museum", "provider": "openmuseum", "meta_data": {"views": 5}},
        {"identifier": None, "provider": "flickr", "meta_data": {"views": 1}},
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"identifier": "cut", "provider": "fl\n')
    report = run_popularity(spark, str(path), str(tmp_path / "pop"))
    got = _popularity(spark, tmp_path / "pop")
    # 20 values 1..20: position ceil(0.85 * 20) = 17 -> V = 17, C = 3
    assert report["constants"][0]["value"] == 17.0 and report["constants"][0]["constant"] == pytest.approx(3.0)
    assert got["a3"]["standardized"] == pytest.approx(0.5)
    assert got["no-metric"]["standardized"] is None and got["text"]["raw"] is None
    assert "museum" not in got  # no metric for this provider: no popularity row
    assert report["providers_without_metric"] == {"openmuseum": 1}
    assert report["providers"]["flickr"]["not_numeric"] == 1
    assert report["catalog"]["skipped"] == {"unreadable_row": 1, "missing_identifier": 1}
    assert report["catalog"]["unreadable_examples"][0].startswith('{"identifier": "cut"')
    # another percentile, from the command line or the providers file
    other = run_popularity(spark, str(path), str(tmp_path / "pop50"), percentile=0.5)
    assert other["constants"][0]["value"] == 10.0 and other["constants"][0]["constant"] == pytest.approx(10.0)


def test_providers_file_extends_without_code(spark, tmp_path):
    rows = [{"identifier": f"m{i}", "provider": "openmuseum", "meta_data": {"visits": i * 10}} for i in range(10)]
    catalog = _write_jsonl(tmp_path / "catalog.jsonl", rows)
    providers = tmp_path / "providers.yaml"
    providers.write_text("percentile: 0.85\nproviders:\n  openmuseum: {metric: visits, percentile: 0.9}\n")
    report = run_popularity(spark, catalog, str(tmp_path / "pop"), providers_path=str(providers))
    assert report["constants"][0]["metric"] == "visits" and report["constants"][0]["value"] == 80.0
    providers.write_text("providers:\n  openmuseum: {percentile: 0.9}\n")
    with pytest.raises(ValueError, match="openmuseum.*metric"):
        run_popularity(spark, catalog, str(tmp_path / "never"), providers_path=str(providers))


def test_catalog_formats_agree_and_missing_columns_are_named(spark, tmp_path):
    source = shared_file("openverse", "sample_audio_data.csv")
    from_csv, _ = read_catalog(spark, str(source))
    from_csv.write.parquet(str(tmp_path / "catalog.parquet"))
    # meta_data as nested JSON in JSON lines: read back as JSON text
    records = [dict(r.asDict(), meta_data=json.loads(r["meta_data"])) for r in from_csv.select(
        "identifier", "provider", "meta_data").collect()]
    _write_jsonl(tmp_path / "catalog.jsonl", records)
    results = {}
    for name in ("catalog.parquet", "catalog.jsonl"):
        run_popularity(spark, str(tmp_path / name), str(tmp_path / f"pop-{name}"))
        results[name] = {k: v["standardized"] for k, v in _popularity(spark, tmp_path / f"pop-{name}").items()}
    assert results["catalog.parquet"] == results["catalog.jsonl"]
    assert len(results["catalog.parquet"]) == 100
    with open(source, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames if c != "provider"]
        rows = [{c: r[c] for c in columns} for r in reader]
    tsv = tmp_path / "no_provider.tsv"
    with open(tsv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(CatalogError, match="provider"):
        run_popularity(spark, str(tsv), str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def _skewed_values(spark, groups: dict, partitions: int):
    """provider, metric, percentile, raw rows, spread over ``partitions`` input partitions."""
    rows = [(provider, "views", p, value) for (provider, p), values in groups.items() for value in values]
    return spark.createDataFrame(rows, "provider string, metric string, percentile double, raw double") \
        .repartition(partitions)


def test_exact_percentile_with_many_duplicates_on_several_partitions(spark):
    """percentile_disc equals PostgreSQL's on values that repeat many times (Wikimedia's many 0s), in
    groups split over several partitions, for percentiles that fall inside and at the edges of runs."""
    import random

    from imagerank.catalog.saturation import percentile_values, saturate

    rng = random.Random(3)
    zeros = [0.0] * 900 + [float(rng.randint(1, 40)) for _ in range(300)] + [1e6, 1e6, -2.5]
    wide = [float(rng.randint(0, 5000)) for _ in range(2500)]
    runs = [float(v) for v in range(12) for _ in range(v * 30 + 1)]
    groups = {}
    for p in (0.01, 0.25, 1 / 3, 0.5, 0.75, 0.85, 0.99, 0.9999):
        groups[("wikimedia", p)] = zeros
        groups[("flickr", p)] = wide
        groups[("runs", p)] = runs
    groups[("single", 0.85)] = [7.0]
    with sql_conf(spark, {"spark.sql.shuffle.partitions": "7"}):
        got = {(r["provider"], r["percentile"]): (r["value"], r["n"])
               for r in percentile_values(_skewed_values(spark, groups, 5)).collect()}
    assert len(got) == len(groups)
    for (provider, p), values in groups.items():
        ordered = sorted(values)
        expected = ordered[max(1, math.ceil(p * len(ordered))) - 1]
        assert got[(provider, p)] == (expected, len(values)), (provider, p)
    # the publish stage's use: one group, the whole column; nulls ignored, and negatives (-2.5)
    frame = spark.createDataFrame([(float(v),) for v in zeros] + [(None,)] * 50, "authority_raw double")
    saturated, constant = saturate(frame.repartition(6), "authority_raw", 0.85)
    usable = [v for v in zeros if v >= 0]
    assert constant["value"] == sorted(usable)[math.ceil(0.85 * len(usable)) - 1]
    assert constant["constant"] == pytest.approx(openverse_expected(usable)[0], rel=1e-15)
    assert constant["n"] == len(usable) == len(zeros) - 1
    assert saturated.where("authority_raw is null").count() == 50
    assert saturated.where("authority_raw_saturated is null").count() == 51


def test_exact_percentile_spreads_a_group_over_tasks(spark):
    """No step gathers a whole group into one task (a window over the group would): the most rows
    any task of the computation reads is well under the group's distinct values."""
    from imagerank.catalog.saturation import percentile_values

    from pyspark.sql import functions as F

    # 4000 distinct values, each three times, a contiguous run of them per input partition
    frame = spark.range(12_000, numPartitions=8).select(
        F.lit("flickr").alias("provider"), F.lit("views").alias("metric"), F.lit(0.85).alias("percentile"),
        F.floor(F.col("id") / 3).cast("double").alias("raw")).cache()
    frame.count()
    # AQE would merge these tiny partitions into one; at a full crawl's scale it could not
    with sql_conf(spark, {"spark.sql.shuffle.partitions": "8",
                          "spark.sql.adaptive.coalescePartitions.enabled": "false"}):
        result = []
        most = most_shuffle_rows_per_task(spark, lambda: result.extend(percentile_values(frame).collect()))
    frame.unpersist()
    assert [(r["value"], r["n"]) for r in result] == [((math.ceil(0.85 * 12_000) - 1) // 3, 12_000)]
    assert most < 4000 / 3, most
