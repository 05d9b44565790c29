"""The VisualRank stage (Jing and Baluja, 2008): an image that many similar images resemble is canonical.

Per group of images (a tag, a provider, or the whole catalog), a sparse similarity graph: each
image's ``k`` most similar images, weights column-normalised so the result is a stationary
distribution; damping 0.85, dangling images spread their score uniformly within their group, as
networkx's weighted PageRank does. Scores sum to 1 per group.

- Groups of up to ``max_group_size`` images run many at a time, one group per task
  (``groupBy(...).applyInPandas``, in numpy: :mod:`.visualrank_math`). Three similarities:
  ``dense`` (default): every pair's cosine, computed exactly without the n x n matrix (the
  model-free backend's vectors are nonnegative, so V V^T factorises), plus the paper's matched
  interest points over the mean count for each image's 3k nearest. The dense background lets a
  larger family keep more of the score (a top-k graph gives every closed cluster the same mass
  per image), and the matched points order a family (the hashed-bag cosine alone is too flat:
  measured in :mod:`.similarity`). Vectors with negative entries (a learned backend) cannot be
  factorised and take the ``vector`` path. ``matches``: matched interest points only, top k.
  ``vector``: the top k by cosine.
- Larger groups (the catalog as one group) never compare all pairs: neighbours come from Spark
  ML's random-projection LSH (``approxSimilarityJoin``), the top ``k`` per image by cosine are kept, and the
  weighted PageRank runs over GraphFrames (``aggregateMessages``; GraphFrames' own pageRank
  ignores weights), all large groups in one iteration loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from imagerank.content.schemas import VISUALRANK
from imagerank.content.similarity import LocalFeatures, from_bytes, match_similarity
from imagerank.content.visualrank_math import (implicit_visualrank, knn_graph, visualrank,
                                               weighted_pagerank as group_pagerank)
from imagerank.graph.graphframes_jar import require_graphframes
from imagerank.stage import Stage

GROUPINGS = ("tag", "provider", "none")
SIMILARITIES = ("dense", "matches", "vector")
ALL = "all"
CANDIDATES_PER_NEIGHBOUR = 3     # matches: each image's 3k nearest by vector are compared by interest points


@dataclass(frozen=True)
class VisualRankOptions:
    group_by: str = "none"
    k: int = 20
    similarity: str = "dense"       # groups ranked in-task: "dense", "matches" or "vector" (module docstring)
    damping: float = 0.85
    max_group_size: int = 5000      # larger groups take the distributed path
    tol: float = 1e-9               # L1 change per group, distributed path
    max_iter: int = 200
    lsh_distance: float = 1.2       # Euclidean, L2-normalised vectors: cosine >= 0.28
    lsh_tables: int = 6
    lsh_bucket_length: float = 1.0


def image_groups(signals: dict[str, DataFrame], group_by: str) -> DataFrame:
    """identifier, group (an image may be in several tag groups)."""
    embeddings = signals["image_embeddings"]
    if group_by == "none":
        return embeddings.select("identifier", F.lit(ALL).alias("group"))
    if group_by == "provider":
        return embeddings.select("identifier", F.col("provider").alias("group"))
    if group_by == "tag":
        return (signals["image_tags"].select("identifier", F.col("tag").alias("group"))
                .join(embeddings.select("identifier"), on="identifier", how="left_semi").distinct())
    raise ValueError(f"unknown grouping {group_by!r}; choose one of {GROUPINGS}")


SCORES = T.StructType([T.StructField("identifier", T.StringType()), T.StructField("group", T.StringType()),
                       T.StructField("visualrank", T.DoubleType()), T.StructField("n_neighbours", T.IntegerType())])


def matched_graph(vectors: np.ndarray, features: list[LocalFeatures], k: int):
    """(src, dst, weight): each image's k most similar by matched interest points (VisualRank's own
    similarity), among its CANDIDATES_PER_NEIGHBOUR * k nearest by vector; zero-match pairs dropped."""
    src, dst, _ = knn_graph(vectors, min(len(vectors) - 1, CANDIDATES_PER_NEIGHBOUR * k))
    weight = np.array([match_similarity(features[a], features[b]) for a, b in zip(src, dst)], dtype=np.float64)
    keep = np.zeros(len(src), dtype=bool)
    for start, end in _runs(src):
        best = start + np.argsort(-weight[start:end], kind="stable")[:k]
        keep[best] = True
    keep &= weight > 0
    return src[keep], dst[keep], weight[keep]


def _runs(src: np.ndarray):
    """(start, end) of each source's edges (knn_graph orders edges by source)."""
    if len(src) == 0:
        return []
    cuts = np.flatnonzero(np.diff(src)) + 1
    return zip(np.r_[0, cuts], np.r_[cuts, len(src)])


def dense_with_matches(vectors: np.ndarray, features: list[LocalFeatures] | None, k: int, damping: float):
    """(scores, neighbours): dense VisualRank over every pair's cosine (exact, without the n x n
    matrix: :func:`.visualrank_math.implicit_visualrank`), plus, with local features, matched
    interest points added for each image's CANDIDATES_PER_NEIGHBOUR * k nearest; ``neighbours``
    counts the images whose interest points matched (0 without features)."""
    n = len(vectors)
    if features is None:
        return implicit_visualrank(vectors, damping=damping), np.zeros(n, dtype=np.int64)
    src, dst, _ = knn_graph(vectors, min(n - 1, CANDIDATES_PER_NEIGHBOUR * k))
    weight = np.array([match_similarity(features[a], features[b]) for a, b in zip(src, dst)], dtype=np.float64)
    keep = weight > 0
    src, dst, weight = src[keep], dst[keep], weight[keep]
    return implicit_visualrank(vectors, src, dst, weight, damping=damping), np.bincount(src, minlength=n)


def _rank_group(k: int, damping: float, similarity: str):
    def run(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("identifier")
        n = len(frame)
        vectors = np.asarray(frame["embedding"].tolist(), dtype=np.float32).reshape(n, -1)
        features = ([LocalFeatures(from_bytes(d), from_bytes(m)) for d, m in zip(frame["descriptors"],
                                                                                frame["mirrored"])]
                    if "descriptors" in frame.columns else None)
        if similarity == "dense" and n > 1 and not (vectors < 0).any():
            scores, neighbours = dense_with_matches(vectors, features, k, damping)
        elif similarity in ("dense", "matches") and features is not None and n > 1:
            src, dst, weight = matched_graph(vectors, features, k)
            scores = group_pagerank(n, src, dst, weight, damping=damping)
            neighbours = np.bincount(src, minlength=n)
        else:
            scores, neighbours = visualrank(vectors, k=k, damping=damping)
        return pd.DataFrame({"identifier": frame["identifier"].values, "group": frame["group"].values,
                             "visualrank": scores.astype("float64"), "n_neighbours": neighbours.astype("int32")})
    return run


def small_groups(members: DataFrame, options: VisualRankOptions) -> DataFrame:
    return members.groupBy("group").applyInPandas(_rank_group(options.k, options.damping, options.similarity),
                                                   schema=SCORES)


def knn_edges(members: DataFrame, options: VisualRankOptions) -> DataFrame:
    """(group, src, dst, weight): each image's top-k neighbours within its group, from LSH candidates."""
    from pyspark.ml.feature import BucketedRandomProjectionLSH
    from pyspark.ml.functions import array_to_vector

    images = members.select("identifier", "embedding").dropDuplicates(["identifier"]).select(
        "identifier", array_to_vector("embedding").alias("v"))
    model = BucketedRandomProjectionLSH(inputCol="v", outputCol="h", seed=23, bucketLength=options.lsh_bucket_length,
                                        numHashTables=options.lsh_tables).fit(images)
    close = (model.approxSimilarityJoin(images, images, options.lsh_distance, distCol="distance")
             .select(F.col("datasetA.identifier").alias("src"), F.col("datasetB.identifier").alias("dst"),
                     (F.lit(1.0) - F.col("distance") * F.col("distance") / F.lit(2.0)).alias("weight"))
             .where((F.col("src") != F.col("dst")) & (F.col("weight") > 0)))
    groups = members.select("identifier", "group")
    in_group = (close.join(groups.withColumnRenamed("identifier", "src"), on="src", how="inner")
                .join(groups.withColumnRenamed("identifier", "dst"), on=["dst", "group"], how="inner"))
    best = Window.partitionBy("group", "src").orderBy(F.col("weight").desc(), F.col("dst"))
    return (in_group.withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= options.k)
            .select("group", "src", "dst", "weight"))


def weighted_pagerank(spark: SparkSession, members: DataFrame, edges: DataFrame, damping: float, tol: float,
                      max_iter: int) -> tuple[DataFrame, dict]:
    """Weighted PageRank per group over GraphFrames' aggregateMessages; scores sum to 1 per group."""
    from graphframes import GraphFrame
    from graphframes.lib import AggregateMessages as AM

    key = lambda group, name: F.concat_ws("\u0001", group, name)  # noqa: E731
    sizes = members.groupBy("group").agg(F.count(F.lit(1)).alias("n"))
    out = edges.groupBy("group", "src").agg(F.sum("weight").alias("out"))
    normalised = (edges.join(out, on=["group", "src"], how="inner")
                  .select(key(F.col("group"), F.col("src")).alias("src"), key(F.col("group"), F.col("dst")).alias("dst"),
                          (F.col("weight") / F.col("out")).alias("w"))).localCheckpoint(eager=True)
    has_out = out.select("group", F.col("src").alias("identifier"), F.lit(True).alias("has_out"))
    vertices = (members.select("group", "identifier").join(sizes, on="group", how="inner")
                .join(has_out, on=["group", "identifier"], how="left")
                .select(key(F.col("group"), F.col("identifier")).alias("id"), "group", "identifier", "n",
                        F.coalesce("has_out", F.lit(False)).alias("has_out"),
                        (F.lit(1.0) / F.col("n")).alias("rank"))).localCheckpoint(eager=True)
    iterations, change = 0, None
    for iterations in range(1, max_iter + 1):
        graph = GraphFrame(vertices, normalised)
        received = graph.aggregateMessages([F.sum(AM.msg).alias("received")],
                                           sendToDst=[AM.src["rank"] * AM.edge["w"]])
        dangling = (vertices.where(~F.col("has_out")).groupBy("group").agg(F.sum("rank").alias("dangling")))
        updated = (vertices.join(received, on="id", how="left").join(dangling, on="group", how="left")
                   .withColumn("new", F.lit(1.0 - damping) / F.col("n") + F.lit(damping) * (
                       F.coalesce("received", F.lit(0.0)) + F.coalesce("dangling", F.lit(0.0)) / F.col("n")))
                   .localCheckpoint(eager=True))
        change = (updated.groupBy("group").agg(F.sum(F.abs(F.col("new") - F.col("rank"))).alias("c"))
                  .agg(F.max("c")).first()[0] or 0.0)
        vertices = updated.select("id", "group", "identifier", "n", "has_out", F.col("new").alias("rank"))
        if change < tol:
            break
    return (vertices.select("identifier", "group", F.col("rank").alias("visualrank")),
            {"iterations": iterations, "last_change": change, "converged": change is not None and change < tol})


def large_groups(spark: SparkSession, members: DataFrame, options: VisualRankOptions) -> tuple[DataFrame, dict]:
    edges = knn_edges(members, options).localCheckpoint(eager=True)
    ranks, run = weighted_pagerank(spark, members, edges, options.damping, options.tol, options.max_iter)
    neighbours = edges.groupBy("group", F.col("src").alias("identifier")).agg(
        F.count(F.lit(1)).cast("int").alias("n_neighbours"))
    scores = (ranks.join(neighbours, on=["group", "identifier"], how="left")
              .select("identifier", "group", "visualrank", F.coalesce("n_neighbours", F.lit(0)).alias("n_neighbours")))
    return scores, {**run, "edges": edges.count()}


def run_visualrank(spark: SparkSession, signals_dir: str, output: str,
                   options: VisualRankOptions = VisualRankOptions()) -> dict:
    if options.group_by not in GROUPINGS:
        raise ValueError(f"unknown grouping {options.group_by!r}; choose one of {GROUPINGS}")
    if options.similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {options.similarity!r}; choose one of {SIMILARITIES}")
    with Stage(spark, "visualrank", output, asdict(options) | {"signals": signals_dir}) as stage:
        folder = stage.input(signals_dir, "embed")
        signals = {name: spark.read.parquet(f"{folder}/{name}")
                   for name in ("image_embeddings", "families", "image_tags")}
        groups = image_groups(signals, options.group_by)
        embeddings = signals["image_embeddings"]
        backend = embeddings.select("backend").first()
        local = backend is not None and backend["backend"] == "local"
        # a learned backend's vectors have negative entries: no factorisation, no local features
        similarity = options.similarity if local else "vector"
        use_matches = local and similarity in ("dense", "matches")
        columns = ["identifier", "embedding"] + (["descriptors", "mirrored"] if use_matches else [])
        members = (groups.join(embeddings.select(*columns), on="identifier", how="inner")
                   .where(F.size("embedding") > 0))
        sizes = members.groupBy("group").agg(F.count(F.lit(1)).alias("size")).cache()
        small = members.join(sizes.where(F.col("size") <= options.max_group_size).select("group"),
                             on="group", how="left_semi")
        large = members.join(sizes.where(F.col("size") > options.max_group_size).select("group"),
                             on="group", how="left_semi")
        n_large = sizes.where(F.col("size") > options.max_group_size).count()
        scores = small_groups(small, replace(options, similarity=similarity))
        distributed = {"groups": n_large}
        if n_large:
            require_graphframes(spark)
            large_scores, run = large_groups(spark, large, options)
            scores = scores.unionByName(large_scores)
            distributed.update(run)
        stage.report["similarity"] = {"in_task": similarity, "local_features": use_matches, "distributed": "vector"}
        families = signals["families"]
        table = (scores.join(families, on="identifier", how="left")
                 .select("identifier", "group", "visualrank", "n_neighbours",
                         F.coalesce("family_size", F.lit(1)).cast("long").alias("family_size"),
                         "near_duplicate_of"))
        written = stage.write("visualrank", table.select(*[F.col(f.name).cast(f.dataType) for f in VISUALRANK.fields]))
        stats = sizes.agg(F.count(F.lit(1)).alias("groups"), F.sum("size").alias("memberships"),
                          F.max("size").alias("largest")).first()
        top = (written.where(F.col("group") == F.lit(_largest_group(sizes)))
               .orderBy(F.col("visualrank").desc(), "identifier").limit(10).collect())
        stage.report.update({
            "groups": stats["groups"], "memberships": stats["memberships"], "largest_group": stats["largest"],
            "rows": written.count(), "distributed": distributed,
            "top_of_largest_group": [{"identifier": r["identifier"], "visualrank": r["visualrank"],
                                      "family_size": r["family_size"]} for r in top],
        })
        sizes.unpersist()
    return stage.report


def _largest_group(sizes: DataFrame) -> str | None:
    row = sizes.orderBy(F.col("size").desc(), "group").first()
    return row["group"] if row else None
