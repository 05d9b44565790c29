"""The evaluate stage: how well each single signal of the published table agrees with observed
popularity, per provider and over all providers (:mod:`.metrics`).

    python jobs/evaluate.py --table TABLE_DIR --output REPORT_DIR

Popularity is Openverse's within-provider standardized value, so providers can be pooled ("all").
Only rows whose popularity was observed count (``popularity_source = observed``). The first figure
is authority against popularity per provider: the two are expected to be related but distinct.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.evaluation.metrics import agreement
from imagerank.stage import Stage

ALL = "all"
# scorer -> its column expression over the published table
SCORERS = {
    "authority": F.col("authority"),
    "authority_raw": F.col("authority_raw"),
    "domain_authority": F.col("domain_authority"),
    "landing_page_rank": F.col("landing_page_rank"),
    "visualrank": F.col("visualrank"),
    "family_size": F.col("family_size").cast("double"),
    "exif_camera": F.when(F.col("camera_make").isNotNull(), 1.0).when(F.col("width").isNotNull(), 0.0),
    "pixels": F.col("width").cast("double") * F.col("height").cast("double"),
}


def scored_rows(table: DataFrame) -> DataFrame:
    """identifier, provider, scorer, score, target: one row per (image with observed popularity, scorer)."""
    observed = table.where(F.col("popularity_source") == F.lit("observed"))
    present = [name for name in SCORERS if _has_columns(table, name)]
    stacked = F.explode(F.array(*[F.struct(F.lit(name).alias("scorer"), SCORERS[name].cast("double").alias("score"))
                                  for name in present]))
    per_provider = observed.select("identifier", "provider", F.col("popularity").alias("target"), stacked.alias("s"))
    rows = per_provider.select("identifier", "provider", "s.scorer", "s.score", "target")
    return rows.unionByName(rows.withColumn("provider", F.lit(ALL)))


def _has_columns(table: DataFrame, scorer: str) -> bool:
    needed = {"exif_camera": ("camera_make", "width"), "pixels": ("width", "height")}.get(scorer, (scorer,))
    return all(column in table.columns for column in needed)


def run_evaluate(spark: SparkSession, table_dir: str, output: str) -> dict:
    with Stage(spark, "evaluate", output, {"table": table_dir}) as stage:
        folder = stage.input(table_dir, "publish")
        table = spark.read.parquet(f"{folder}/authority")
        figures = stage.write("evaluation", agreement(scored_rows(table), ["scorer", "provider"])
                              .orderBy("scorer", "provider"))
        rows = [r.asDict() for r in figures.orderBy("scorer", "provider").collect()]
        first = [r for r in rows if r["scorer"] == "authority"]
        stage.report.update({
            "authority_vs_popularity": first,
            "scorers": sorted({r["scorer"] for r in rows}),
            "no_better_than_chance": [f"{r['scorer']} on {r['provider']}" for r in rows if r["chance"]],
            "figures": rows,
        })
    return stage.report
