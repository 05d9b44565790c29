"""The features of an image for popularity prediction, from the published table and the embed output.

Never the provider: the model must transfer to providers it has not seen. Missing numbers are 0 with
a missing-indicator beside them (trees split on either); embeddings missing are zero vectors.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

NUMERIC = ("authority", "authority_raw", "trust", "landing_page_rank", "domain_authority", "visualrank", "family_size",
           "width", "height")
FLAGS = ("gps",)
EMBEDDINGS = ("text_embedding", "image_embedding")


def feature_frame(table: DataFrame, signals: dict[str, DataFrame] | None) -> tuple[DataFrame, list[str]]:
    """(identifier, provider, popularity, popularity_source, score, the feature columns; the names of
    the feature columns in order). Embedding columns are arrays (made vectors by the model)."""
    frame = table.select("identifier", "provider", "popularity", "popularity_source", "score",
                         *[F.col(c).cast("double").alias(c) for c in NUMERIC if c in table.columns],
                         *[F.col(c).cast("double").alias(c) for c in FLAGS if c in table.columns])
    numeric = [c for c in NUMERIC + FLAGS if c in table.columns]
    columns = []
    for name in numeric:
        frame = (frame.withColumn(f"{name}_missing", F.col(name).isNull().cast("double"))
                 .withColumn(name, F.coalesce(F.col(name), F.lit(0.0))))
        columns += [name, f"{name}_missing"]
    for name, source in (("text_embedding", "text_embeddings"), ("image_embedding", "image_embeddings")):
        if signals and source in signals:
            vectors = signals[source].select("identifier", F.col("embedding").alias(name))
            frame = frame.join(vectors, on="identifier", how="left")
            columns.append(name)
    return frame, columns
