"""PageRank over a directed graph given as Spark DataFrames, by one of four engines.

All compute what networkx's ``pagerank`` computes (unweighted edges, uniform teleport):

    x' = d * (x A_norm + sum(x[dangling]) / N) + (1 - d) / N

starting from x = 1/N, where a dangling vertex (no out-edge) spreads its score over all vertices.
Iteration stops when the L1 change of the score vector (which sums to 1) falls below ``tol``, or
after ``max_iter`` iterations; the result is normalized to sum to 1. The rule does not depend on N:
networkx's ``N * tol`` loosens as the graph grows, and past N = 2x10^9 (at tol 1e-9) it would stop
every run after one iteration. Since each iteration contracts the error by d, the L1 distance to
the fixed point is at most ``tol * d / (1 - d)`` when the rule stops the run (5.7 tol at d = 0.85).

- ``driver``: the edge list is collected and iterated with scipy's sparse matrix-vector product.
  Exact and fast while the graph fits in the driver's memory (about 16 bytes per edge).
- ``dataframe``: the iteration as Spark joins and aggregations, for graphs of any size. Each
  iteration's ranks are checkpointed (local checkpoints, or reliable ones under
  ``checkpoint_dir``), so the lineage never grows with the iteration count.
- ``graphx``: Spark GraphX's static PageRank (the JVM code GraphFrames' PageRank wraps; its jars
  ship with pyspark), driven over py4j. GraphX lets dangling vertices' scores leak instead of
  spreading them; with a uniform teleport that leaky solution is proportional to the one above,
  so it is computed unnormalized and normalized here. It runs a fixed number of iterations: with
  ``tol`` set, enough for the L1 error bound 2 d^k to fall below tol. No checkpointing: GraphX
  keeps the lineage of its iterations in memory.
- ``graphframes``: GraphFrames' own PageRank, ``GraphFrame(v, e).pageRank(resetProbability=1 - d)``
  (graphframes-py; its JVM classes must be on the classpath, see ``graphframes_jar``). It runs
  GraphFrames' copy of GraphX's PageRank: dangling vertices' scores leak as in ``graphx``, and
  GraphFrames rescales the leaky result to sum to N; it is divided by its sum here. Vertices
  without edges are in the GraphFrame and get their score. With ``tol`` set it runs GraphFrames'
  tol mode: a Pregel run in which a vertex stops passing on changes of its rank once one is no
  larger than ``tol`` on GraphFrames' scale (mean 1). ``tol`` is passed unchanged, so after
  normalization the threshold is tol / N per vertex, at most tol summed over the vertices: the
  same order as the L1 rule above (an observation, not a proven bound).
  ``max_iter`` does not cap that run, and GraphFrames does not expose its superstep count
  (reported as None). With ``tol=0`` it runs exactly ``max_iter`` iterations. No checkpointing.

``engine="auto"`` chooses ``driver`` up to ``driver_max_edges`` edges, else ``dataframe``.
"""

from __future__ import annotations

import math
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.graph.graphframes_jar import require_graphframes
from imagerank.graph.prepare import checkpointer, collect_indexed, simple_graph

ENGINES = ("auto", "driver", "dataframe", "graphx", "graphframes")
DRIVER_MAX_EDGES = 5_000_000


@dataclass
class RankInfo:
    engine: str
    vertices: int
    edges: int
    iterations: int | None  # None for graphframes' tol mode (GraphFrames does not expose its superstep count)
    converged: bool
    last_change: float | None  # None for graphx and graphframes (not computed)
    seconds: float


def pagerank_arrays(n: int, src: np.ndarray, dst: np.ndarray, damping: float = 0.85, tol: float = 1e-6,
                    max_iter: int = 1000) -> tuple[np.ndarray, int, bool, float]:
    """PageRank of vertices 0..n-1 over distinct edges src[i] -> dst[i]: (scores, iterations, converged, change)."""
    from scipy import sparse

    if n == 0:
        return np.zeros(0), 0, True, 0.0
    out_degree = np.bincount(src, minlength=n).astype(np.float64)
    share = np.divide(1.0, out_degree, out=np.zeros(n), where=out_degree > 0)
    # transposed, row-normalized adjacency: (A_norm^T x)[v] = sum over u -> v of x[u] / out(u)
    transposed = sparse.csr_array((share[src], (dst, src)), shape=(n, n))
    dangling = out_degree == 0
    x = np.full(n, 1.0 / n)
    change, iterations, converged = float("inf"), 0, False
    while iterations < max_iter:
        last = x
        x = damping * (transposed @ last + last[dangling].sum() / n) + (1.0 - damping) / n
        iterations += 1
        change = float(np.abs(x - last).sum())
        if change < tol:
            converged = True
            break
    return x / x.sum(), iterations, converged, change


def _driver(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
            max_iter: int) -> tuple[DataFrame, dict]:
    vertex_ids, src, dst = collect_indexed(ids, edges)
    scores, iterations, converged, change = pagerank_arrays(len(vertex_ids), src, dst, damping, tol, max_iter)
    frame = pd.DataFrame({"id": vertex_ids, "pagerank": scores})
    result = spark.createDataFrame(frame if len(frame) else [], "id long, pagerank double")
    return result, {"iterations": iterations, "converged": converged, "last_change": change}


def _dataframe(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
               max_iter: int, checkpoint_dir: str | None) -> tuple[DataFrame, dict]:
    checkpoint = checkpointer(spark, checkpoint_dir)
    edges = checkpoint(edges.select("src", "dst").repartition("src"))
    out_degrees = edges.groupBy("src").agg(F.count(F.lit(1)).alias("out_degree"))
    nodes = checkpoint(
        ids.join(out_degrees.withColumnRenamed("src", "id"), on="id", how="left")
        .select("id", F.coalesce(F.col("out_degree"), F.lit(0)).alias("out_degree"))
        .repartition("id")
    )
    stats = nodes.agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(F.col("out_degree") == 0, 1).otherwise(0))).first()
    n, n_dangling = int(stats[0]), int(stats[1] or 0)
    if n == 0:
        return spark.createDataFrame([], "id long, pagerank double"), {
            "iterations": 0, "converged": True, "last_change": 0.0}
    ranks = nodes.withColumn("pagerank", F.lit(1.0 / n))
    dangling_mass = n_dangling / n
    change, iterations, converged = float("inf"), 0, False
    while iterations < max_iter:
        shares = ranks.where(F.col("out_degree") > 0).select(
            F.col("id").alias("src"), (F.col("pagerank") / F.col("out_degree")).alias("share"))
        received = (
            edges.join(shares, on="src", how="inner")
            .groupBy(F.col("dst").alias("id"))
            .agg(F.sum("share").alias("received"))
        )
        updated = checkpoint(
            ranks.join(received, on="id", how="left").select(
                "id", "out_degree",
                (F.lit(damping) * (F.coalesce(F.col("received"), F.lit(0.0)) + F.lit(dangling_mass / n))
                 + F.lit((1.0 - damping) / n)).alias("pagerank"),
                F.col("pagerank").alias("previous"),
            )
        )
        totals = updated.agg(
            F.sum(F.abs(F.col("pagerank") - F.col("previous"))).alias("change"),
            F.sum(F.when(F.col("out_degree") == 0, F.col("pagerank")).otherwise(0.0)).alias("dangling"),
        ).first()
        ranks, iterations = updated.drop("previous"), iterations + 1
        change, dangling_mass = float(totals["change"]), float(totals["dangling"] or 0.0)
        if change < tol:
            converged = True
            break
    total = ranks.agg(F.sum("pagerank")).first()[0]
    result = ranks.select("id", (F.col("pagerank") / F.lit(total)).alias("pagerank"))
    return result, {"iterations": iterations, "converged": converged, "last_change": change}


def _scratch_dir(spark: SparkSession, checkpoint_dir: str | None) -> str:
    """A folder every executor can reach: the checkpoint folder, a local temp (local mode), or /tmp on the default FS."""
    if checkpoint_dir:
        return f"{checkpoint_dir.rstrip('/')}/graphx-{uuid.uuid4().hex[:12]}"
    if spark.sparkContext.master.startswith("local"):
        return f"file://{tempfile.mkdtemp(prefix='imagerank-graphx-')}"
    return f"/tmp/imagerank-graphx-{uuid.uuid4().hex[:12]}"


def graphx_iterations(damping: float, tol: float, max_iter: int) -> tuple[int, bool]:
    """Iterations after which the L1 error bound 2 d^k falls below tol (capped by max_iter)."""
    if tol <= 0:
        return max_iter, False
    needed = max(1, math.ceil(math.log(tol / 2.0) / math.log(damping))) if tol < 2.0 else 1
    return min(needed, max_iter), needed <= max_iter


def _graphx(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
            max_iter: int, checkpoint_dir: str | None) -> tuple[DataFrame, dict]:
    jvm = spark._jvm
    scratch = _scratch_dir(spark, checkpoint_dir)
    iterations, converged = graphx_iterations(damping, tol, max_iter)
    try:
        edges.select(F.concat_ws(" ", "src", "dst")).write.text(f"{scratch}/edges")
        level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
        graph = jvm.org.apache.spark.graphx.GraphLoader.edgeListFile(
            spark.sparkContext._jsc.sc(), f"{scratch}/edges", False, -1, level, level)
        any_tag = jvm.scala.reflect.ClassTag.Any()
        ranked = jvm.org.apache.spark.graphx.lib.PageRank.runWithOptions(
            graph, iterations, 1.0 - damping, jvm.scala.Option.empty(), False, any_tag, any_tag)
        ranked.vertices().saveAsTextFile(f"{scratch}/ranks")  # lines "(id,rank)"
        parsed = spark.read.text(f"{scratch}/ranks").select(
            F.regexp_extract("value", r"^\((-?\d+),", 1).cast("long").alias("id"),
            F.regexp_extract("value", r",([^,)]+)\)$", 1).cast("double").alias("leaky"))
        # vertices without any edge are not in GraphX's graph: their leaky score is the teleport, 1 - d
        leaky = (ids.join(parsed, on="id", how="left")
                 .select("id", F.coalesce("leaky", F.lit(1.0 - damping)).alias("leaky"))
                 .localCheckpoint(eager=True))
    finally:
        fs.delete_tree(fs.qualify(spark, scratch))
    total = leaky.agg(F.sum("leaky")).first()[0] or 1.0
    result = leaky.select("id", (F.col("leaky") / F.lit(total)).alias("pagerank"))
    return result, {"iterations": iterations, "converged": converged, "last_change": None}


def _graphframes(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
                 max_iter: int) -> tuple[DataFrame, dict]:
    from graphframes import GraphFrame

    graph = GraphFrame(ids, edges)
    if tol > 0:  # GraphFrames' tol mode: Pregel until no vertex's rank changes by more than tol
        ranked = graph.pageRank(resetProbability=1.0 - damping, tol=tol)
        run = {"iterations": None, "converged": True, "last_change": None}
    else:
        ranked = graph.pageRank(resetProbability=1.0 - damping, maxIter=max_iter)
        run = {"iterations": max_iter, "converged": False, "last_change": None}
    # GraphFrames' ranks sum to N (the leaky solution rescaled); checkpointed so that the sum and
    # the callers' reads do not run PageRank again
    leaky = ranked.vertices.select("id", F.col("pagerank").alias("leaky")).localCheckpoint(eager=True)
    total = leaky.agg(F.sum("leaky")).first()[0] or 1.0
    return leaky.select("id", (F.col("leaky") / F.lit(total)).alias("pagerank")), run


def pagerank(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float = 0.85, tol: float = 1e-6,
             max_iter: int = 1000, engine: str = "auto", driver_max_edges: int = DRIVER_MAX_EDGES,
             checkpoint_dir: str | None = None) -> tuple[DataFrame, RankInfo]:
    """PageRank of every vertex in ``ids`` (column ``id``) over ``edges`` (``src``, ``dst``).

    Edges are made distinct and self-loops dropped first. Returns (DataFrame ``id``, ``pagerank``
    summing to 1, and what ran).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown PageRank engine {engine!r}; choose one of {ENGINES}")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must lie in (0, 1), got {damping}")
    if engine == "graphframes":
        require_graphframes(spark)  # before any work: a one-line error naming what to pass
    started = time.time()
    ids, edges = simple_graph(ids, edges)
    n_vertices, n_edges = ids.count(), edges.count()
    chosen = engine if engine != "auto" else ("driver" if n_edges <= driver_max_edges else "dataframe")
    if chosen == "driver":
        scores, run = _driver(spark, ids, edges, damping, tol, max_iter)
    elif chosen == "graphx":
        scores, run = _graphx(spark, ids, edges, damping, tol, max_iter, checkpoint_dir)
    elif chosen == "graphframes":
        scores, run = _graphframes(spark, ids, edges, damping, tol, max_iter)
    else:
        scores, run = _dataframe(spark, ids, edges, damping, tol, max_iter, checkpoint_dir)
    if run["last_change"] is not None and not math.isfinite(run["last_change"]):
        run["last_change"] = None  # no iteration ran: no change to report (reports are strict JSON)
    info = RankInfo(engine=chosen, vertices=n_vertices, edges=n_edges, seconds=round(time.time() - started, 3), **run)
    return scores, info


def info_dict(info: RankInfo) -> dict:
    return asdict(info)
