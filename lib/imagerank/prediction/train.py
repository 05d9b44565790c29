"""The train_popularity stage: fit the popularity model on the providers that publish a metric.

    python jobs/train_popularity.py --table TABLE_DIR [--signals SIGNALS_DIR] --output MODEL_DIR
"""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import SparkSession

from imagerank import fs
from imagerank.prediction.model import TrainOptions, train
from imagerank.stage import Stage, StageError

SIGNAL_TABLES = ("text_embeddings", "image_embeddings")


def read_signals(spark: SparkSession, stage: Stage, signals_dir: str | None) -> dict | None:
    if not signals_dir:
        return None
    folder = stage.input(signals_dir, "embed")
    return {name: spark.read.parquet(fs.join(folder, name)) for name in SIGNAL_TABLES
            if fs.exists(fs.join(folder, name))}


def run_train(spark: SparkSession, table_dir: str, output: str, signals_dir: str | None = None,
              options: TrainOptions = TrainOptions()) -> dict:
    with Stage(spark, "train_popularity", output, {"table": table_dir, "signals": signals_dir, **asdict(options)}) as stage:
        table = spark.read.parquet(fs.join(stage.input(table_dir, "publish", tables=("authority",)), "authority"))
        observed = table.where("popularity_source = 'observed'").count()
        if observed < 2:
            raise StageError(f"{table_dir}: {observed} image(s) with observed popularity; nothing to learn from")
        stage.report.update(train(spark, table, read_signals(spark, stage, signals_dir), stage.folder, options))
    return stage.report
