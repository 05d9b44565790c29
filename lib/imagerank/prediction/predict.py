"""The predict_popularity stage: the published table with popularity predicted where no metric exists.

    python jobs/predict_popularity.py --model MODEL_DIR --table TABLE_DIR [--signals SIGNALS_DIR] --output TABLE_DIR2

Commits a new publish run (``--output`` may be ``--table`` itself) holding every table of the
publish run it read: ``authority`` (the published table's schema, partitioned by provider) with
``popularity_source = predicted`` wherever the provider publishes no metric (or the row lacks it),
on the observed values' 0..1 scale, and ``score`` computed again from authority, popularity and the
site's standing (as publish computes it, never from the previous score); ``scores_tsv`` written
again with those scores; the other tables (``coverage``, ``provider_authority``) and the publish
report's sections carried over. Idempotent: predicting a table again with the same model changes
nothing. In place, the run it replaces is kept for the commit retention, and a publish that
commits meanwhile makes this run fail rather than be overwritten (:mod:`imagerank.commit`).
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.catalog.publish import site_score, write_scores_tsv
from imagerank.prediction.model import MODEL_INFO, predict
from imagerank.prediction.train import read_signals
from imagerank.stage import Stage

REWRITTEN = ("authority", "scores_tsv")  # the tables prediction changes; the others are carried over


def run_predict(spark: SparkSession, model_dir: str, table_dir: str, output: str, signals_dir: str | None = None) -> dict:
    args = {"model": model_dir, "table": table_dir, "signals": signals_dir}
    with Stage(spark, "publish", output, args) as stage:
        model_folder = stage.input(model_dir, "train_popularity")
        table_folder = stage.input(table_dir, "publish", may_be_output=True, tables=("authority",))  # --output may be the table itself
        published = stage.input_report(table_folder)
        table = spark.read.parquet(fs.join(table_folder, "authority"))
        constant = ((published.get("saturation") or {}).get("domain_authority") or {}).get("constant")
        site = site_score(F.col("domain_authority"), constant) if "domain_authority" in table.columns else None
        filled = predict(spark, table, read_signals(spark, stage, signals_dir), model_folder, site)
        written = stage.write("authority", filled.select(*table.columns), partition_by=["provider"])
        write_scores_tsv(stage, written)
        carried = [name for name in fs.list_names(table_folder)
                   if not name.startswith(("_", ".")) and name not in REWRITTEN]
        for name in carried:
            stage.write(name, spark.read.parquet(fs.join(table_folder, name)))
        counts = {r["popularity_source"]: r["n"] for r in written.groupBy("popularity_source")
                  .agg(F.count(F.lit(1)).alias("n")).collect()}
        envelope = set(stage.envelope()) | {"finished_at", "seconds", "iceberg_tables"}
        stage.report.update({key: value for key, value in published.items() if key not in envelope})
        stage.report.update({"model": fs.read_json(fs.join(model_folder, MODEL_INFO)), "popularity_source": counts,
                             "rows_written": written.count(),
                             "prediction": {"published_run": table_folder.rsplit("/", 1)[1], "carried_over": carried,
                                            "site_constant": constant}})
    return stage.report
