"""The evaluate stage: how well each signal, the popularity model and the 2020 baseline agree with
observed popularity, per provider and over all providers, and the run report people look at.

    python jobs/evaluate.py --table TABLE_DIR [--signals SIGNALS_DIR] [--images IMAGES] --output REPORT_DIR
        [--max-iter N --max-depth N]  (the holdout's models: train_popularity's options)

Popularity is Openverse's within-provider standardized value, so providers can be pooled ("all").
Only rows whose popularity was observed count (``popularity_source = observed``). The first figure
is authority against popularity per provider: the two are expected to be related but distinct.
The model and the baseline are scored leaving one provider out (:mod:`.holdout`). The report is
``index.html`` (self-contained: :mod:`.html`) with ``report.json`` beside it holding every figure
shown, in the run and, once committed, at the top of REPORT_DIR.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import commit, fs
from imagerank.evaluation.holdout import fit_r2, held_out_predictions
from imagerank.evaluation.metrics import agreement
from imagerank.prediction.model import TrainOptions
from imagerank.stage import Stage

ALL = "all"
TOP_IMAGES = 5
DISTRIBUTION_SAMPLE = 2000
PREDICTION_SAMPLE = 5000
# scorer -> its column expression over the published table (functions: a Column needs a running
# Spark session on pyspark 4, so none is built when the module is imported)
SCORERS = {
    "authority": lambda: F.col("authority"),
    "authority_raw": lambda: F.col("authority_raw"),
    "trust": lambda: F.col("trust"),
    "domain_authority": lambda: F.col("domain_authority"),
    "landing_page_rank": lambda: F.col("landing_page_rank"),
    "visualrank": lambda: F.col("visualrank"),
    "family_size": lambda: F.col("family_size").cast("double"),
    "exif_camera": lambda: F.when(F.col("camera_make").isNotNull(), 1.0).when(F.col("width").isNotNull(), 0.0),
    "pixels": lambda: F.col("width").cast("double") * F.col("height").cast("double"),
}


def scored_rows(table: DataFrame) -> DataFrame:
    """identifier, provider, scorer, score, target: one row per (image with observed popularity, scorer)."""
    observed = table.where(F.col("popularity_source") == F.lit("observed"))
    present = [name for name in SCORERS if _has_columns(table, name)]
    stacked = F.explode(F.array(*[F.struct(F.lit(name).alias("scorer"), SCORERS[name]().cast("double").alias("score"))
                                  for name in present]))
    per_provider = observed.select("identifier", "provider", F.col("popularity").alias("target"), stacked.alias("s"))
    return per_provider.select("identifier", "provider", "s.scorer", "s.score", "target")


def pooled(rows: DataFrame) -> DataFrame:
    return rows.unionByName(rows.withColumn("provider", F.lit(ALL)))


def _has_columns(table: DataFrame, scorer: str) -> bool:
    needed = {"exif_camera": ("camera_make", "width"), "pixels": ("width", "height")}.get(scorer, (scorer,))
    return all(column in table.columns for column in needed)


def _thumbnail(images: str | None, suffix: str, identifier: str) -> str | None:
    """A 160 px JPEG data URI of the image's file, where a folder of pixels was given and it decodes."""
    from imagerank.content.pixels import SAFE_IDENTIFIER

    if not images or not SAFE_IDENTIFIER.fullmatch(identifier or ""):
        return None
    try:
        from PIL import Image

        from imagerank.content.decode import decode

        decoded = decode(fs.read_bytes(fs.join(images, identifier + suffix)))
        if decoded.image is None:
            return None
        image = decoded.image.convert("RGB")
        image.thumbnail((160, 160), Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    except Exception:  # noqa: BLE001 - a thumbnail that cannot be made is the report's labelled no-pixels box, never a failed report
        return None


def top_images(table: DataFrame, images: str | None, suffix: str, crawl_images: DataFrame | None) -> dict:
    """The TOP_IMAGES best-scored images per provider, with the pages and domains behind each (from the
    rank output's image_authority, matched on image_key) and why they rank."""
    from pyspark.sql import Window

    best = Window.partitionBy("provider").orderBy(F.col("score").desc(), "identifier")
    columns = [c for c in ("identifier", "provider", "score", "authority", "popularity", "popularity_source",
                           "visualrank", "family_size", "image_key", "image_match", "landing_match")
               if c in table.columns]
    top = table.withColumn("_rank", F.row_number().over(best)).where(F.col("_rank") <= TOP_IMAGES).select(*columns)
    if crawl_images is not None and "image_key" in columns:
        top = top.join(crawl_images.select("image_key", "best_page", "n_pages", "n_domains"), on="image_key",
                       how="left")
    out: dict[str, list] = {}
    for row in sorted(top.collect(), key=lambda r: (r["provider"], -(r["score"] or 0))):
        entry = row.asDict()
        entry["thumbnail"] = _thumbnail(images, suffix, row["identifier"])
        entry["pages"] = [entry["best_page"]] if entry.get("best_page") else []
        entry["domains"] = [f"{entry['n_domains']} registered domains, {entry['n_pages']} pages"] \
            if entry.get("n_domains") else []
        entry["why"] = _why(entry)
        out.setdefault(row["provider"], []).append(entry)
    return out


def _why(entry: dict) -> str:
    reasons = []
    if entry.get("authority") is not None:
        reasons.append(f"authority {entry['authority']:.3f} (crawl match: {entry.get('image_match') or entry.get('landing_match')})")
    if entry.get("popularity") is not None:
        reasons.append(f"popularity {entry['popularity']:.3f} ({entry.get('popularity_source')})")
    if (entry.get("family_size") or 1) > 1:
        reasons.append(f"a near-duplicate family of {entry['family_size']}")
    return "; ".join(reasons) or "no signal: ranked by default"


def run_evaluate(spark: SparkSession, table_dir: str, output: str, signals_dir: str | None = None,
                 images: str | None = None, image_suffix: str = "", holdout: bool = True,
                 note: str | None = None, train: TrainOptions = TrainOptions()) -> dict:
    from imagerank.evaluation.html import render
    from imagerank.prediction.train import read_signals

    args = {"table": table_dir, "signals": signals_dir, "images": images, "image_suffix": image_suffix,
            "holdout": holdout, "note": note, "train": asdict(train)}
    with Stage(spark, "evaluate", output, args) as stage:
        folder = stage.input(table_dir, "publish", tables=("authority",))
        publish_report = stage.input_report(folder)
        table = spark.read.parquet(fs.join(folder, "authority"))
        signals = read_signals(spark, stage, signals_dir)
        images_uri = stage.qualify(images) if images else None
        rows = scored_rows(table)
        ran = {"note": "not run (--no-holdout)"}
        predictions = None
        if holdout:
            predictions, ran = held_out_predictions(spark, table, signals, train)
            rows = rows.unionByName(predictions)
        figures = agreement(pooled(rows), ["scorer", "provider"])
        if predictions is not None:
            figures = figures.join(fit_r2(pooled(predictions), ["scorer", "provider"]), on=["scorer", "provider"],
                                   how="left")
        else:
            figures = figures.withColumn("r2_fit", F.lit(None).cast("double"))
        written = stage.write("evaluation", figures.orderBy("scorer", "provider"))
        figure_rows = [r.asDict() for r in written.orderBy("scorer", "provider").collect()]
        observed = table.where(F.col("popularity_source") == F.lit("observed"))
        distributions = {r["provider"]: [v for v in r["values"] if v is not None] for r in
                         observed.groupBy("provider").agg(F.slice(F.shuffle(F.collect_list("popularity")), 1,
                                                                  DISTRIBUTION_SAMPLE).alias("values")).collect()}
        points = ([{"provider": r["provider"], "observed": r["target"], "predicted": r["score"]}
                   for r in predictions.where(F.col("scorer") == "model").orderBy(F.rand(3))
                   .limit(PREDICTION_SAMPLE).collect()] if predictions is not None else [])
        report = {
            "note": note,  # shown above everything (the demo: its data are generated)
            "authority_vs_popularity": [r for r in figure_rows if r["scorer"] == "authority"],
            "scorers": sorted({r["scorer"] for r in figure_rows}),
            "no_better_than_chance": [f"{r['scorer']} on {r['provider']}" for r in figure_rows if r["chance"]],
            "figures": figure_rows,
            "holdout": ran,
            "distributions": distributions,
            "predictions": points,
            "top_images": top_images(table, images_uri, image_suffix, _crawl_images(spark, publish_report)),
            "by_scorer": _by_scorer(figure_rows),
            "coverage": publish_report.get("coverage", []),
            "provider_authority": publish_report.get("provider_authority", []),
            "stages": _stage_reports(publish_report),
            "engines": _engines(publish_report),
        }
        page = render(report)
        fs.write_text(fs.join(stage.folder, "index.html"), page)
        fs.write_text(fs.join(stage.folder, "report.json"), json.dumps(report, indent=1, default=str))
        stage.report.update({k: report[k] for k in ("authority_vs_popularity", "scorers", "no_better_than_chance",
                                                     "figures", "holdout")})
    # beside the marker, for people: the committed run's page and figures, each one file replaced whole
    for name in ("index.html", "report.json"):
        fs.write_bytes(fs.join(stage.output, name), fs.read_bytes(fs.join(stage.folder, name)))
    return stage.report


def _stage_reports(publish_report: dict) -> dict:
    """What each stage behind the table read, wrote and skipped: the publish report and its inputs'."""
    stages = {"publish": {k: publish_report.get(k) for k in ("catalog", "rows_written", "matching", "warnings")}}
    if "cc_webgraph" in publish_report:
        stages["publish"]["cc_webgraph"] = publish_report["cc_webgraph"]
    for stage, inputs in (publish_report.get("inputs") or {}).items():
        for entry in inputs:
            try:
                report = commit.read_report(entry["path"])
            except Exception:  # noqa: BLE001 - an input since replaced or removed: say so
                stages[stage] = {"path": entry["path"], "note": "its report could not be read"}
                continue
            keep = ("files", "records_read", "rows_written", "skipped", "levels", "images", "providers", "catalog",
                    "cc_webgraph")
            stages[stage] = {k: report[k] for k in keep if k in report}
    return stages


def _by_scorer(rows: list[dict]) -> dict:
    """One entry per scorer (the model, each single signal, baseline_2020): its figures per provider."""
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row["scorer"], {})[row["provider"]] = {k: v for k, v in row.items()
                                                              if k not in ("scorer", "provider")}
    return out


def _crawl_images(spark: SparkSession, publish_report: dict) -> DataFrame | None:
    for entry in (publish_report.get("inputs") or {}).get("rank", []):
        try:
            return spark.read.parquet(fs.join(commit.current_run(entry["path"], "rank"), "image_authority"))
        except Exception:  # noqa: BLE001 - a rank output since replaced or removed: no pages in the report
            return None
    return None


def _engines(publish_report: dict) -> dict:
    engines = {}
    for entry in (publish_report.get("inputs") or {}).get("rank", []):
        try:
            levels = commit.read_report(entry["path"]).get("levels", {})
        except Exception:  # noqa: BLE001
            continue
        engines = {level: {what: run.get("engine") for what, run in info.items() if isinstance(run, dict)}
                   for level, info in levels.items()}
    return engines
