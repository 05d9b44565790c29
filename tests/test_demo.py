"""`make demo` as a new user meets it: ``python -m imagerank.demo`` on the embedded sample, a plain
process. Its summary comes first, and its report holds the popularity model and the 2020 baseline,
each left-out provider scored, on a sample that says it is generated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, long_jvm_options, report_of, short_jvm_env, table

pytestmark = pytest.mark.slow  # the whole demo end to end: the slow batch (make test-slow)


def test_the_demo_summarises_first_and_its_report_holds_the_model_and_the_baseline(spark, sample_crawl, tmp_path):
    pytest.importorskip("sentence_transformers", reason="the demo's popularity model needs the embed extra")
    root = tmp_path / "demo"
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({
        "output_root": str(root), "extract": {"input": [sample_crawl["manifest"]]}, "graph": {},
        "rank": {"trusted_sources": sample_crawl["trusted_sources"]},
        "popularity": {"catalog": sample_crawl["demo_catalog"]}, "publish": {}}))
    # the demo's one JVM runs every stage for minutes: the long-JVM options (C2 pays there; C1 alone took 205 s
    # against 171) and the class-data archive of Spark's classes; the resumed run below starts and stops: the
    # tests' short-JVM options. 3 boosting rounds, not 50: nothing here examines the model's figures
    # (test_evaluate and test_prediction do); 3 against 10: 166 against 197 busy core-s
    run = subprocess.run([sys.executable, "-m", "imagerank.demo", "--config", str(config), "--max-iter", "3"],
                         cwd=ROOT, env={**os.environ, "JDK_JAVA_OPTIONS": long_jvm_options()},
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    # the summary first: one line per stage, then the figures and where the report is; no table dumps
    assert lines[0] == f"== imagerank demo: {root}" and lines[1].split()[:2] == ["stage", "seconds"]
    stages = [line.split()[0] for line in lines[2:lines.index("")]]
    assert stages[:5] == ["extract", "graph", "rank", "popularity", "publish"], lines[:14]
    assert {"train_popularity", "predict_popularity", "evaluate"} <= set(stages)
    assert any("report/index.html" in line for line in lines) and len(lines) < 30, run.stdout
    assert "WARN" not in run.stdout and "Traceback" not in run.stderr

    report = json.loads((root / "report" / "report.json").read_text())
    assert "generated" in report["note"].lower() and "nothing about real providers" in report["note"]
    held_out = report["holdout"]["providers"]
    assert held_out == ["flickr", "nappy", "stocksnap", "wikimedia"] and report["holdout"]["model"]["max_iter"] == 3
    assert report_of(root / "model")["params"]["max_iter"] == 3
    scored = {(f["scorer"], f["provider"]) for f in report["figures"] if f["spearman"] is not None}
    assert {(s, p) for s in ("model", "baseline_2020") for p in held_out} <= scored
    assert report["holdout"]["baseline"]["learner"].startswith("sklearn MLPRegressor")
    # every figure marked as chance or not, as the report shows it
    assert all(isinstance(f["chance"], bool) for f in report["figures"])
    sources = {(r["provider"], r["popularity_source"]) for r in
               table(spark, root / "predicted", "authority").select("provider", "popularity_source").distinct().collect()}
    assert ("brooklynmuseum", "predicted") in sources and ("openmuseum", "predicted") in sources
    assert ("flickr", "observed") in sources and not any(p == "brooklynmuseum" and s == "observed" for p, s in sources)
    # publish's own folder stays publish's: the pipeline resumed skips every stage
    resumed = subprocess.run([sys.executable, str(ROOT / "jobs" / "pipeline.py"), "--config", str(config), "--resume"],
                             cwd=ROOT, env=short_jvm_env(dict(os.environ)), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count("skipped: ") == 5, resumed.stderr[-3000:]
