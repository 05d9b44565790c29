"""Provider popularity, standardized exactly as Openverse does it.

Per provider and metric (imagerank/conf/providers.yaml, or a file given with --providers), each
row's raw metric x becomes x / (x + C), with C from the provider's 85th percentile
(:mod:`imagerank.catalog.saturation`); a row without the metric gets null.

A value that is not a number (``not_numeric``), NaN or infinite in any spelling Spark reads as a
double (``NaN``, ``inf``, ``-Infinity``, ``1e999``, as text or as a JSON number: ``not_finite``)
or below zero (``negative``) is a counted skip: its ``raw`` and ``standardized`` are null and it
takes no part in the percentile, so popularity always lies in [0, 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.catalog.read import DEFAULT_TABLE, read_catalog
from imagerank.postgres import is_postgres
from imagerank.catalog.saturation import constants, percentile_values
from imagerank.spark import package_conf
from imagerank.stage import Stage


@dataclass(frozen=True)
class ProviderMetric:
    provider: str
    metric: str
    percentile: float


def load_providers(spark: SparkSession, path: str | None = None, percentile: float | None = None) -> list[ProviderMetric]:
    """Provider -> metric from a YAML file (default: the package's providers.yaml); ``percentile`` overrides the file's default."""
    text = fs.read_text(fs.qualify(spark, path)) if path else package_conf("providers.yaml")
    path = path or "imagerank/conf/providers.yaml"
    config = yaml.safe_load(text) or {}
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
    """identifier, provider, metric, percentile, raw (double; null where absent or skipped), raw_text,
    bad_meta_data, and ``skip`` (null, ``not_numeric``, ``not_finite`` or ``negative``), for listed providers."""
    table = spark.createDataFrame([(m.provider, m.metric, m.percentile) for m in metrics],
                                  "provider string, metric string, percentile double")
    values = F.from_json(F.col("meta_data"), "map<string,string>")
    return (
        catalog.select("identifier", "provider", "meta_data")
        .join(F.broadcast(table), on="provider", how="inner")
        .withColumn("raw_text", F.element_at(values, F.col("metric")))
        # a bare NaN / Infinity token of the JSON comes back as its text in quotes: "NaN"
        .withColumn("value", F.regexp_replace("raw_text", r'^\s*"(.*)"\s*$', "$1"))
        # try_cast as SQL: Column.try_cast is pyspark 4.0+, the SQL function is in 3.5 too
        .withColumn("value", F.expr("try_cast(value AS DOUBLE)"))
        .withColumn("skip", F.when(F.col("raw_text").isNotNull() & F.col("value").isNull(), F.lit("not_numeric"))
                    .when(F.isnan("value") | (F.abs("value") == F.lit(float("inf"))), F.lit("not_finite"))
                    .when(F.col("value") < 0, F.lit("negative")))
        .withColumn("raw", F.when(F.col("skip").isNull(), F.col("value")))
        .select("identifier", "provider", "metric", "percentile", "raw", "raw_text",
                (F.col("meta_data").isNotNull() & values.isNull()).alias("bad_meta_data"), "skip")
    )


def standardize(raw: DataFrame, provider_constants: DataFrame) -> DataFrame:
    """identifier, provider, metric, raw, standardized = raw / (raw + C); null where raw is null."""
    return (
        raw.join(provider_constants.select("provider", "metric", "constant"), on=["provider", "metric"], how="left")
        .select("identifier", "provider", "metric", "raw",
                F.when(F.col("raw").isNull() | F.col("constant").isNull(), F.lit(None).cast("double"))
                .otherwise(F.col("raw") / (F.col("raw") + F.col("constant"))).alias("standardized"))
    )


def run_popularity(spark: SparkSession, catalog_path: str, output: str, percentile: float | None = None,
                   providers_path: str | None = None, catalog_format: str = "auto", exact: bool = True,
                   catalog_table: str = DEFAULT_TABLE) -> dict:
    """Write provider_constants and popularity under ``output``; returns the report."""
    args = {"catalog": catalog_path, "percentile": percentile, "providers": providers_path,
            "catalog_format": catalog_format, "exact": exact,
            **({"catalog_table": catalog_table} if is_postgres(catalog_path) else {})}
    with Stage(spark, "popularity", output, args) as stage:
        metrics = load_providers(spark, providers_path, percentile)
        catalog, catalog_report = read_catalog(spark, stage.qualify(catalog_path), fmt=catalog_format,
                                                  table=catalog_table)
        raw = raw_metrics(spark, catalog, metrics).cache()
        provider_constants = stage.write("provider_constants", constants(percentile_values(raw, exact)))
        stage.write("popularity", standardize(raw, provider_constants))
        by_provider = {
            r["provider"]: {"rows": r["rows"], "with_metric": r["with_metric"], "not_numeric": r["not_numeric"],
                            "not_finite": r["not_finite"], "negative": r["negative"],
                            "bad_meta_data": r["bad_meta_data"]}
            for r in raw.groupBy("provider").agg(
                F.count(F.lit(1)).alias("rows"),
                F.count("raw").alias("with_metric"),
                *[F.count(F.when(F.col("skip") == F.lit(reason), F.lit(1))).alias(reason)
                  for reason in ("not_numeric", "not_finite", "negative")],
                F.sum(F.col("bad_meta_data").cast("long")).alias("bad_meta_data"),
            ).collect()
        }
        listed = {m.provider for m in metrics}
        without_metric = {r["provider"]: r["n"] for r in catalog.where(~F.col("provider").isin(*listed))
                          .groupBy("provider").agg(F.count(F.lit(1)).alias("n")).collect()}
        stage.report.update({
            "catalog": catalog_report,
            "exact_percentiles": exact,
            "metrics": {m.provider: {"metric": m.metric, "percentile": m.percentile} for m in metrics},
            "providers": by_provider,
            "providers_without_metric": without_metric,
            "constants": [json.loads(json.dumps(r.asDict())) for r in provider_constants.orderBy("provider").collect()],
        })
        raw.unpersist()
    return stage.report
