"""Openverse's saturation of a metric into [0, 1): x / (x + C), C from a percentile of the metric.

For a group of values (a provider's metric, or a whole column): V = percentile_disc(p) of the
values (nulls ignored, as PostgreSQL's ordered-set aggregates do), a V of 0 taken as 1,
C = ((1 - p) / p) * V, so that a value at the percentile maps to p. The popularity stage applies
it per provider and metric, the publish stage to authority over all images.

percentile_disc(p) is PostgreSQL's: the first value, in ascending order, whose 1-based position
is at least p * n, i.e. the value at position max(1, ceil(p * n)) of the n sorted non-null values
(duplicates each take their own position). It is computed exactly, with no step that holds a
group (a provider, or the whole column) in one task:

1. rows are counted per distinct value (a ``groupBy``: duplicates, e.g. the many 0s of Wikimedia's
   global usage, become one row, so no value can weigh on one task);
2. these (group, value, rows) are range-partitioned on (group, value), and each partition reports,
   per group it holds, the smallest and largest value and its rows (one small row per partition
   and group, collected to the driver);
3. the driver orders a group's spans by value, adds up the rows before each, and picks the span
   holding position max(1, ceil(p * n)), with the rows before it;
4. only that span's distinct values are sorted in a window (a running sum), which finds the value.

Spans are found by value, not by partition number, so a recomputed partition cannot move them.
``exact=False`` uses ``percentile_approx`` instead, for speed, when asked.
"""

from __future__ import annotations

import math
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T


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
    return _exact_percentiles(present, keys)


def _ordered(value):
    """Sort key that puts NaN last, as Spark orders doubles."""
    return (value != value, value)


def _exact_percentiles(present: DataFrame, keys: list[str]) -> DataFrame:
    """percentile_disc per group, distributed as the module docstring describes."""
    spark = present.sparkSession
    types = {f.name: f.dataType for f in present.schema.fields}
    schema = T.StructType([T.StructField(k, types[k]) for k in keys]
                          + [T.StructField("n", T.LongType()), T.StructField("value", types["raw"])])
    counted = present.groupBy(*keys, "raw").agg(F.count(F.lit(1)).alias("rows")).persist()
    try:
        try:
            parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
        except ValueError:
            parts = spark.sparkContext.defaultParallelism
        spans = (
            counted.repartitionByRange(max(parts, 1), *keys, "raw")
            .withColumn("part", F.spark_partition_id())
            .groupBy("part", *keys)
            .agg(F.min("raw").alias("low"), F.max("raw").alias("high"), F.sum("rows").alias("rows"))
            .collect()
        )
        groups: dict[tuple, list] = {}
        for span in spans:
            groups.setdefault(tuple(span[k] for k in keys), []).append(span)
        targets = []
        for group, group_spans in groups.items():
            group_spans.sort(key=lambda s: _ordered(s["low"]))
            n = sum(s["rows"] for s in group_spans)
            percentile = dict(zip(keys, group))["percentile"]
            target = max(1, math.ceil(percentile * n))
            before = 0
            for span in group_spans:
                if before + span["rows"] >= target:
                    targets.append((*group, span["low"], span["high"], before, target, n))
                    break
                before += span["rows"]
        if not targets:
            return spark.createDataFrame([], schema)
        wanted = spark.createDataFrame(targets, T.StructType(
            [T.StructField(f"_{k}", types[k]) for k in keys]
            + [T.StructField("low", types["raw"]), T.StructField("high", types["raw"]),
               T.StructField("before", T.LongType()), T.StructField("target", T.LongType()),
               T.StructField("n", T.LongType())]))
        same_group = [F.col(k).eqNullSafe(F.col(f"_{k}")) for k in keys]
        in_span = (F.col("raw") >= F.col("low")) & (F.col("raw") <= F.col("high"))
        running = Window.partitionBy(*keys).orderBy("raw").rowsBetween(Window.unboundedPreceding, Window.currentRow)
        found = (
            counted.join(F.broadcast(wanted), on=reduce(lambda a, b: a & b, same_group, in_span), how="inner")
            .withColumn("through", F.col("before") + F.sum("rows").over(running))
            .where(F.col("through") >= F.col("target"))
            .groupBy(*keys, "n").agg(F.min("raw").alias("value"))
            .collect()
        )
        return spark.createDataFrame([tuple(r[c] for c in schema.names) for r in found], schema)
    finally:
        counted.unpersist()


def constants(values: DataFrame) -> DataFrame:
    """Openverse's popularity constants: C = ((1 - p) / p) * V, a V of 0 taken as 1."""
    v = F.when(F.col("value") == 0, F.lit(1.0)).otherwise(F.col("value"))
    return values.select(
        "provider", "metric", "percentile", "value",
        ((F.lit(1.0) - F.col("percentile")) / F.col("percentile") * v).alias("constant"), "n")


def saturable(value: F.Column) -> F.Column:
    """Whether x / (x + C) is defined and in [0, 1) for a value: finite and not negative (false for null).

    A negative x can make x + C zero, which Spark 4 (ANSI) fails on and Spark 3.5 turns into null;
    values outside this test are never divided, so both give the same."""
    return F.coalesce(~F.isnan(value) & (value >= 0) & (value < F.lit(float("inf"))), F.lit(False))


def saturate(frame: DataFrame, column: str, percentile: float) -> tuple[DataFrame, dict | None]:
    """``column`` mapped to x / (x + C) with Openverse's constant over the whole column; nulls, and
    values that are NaN, infinite or negative, take no part in C and map to null."""
    saturated, found = saturate_columns(frame, [column], percentile)
    return saturated, found[column]


def saturate_columns(frame: DataFrame, columns: list[str], percentile: float) -> tuple[DataFrame, dict]:
    """Each of ``columns`` saturated as :func:`saturate` does (``<column>_saturated``, its own
    constant), the constants found in one pass over ``frame``: each row gives one (column, value)
    row per column, and the columns are the groups of one exact percentile computation. Returns the
    frame and column -> its constant's row (None where the column has no value to saturate)."""
    pairs = F.explode(F.array(*[
        F.struct(F.lit(column).alias("metric"),
                 F.when(saturable(F.col(column)), F.col(column)).cast("double").alias("raw"))
        for column in columns])).alias("pair")
    values = frame.select(pairs).select(F.lit("all").alias("provider"), "pair.metric",
                                        F.lit(percentile).alias("percentile"), "pair.raw")
    found = {row["metric"]: row.asDict() for row in constants(percentile_values(values)).collect()}
    for column in columns:
        row = found.setdefault(column, None)
        saturated = (F.when(saturable(F.col(column)), F.col(column) / (F.col(column) + F.lit(row["constant"])))
                     if row else F.lit(None).cast("double"))
        frame = frame.withColumn(f"{column}_saturated", saturated)
    return frame, found
