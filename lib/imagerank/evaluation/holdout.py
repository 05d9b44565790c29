"""Leave one provider out: the real use of a popularity model is a provider it has never seen.

For each provider with observed popularity, the model is trained on the other providers and scores
the held-out one; so is the 2020 baseline (a scikit-learn ``MLPRegressor`` on a sentence embedding of
the image's text; the 2020 model embedded the tag list alone, here title + tags + description as
embed writes them). The baseline runs on one machine: its training rows are a uniform sample of at
most ``baseline_rows``.
"""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from imagerank.prediction.features import feature_frame
from imagerank.prediction.model import TrainOptions, apply, embedding_dims, fit, observed_rows

MIN_ROWS = 10          # a provider with fewer observed rows is neither held out nor scored
BASELINE_ROWS = 50_000


def held_out_predictions(spark: SparkSession, table: DataFrame, signals: dict | None,
                         options: TrainOptions = TrainOptions(), baseline_rows: int = BASELINE_ROWS,
                         seed: int = 5) -> tuple[DataFrame, dict]:
    """(identifier, provider, scorer (model | baseline_2020), score, target; what ran)."""
    frame, columns = feature_frame(table, signals)
    observed = observed_rows(frame).cache()
    counts = {r["provider"]: r["n"] for r in observed.groupBy("provider").agg(F.count(F.lit(1)).alias("n")).collect()}
    providers = sorted(p for p, n in counts.items() if n >= MIN_ROWS)
    dims = embedding_dims(observed, columns)
    parts, ran = [], {"providers": providers, "skipped_small": sorted(set(counts) - set(providers)),
                      "features": columns, "model": asdict(options), "baseline": None}
    if len(providers) < 2:
        ran["note"] = "fewer than two providers with observed popularity: nothing to hold out"
        observed.unpersist()
        return spark.createDataFrame([], "identifier string, provider string, scorer string, score double, "
                                         "target double"), ran
    for provider in providers:
        train_rows = observed.where(F.col("provider") != F.lit(provider))
        test_rows = observed.where(F.col("provider") == F.lit(provider))
        model = fit(train_rows, columns, dims, options)
        parts.append(apply(model, test_rows, columns, dims)
                     .join(test_rows.select("identifier", "provider", F.col("popularity").alias("target")),
                           on="identifier", how="inner")
                     .select("identifier", "provider", F.lit("model").alias("scorer"),
                             F.col("prediction").alias("score"), "target"))
    if "text_embedding" in columns:
        baseline, ran["baseline"] = _baseline(spark, observed, providers, baseline_rows, seed)
        parts.append(baseline)
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    result = result.localCheckpoint(eager=True)
    observed.unpersist()
    return result, ran


def _baseline(spark: SparkSession, observed: DataFrame, providers: list[str], rows: int, seed: int):
    import numpy as np
    from sklearn.neural_network import MLPRegressor

    sample = observed.where(F.col("text_embedding").isNotNull()).select(
        "identifier", "provider", "text_embedding", "popularity")
    total = sample.count()
    if total > rows:
        sample = sample.sample(fraction=min(1.0, 1.2 * rows / total), seed=seed).limit(rows)
    local = sample.toPandas()
    out = []
    for provider in providers:
        train = local[local["provider"] != provider]
        test = local[local["provider"] == provider]
        if len(train) < 2 or len(test) == 0:
            continue
        model = MLPRegressor(hidden_layer_sizes=(64,), max_iter=300, random_state=seed, early_stopping=False)
        model.fit(np.stack(train["text_embedding"].to_numpy()), train["popularity"].to_numpy())
        predicted = model.predict(np.stack(test["text_embedding"].to_numpy()))
        out += [(i, provider, "baseline_2020", float(p), float(t))
                for i, p, t in zip(test["identifier"], predicted, test["popularity"])]
    frame = spark.createDataFrame(out, "identifier string, provider string, scorer string, score double, target double")
    return frame, {"learner": "sklearn MLPRegressor(64)", "features": "text embedding (title, tags, description)",
                   "rows": len(local), "sampled": total > rows}


def fit_r2(predictions: DataFrame, keys: list[str]) -> DataFrame:
    """keys + r2_fit: 1 - SSE / SST of the predictions as they are (scikit-learn's R^2 score)."""
    mean = F.avg("target").over(Window.partitionBy(*keys))
    return (predictions.withColumn("_mean", mean)
            .groupBy(*keys).agg(F.sum((F.col("target") - F.col("score")) ** 2).alias("_sse"),
                                F.sum((F.col("target") - F.col("_mean")) ** 2).alias("_sst"))
            .select(*keys, F.expr("1 - try_divide(_sse, _sst)").alias("r2_fit")))
