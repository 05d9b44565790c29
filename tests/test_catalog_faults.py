"""Faults and bad input on the catalog side (issue 13): metric values that are NaN, infinite or
negative; a publish whose inputs do not belong together; duplicate identifiers tied on updated_on."""

import json
import math

import pytest

from imagerank.catalog.popularity import run_popularity
from imagerank.catalog.publish import run_publish
from imagerank.catalog.read import read_catalog

from conftest import report_of, table, write_committed


def _popularity(spark, output):
    return {r["identifier"]: r for r in table(spark, output, "popularity").collect()}


def _strict_json(report):
    json.dumps(report, allow_nan=False)  # raises on NaN / Infinity


BAD_TEXT = ["NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "+inf", "1e999", "-1e999"]


def _good_rows():
    # 20 values 1..20: V = 17, C = 3
    return [{"identifier": f"a{i}", "provider": "flickr", "meta_data": {"views": i}} for i in range(1, 21)]


def _check_bad_values_skipped(spark, report, output, bad_ids, kind="not_finite"):
    _strict_json(report)
    got = _popularity(spark, output)
    assert report["constants"][0]["value"] == 17.0 and report["constants"][0]["constant"] == pytest.approx(3.0)
    assert got["a3"]["standardized"] == pytest.approx(0.5)
    for identifier in bad_ids:
        assert got[identifier]["standardized"] is None and got[identifier]["raw"] is None, identifier
    assert all(r["standardized"] is None or 0.0 <= r["standardized"] < 1.0 for r in got.values())
    flickr = report["providers"]["flickr"]
    assert report["catalog"]["skipped"] == {}, report["catalog"]
    assert (flickr[kind], flickr["with_metric"]) == (len(bad_ids), 20), flickr
    assert report_of(output)["providers"]["flickr"][kind] == len(bad_ids)


def test_nan_and_infinite_metrics_are_counted_skips_jsonl(spark, tmp_path):
    rows = _good_rows() + [{"identifier": f"bad{i}", "provider": "flickr", "meta_data": {"views": v}}
                           for i, v in enumerate(BAD_TEXT)]
    lines = [json.dumps(r) for r in rows]
    # bare JSON tokens too, nested and inside meta_data given as JSON text
    lines += ['{"identifier": "tokNaN", "provider": "flickr", "meta_data": {"views": NaN}}',
              '{"identifier": "tokInf", "provider": "flickr", "meta_data": {"views": -Infinity}}',
              '{"identifier": "tokBig", "provider": "flickr", "meta_data": {"views": 1e999}}',
              '{"identifier": "txtNaN", "provider": "flickr", "meta_data": "{\\"views\\": NaN}"}']
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = run_popularity(spark, str(path), str(tmp_path / "pop"))
    bad = [f"bad{i}" for i in range(len(BAD_TEXT))] + ["tokNaN", "tokInf", "tokBig", "txtNaN"]
    _check_bad_values_skipped(spark, report, tmp_path / "pop", bad)


def test_nan_and_infinite_metrics_are_counted_skips_csv_and_parquet(spark, tmp_path):
    import csv

    rows = _good_rows() + [{"identifier": f"bad{i}", "provider": "flickr", "meta_data": {"views": v}}
                           for i, v in enumerate(BAD_TEXT)]
    rows += [{"identifier": "num", "provider": "flickr", "meta_data": '{"views": NaN}'}]
    path = tmp_path / "catalog.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["identifier", "provider", "meta_data"])
        for r in rows:
            meta = r["meta_data"] if isinstance(r["meta_data"], str) else json.dumps(r["meta_data"])
            writer.writerow([r["identifier"], r["provider"], meta])
    bad = [f"bad{i}" for i in range(len(BAD_TEXT))] + ["num"]
    report = run_popularity(spark, str(path), str(tmp_path / "pop-csv"))
    _check_bad_values_skipped(spark, report, tmp_path / "pop-csv", bad)
    frame, _ = read_catalog(spark, str(path))
    frame.write.parquet(str(tmp_path / "catalog.parquet"))
    report = run_popularity(spark, str(tmp_path / "catalog.parquet"), str(tmp_path / "pop-parquet"))
    _check_bad_values_skipped(spark, report, tmp_path / "pop-parquet", bad)
    # Parquet with the metric as a double inside a nested meta_data
    values = [float(i) for i in range(1, 21)] + [math.nan, math.inf, -math.inf]
    spark.createDataFrame([(f"a{i + 1}" if i < 20 else f"d{i}", "flickr", {"views": v}) for i, v in enumerate(values)],
                          "identifier string, provider string, meta_data map<string,double>") \
        .write.parquet(str(tmp_path / "nested.parquet"))
    report = run_popularity(spark, str(tmp_path / "nested.parquet"), str(tmp_path / "pop-nested"))
    _check_bad_values_skipped(spark, report, tmp_path / "pop-nested", ["d20", "d21", "d22"])


def test_negative_metrics_are_counted_skips(spark, tmp_path):
    """-3 is -C: x / (x + C) divides by zero (an error under ANSI, Spark 4's default; null on 3.5)."""
    rows = _good_rows() + [{"identifier": "neg", "provider": "flickr", "meta_data": {"views": -2}},
                           {"identifier": "minusC", "provider": "flickr", "meta_data": {"views": "-3"}},
                           {"identifier": "negzero", "provider": "flickr", "meta_data": {"views": -0.0}}]
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run_popularity(spark, str(path), str(tmp_path / "pop"))
    _strict_json(report)
    got = _popularity(spark, tmp_path / "pop")
    assert got["neg"]["standardized"] is None and got["minusC"]["standardized"] is None
    assert got["negzero"]["standardized"] == 0.0  # -0.0 is zero, not negative
    assert report["providers"]["flickr"]["negative"] == 2
    assert report["providers"]["flickr"]["not_finite"] == 0
    assert all(r["standardized"] is None or 0.0 <= r["standardized"] < 1.0 for r in got.values())


def test_saturate_ignores_values_it_cannot_saturate(spark):
    from imagerank.catalog.saturation import saturate

    values = [float(v) for v in range(1, 21)] + [-3.0, math.nan, math.inf, None]
    frame = spark.createDataFrame([(v,) for v in values], "x double")
    out, constant = saturate(frame, "x", 0.85)
    assert constant["value"] == 17.0 and constant["n"] == 20
    got = {r["x"] if r["x"] == r["x"] else "nan": r["x_saturated"] for r in out.collect()}
    assert got[3.0] == pytest.approx(0.5)
    assert got[-3.0] is None and got["nan"] is None and got[math.inf] is None and got[None] is None


# ---- publish: inputs that do not belong together ------------------------------------------------

def _crawl(spark, root):
    write_committed(spark, root / "rank", "rank", {
        "image_authority": spark.createDataFrame(
            [(0, "flickr:1", None, 0.5, 0.2, "staticflickr.com"), (1, "flickr:2", None, 0.1, 0.2, "staticflickr.com")],
            "id long, image_key string, image_url string, authority double, domain_authority double, "
            "image_domain string"),
        "page_rank": spark.createDataFrame([], "id long, url string, host string, domain string, pagerank double"),
        "domain_rank": spark.createDataFrame([(0, "staticflickr.com", 0.1)], "id long, domain string, pagerank double"),
    }, {"crawls": ["TEST"]})


def _catalog(path, prefix, ids):
    path.write_text("".join(json.dumps({
        "identifier": f"{prefix}{i}", "provider": "flickr",
        "url": f"https://live.staticflickr.com/65535/{i}_abcdef1234_b.jpg", "foreign_landing_url": None,
        "meta_data": {"views": i}}) + "\n" for i in ids))
    return str(path)


def test_publish_warns_when_popularity_comes_from_another_catalog(spark, tmp_path, capsys):
    _crawl(spark, tmp_path)
    mine = _catalog(tmp_path / "mine.jsonl", "f", range(1, 25))
    other = _catalog(tmp_path / "other.jsonl", "x", range(1, 25))
    run_popularity(spark, other, str(tmp_path / "pop"))
    capsys.readouterr()
    report = run_publish(spark, mine, str(tmp_path / "rank"), str(tmp_path / "pop"), str(tmp_path / "table"))
    _strict_json(report)
    matching = report["matching"]
    assert matching["catalog_rows"] == 24 and matching["popularity_rows"] == 24
    assert matching["with_popularity_row"] == 0 and matching["popularity_fraction"] == 0.0
    assert matching["crawl_matched"] == 2
    warnings = report["warnings"]
    assert any("popularity" in w and "0 of 24" in w for w in warnings), warnings
    assert any("catalog" in w and "other.jsonl" in w for w in warnings), warnings
    assert report_of(tmp_path / "table")["warnings"] == warnings
    err = capsys.readouterr().err
    assert "[publish] warning:" in err and "0 of 24" in err
    # popularity of the same catalog (its report naming the catalog publish read, every row with a
    # popularity row): no warning (a whole publish of matching inputs: test_publish's sample); a
    # crawl that meets too little of the catalog is warned of, the threshold an option
    from imagerank.catalog.publish import matching_warnings

    same = {"catalog": {"path": report["catalog"]["path"], "rows_read": report["catalog"]["rows_read"]}}
    good = dict(matching, with_popularity_row=24, popularity_fraction=1.0)
    assert matching_warnings(good, report["catalog"], same, 0.01, matching["min_crawl_match_fraction"]) == []
    strict = matching_warnings(good, report["catalog"], same, 0.01, 0.5)
    assert [w for w in strict if "crawl" in w and "2 of 24" in w] == strict and strict


def test_publish_match_options_on_the_command_line():
    from imagerank.commands import parser_for

    args = parser_for("publish").parse_args(["--catalog", "c", "--ranks", "r", "--popularity", "p", "--output", "o"])
    assert args.min_match_fraction == 0.01 and 0 < args.min_crawl_match_fraction < 0.01
    args = parser_for("publish").parse_args(["--catalog", "c", "--ranks", "r", "--popularity", "p", "--output", "o",
                                             "--min-match-fraction", "0.5", "--min-crawl-match-fraction", "0"])
    assert args.min_match_fraction == 0.5 and args.min_crawl_match_fraction == 0.0


# ---- duplicate identifiers ----------------------------------------------------------------------

def test_duplicate_identifier_tie_break_is_total_and_documented_order(spark, tmp_path):
    """Latest updated_on, then latest created_on, then the columns' values in column-name order."""
    base = {"identifier": "dup", "provider": "flickr", "updated_on": "2024-01-02 00:00:00"}
    a = dict(base, created_on="2023-06-01 00:00:00", url="https://z.example/1.jpg", meta_data={"views": 1})
    b = dict(base, created_on="2023-01-01 00:00:00", url="https://a.example/1.jpg", meta_data={"views": 2})
    c = dict(base, created_on="2023-06-01 00:00:00", url="https://z.example/1.jpg", meta_data={"views": 3})
    older = dict(base, updated_on="2024-01-01 00:00:00", created_on="2024-01-01 00:00:00",
                 url="https://0.example/1.jpg", meta_data={"views": 4})
    kept = []
    for n, order in enumerate(([a, b, c, older], [older, c, b, a], [b, older, a, c], [c, a, older, b])):
        path = tmp_path / f"catalog{n}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in order))
        frame, report = read_catalog(spark, str(path))
        rows = frame.collect()
        assert len(rows) == 1 and report["skipped"] == {"duplicate_identifier": 3}
        kept.append(json.loads(rows[0]["meta_data"]))
    # a and c tie on updated_on and created_on (b was created earlier); meta_data decides: a's text is smaller
    assert kept == [{"views": 1}] * 4


def test_a_huge_csv_field_is_named_not_an_out_of_memory_crash(spark, tmp_path):
    """A field over the limit (a 300 MB one killed the driver's JVM) fails the read in one line naming
    the file and the setting to raise; under the limit it reads."""
    from imagerank.catalog.read import MAX_FIELD_CHARS_CONF, CatalogError, read_catalog

    path = tmp_path / "catalog.csv"
    path.write_text('identifier,provider,meta_data\n1,flickr,"' + "x" * 200_000 + '"\n2,flickr,{}\n')
    spark.conf.set(MAX_FIELD_CHARS_CONF, "100000")
    try:
        with pytest.raises(CatalogError, match=rf"catalog .*catalog.csv: a field longer than 100,000 characters.*{MAX_FIELD_CHARS_CONF}"):
            read_catalog(spark, str(path))
        spark.conf.set(MAX_FIELD_CHARS_CONF, "300000")
        frame, report = read_catalog(spark, str(path))
        assert report["rows_usable"] == 2
    finally:
        spark.conf.unset(MAX_FIELD_CHARS_CONF)


def test_a_catalog_without_one_usable_row_fails_the_read(spark, tmp_path):
    """A TSV whose every row is unreadable used to publish a table of nulls: now it is an error naming the file."""
    from imagerank.catalog.read import CatalogError, read_catalog

    path = tmp_path / "catalog.tsv"
    path.write_text("identifier\tprovider\tmeta_data\n" + "".join(f"{i}\tflickr\n" for i in range(5)))
    with pytest.raises(CatalogError, match=r"catalog .*catalog.tsv: not one usable row among the 5 read"):
        read_catalog(spark, str(path))


def test_an_empty_catalog_is_named_empty_never_by_sparks_column(spark, tmp_path):
    """Zero-byte CSV and JSON lines catalogs: "is empty", never "it has ['_corrupt_record']"; a
    JSON-lines catalog of which no line parses says so, again without Spark's column."""
    from imagerank.catalog.read import CatalogError

    for name in ("empty.csv", "empty.jsonl"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(CatalogError, match=rf"^catalog \S*{name} is empty: not one line in it") as raised:
            read_catalog(spark, str(tmp_path / name))
        assert "_corrupt_record" not in str(raised.value)
    (tmp_path / "text.jsonl").write_text("not json\nnor this\n")
    with pytest.raises(CatalogError, match=r"lacks required column\(s\) .*; not one line of it parses as json") \
            as raised:
        read_catalog(spark, str(tmp_path / "text.jsonl"))
    assert "_corrupt_record" not in str(raised.value)


def test_an_unclosed_quote_is_counted_as_bad_quoting(spark, tmp_path):
    """A quote left open in meta_data runs the field into the next row: the row is counted as
    bad_quoting with its text quoted, not passed on to popularity as bad_meta_data."""
    path = tmp_path / "catalog.csv"
    path.write_text('identifier,provider,meta_data\n1,flickr,"{""views"": 1}"\n2,flickr,"{""views"": 2}\n'
                    '3,flickr,"{""views"": 3}"\n4,flickr,"{""views"": 4}"\n5,flickr,"{\n  ""views"": 5}"\n')
    frame, report = read_catalog(spark, str(path))
    assert sorted(r["identifier"] for r in frame.collect()) == ["1", "4", "5"]  # 5: JSON over two lines, quoted right
    assert report["skipped"] == {"bad_quoting": 1}, report
    (example,) = report["bad_quoting_examples"]
    assert example.startswith('meta_data: "{"views": 2}\n3,flickr,'), example
    popularity = run_popularity(spark, str(path), str(tmp_path / "pop"))
    assert popularity["providers"]["flickr"]["bad_meta_data"] == 0
    assert popularity["catalog"]["skipped"] == {"bad_quoting": 1}


def test_an_input_run_without_a_table_its_reader_needs_is_named_damaged(spark, tmp_path):
    """A committed rank run missing image_authority (a hand-pruned folder, a half-copied bucket) is an
    input problem in one line naming the table, before any work; the same rule in every reading stage."""
    from imagerank.commit import OutputError
    from imagerank.evaluation.evaluate import run_evaluate

    catalog = _catalog(tmp_path / "catalog.jsonl", "f", range(1, 5))
    rows = spark.createDataFrame([(1, 0.5)], "id long, pagerank double")
    write_committed(spark, tmp_path / "rank", "rank", {"page_rank": rows, "domain_rank": rows}, {})
    run_popularity(spark, catalog, str(tmp_path / "pop"))
    with pytest.raises(OutputError, match=r"rank/? is a damaged rank output: its committed run \S+ has no "
                                          r"image_authority table; run rank into it again"):
        run_publish(spark, catalog, str(tmp_path / "rank"), str(tmp_path / "pop"), str(tmp_path / "table"))
    assert not (tmp_path / "table" / "_CURRENT").exists()
    write_committed(spark, tmp_path / "published", "publish", {"coverage": rows}, {})
    with pytest.raises(OutputError, match="has no authority table"):
        run_evaluate(spark, str(tmp_path / "published"), str(tmp_path / "eval"))
