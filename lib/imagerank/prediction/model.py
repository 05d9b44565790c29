"""Train and apply the popularity model: Spark ML gradient-boosted trees on :mod:`.features`.

The target is the within-provider standardized popularity (Openverse's x / (x + C), in [0, 1)) of
images whose provider publishes a metric. The saved model is a Spark ``PipelineModel`` (it loads on
any machine with Spark) plus ``_model.json``: its feature list, learner, parameters, imagerank's
version and what it was trained on; prediction refuses a model whose features it cannot build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import __version__ as IMAGERANK_VERSION
from imagerank import fs
from imagerank.prediction.features import EMBEDDINGS, feature_frame

MODEL_INFO = "_model.json"
TOP = 1.0 - 1e-9  # predictions are clipped into [0, 1) like observed values


@dataclass(frozen=True)
class TrainOptions:
    max_iter: int = 50
    max_depth: int = 4
    step_size: float = 0.1
    seed: int = 11


def _vectorised(frame: DataFrame, columns: list[str], dims: dict[str, int]) -> DataFrame:
    """Embedding arrays as ML vectors of their fixed size (zeros where missing)."""
    from pyspark.ml.functions import array_to_vector

    for name in columns:
        if name in EMBEDDINGS:
            zeros = F.array_repeat(F.lit(0.0).cast("float"), dims[name])
            frame = frame.withColumn(name, array_to_vector(F.coalesce(F.col(name), zeros)))
    return frame


def embedding_dims(frame: DataFrame, columns: list[str]) -> dict[str, int]:
    dims = {}
    for name in columns:
        if name in EMBEDDINGS:
            row = frame.where(F.col(name).isNotNull()).select(F.size(name).alias("n")).first()
            dims[name] = int(row["n"]) if row else 1
    return dims


def observed_rows(frame: DataFrame) -> DataFrame:
    return frame.where((F.col("popularity_source") == F.lit("observed")) & F.col("popularity").isNotNull())


def fit(observed: DataFrame, columns: list[str], dims: dict[str, int], options: TrainOptions = TrainOptions()):
    """A fitted PipelineModel (features assembled, gradient-boosted trees) on rows of :func:`feature_frame`."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor

    assembler = VectorAssembler(inputCols=columns, outputCol="features")  # no nulls left: see features
    learner = GBTRegressor(featuresCol="features", labelCol="popularity", maxIter=options.max_iter,
                           maxDepth=options.max_depth, stepSize=options.step_size, seed=options.seed)
    return Pipeline(stages=[assembler, learner]).fit(_vectorised(observed, columns, dims))


def apply(model, frame: DataFrame, columns: list[str], dims: dict[str, int]) -> DataFrame:
    """identifier, prediction (clipped into [0, 1)) for the rows of ``frame``."""
    return (model.transform(_vectorised(frame, columns, dims))
            .select("identifier", F.least(F.greatest(F.col("prediction"), F.lit(0.0)), F.lit(TOP)).alias("prediction")))


def train(spark: SparkSession, table: DataFrame, signals: dict[str, DataFrame] | None, folder: str,
          options: TrainOptions = TrainOptions()) -> dict:
    """Fit on the rows with observed popularity; save under ``folder``; return what was trained."""
    frame, columns = feature_frame(table, signals)
    observed = observed_rows(frame)
    dims = embedding_dims(observed, columns)
    model = fit(observed, columns, dims, options)
    model.write().overwrite().save(fs.join(folder, "model"))
    providers = {r["provider"]: r["n"] for r in observed.groupBy("provider").agg(F.count(F.lit(1)).alias("n")).collect()}
    info = {"features": columns, "embedding_dims": dims, "learner": "GBTRegressor", "params": asdict(options),
            "target": "popularity (within-provider standardized, observed)", "imagerank_version": IMAGERANK_VERSION,
            "spark_version": spark.version, "trained_on": providers, "rows": sum(providers.values())}
    fs.write_json(fs.join(folder, MODEL_INFO), info)
    return info


def predict(spark: SparkSession, table: DataFrame, signals: dict[str, DataFrame] | None, folder: str,
            site: F.Column | None = None) -> DataFrame:
    """The table with ``popularity`` predicted wherever it was not observed (``popularity_source =
    predicted``, also where an earlier run predicted it), and ``score`` computed again from
    authority, popularity and ``site`` (the saturated domain authority, as publish scores it) —
    never from the previous score. Observed rows are unchanged, and predicting a table twice with one
    model gives the same table."""
    from pyspark.ml import PipelineModel

    from imagerank.catalog.publish import score

    info = fs.read_json(fs.join(folder, MODEL_INFO))
    frame, columns = feature_frame(table, signals)
    missing = [c for c in info["features"] if c not in columns]
    if missing:
        raise ValueError(f"{folder}: the model needs features {missing} that this table and signals do not give "
                         f"(pass the --signals it was trained with)")
    model = PipelineModel.load(fs.join(folder, "model"))
    unknown = frame.where(F.col("popularity_source") != F.lit("observed"))
    predicted = (apply(model, unknown, info["features"], info["embedding_dims"])
                 .select("identifier", F.col("prediction").alias("_p")))
    observed = F.col("popularity_source") == F.lit("observed")
    filled = (table.join(predicted, on="identifier", how="left")
              .withColumn("popularity", F.when(observed, F.col("popularity")).otherwise(F.col("_p")))
              .withColumn("popularity_source", F.when(observed | F.col("_p").isNull(), F.col("popularity_source"))
                          .otherwise(F.lit("predicted"))))
    return (filled.withColumn("score", score(F.col("authority"), F.col("popularity"),
                                             site if site is not None else F.lit(None).cast("double")))
            .drop("_p"))
