"""Harmonic centrality, as Common Crawl ranks hosts and domains: H(v) = sum over u != v of 1 / d(u, v),
where d(u, v) is the length of the shortest directed path from u to v (unreachable: 0 added).

- ``driver``: exact, breadth-first from every vertex on the collected graph (scipy), in chunks of
  sources; cost grows as vertices x edges, so it serves host and domain graphs of a sample.
- ``hyperanf``: HyperANF (Boldi, Rosa, Vigna 2011), the approximation WebGraph's HyperBall computes
  for cc-webgraph, written as Spark joins. Each vertex holds a HyperLogLog sketch (2^log2m
  registers) of the set of vertices that reach it within t steps; one iteration merges into it the
  sketches of in-neighbours that changed in the previous iteration (an aggregate union), and H
  grows by (|B_t| - |B_t-1|) / t. It stops when no sketch changes. The relative standard error of
  each ball size is about 1.04 / sqrt(2^log2m).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.graph.prepare import checkpointer, collect_indexed, loop_free

ENGINES = ("auto", "driver", "hyperanf")
DRIVER_MAX_WORK = 2_000_000_000  # vertices x edges for the exact engine
LOG2M = 8


def harmonic_arrays(n: int, src: np.ndarray, dst: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Exact harmonic centrality of vertices 0..n-1 over edges src[i] -> dst[i]."""
    from scipy import sparse
    from scipy.sparse.csgraph import shortest_path

    harmonic = np.zeros(n)
    if n == 0 or len(src) == 0:
        return harmonic
    graph = sparse.csr_array((np.ones(len(src)), (src, dst)), shape=(n, n))
    for start in range(0, n, chunk):
        sources = np.arange(start, min(start + chunk, n))
        distances = shortest_path(graph, directed=True, unweighted=True, indices=sources)
        with np.errstate(divide="ignore"):
            inverse = np.where(np.isfinite(distances) & (distances > 0), 1.0 / distances, 0.0)
        harmonic += inverse.sum(axis=0)
    return harmonic


def relative_error(log2m: int) -> float:
    """HyperLogLog's relative standard error for 2^log2m registers."""
    return 1.04 / math.sqrt(2**log2m)


def hyperanf(spark: SparkSession, ids: DataFrame, edges: DataFrame, log2m: int = LOG2M, max_iter: int = 1000,
             checkpoint_dir: str | None = None) -> tuple[DataFrame, dict]:
    """Approximate harmonic centrality (DataFrame ``id``, ``harmonic_centrality``) and what ran,
    over a graph prepared by :func:`loop_free` (a repeated edge is dropped here, in the shuffle that
    partitions the edges by source).

    Sketches are Spark's HyperLogLog sketches (``hll_sketch_agg``, Apache DataSketches, Spark
    3.5+; lgConfigK = log2m). One iteration sends only the sketches that changed in the previous
    one along their out-edges and merges them per target in an aggregate (``hll_union_agg``), which
    combines map-side: a vertex with 10^7 in-links receives one merged sketch per map task, never
    a list of 10^7. A vertex whose sketch bytes did not change is not sent again (a union is
    idempotent, byte for byte). With ``checkpoint_dir``, an iteration's reliable checkpoint is
    deleted once the next one's is written; the edges' and the last iteration's stay for the caller
    (the rank stage deletes its whole checkpoint folder at its end).
    """
    checkpoint = checkpointer(spark, checkpoint_dir)
    edges = checkpoint(edges.select("src", "dst").repartition("src").distinct())  # one shuffle: by source
    state = checkpoint(
        ids.groupBy("id").agg(F.hll_sketch_agg("id", log2m).alias("sketch"))
        .select("id", "sketch", F.hll_sketch_estimate("sketch").cast("double").alias("ball"),
                F.lit(0.0).alias("harmonic_centrality"), F.lit(True).alias("changed"))
    )
    t, changed, sent, written = 0, 1, [], state
    while changed and t < max_iter:
        t += 1
        frontier = state.where(F.col("changed")).select(F.col("id").alias("src"), F.col("sketch").alias("seen"))
        incoming = (
            edges.join(frontier, on="src", how="inner")
            .groupBy(F.col("dst").alias("id"))
            .agg(F.hll_union_agg("seen").alias("seen"))
        )
        merged = F.when(F.col("seen").isNull(), F.col("sketch")).otherwise(F.hll_union("sketch", "seen"))
        state = checkpoint(
            state.join(incoming, on="id", how="left")
            .select("id", merged.alias("sketch"), F.col("sketch").alias("previous_sketch"),
                    F.col("ball").alias("previous"), "harmonic_centrality")
            .withColumn("ball", F.greatest(F.hll_sketch_estimate("sketch").cast("double"), F.col("previous")))
            .withColumn("harmonic_centrality",
                        F.col("harmonic_centrality") + (F.col("ball") - F.col("previous")) / F.lit(float(t)))
            .withColumn("changed", F.col("sketch") != F.col("previous_sketch"))
            .drop("previous_sketch", "previous")
        )
        changed = state.where(F.col("changed")).count()
        checkpoint.drop(written)  # the previous iteration's sketches: nothing reads them any more
        written = state
        sent.append(changed)
    result = state.select("id", "harmonic_centrality")
    return result, {"edges": edges.count(), "iterations": t, "converged": not changed, "log2m": log2m,
                    "relative_standard_error": round(relative_error(log2m), 4), "changed_per_iteration": sent}


def harmonic_centrality(spark: SparkSession, ids: DataFrame, edges: DataFrame, engine: str = "auto",
                        driver_max_work: int = DRIVER_MAX_WORK, log2m: int = LOG2M,
                        checkpoint_dir: str | None = None) -> tuple[DataFrame, dict]:
    """Harmonic centrality of every vertex in ``ids``; ``engine``: auto, driver (exact) or hyperanf."""
    if engine not in ENGINES:
        raise ValueError(f"unknown harmonic centrality engine {engine!r}; choose one of {ENGINES}")
    started = time.time()
    ids, edges = loop_free(ids, edges)
    n_vertices, n_edges = ids.count(), edges.count()  # edge rows: they bound the distinct edges
    chosen = engine if engine != "auto" else ("driver" if n_vertices * n_edges <= driver_max_work else "hyperanf")
    if chosen == "driver":
        vertex_ids, src, dst = collect_indexed(ids, edges)
        values = harmonic_arrays(len(vertex_ids), src, dst)
        n_edges = len(src)
        frame = pd.DataFrame({"id": vertex_ids, "harmonic_centrality": values})
        result = spark.createDataFrame(frame if len(frame) else [], "id long, harmonic_centrality double")
        run = {"exact": True}
    else:
        result, run = hyperanf(spark, ids, edges, log2m=log2m, checkpoint_dir=checkpoint_dir)
        run["exact"] = False
        n_edges = run.pop("edges")
    return result, {"engine": chosen, "vertices": n_vertices, "edges": n_edges,
                    "seconds": round(time.time() - started, 3), **run}
