"""Openverse's saturation of a metric into [0, 1): x / (x + C), C from a percentile of the metric.

For a group of values (a provider's metric, or a whole column): V = percentile_disc(p) of the
values (nulls ignored, as PostgreSQL's ordered-set aggregates do), a V of 0 taken as 1,
C = ((1 - p) / p) * V, so that a value at the percentile maps to p. The popularity stage applies
it per provider and metric, the publish stage to authority over all images.

percentile_disc(p) is the value at 1-based position ceil(p * n) of the sorted values (at least 1),
PostgreSQL's definition. It is computed exactly and out of memory: rows are counted per distinct
value, and a running sum over the sorted distinct values finds the position (Spark sorts and spills
as needed). ``exact=False`` uses ``percentile_approx`` instead, for speed, when asked.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def percentile_values(raw: DataFrame, exact: bool = True) -> DataFrame:
    """provider, metric, percentile, value (percentile_disc of raw), n (rows with the metric)."""
    present = raw.where(F.col("raw").isNotNull())
    keys = ["provider", "metric", "percentile"]
    if not exact:
        levels = [r["percentile"] for r in present.select("percentile").distinct().collect()]
        parts = [present.where(F.col("percentile") == p).groupBy(*keys).agg(
            F.percentile_approx("raw", p, 100_000).alias("value"), F.count(F.lit(1)).alias("n")) for p in levels]
        return reduce(DataFrame.unionByName, parts) if parts else present.groupBy(*keys).agg(
            F.max("raw").alias("value"), F.count(F.lit(1)).alias("n"))
    counted = present.groupBy(*keys, "raw").agg(F.count(F.lit(1)).alias("rows"))
    group = Window.partitionBy(*keys)
    running = group.orderBy("raw").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    positioned = (
        counted.withColumn("through", F.sum("rows").over(running))
        .withColumn("n", F.sum("rows").over(group))
        .withColumn("target", F.greatest(F.lit(1), F.ceil(F.col("percentile") * F.col("n"))))
    )
    return positioned.where(F.col("through") >= F.col("target")).groupBy(*keys, "n").agg(
        F.min("raw").alias("value"))


def constants(values: DataFrame) -> DataFrame:
    """Openverse's popularity constants: C = ((1 - p) / p) * V, a V of 0 taken as 1."""
    v = F.when(F.col("value") == 0, F.lit(1.0)).otherwise(F.col("value"))
    return values.select(
        "provider", "metric", "percentile", "value",
        ((F.lit(1.0) - F.col("percentile")) / F.col("percentile") * v).alias("constant"), "n")


def saturate(frame: DataFrame, column: str, percentile: float) -> tuple[DataFrame, dict | None]:
    """``column`` mapped to x / (x + C) with Openverse's constant over the whole column (nulls stay null)."""
    values = frame.select(F.lit("all").alias("provider"), F.lit(column).alias("metric"),
                          F.lit(percentile).alias("percentile"), F.col(column).alias("raw"))
    row = constants(percentile_values(values)).first()
    if row is None:
        return frame.withColumn(f"{column}_saturated", F.lit(None).cast("double")), None
    saturated = F.col(column) / (F.col(column) + F.lit(row["constant"]))
    return frame.withColumn(f"{column}_saturated", saturated), row.asDict()
