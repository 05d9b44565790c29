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
- Larger groups (the catalog as one group) never compare all pairs. Candidates come from
  random-hyperplane LSH with a bounded bucket (:func:`lsh_buckets`; the numpy steps and their
  one-process twin ``lsh_knn`` are in :mod:`.visualrank_math`): in each of ``lsh_tables`` tables an
  image's signature is the side it lies on of ceil(log2(n / lsh_max_bucket)) + ``lsh_extra_bits``
  random hyperplanes through its group's mean; its bucket is the shallowest prefix of that signature
  shared by at most ``lsh_max_bucket`` images of the group (sparse regions keep coarse buckets, dense
  ones are cut finer); a leaf still over the cap (near-identical images: no plane separates them) is
  split round-robin in identifier order and counted. Within a bucket every pair's cosine is computed
  exactly (numpy, one bucket per ``applyInPandas`` call) and each image keeps its ``k`` best at
  cosine >= 1 - lsh_distance^2 / 2 (0.28); over the tables, its ``k`` best. **The bound:** an image is
  compared with at most ``lsh_tables x (lsh_max_bucket - 1)`` others (12 x 1,023 = 12,276 by default),
  whatever the group's size; a Python call holds one bucket's vectors at most, and each vector is
  shuffled once per table. The price is recall, which falls as n grows at a fixed
  bound: the report's ``distributed.candidates`` gives the candidates per image (mean, max), the
  buckets capped, and recall@k against the exact kNN of ``recall_sample`` images (bench_content.py,
  clustered 384-dim vectors, k = 20: recall 0.96 at 10^4 images, 0.57 at 10^5, the neighbours found
  0.99 as similar as the exact ones in both; ~8,500 candidates per image at both). Weighted PageRank then runs in Spark's
  DataFrames (one join of the edges with the ranks per iteration, each iteration's ranks
  checkpointed), all large groups in one iteration loop.
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
from imagerank.content.visualrank_math import (LSH_CUT_BITS, bucket_edges, implicit_visualrank, knn_graph, lsh_bits,
                                               lsh_planes, lsh_signatures, lsh_tree_cut, visualrank,
                                               weighted_pagerank as group_pagerank)
from imagerank.stage import Stage, StageError

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
    lsh_distance: float = 1.2       # Euclidean, L2-normalised vectors: edges need cosine >= 0.28
    lsh_tables: int = 12            # hash tables; candidates per image <= lsh_tables x (lsh_max_bucket - 1)
    lsh_max_bucket: int = 1024      # images per bucket at most (oversize leaves are split, and counted)
    lsh_extra_bits: int = 8         # planes beyond ceil(log2(n / lsh_max_bucket)), to cut dense regions finer
    lsh_seed: int = 23
    recall_sample: int = 200        # images whose exact top k is computed for the report (0: none)


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


def lsh_buckets(members: DataFrame, options: VisualRankOptions) -> tuple[DataFrame, DataFrame, dict]:
    """(buckets, images, parameters): every image's bucket in each hash table (module docstring,
    :mod:`.visualrank_math`: random hyperplanes through the group's mean, the tree cut at
    ``lsh_max_bucket``, oversize leaves split round-robin in identifier order).

    buckets: group, identifier, table, depth, prefix, chunk (the bucket's key within the group), size
    (images in the bucket), capped (its leaf was over the cap and split). images: group, identifier,
    embedding, one row per image and group. parameters: per group its ``n`` and ``bits``."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer

    images = (members.where(F.col("group").isNotNull())        # a null group: the joins on group drop it anyway
              .select("group", "identifier", "embedding").dropDuplicates(["group", "identifier"]))
    summary = (images.groupBy("group")
               .agg(F.count(F.lit(1)).alias("n"), Summarizer.mean(array_to_vector("embedding")).alias("centre"))
               .collect())
    tables, cap = options.lsh_tables, options.lsh_max_bucket
    groups = {r["group"]: {"n": r["n"], "bits": lsh_bits(r["n"], cap, options.lsh_extra_bits),
                           "centre": r["centre"].toArray()} for r in summary}
    dims = len(next(iter(groups.values()))["centre"]) if groups else 0
    planes = lsh_planes(dims, tables, max((g["bits"] for g in groups.values()), default=0), options.lsh_seed)
    setup = {g: (p["centre"], planes[:, :p["bits"]]) for g, p in groups.items()}

    def hash_images(batches):
        for frame in batches:
            for group, part in frame.groupby("group", sort=False, dropna=False):
                centre, group_planes = setup[group]
                vectors = np.asarray(part["embedding"].tolist(), dtype=np.float64).reshape(len(part), -1)
                signatures = lsh_signatures(vectors, centre, group_planes)
                ids = part["identifier"].to_numpy(dtype=object)
                yield pd.DataFrame({"group": group, "identifier": np.repeat(ids, tables),
                                    "table": np.tile(np.arange(tables, dtype=np.int32), len(part)),
                                    "signature": signatures.ravel()})

    hashed = images.mapInPandas(hash_images, "group string, identifier string, table int, signature long")
    spark = members.sparkSession
    params = spark.createDataFrame([(g, p["bits"], max(0, p["bits"] - LSH_CUT_BITS)) for g, p in groups.items()],
                                   "group string, bits int, start int")
    leaves = (hashed.groupBy("group", "table", "signature").agg(F.count(F.lit(1)).alias("leaf_size"))
              .join(F.broadcast(params), on="group", how="inner")
              .withColumn("node", F.expr("shiftright(signature, bits - start)")))

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        bits, start = int(frame["bits"].iloc[0]), int(frame["start"].iloc[0])
        depth, prefix = lsh_tree_cut(frame["signature"].values, frame["leaf_size"].values, bits, cap, start)
        size = pd.Series(frame["leaf_size"].values).groupby([depth, prefix]).transform("sum").values
        return pd.DataFrame({"group": frame["group"].values, "table": frame["table"].values,
                             "signature": frame["signature"].values, "depth": depth.astype(np.int32),
                             "prefix": prefix, "node_size": size.astype(np.int64)})

    nodes = leaves.groupBy("group", "table", "node").applyInPandas(
        cut, "group string, table int, signature long, depth int, prefix long, node_size long")
    assigned = hashed.join(nodes, on=["group", "table", "signature"], how="inner")
    node = ["group", "table", "depth", "prefix"]
    in_order = Window.partitionBy(*node).orderBy("identifier")
    parts = F.expr(f"cast(ceil(node_size / {cap}) as long)")
    split = (assigned.where(F.col("node_size") > cap)
             .withColumn("chunk", F.pmod(F.row_number().over(in_order) - 1, parts))
             .withColumn("size", F.floor(F.col("node_size") / parts)
                         + F.when(F.col("chunk") < F.pmod(F.col("node_size"), parts), 1).otherwise(0)))
    whole = (assigned.where(F.col("node_size") <= cap)
             .withColumn("chunk", F.lit(0).cast("long")).withColumn("size", F.col("node_size")))
    columns = ["group", "identifier", "table", "depth", "prefix", "chunk", "size", "capped"]
    buckets = (split.withColumn("capped", F.lit(True)).unionByName(whole.withColumn("capped", F.lit(False)))
               .select(*[F.col(c).cast("long") if c in ("chunk", "size") else F.col(c) for c in columns]))
    return buckets, images, {g: {"n": p["n"], "bits": p["bits"]} for g, p in groups.items()}


BUCKET = ["group", "table", "depth", "prefix", "chunk"]
EDGES = "group string, src string, dst string, weight double"


def bucket_knn(buckets: DataFrame, images: DataFrame, k: int, min_cosine: float) -> DataFrame:
    """(group, src, dst, weight): each image's top k by cosine among its candidates (its buckets'
    other images, every table), cosine positive and at least ``min_cosine``."""
    def within(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("identifier")
        ids = frame["identifier"].to_numpy(dtype=object)
        vectors = np.asarray(frame["embedding"].tolist(), dtype=np.float64).reshape(len(frame), -1)
        src, dst, weight = bucket_edges(vectors, k, min_cosine)
        return pd.DataFrame({"group": frame["group"].iloc[0], "src": ids[src], "dst": ids[dst], "weight": weight})

    found = (buckets.where(F.col("size") > 1).select(*BUCKET, "identifier")
             .join(images, on=["group", "identifier"], how="inner")
             .groupBy(*BUCKET).applyInPandas(within, EDGES))
    pairs = found.groupBy("group", "src", "dst").agg(F.max("weight").alias("weight"))
    best = Window.partitionBy("group", "src").orderBy(F.col("weight").desc(), F.col("dst"))
    return (pairs.withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= k)
            .select("group", "src", "dst", "weight"))


def min_cosine(options: VisualRankOptions) -> float:
    """``lsh_distance`` (Euclidean, between unit vectors) as a cosine: 1 - d^2 / 2."""
    return 1.0 - options.lsh_distance ** 2 / 2.0


def knn_edges(members: DataFrame, options: VisualRankOptions) -> DataFrame:
    """(group, src, dst, weight): each image's top-k neighbours within its group among its LSH
    candidates: at most lsh_tables x (lsh_max_bucket - 1) per image, whatever the group's size."""
    buckets, images, _ = lsh_buckets(members, options)
    return bucket_knn(buckets, images, options.k, min_cosine(options))


def candidate_stats(buckets: DataFrame, parameters: dict, options: VisualRankOptions) -> dict:
    """The report's ``candidates``: what the LSH buckets cost, from ``lsh_buckets``' table."""
    per_image = buckets.groupBy("group", "identifier").agg(F.sum(F.col("size") - 1).alias("c"))
    images = per_image.agg(F.count(F.lit(1)).alias("images"), F.sum("c").alias("total"),
                           F.max("c").alias("max")).first()
    capped = (buckets.where("capped").agg(F.count(F.lit(1)).alias("rows"),
                                          F.countDistinct("group", "table", "depth", "prefix").alias("leaves")).first())
    count = buckets.agg(F.sum(F.lit(1.0) / F.col("size")).alias("buckets")).first()["buckets"] or 0.0
    n_images = images["images"] or 0
    bits = [p["bits"] for p in parameters.values()]
    return {"tables": options.lsh_tables, "max_bucket": options.lsh_max_bucket,
            "bound_per_image": options.lsh_tables * (options.lsh_max_bucket - 1),
            "bits": {"min": min(bits, default=0), "max": max(bits, default=0)},
            "pairs": int((images["total"] or 0) // 2), "per_image_mean": (images["total"] or 0) / max(n_images, 1),
            "per_image_max": int(images["max"] or 0), "buckets": int(round(count)),
            "buckets_capped": int(capped["leaves"]), "images_in_capped_buckets": int(capped["rows"])}


def sampled_recall(images: DataFrame, edges: DataFrame, options: VisualRankOptions) -> dict | None:
    """Top-k recall of ``edges`` against the exact kNN for ``recall_sample`` images drawn by hash
    (over all large groups): their exact top k by cosine (at least the minimum cosine) found by one
    pass over their groups' images, each task keeping its own top k per query. Recall counts a
    neighbour found when its cosine reaches the exact k-th (ties: any of equally similar images will
    do); ``similarity`` is the found neighbours' summed cosine over the exact ones'."""
    if options.recall_sample <= 0:
        return None
    k, floor = options.k, min_cosine(options)
    drawn = (images.select("group", "identifier", F.xxhash64("group", "identifier").alias("h"))
             .orderBy("h", "group", "identifier").limit(options.recall_sample).drop("h"))
    queries = images.join(F.broadcast(drawn), on=["group", "identifier"], how="inner").collect()
    if not queries:
        return None
    by_group: dict[str, tuple[list[str], np.ndarray]] = {}
    for group in {q["group"] for q in queries}:
        rows = [q for q in queries if q["group"] == group]
        by_group[group] = ([q["identifier"] for q in rows], np.asarray([q["embedding"] for q in rows], np.float64))

    def nearest(batches):
        for frame in batches:
            for group, part in frame.groupby("group", sort=False, dropna=False):
                if group not in by_group:
                    continue
                names, wanted = by_group[group]
                vectors = np.asarray(part["embedding"].tolist(), dtype=np.float64).reshape(len(part), -1)
                cosine = wanted @ vectors.T
                ids = part["identifier"].to_numpy(dtype=object)
                cosine[np.asarray(names, dtype=object)[:, None] == ids[None, :]] = -np.inf          # not itself
                top = np.argsort(-cosine, axis=1, kind="stable")[:, :k]
                best = np.take_along_axis(cosine, top, axis=1)
                keep = (best > 0) & (best >= floor)
                yield pd.DataFrame({"group": group, "query": np.repeat(names, top.shape[1])[keep.ravel()],
                                    "weight": best[keep]})

    best = Window.partitionBy("group", "query").orderBy(F.col("weight").desc())
    exact = (images.mapInPandas(nearest, "group string, query string, weight double")
             .withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= k).collect())
    sample = images.sparkSession.createDataFrame([(q["group"], q["identifier"]) for q in queries],
                                                 "group string, src string")
    found = edges.join(F.broadcast(sample), on=["group", "src"], how="inner").select("group", "src", "weight").collect()
    exact_by, found_by = {}, {}
    for r in exact:
        exact_by.setdefault((r["group"], r["query"]), []).append(r["weight"])
    for r in found:
        found_by.setdefault((r["group"], r["src"]), []).append(r["weight"])
    return recall_figures(exact_by, found_by, k) | {"sample": len(queries)}


def recall_figures(exact: dict, found: dict, k: int) -> dict:
    """recall@k and summed-similarity ratio from each query's exact and found neighbour cosines (keys:
    queries; queries with no exact neighbour are left out)."""
    hits = total = 0
    got_sum = exact_sum = 0.0
    for key, weights in exact.items():
        best = sorted(weights, reverse=True)[:k]
        if not best:
            continue
        got = sorted(found.get(key, []), reverse=True)[:len(best)]
        hits += sum(1 for w in got if w >= best[-1] - 1e-9)
        total += len(best)
        got_sum += sum(got)
        exact_sum += sum(best)
    return {"k": k, "neighbours": total, "recall_at_k": hits / total if total else None,
            "similarity": got_sum / exact_sum if exact_sum else None}


def weighted_pagerank(members: DataFrame, edges: DataFrame, damping: float, tol: float,
                      max_iter: int) -> tuple[DataFrame, dict]:
    """Weighted PageRank per group; scores sum to 1 per group. Per iteration, one join of the edges
    (partitioned by source, checkpointed once) with the ranks; the ranks are checkpointed, and the
    plan reads the previous ranks on one side of each join, so Spark's size estimate of the plan
    (a product over its joins, carried through checkpoints) gains one factor per iteration, not a
    power (docs/design.md, "Authority from the image itself")."""
    sizes = members.groupBy("group").agg(F.count(F.lit(1)).alias("n"))
    out = edges.groupBy("group", "src").agg(F.sum("weight").alias("out"))
    normalised = (edges.join(out, on=["group", "src"], how="inner")
                  .select("group", "src", "dst", (F.col("weight") / F.col("out")).alias("w"))
                  .repartition("group", "src").localCheckpoint(eager=True))
    has_out = out.select("group", F.col("src").alias("identifier"), F.lit(True).alias("has_out"))
    vertices = (members.select("group", "identifier").join(sizes, on="group", how="inner")
                .join(has_out, on=["group", "identifier"], how="left")
                .select("group", "identifier", "n", F.coalesce("has_out", F.lit(False)).alias("has_out"),
                        (F.lit(1.0) / F.col("n")).alias("rank"))).localCheckpoint(eager=True)
    iterations, change = 0, None
    for iterations in range(1, max_iter + 1):
        shares = vertices.where(F.col("has_out")).select("group", F.col("identifier").alias("src"), "rank")
        received = (normalised.join(shares, on=["group", "src"], how="inner")
                    .groupBy("group", F.col("dst").alias("identifier"))
                    .agg(F.sum(F.col("rank") * F.col("w")).alias("received")))
        dangling = (vertices.where(~F.col("has_out")).groupBy("group").agg(F.sum("rank").alias("dangling")))
        updated = (vertices.join(received, on=["group", "identifier"], how="left").join(dangling, on="group", how="left")
                   .withColumn("new", F.lit(1.0 - damping) / F.col("n") + F.lit(damping) * (
                       F.coalesce("received", F.lit(0.0)) + F.coalesce("dangling", F.lit(0.0)) / F.col("n")))
                   .localCheckpoint(eager=True))
        change = (updated.groupBy("group").agg(F.sum(F.abs(F.col("new") - F.col("rank"))).alias("c"))
                  .agg(F.max("c")).first()[0] or 0.0)
        vertices = updated.select("group", "identifier", "n", "has_out", F.col("new").alias("rank"))
        if change < tol:
            break
    return (vertices.select("identifier", "group", F.col("rank").alias("visualrank")),
            {"iterations": iterations, "last_change": change, "converged": change is not None and change < tol})


def large_groups(members: DataFrame, options: VisualRankOptions) -> tuple[DataFrame, dict]:
    buckets, images, parameters = lsh_buckets(members, options)
    buckets = buckets.localCheckpoint(eager=True)
    edges = bucket_knn(buckets, images, options.k, min_cosine(options)).localCheckpoint(eager=True)
    candidates = candidate_stats(buckets, parameters, options)
    candidates["recall"] = sampled_recall(images, edges, options)
    ranks, run = weighted_pagerank(members, edges, options.damping, options.tol, options.max_iter)
    neighbours = edges.groupBy("group", F.col("src").alias("identifier")).agg(
        F.count(F.lit(1)).cast("int").alias("n_neighbours"))
    scores = (ranks.join(neighbours, on=["group", "identifier"], how="left")
              .select("identifier", "group", "visualrank", F.coalesce("n_neighbours", F.lit(0)).alias("n_neighbours")))
    return scores, {**run, "edges": edges.count(), "candidates": candidates}


def run_visualrank(spark: SparkSession, signals_dir: str, output: str,
                   options: VisualRankOptions = VisualRankOptions()) -> dict:
    if options.group_by not in GROUPINGS:
        raise ValueError(f"unknown grouping {options.group_by!r}; choose one of {GROUPINGS}")
    if options.similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {options.similarity!r}; choose one of {SIMILARITIES}")
    with Stage(spark, "visualrank", output, asdict(options) | {"signals": signals_dir}) as stage:
        names = ("image_embeddings", "families", "image_tags")
        folder = stage.input(signals_dir, "embed", tables=names)
        signals = {name: spark.read.parquet(f"{folder}/{name}") for name in names}
        groups = image_groups(signals, options.group_by)
        embeddings = signals["image_embeddings"]
        backend = embeddings.select("backend").first()
        if backend is None or not embeddings.where(F.size("embedding") > 0).limit(1).count():
            raise StageError(f"--signals {signals_dir}: not one image has an embedding, so there is nothing to rank; "
                             f"embed's report says why (images.skipped_by_reason): rerun embed with --images "
                             f"(and --image-suffix) that find the catalog's files")
        local = backend["backend"] == "local"
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
            large_scores, run = large_groups(large, options)
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
