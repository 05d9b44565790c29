"""Agreement between a score and observed popularity, per provider, computed in Spark at catalog scale.

For each (scorer, provider) over the rows where both are known:

- ``spearman``: Pearson correlation of the two columns' ranks, ties given their average rank
  (exact: ranks from windows over the sorted values, sums from aggregates);
- ``kendall``: Kendall's tau-b on a uniform sample of at most ``kendall_sample`` rows (scipy; exact
  where the provider has fewer rows), since the exact statistic is O(n log n) on one machine;
- ``ndcg_10``, ``ndcg_100``: the DCG of the observed popularity in the order of the score, over the
  ideal order's, for the top k (gain = popularity, discount log2(rank + 1); score ties broken by
  identifier);
- ``r2``: the share of popularity's variance a straight line of the score explains (Pearson r^2);
- ``chance``: true when Spearman's rho is within what chance gives (|rho| * sqrt(n - 3) < 1.96,
  Fisher's z at 95%): such a scorer is no better than chance for that provider.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

KS = (10, 100)
KENDALL_SAMPLE = 20_000


def _average_rank(frame: DataFrame, keys: list[str], column: str, name: str) -> DataFrame:
    """``name``: the 1-based rank of ``column`` within ``keys``, ties sharing their average rank."""
    ordered = Window.partitionBy(*keys).orderBy(column)
    tied = Window.partitionBy(*keys, column)
    return (frame.withColumn("_first", F.rank().over(ordered))
            .withColumn("_ties", F.count(F.lit(1)).over(tied))
            .withColumn(name, F.col("_first") + (F.col("_ties") - 1) / 2.0)
            .drop("_first", "_ties"))


def _pearson(x: str, y: str):
    """Pearson's r; null where either column is constant (F.corr divides by zero under ANSI SQL)."""
    return F.expr(f"try_divide(covar_pop(`{x}`, `{y}`), stddev_pop(`{x}`) * stddev_pop(`{y}`))")


def ndcg(frame: DataFrame, keys: list[str], score: str, gain: str, k: int) -> DataFrame:
    """keys + ``ndcg_<k>``."""
    by_score = Window.partitionBy(*keys).orderBy(F.col(score).desc(), F.col("identifier"))
    by_gain = Window.partitionBy(*keys).orderBy(F.col(gain).desc(), F.col("identifier"))
    discount = lambda position: F.lit(1.0) / F.log2(position + F.lit(1.0))  # noqa: E731
    dcg = (frame.withColumn("_p", F.row_number().over(by_score)).where(F.col("_p") <= k)
           .groupBy(*keys).agg(F.sum(F.col(gain) * discount(F.col("_p"))).alias("_dcg")))
    ideal = (frame.withColumn("_p", F.row_number().over(by_gain)).where(F.col("_p") <= k)
             .groupBy(*keys).agg(F.sum(F.col(gain) * discount(F.col("_p"))).alias("_ideal")))
    return (dcg.join(ideal, on=keys, how="inner")
            .select(*keys, F.when(F.col("_ideal") > 0, F.col("_dcg") / F.col("_ideal")).alias(f"ndcg_{k}")))


def agreement(rows: DataFrame, keys: list[str], score: str = "score", target: str = "target",
              kendall_sample: int = KENDALL_SAMPLE, seed: int = 7) -> DataFrame:
    """One row per ``keys`` group: n, spearman, kendall, ndcg_10, ndcg_100, r2, chance.

    ``rows`` holds ``identifier``, the keys, ``score`` and ``target`` (rows with a null in either are left out).
    """
    known = rows.where(F.col(score).isNotNull() & F.col(target).isNotNull()
                       & ~F.isnan(score) & ~F.isnan(target))
    ranked = _average_rank(_average_rank(known, keys, score, "_rs"), keys, target, "_rt")
    base = ranked.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("n"),
        _pearson("_rs", "_rt").alias("spearman"),
        _pearson(score, target).alias("_pearson"))
    for k in KS:
        base = base.join(ndcg(known, keys, score, target, k), on=keys, how="left")
    kendall = _kendall(known, keys, score, target, kendall_sample, seed)
    return (base.join(kendall, on=keys, how="left")
            .withColumn("r2", F.col("_pearson") * F.col("_pearson"))
            .withColumn("chance", F.coalesce(
                F.abs(F.col("spearman")) * F.sqrt(F.greatest(F.col("n") - 3, F.lit(0))) < F.lit(1.96), F.lit(True)))
            .drop("_pearson"))


def _kendall(known: DataFrame, keys: list[str], score: str, target: str, sample: int, seed: int) -> DataFrame:
    """keys + kendall, from at most ``sample`` random rows per group (one group per task)."""
    import pandas as pd

    pick = Window.partitionBy(*keys).orderBy(F.rand(seed))
    sampled = (known.withColumn("_pick", F.row_number().over(pick)).where(F.col("_pick") <= sample)
               .select(*keys, F.col(score).alias("_s"), F.col(target).alias("_t")))

    def tau(frame: pd.DataFrame) -> pd.DataFrame:
        from scipy.stats import kendalltau

        value = kendalltau(frame["_s"], frame["_t"]).statistic if len(frame) > 1 else float("nan")
        out = frame[keys].iloc[:1].copy()
        out["kendall"] = None if value is None or math.isnan(value) else float(value)
        return out

    schema = ", ".join(f"`{k}` {dict(sampled.dtypes)[k]}" for k in keys) + ", kendall double"
    return sampled.groupBy(*keys).applyInPandas(tau, schema=schema)
