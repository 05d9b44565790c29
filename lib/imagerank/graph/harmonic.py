"""Harmonic centrality, as Common Crawl ranks hosts and domains: H(v) = sum over u != v of 1 / d(u, v),
where d(u, v) is the length of the shortest directed path from u to v (unreachable: 0 added).

- ``driver``: exact, breadth-first from every vertex on the collected graph (scipy), in chunks of
  sources; cost grows as vertices x edges, so it serves host and domain graphs of a sample.
- ``hyperanf``: HyperANF (Boldi, Rosa, Vigna 2011), the approximation WebGraph's HyperBall computes
  for cc-webgraph, written as Spark joins. Each vertex holds a HyperLogLog sketch (2^log2m
  registers) of the set of vertices that reach it within t steps; one iteration merges the sketches
  of in-neighbours (register-wise max), and H grows by (|B_t| - |B_t-1|) / t. It stops when no
  sketch changes. The relative standard error of each ball size is 1.04 / sqrt(2^log2m).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.graph.prepare import checkpointer, collect_indexed, simple_graph

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


def _alpha(m: int) -> float:
    return {16: 0.673, 32: 0.697, 64: 0.709}.get(m, 0.7213 / (1 + 1.079 / m))


def _estimate(registers: Column, m: int) -> Column:
    """HyperLogLog cardinality of a register array, with linear counting for small sets."""
    inverse_sum = F.aggregate(registers, F.lit(0.0), lambda acc, r: acc + F.pow(F.lit(2.0), -r.cast("double")))
    zeros = F.size(F.filter(registers, lambda r: r == 0))
    raw = F.lit(_alpha(m) * m * m) / inverse_sum
    return F.when((raw <= 2.5 * m) & (zeros > 0), F.lit(float(m)) * F.log(F.lit(float(m)) / zeros)).otherwise(raw)


def _initial_registers(ids: DataFrame, log2m: int) -> DataFrame:
    """One HyperLogLog sketch per vertex holding just itself."""
    m = 2**log2m
    hashed = ids.select("id", F.xxhash64(F.col("id"), F.lit("hyperanf")).alias("h"))
    rest = F.shiftrightunsigned(F.col("h"), log2m)  # the 64 - log2m bits not used for the index
    width = 64 - log2m
    # position of the leftmost 1-bit of `rest` in a `width`-bit word, counted from 1
    rho = F.when(rest == 0, F.lit(width + 1)).otherwise(
        F.lit(width) - F.floor(F.log2(rest.cast("double"))).cast("int"))
    index = F.col("h").bitwiseAND(F.lit(m - 1)).cast("int")
    return hashed.select(
        "id",
        F.transform(F.sequence(F.lit(0), F.lit(m - 1)),
                    lambda i: F.when(i == index, rho).otherwise(F.lit(0)).cast("tinyint")).alias("registers"),
    )


def hyperanf(spark: SparkSession, ids: DataFrame, edges: DataFrame, log2m: int = LOG2M, max_iter: int = 1000,
             checkpoint_dir: str | None = None) -> tuple[DataFrame, dict]:
    """Approximate harmonic centrality (DataFrame ``id``, ``harmonic_centrality``) and what ran,
    over a graph prepared by :func:`simple_graph`."""
    m = 2**log2m
    checkpoint = checkpointer(spark, checkpoint_dir)
    edges = checkpoint(edges.select("src", "dst").repartition("src"))
    state = checkpoint(
        _initial_registers(ids, log2m)
        .withColumn("ball", _estimate(F.col("registers"), m))
        .withColumn("harmonic_centrality", F.lit(0.0))
    )
    t, changed = 0, 1
    while changed and t < max_iter:
        t += 1
        incoming = (
            edges.join(state.select(F.col("id").alias("src"), F.col("registers").alias("seen")), on="src", how="inner")
            .groupBy(F.col("dst").alias("id"))
            .agg(F.collect_list("seen").alias("seen"))
        )
        merged = F.aggregate(
            F.coalesce(F.col("seen"), F.array().cast("array<array<tinyint>>")),
            F.col("registers"),
            lambda acc, other: F.zip_with(acc, other, lambda a, b: F.greatest(a, b)),
        )
        state = checkpoint(
            state.join(incoming, on="id", how="left")
            .select("id", merged.alias("registers"), F.col("ball").alias("previous"), "harmonic_centrality")
            .withColumn("ball", F.greatest(_estimate(F.col("registers"), m), F.col("previous")))
            .withColumn("harmonic_centrality",
                        F.col("harmonic_centrality") + (F.col("ball") - F.col("previous")) / F.lit(float(t)))
            .withColumn("changed", F.col("ball") != F.col("previous"))
        )
        changed = state.where(F.col("changed")).limit(1).count()
        state = state.drop("previous", "changed")
    result = state.select("id", "harmonic_centrality")
    return result, {"iterations": t, "converged": not changed, "log2m": log2m,
                    "relative_standard_error": round(relative_error(log2m), 4)}


def harmonic_centrality(spark: SparkSession, ids: DataFrame, edges: DataFrame, engine: str = "auto",
                        driver_max_work: int = DRIVER_MAX_WORK, log2m: int = LOG2M,
                        checkpoint_dir: str | None = None) -> tuple[DataFrame, dict]:
    """Harmonic centrality of every vertex in ``ids``; ``engine``: auto, driver (exact) or hyperanf."""
    if engine not in ("auto", "driver", "hyperanf"):
        raise ValueError(f"unknown harmonic centrality engine {engine!r}; choose auto, driver or hyperanf")
    started = time.time()
    ids, edges = simple_graph(ids, edges)
    n_vertices, n_edges = ids.count(), edges.count()
    chosen = engine if engine != "auto" else ("driver" if n_vertices * n_edges <= driver_max_work else "hyperanf")
    if chosen == "driver":
        vertex_ids, src, dst = collect_indexed(ids, edges)
        values = harmonic_arrays(len(vertex_ids), src, dst)
        frame = pd.DataFrame({"id": vertex_ids, "harmonic_centrality": values})
        result = spark.createDataFrame(frame if len(frame) else [], "id long, harmonic_centrality double")
        run = {"exact": True}
    else:
        result, run = hyperanf(spark, ids, edges, log2m=log2m, checkpoint_dir=checkpoint_dir)
        run["exact"] = False
    return result, {"engine": chosen, "vertices": n_vertices, "edges": n_edges,
                    "seconds": round(time.time() - started, 3), **run}
