"""Popularity prediction: on generated data with a planted relation the model recovers it for a
provider it never saw, a model trained on shuffled targets does not, and the filled table keeps
observed rows as they were."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from imagerank.prediction.model import TrainOptions

from conftest import report_of, run_dir, table, write_committed

# 10 boosting rounds, not the default 50: the planted relation is recovered as well (Spearman 0.97 against
# 0.98 on an unseen provider), the shuffled one still not (-0.05 against -0.02), at about half the CPU
ROUNDS = TrainOptions(max_iter=10)


def planted(spark, root, shuffle: bool = False, seed: int = 4, publish_report: dict | None = None,
            other_tables: dict | None = None):
    """A published table (providers a, b observed; c without a metric) and an embed output whose text
    embedding carries half of the planted popularity; authority carries the other half. The publish
    run may carry a report and other tables, as publish writes them."""
    rng = np.random.default_rng(seed)
    rows, texts, truth = [], [], {}
    for provider, n in (("a", 300), ("b", 300), ("c", 200)):
        authority = rng.random(n)
        text = rng.normal(size=(n, 8)).astype(np.float32)
        value = 1 / (1 + np.exp(-(3 * authority - 1.5 + 1.5 * text[:, 0])))  # in (0, 1)
        if shuffle and provider != "c":
            value = rng.permutation(value)
        for i in range(n):
            identifier = f"{provider}-{i:04d}"
            observed = provider != "c"
            truth[identifier] = float(value[i])
            rows.append((identifier, provider, float(value[i]) if observed else None,
                         "observed" if observed else "none", float(authority[i]), float(authority[i]),
                         None, float(rng.random()), None, 1, 640, 480, bool(rng.random() < 0.5),
                         float(1 - (1 - authority[i]) * (1 - (value[i] if observed else 0)))))
            texts.append((identifier, provider, text[i].tolist()))
    schema = ("identifier string, provider string, popularity double, popularity_source string, authority double, "
              "authority_raw double, landing_page_rank double, domain_authority double, visualrank double, "
              "family_size long, width int, height int, gps boolean, score double")
    write_committed(spark, root / "table", "publish",
                    {"authority": spark.createDataFrame(rows, schema), **(other_tables or {})}, publish_report or {})
    write_committed(spark, root / "signals", "embed", {"text_embeddings": spark.createDataFrame(
        texts, "identifier string, provider string, embedding array<float>")}, {})
    return truth


def recovered(spark, root, truth) -> float:
    from imagerank.prediction.predict import run_predict
    from imagerank.prediction.train import run_train

    info = run_train(spark, str(root / "table"), str(root / "model"), str(root / "signals"), ROUNDS)
    assert "provider" not in info["features"] and "text_embedding" in info["features"]
    assert info["trained_on"] == {"a": 300, "b": 300}
    report = run_predict(spark, str(root / "model"), str(root / "table"), str(root / "table"), str(root / "signals"))
    assert report["popularity_source"] == {"observed": 600, "predicted": 200}
    rows = table(spark, root / "table", "authority").collect()
    c = [r for r in rows if r["provider"] == "c"]
    assert all(r["popularity_source"] == "predicted" and 0 <= r["popularity"] < 1 for r in c)
    for r in c:  # the score takes the predicted popularity as it takes an observed one
        assert r["score"] == pytest.approx(1 - (1 - r["authority"]) * (1 - r["popularity"]), abs=1e-9)
    observed = [r for r in rows if r["provider"] != "c"]
    assert all(r["popularity"] == pytest.approx(truth[r["identifier"]]) and r["popularity_source"] == "observed"
               for r in observed)  # observed rows as they were
    return spearmanr([r["popularity"] for r in c], [truth[r["identifier"]] for r in c]).statistic


def test_the_model_recovers_a_planted_relation_on_an_unseen_provider(spark, tmp_path):
    truth = planted(spark, tmp_path)
    rho = recovered(spark, tmp_path, truth)
    assert rho > 0.8, rho
    assert report_of(tmp_path / "model")["features"][:2] == ["authority", "authority_missing"]


def test_a_model_of_shuffled_targets_recovers_nothing(spark, tmp_path):
    truth = planted(spark, tmp_path, shuffle=True)
    rho = recovered(spark, tmp_path, truth)
    assert abs(rho) < 0.3, rho


def test_predicting_in_place_twice_changes_nothing_and_keeps_the_publish_run_whole(spark, tmp_path):
    """predict --table T --output T, twice: the second run changes no row; every table and report
    section of the publish run is in each new run; the score is made from authority, popularity and
    the site (never from the previous score); the runs replaced are kept for their readers."""
    from imagerank.catalog.publish import SITE_WEIGHT
    from imagerank.prediction.predict import run_predict
    from imagerank.prediction.train import run_train

    coverage = spark.createDataFrame([("a", 300), ("b", 300), ("c", 200)], "provider string, images long")
    providers = spark.createDataFrame([("a", 85.0)], "provider string, boost double")
    planted(spark, tmp_path, publish_report={"saturation": {"domain_authority": {"constant": 0.5}},
                                             "coverage": [{"provider": "a", "images": 300}], "warnings": ["w"]},
            other_tables={"coverage": coverage, "provider_authority": providers})
    published_run = run_dir(tmp_path / "table").name
    run_train(spark, str(tmp_path / "table"), str(tmp_path / "model"), str(tmp_path / "signals"),
              TrainOptions(max_iter=3))  # what is checked here is the table, not the model's figures

    def predicted():
        run_predict(spark, str(tmp_path / "model"), str(tmp_path / "table"), str(tmp_path / "table"),
                    str(tmp_path / "signals"))
        folder = run_dir(tmp_path / "table")
        rows = {r["identifier"]: r.asDict() for r in table(spark, tmp_path / "table", "authority").collect()}
        scores = sorted(line for part in (folder / "scores_tsv").glob("part-*") for line in part.read_text().splitlines())
        return folder, rows, scores

    first, rows, scores = predicted()
    second, again, scores_again = predicted()
    assert first != second and again == rows and scores_again == scores
    assert len(scores) == 800 and {r["popularity_source"] for r in rows.values()} == {"observed", "predicted"}
    for r in rows.values():
        site = r["domain_authority"] / (r["domain_authority"] + 0.5)
        expected = 1 - (1 - r["authority"]) * (1 - r["popularity"]) * (1 - SITE_WEIGHT * site)
        assert r["score"] == pytest.approx(expected, abs=1e-12)
    for name in ("coverage", "provider_authority"):
        assert sorted(table(spark, tmp_path / "table", name).collect()) == sorted(
            spark.read.parquet(str(tmp_path / "table" / "_runs" / published_run / name)).collect())
    report = report_of(tmp_path / "table")
    assert report["coverage"] == [{"provider": "a", "images": 300}] and report["warnings"] == ["w"]
    assert report["job"] == "publish" and report["prediction"]["published_run"] == first.name
    assert sorted(report["prediction"]["carried_over"]) == ["coverage", "provider_authority"]
    assert {published_run, first.name, second.name} <= {p.name for p in (tmp_path / "table" / "_runs").iterdir()}
