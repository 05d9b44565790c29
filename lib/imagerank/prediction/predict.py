"""The predict_popularity stage: the published table with popularity predicted where no metric exists.

    python jobs/predict_popularity.py --model MODEL_DIR --table TABLE_DIR [--signals SIGNALS_DIR] --output TABLE_DIR2

Writes ``authority`` (the published table's schema, partitioned by provider) with
``popularity_source = predicted`` where the provider publishes no metric (or the row lacks it), on
the observed values' 0..1 scale, and ``score`` recomputed with it.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.prediction.model import MODEL_INFO, predict
from imagerank.prediction.train import read_signals
from imagerank.stage import Stage


def run_predict(spark: SparkSession, model_dir: str, table_dir: str, output: str, signals_dir: str | None = None) -> dict:
    args = {"model": model_dir, "table": table_dir, "signals": signals_dir}
    with Stage(spark, "publish", output, args) as stage:
        model_folder = stage.input(model_dir, "train_popularity")
        table_folder = stage.input(table_dir, "publish", may_be_output=True)  # --output may be the table itself
        table = spark.read.parquet(fs.join(table_folder, "authority"))
        filled = predict(spark, table, read_signals(spark, stage, signals_dir), model_folder)
        written = stage.write("authority", filled.select(*table.columns), partition_by=["provider"])
        counts = {r["popularity_source"]: r["n"] for r in written.groupBy("popularity_source")
                  .agg(F.count(F.lit(1)).alias("n")).collect()}
        stage.report.update({"model": fs.read_json(fs.join(model_folder, MODEL_INFO)),
                             "popularity_source": counts, "rows_written": written.count()})
    return stage.report
