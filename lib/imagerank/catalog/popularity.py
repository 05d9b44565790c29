"""Provider popularity, standardized exactly as Openverse does it.

Per provider and metric (conf/providers.yaml): V = percentile_disc(p) of the raw metric over the
provider's rows that carry it (p = 0.85; nulls ignored, as PostgreSQL's ordered-set aggregates do),
a V of 0 taken as 1, C = ((1 - p) / p) * V, and for each row standardized = x / (x + C); a row
without the metric gets null.

percentile_disc(p) is the value at 1-based position ceil(p * n) of the sorted values (at least 1),
PostgreSQL's definition. It is computed exactly and out of memory: rows are counted per distinct
value, and a running sum over the sorted distinct values finds the position (Spark sorts and spills
as needed). ``exact=False`` uses ``percentile_approx`` instead, for speed, when asked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import reduce

import yaml
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from imagerank.catalog.read import read_catalog
from imagerank.spark import conf_dir
from imagerank.tables import StagedOutput, now_iso, read_text


@dataclass(frozen=True)
class ProviderMetric:
    provider: str
    metric: str
    percentile: float


def load_providers(spark: SparkSession, path: str | None = None, percentile: float | None = None) -> list[ProviderMetric]:
    """Provider -> metric from a YAML file (default conf/providers.yaml); ``percentile`` overrides the file's default."""
    path = path or str(conf_dir() / "providers.yaml")
    config = yaml.safe_load(read_text(spark, path)) or {}
    default = percentile if percentile is not None else float(config.get("percentile", 0.85))
    metrics = []
    for provider, entry in sorted((config.get("providers") or {}).items()):
        if not isinstance(entry, dict) or not entry.get("metric"):
            raise ValueError(f"{path}: provider {provider!r} needs a 'metric' (a key of meta_data)")
        p = float(entry.get("percentile", default)) if percentile is None else percentile
        if not 0.0 < p < 1.0:
            raise ValueError(f"{path}: percentile of {provider!r} must lie in (0, 1), got {p}")
        metrics.append(ProviderMetric(provider, str(entry["metric"]), p))
    return metrics


def raw_metrics(spark: SparkSession, catalog: DataFrame, metrics: list[ProviderMetric]) -> DataFrame:
    """identifier, provider, metric, percentile, raw (double; null where absent), raw_text, for listed providers."""
    table = spark.createDataFrame([(m.provider, m.metric, m.percentile) for m in metrics],
                                  "provider string, metric string, percentile double")
    values = F.from_json(F.col("meta_data"), "map<string,string>")
    return (
        catalog.select("identifier", "provider", "meta_data")
        .join(F.broadcast(table), on="provider", how="inner")
        .withColumn("raw_text", F.element_at(values, F.col("metric")))
        # try_cast as SQL: Column.try_cast is pyspark 4.0+, the SQL function is in 3.5 too
        .withColumn("raw", F.expr("try_cast(raw_text AS DOUBLE)"))
        .select("identifier", "provider", "metric", "percentile", "raw", "raw_text",
                (F.col("meta_data").isNotNull() & values.isNull()).alias("bad_meta_data"))
    )


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


def standardize(raw: DataFrame, provider_constants: DataFrame) -> DataFrame:
    """identifier, provider, metric, raw, standardized = raw / (raw + C); null where raw is null."""
    return (
        raw.join(provider_constants.select("provider", "metric", "constant"), on=["provider", "metric"], how="left")
        .select("identifier", "provider", "metric", "raw",
                F.when(F.col("raw").isNull() | F.col("constant").isNull(), F.lit(None).cast("double"))
                .otherwise(F.col("raw") / (F.col("raw") + F.col("constant"))).alias("standardized"))
    )


def run_popularity(spark: SparkSession, catalog_path: str, output: str, percentile: float | None = None,
                   providers_path: str | None = None, catalog_format: str = "auto", exact: bool = True) -> dict:
    """Write provider_constants and popularity under ``output``; returns the report."""
    started, started_at = time.time(), now_iso()
    metrics = load_providers(spark, providers_path, percentile)
    catalog, read_report = read_catalog(spark, catalog_path, fmt=catalog_format)
    raw = raw_metrics(spark, catalog, metrics).cache()
    with StagedOutput(spark, output) as staged:
        staged.write("provider_constants", constants(percentile_values(raw, exact)))
        provider_constants = spark.read.parquet(staged.table("provider_constants"))
        staged.write("popularity", standardize(raw, provider_constants))
        by_provider = {
            r["provider"]: {"rows": r["rows"], "with_metric": r["with_metric"], "not_numeric": r["not_numeric"],
                            "bad_meta_data": r["bad_meta_data"]}
            for r in raw.groupBy("provider").agg(
                F.count(F.lit(1)).alias("rows"),
                F.count("raw").alias("with_metric"),
                F.sum((F.col("raw_text").isNotNull() & F.col("raw").isNull()).cast("long")).alias("not_numeric"),
                F.sum(F.col("bad_meta_data").cast("long")).alias("bad_meta_data"),
            ).collect()
        }
        listed = {m.provider for m in metrics}
        without_metric = {r["provider"]: r["n"] for r in catalog.where(~F.col("provider").isin(*listed))
                          .groupBy("provider").agg(F.count(F.lit(1)).alias("n")).collect()}
        report = {
            "job": "popularity",
            "catalog": read_report,
            "started_at": started_at,
            "exact_percentiles": exact,
            "metrics": {m.provider: {"metric": m.metric, "percentile": m.percentile} for m in metrics},
            "providers": by_provider,
            "providers_without_metric": without_metric,
            "constants": [json.loads(json.dumps(r.asDict())) for r in provider_constants.orderBy("provider").collect()],
            "finished_at": now_iso(),
            "seconds": round(time.time() - started, 3),
        }
        staged.report(report)
    raw.unpersist()
    return report

