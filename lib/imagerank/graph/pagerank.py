"""PageRank over a directed graph given as Spark DataFrames, by one of four engines.

All compute what networkx's ``pagerank`` computes (unweighted edges, uniform teleport):

    x' = d * (x A_norm + sum(x[dangling]) / N) + (1 - d) / N

starting from x = 1/N, where a dangling vertex (no out-edge) spreads its score over all vertices.
With ``seeds`` given (TrustRank, Gyongyi et al. 2004) the teleport goes only to the seed vertices,
uniformly, and so does dangling vertices' score: networkx's ``pagerank(personalization=p)`` with
p = 1/|S| on the seeds (``teleport`` below; uniform 1/N without seeds):

    x' = d * (x A_norm + sum(x[dangling]) * teleport) + (1 - d) * teleport

starting from x = teleport, so that a vertex no seed reaches stays at exactly 0 (networkx starts
from 1/N; the fixed point is the same).

Iteration stops when the L1 change of the score vector (which sums to 1) falls below ``tol``, or
after ``max_iter`` iterations; the result is normalized to sum to 1. The rule does not depend on N:
networkx's ``N * tol`` loosens as the graph grows, and past N = 2x10^9 (at tol 1e-9) it would stop
every run after one iteration. Since each iteration contracts the error by d, the L1 distance to
the fixed point is at most ``tol * d / (1 - d)`` when the rule stops the run (5.7 tol at d = 0.85).
That is the bound of every engine's normalized result: ``graphx`` chooses its fixed iteration
count to keep it (derived below); for ``graphframes`` it is observed, not proven.

A warm start (``start``: a previous release's scores) changes only where the iteration begins:
new vertices at their teleport value, the vector scaled to sum to 1. The bound above needs
nothing else of the start (the step contracts any two probability vectors' L1 distance by d), so
it holds as it is; the driver, dataframe and block engines take one.

Lumping (the ``dataframe`` engine, by default): a dangling vertex passes its score on only
through the teleport, so all of them can iterate as one (Ipsen and Selee, "PageRank computation,
with special attention to dangling nodes", 2007). The lumped chain keeps the other vertices, one
vertex L for the dangling ones, and each vertex's edges into dangling vertices as one edge to L
weighted by their number (so every share keeps its size: weight / out-degree); the teleport is
uniform over that chain (TrustRank: over the seeds that are not dangling). Its scores of the
kept vertices are proportional to the whole graph's: on them both solve x = d A^T x + c t with
the same A and the same t up to a scalar, c being whatever comes back through the teleport. A
dangling vertex v's score is then d x (what its in-links bring) + its teleport term, the lumped
chain's scalar 1 - d + d x(L) spread as that chain spreads it (1/N' each; TrustRank: 1/|S'| to a
seed), and the whole vector is scaled to sum to 1. At a crawl the dangling vertices are the link
targets never fetched, about three in four page vertices, and most edges go to them: each
iteration joins and shuffles that much less. The bound: the rebuilt vector moves at most
2 max(1 + d, K d) times as far as the lumped one (K: lumped vertices per vertex of the lumped
chain; TrustRank: dangling seeds per seed kept), so the lumped run stops at tol divided by that
(:func:`lumped_tol`) and the result keeps tol * d / (1 - d). Fewer than two dangling vertices, or
every seed dangling: no lumping.

- ``driver``: the edge list is collected and iterated with scipy's sparse matrix-vector product.
  Exact and fast while the graph fits in the driver's memory (about 16 bytes per edge).
- ``dataframe``: the iteration as Spark joins and aggregations, for graphs of any size. Each
  iteration's ranks are checkpointed (local checkpoints, or reliable ones under
  ``checkpoint_dir``), so the lineage never grows with the iteration count. The sums the next
  iteration needs (L1 change, dangling score, total) are gathered by the checkpoint's own job as
  Spark observed metrics, so an iteration is one job, not a second pass over the ranks. A reliable one is
  deleted once the next iteration's is written (the last ones stay for the caller to read, and
  for the owner of ``checkpoint_dir`` to delete: the rank stage deletes its own at its end).
- ``graphx``: Spark GraphX's static PageRank (the JVM code GraphFrames' PageRank wraps; its jars
  ship with pyspark), driven over py4j. GraphX lets dangling vertices' scores leak instead of
  spreading them; with a uniform teleport that leaky solution is proportional to the one above,
  so it is computed unnormalized and normalized here. It runs a fixed number of iterations: with
  ``tol`` set, enough for the normalized result's L1 error to be at most ``tol * d / (1 - d)``,
  as above (:func:`graphx_iterations`). The bound, on the scale where scores sum to at most 1:
  GraphX iterates y' = d P y + (1 - d) / N from y_0 = 1/N, P the leaky transition (it never
  increases an L1 norm), towards y*, whose sum s lies in [1 - d, 1] (each vertex keeps its
  teleport). So |y_m - y*| <= d^m |y_0 - y*|, and as both are at least (1 - d) / N everywhere,
  |y_0 - y*| = 1 + s - 2 sum(min(y_0, y*)) <= s + 2d - 1. Dividing by the sums costs at most
  2 / s (|a/|a| - b/|b|| <= 2 |a - b| / |b|): the normalized error is at most
  2 d^m (s + 2d - 1) / s <= 2 c d^m, c = max(d / (1 - d), 2d) (the worst s: 1 - d for d >= 1/2,
  1 below). For d >= 1/2 that is at most tol * d / (1 - d) once 2 d^m <= tol; the bound before
  normalization, 2 d^m, is not the one that counts. No checkpointing: GraphX keeps the lineage
  of its iterations in memory; its input and output go through a scratch folder (under
  ``checkpoint_dir`` if given), deleted when it ends. With seeds, GraphX's personalized PageRank takes
  one source vertex, so a virtual source is added with an edge to every seed: its leaky solution,
  restricted to the real vertices, is d times the leaky solution whose teleport is uniform over the
  seeds, and (dangling score going back to the seeds as the teleport does) that is proportional to
  the networkx solution; the virtual vertex is dropped and the rest normalized. The bound holds
  with one iteration more: after the virtual source's first step the real vertices hold
  z_1 = d t (t uniform on the seeds), z* sums to s in [d(1 - d), d], both are at least d(1 - d) t,
  so |z_1 - z*| <= d + s - 2 d(1 - d), and 2 d^m |z_1 - z*| / s <= 2 c d^m again, m counted from
  that step. GraphX's own multi-source ``runParallelPersonalizedPageRank`` is not used: with the
  breeze Spark bundles it stops spreading changes after about two iterations (wrong values,
  shared/jars/README.md).
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
  (reported as None); its supersteps are checkpointed every ten (``prepare.pregel_checkpoints``,
  under the checkpoint folder, else a scratch folder, deleted after). With ``tol=0`` it runs exactly
  ``max_iter`` iterations, without checkpoints.
  With seeds: ``pageRank(sourceId=...)`` from the same virtual source as ``graphx`` (not
  ``parallelPersonalizedPageRank``, which is wrong for the reason above); a seeded run's ranks sum
  to 1, not N, so its tol is divided by N to keep the same threshold.

- ``block``: the vertices cut into blocks, each block's edges stored once as numpy arrays, score
  vectors shipped between blocks (:mod:`imagerank.graph.block_pagerank`). The fastest engine per
  edge and iteration beyond one machine (bench_pagerank), for graphs of any size; checkpoints as
  ``dataframe`` does; no lumping (a dangling vertex costs it one float, not a join).

``engine="auto"`` chooses ``driver`` up to ``driver_max_edges`` edges, else ``block``; left out,
that limit is what the driver can hold (:func:`driver_edge_limit`), so ``auto`` takes the fastest
engine wherever the graph fits one machine's driver and the block engine beyond it.
"""

from __future__ import annotations

import math
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from imagerank.graph.block_pagerank import BLOCK_VERTICES, block_pagerank
from imagerank.graph.graphframes_jar import require_graphframes
from imagerank.graph.prepare import checkpointer, collect_indexed, delete_path, loop_free, pregel_checkpoints

ENGINES = ("auto", "driver", "dataframe", "block", "graphx", "graphframes")
DEDUPLICATING = ("auto", "driver", "block")  # the engines that drop duplicate edges on their own arrays
WARM_UNSUPPORTED = ("graphx", "graphframes")  # fixed iteration counts or Pregel runs from their own start
# The driver engine's peak Python memory per edge: bench_pagerank's peak RSS of the whole driver
# process, 177 MB at 10^6 edges and 741 MB at 10^7 (README, "PageRank scale curve"): 63 bytes per edge.
DRIVER_BYTES_PER_EDGE = 64
COLLECTED_BYTES_PER_EDGE = 16  # an edge as collected to the driver: two 64-bit ids (Arrow)
ROWS_MAX_EDGES = 5_000_000  # the driver engine's limit where edges are collected as rows (Arrow off): auto's old one
ARROW = "spark.sql.execution.arrow.pyspark.enabled"
# the virtual source of the GraphX and GraphFrames engines' seeded runs: graph ids are non-negative,
# and a value outside 32 bits travels over py4j as a java.lang.Long, the type of a GraphX VertexId
VIRTUAL_SOURCE = -(2 ** 62)
LUMP_ID = VIRTUAL_SOURCE + 1  # the one vertex the dataframe engine lumps the dangling vertices into


@dataclass
class RankInfo:
    engine: str
    vertices: int
    edges: int
    iterations: int | None  # None for graphframes' tol mode (GraphFrames does not expose its superstep count)
    converged: bool
    last_change: float | None  # None for graphx and graphframes (not computed)
    seconds: float
    seeds: int | None = None  # seed vertices the teleport goes to; None: uniform teleport (PageRank)
    warm_start: dict | None = None  # vertices_with_start, vertices_new; None: started from the teleport
    lumped: int | None = None  # dangling vertices lumped into one (dataframe engine); None: none were
    blocks: int | None = None  # vertex blocks the block engine cut the graph into; None: another engine
    iteration_seconds: float | None = None  # of ``seconds``, the iterations' (block; driver: the scipy call): the rest is set-up
    driver_max_edges: dict | None = None  # auto's limit for the driver engine (edges, bound): None: an engine named


def pagerank_arrays(n: int, src: np.ndarray, dst: np.ndarray, damping: float = 0.85, tol: float = 1e-6,
                    max_iter: int = 1000, teleport: np.ndarray | None = None,
                    start: np.ndarray | None = None) -> tuple[np.ndarray, int, bool, float]:
    """PageRank of vertices 0..n-1 over distinct edges src[i] -> dst[i]: (scores, iterations, converged, change).

    ``teleport``: where the surfer jumps (and dangling vertices' score goes), summing to 1; uniform if None.
    ``start``: the vector to start from (a warm start, :func:`warm_vector`), summing to 1; the teleport if None."""
    from scipy import sparse

    if n == 0:
        return np.zeros(0), 0, True, 0.0
    out_degree = np.bincount(src, minlength=n).astype(np.float64)
    share = np.divide(1.0, out_degree, out=np.zeros(n), where=out_degree > 0)
    # transposed, row-normalized adjacency: (A_norm^T x)[v] = sum over u -> v of x[u] / out(u)
    transposed = sparse.csr_array((share[src], (dst, src)), shape=(n, n))
    dangling = out_degree == 0
    jump = np.full(n, 1.0 / n) if teleport is None else teleport
    x = jump.copy() if start is None else start  # cold: a vertex no seed reaches stays at exactly 0
    change, iterations, converged = float("inf"), 0, False
    while iterations < max_iter:
        last = x
        x = damping * (transposed @ last + last[dangling].sum() * jump) + (1.0 - damping) * jump
        iterations += 1
        change = float(np.abs(x - last).sum())
        if change < tol:
            converged = True
            break
    return x / x.sum(), iterations, converged, change


def warm_vector(jump: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A warm start: ``values`` at the positions ``known``, the teleport ``jump`` elsewhere (a
    vertex new since the scores were computed), scaled to sum to 1 (the stop rule's bound needs a
    start that sums to 1, as every iterate does); the teleport itself where nothing is left."""
    start = jump.copy()
    start[known] = values
    total = start.sum()
    return start / total if total > 0 else jump.copy()


def _driver(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
            max_iter: int, seeds: DataFrame | None, start: DataFrame | None) -> tuple[DataFrame, dict]:
    vertex_ids, src, dst = collect_indexed(ids, edges)
    n = len(vertex_ids)
    teleport = None
    if seeds is not None:
        seed_ids = seeds.toPandas()["id"].to_numpy(dtype=np.int64)  # as few as the seed sites' vertices
        is_seed = np.isin(vertex_ids, seed_ids)
        teleport = is_seed / is_seed.sum()
    first = None
    if start is not None and n:
        known = start.toPandas()
        positions = pd.Index(vertex_ids).get_indexer(known["id"].to_numpy(dtype=np.int64))
        first = warm_vector(np.full(n, 1.0 / n) if teleport is None else teleport, positions,
                            known["pagerank"].to_numpy(dtype=np.float64))
    looping = time.perf_counter()
    scores, iterations, converged, change = pagerank_arrays(n, src, dst, damping, tol, max_iter, teleport, first)
    iteration_seconds = time.perf_counter() - looping
    frame = pd.DataFrame({"id": vertex_ids, "pagerank": scores})
    result = spark.createDataFrame(frame if len(frame) else [], "id long, pagerank double")
    return result, {"iterations": iterations, "converged": converged, "last_change": change, "edges": len(src),
                    "iteration_seconds": round(iteration_seconds, 3)}


def _checkpoint_observed(checkpoint, frame: DataFrame, **sums) -> tuple[DataFrame, dict]:
    """``frame`` checkpointed, and the aggregates ``sums`` (name -> column expression) of its rows,
    gathered by the checkpoint's own job (Spark's observed metrics): no second pass over the ranks."""
    observation = Observation(f"pagerank_{uuid.uuid4().hex[:12]}")
    written = checkpoint(frame.observe(observation, *[expr.alias(name) for name, expr in sums.items()]))
    return written, observation.get


def _iterate(checkpoint, frame: DataFrame, edges: DataFrame, damping: float, tol: float,
             max_iter: int) -> tuple[DataFrame, dict, float]:
    """The power iteration over ``frame`` (``id``, ``out_degree``: the sum of the vertex's edge
    weights, ``teleport``, ``pagerank``: the start) and weighted ``edges`` (``src``, ``dst``,
    ``weight``). Returns the last ranks (checkpointed; ``frame``'s columns), what ran, and their sum."""
    dangling = F.sum(F.when(F.col("out_degree") == 0, F.col("pagerank")).otherwise(0.0))
    ranks, sums = _checkpoint_observed(checkpoint, frame.repartition("id"), dangling=dangling,
                                       total=F.sum("pagerank"))
    dangling_mass, total = sums["dangling"] or 0.0, sums["total"]
    written = ranks  # the checkpointed table the current ranks are read from
    change, iterations, converged = float("inf"), 0, False
    while iterations < max_iter:
        shares = ranks.where(F.col("out_degree") > 0).select(
            F.col("id").alias("src"), (F.col("pagerank") / F.col("out_degree")).alias("share"))
        received = (
            edges.join(shares, on="src", how="inner")
            .groupBy(F.col("dst").alias("id"))
            .agg(F.sum(F.col("share") * F.col("weight")).alias("received"))
        )
        updated, sums = _checkpoint_observed(
            checkpoint,
            ranks.join(received, on="id", how="left").select(
                "id", "out_degree", "teleport",
                (F.lit(damping) * (F.coalesce(F.col("received"), F.lit(0.0)) + F.lit(dangling_mass) * F.col("teleport"))
                 + F.lit(1.0 - damping) * F.col("teleport")).alias("pagerank"),
                F.col("pagerank").alias("previous"),
            ),
            change=F.sum(F.abs(F.col("pagerank") - F.col("previous"))), dangling=dangling, total=F.sum("pagerank"))
        checkpoint.drop(written)  # the previous iteration's: nothing reads it any more
        written, ranks, iterations = updated, updated.drop("previous"), iterations + 1
        change, dangling_mass, total = float(sums["change"]), float(sums["dangling"] or 0.0), sums["total"]
        if change < tol:
            converged = True
            break
    return ranks, {"iterations": iterations, "converged": converged, "last_change": change}, total


def _start_column(frame: DataFrame, start: DataFrame | None, teleport: F.Column) -> tuple[DataFrame, F.Column]:
    """``frame`` with the start column, and the start: cold, the teleport (uniform, or the seeds: a
    vertex no seed reaches stays at exactly 0); warm, the scores given, the teleport where a vertex
    has none, scaled to sum to 1."""
    if start is None:
        return frame, teleport
    frame = frame.join(start.withColumnRenamed("pagerank", "start"), on="id", how="left")
    first = F.coalesce(F.col("start"), teleport)
    total = frame.agg(F.sum(first)).first()[0] or 0.0
    return frame, (first / F.lit(total) if total > 0 else teleport)


def _dataframe(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
               max_iter: int, checkpoint_dir: str | None, seeds: DataFrame | None, n: int,
               n_seeds: int | None, start: DataFrame | None, lump: bool = True) -> tuple[DataFrame, dict]:
    if n == 0:
        return spark.createDataFrame([], "id long, pagerank double"), {
            "iterations": 0, "converged": True, "last_change": 0.0}
    checkpoint = checkpointer(spark, checkpoint_dir)
    edges = checkpoint(edges.select("src", "dst").repartition("src"))
    out_degrees = edges.groupBy("src").agg(F.count(F.lit(1)).alias("out_degree"))
    with_degrees = (ids.join(out_degrees.withColumnRenamed("src", "id"), on="id", how="left")
                    .select("id", F.coalesce(F.col("out_degree"), F.lit(0)).cast("double").alias("out_degree")))
    if seeds is None:
        with_degrees = with_degrees.withColumn("seed", F.lit(False))
        teleport = F.lit(1.0 / n)
    else:
        with_degrees = with_degrees.join(seeds.select("id", F.lit(True).alias("seed")), on="id", how="left") \
            .withColumn("seed", F.coalesce(F.col("seed"), F.lit(False)))
        teleport = F.when(F.col("seed"), F.lit(1.0 / n_seeds)).otherwise(F.lit(0.0))
    if lump:
        lumped = _lumped(checkpoint, with_degrees, edges, damping, tol, max_iter, seeds is not None, start, teleport)
        if lumped is not None:
            return lumped
    frame, first = _start_column(with_degrees, start, teleport)
    ranks, run, total = _iterate(checkpoint, frame.select("id", "out_degree", teleport.alias("teleport"),
                                                          first.alias("pagerank")),
                                 edges.withColumn("weight", F.lit(1.0)), damping, tol, max_iter)
    return ranks.select("id", (F.col("pagerank") / F.lit(total)).alias("pagerank")), run


def lumped_tol(tol: float, damping: float, lumped_share: float) -> float:
    """The stop rule's tol for a run with its dangling vertices lumped into one, such that the
    scores rebuilt for every vertex keep the bound tol * d / (1 - d) (module docstring, "lumping").
    ``lumped_share``: K, the lumped vertices per vertex of the folded chain (seeded: lumped seeds per
    seed kept)."""
    return tol / (2.0 * max(1.0 + damping, lumped_share * damping))


def _lumped(checkpoint, with_degrees: DataFrame, edges: DataFrame, damping: float, tol: float, max_iter: int,
            seeded: bool, start: DataFrame | None, whole_teleport: F.Column) -> tuple[DataFrame, dict] | None:
    """PageRank with every dangling vertex (no out-edge: at a crawl, mostly link targets never
    fetched) lumped into one (module docstring, "lumping"); None where that does not pay or cannot
    run (fewer than two dangling vertices, every seed dangling, an id equal to LUMP_ID)."""
    counts = with_degrees.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(F.col("out_degree") == 0, 1).otherwise(0)).alias("dangling"),
        F.sum(F.when(F.col("seed"), 1).otherwise(0)).alias("seeds"),
        F.sum(F.when(F.col("seed") & (F.col("out_degree") == 0), 1).otherwise(0)).alias("dangling_seeds"),
        F.sum(F.when(F.col("id") == LUMP_ID, 1).otherwise(0)).alias("taken")).first()
    n_dangling, kept_seeds = counts["dangling"] or 0, (counts["seeds"] or 0) - (counts["dangling_seeds"] or 0)
    if n_dangling < 2 or counts["taken"] or (seeded and kept_seeds == 0):
        return None
    with_degrees = checkpoint(with_degrees)  # read by several jobs below, not recomputed by each
    n_folded = counts["n"] - n_dangling + 1
    share = (counts["dangling_seeds"] / kept_seeds) if seeded else n_dangling / n_folded
    lumped_ids = with_degrees.where(F.col("out_degree") == 0).select("id", "seed")
    folded_edges = checkpoint(
        edges.join(lumped_ids.select(F.col("id").alias("dst"), F.lit(True).alias("_lumped")), on="dst", how="left")
        .select("src", F.when(F.col("_lumped"), F.lit(LUMP_ID)).otherwise(F.col("dst")).alias("dst"))
        .groupBy("src", "dst").agg(F.count(F.lit(1)).cast("double").alias("weight"))
        .repartition("src"))
    teleport = (F.when(F.col("seed") & (F.col("id") != LUMP_ID), F.lit(1.0 / kept_seeds)).otherwise(F.lit(0.0))
                if seeded else F.lit(1.0 / n_folded))
    sink = with_degrees.sparkSession.createDataFrame([(LUMP_ID, 0.0, False)], "id long, out_degree double, seed boolean")
    folded = with_degrees.where(F.col("out_degree") > 0).select("id", "out_degree", "seed").unionByName(sink)
    first = teleport
    if start is not None:
        # the whole graph's start (_start_column), mapped onto the lumped chain as its fixed point
        # maps: the kept vertices' scores divided by c = s r + d S (s = 1 - d + d x the dangling
        # vertices' sum, S the kept ones' sum, r = N'/N, or kept seeds / seeds), the lump 1 - S / c
        whole, whole_first = _start_column(with_degrees, start, whole_teleport)
        whole = whole.select("id", "out_degree", whole_first.alias("first"))
        dangling_start = whole.agg(F.sum(F.when(F.col("out_degree") == 0, F.col("first")).otherwise(0.0))).first()[0]
        kept_start = 1.0 - dangling_start
        ratio = kept_seeds / counts["seeds"] if seeded else n_folded / counts["n"]
        c = ((1.0 - damping) + damping * dangling_start) * ratio + damping * kept_start
        folded = folded.join(whole.select("id", (F.col("first") / F.lit(c)).alias("first")), on="id", how="left")
        first = F.when(F.col("id") == LUMP_ID, F.lit(max(1.0 - kept_start / c, 0.0))).otherwise(F.col("first"))
    ranks, run, total = _iterate(checkpoint, folded.select("id", "out_degree", teleport.alias("teleport"),
                                                           first.alias("pagerank")),
                                 folded_edges, damping, lumped_tol(tol, damping, share), max_iter)
    scores = ranks.select("id", "out_degree", (F.col("pagerank") / F.lit(total)).alias("pagerank"))
    sink_score = scores.where(F.col("id") == LUMP_ID).first()["pagerank"]
    # every lumped vertex: d x (what its in-links bring) + its teleport term, from the folded
    # chain's scalar (1 - d + d x lump's score) spread as that chain spreads it
    spread = (1.0 - damping) + damping * sink_score
    term = (F.when(F.col("seed"), F.lit(spread / kept_seeds)).otherwise(F.lit(0.0)) if seeded
            else F.lit(spread / n_folded))
    shares = scores.where(F.col("id") != LUMP_ID).select(F.col("id").alias("src"),
                                                         (F.col("pagerank") / F.col("out_degree")).alias("share"))
    inflow = (edges.join(lumped_ids.select(F.col("id").alias("dst")), on="dst", how="left_semi")
              .join(shares, on="src", how="inner")
              .groupBy(F.col("dst").alias("id")).agg(F.sum("share").alias("inflow")))
    rebuilt = checkpoint(
        scores.where(F.col("id") != LUMP_ID).select("id", "pagerank")
        .unionByName(lumped_ids.join(inflow, on="id", how="left")
                     .select("id", (F.lit(damping) * F.coalesce(F.col("inflow"), F.lit(0.0)) + term).alias("pagerank"))))
    for table in (with_degrees, folded_edges):  # the rebuilt scores are written: nothing reads these now
        checkpoint.drop(table)
    rebuilt_sum = rebuilt.agg(F.sum("pagerank")).first()[0]
    run["lumped"] = n_dangling
    return rebuilt.select("id", (F.col("pagerank") / F.lit(rebuilt_sum)).alias("pagerank")), run


def _scratch_dir(spark: SparkSession, checkpoint_dir: str | None) -> str:
    """A folder every executor can reach: the checkpoint folder, a local temp (local mode), or /tmp on the default FS."""
    if checkpoint_dir:
        return f"{checkpoint_dir.rstrip('/')}/graphx-{uuid.uuid4().hex[:12]}"
    if spark.sparkContext.master.startswith("local"):
        return f"file://{tempfile.mkdtemp(prefix='imagerank-graphx-')}"
    return f"/tmp/imagerank-graphx-{uuid.uuid4().hex[:12]}"


def graphx_iterations(damping: float, tol: float, max_iter: int, seeded: bool = False) -> tuple[int, bool]:
    """GraphX iterations after which the normalized result is within the stop rule's bound,
    L1 error <= tol * d / (1 - d) (capped by max_iter), and whether the cap left them all to run.

    The bound after m iterations, 2 c d^m with c = max(d / (1 - d), 2 d) (module docstring), is at
    most tol * d / (1 - d) once d^m <= tol / (2 max(1, 2 (1 - d))): once 2 d^m <= tol for d >= 1/2.
    A seeded run takes one iteration more, the virtual source's first step (m counts from there).
    ``tol=0``: exactly ``max_iter`` iterations (past the virtual source's step in a seeded run).
    """
    if tol <= 0:
        return (max_iter + 1, False) if seeded else (max_iter, False)
    threshold = tol / (2.0 * max(1.0, 2.0 * (1.0 - damping)))
    needed = max(1, math.ceil(math.log(threshold) / math.log(damping))) if threshold < 1.0 else 1
    needed += 1 if seeded else 0
    return min(needed, max_iter), needed <= max_iter


def _virtual_source(edges: DataFrame, seeds: DataFrame | None) -> DataFrame:
    """The edges, plus one from VIRTUAL_SOURCE to every seed (seeded runs of graphx and graphframes)."""
    if seeds is None:
        return edges
    return edges.unionByName(seeds.select(F.lit(VIRTUAL_SOURCE).cast("long").alias("src"), F.col("id").alias("dst")))


def _graphx(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
            max_iter: int, checkpoint_dir: str | None, seeds: DataFrame | None) -> tuple[DataFrame, dict]:
    jvm = spark._jvm
    scratch = _scratch_dir(spark, checkpoint_dir)
    iterations, converged = graphx_iterations(damping, tol, max_iter, seeded=seeds is not None)
    source = jvm.scala.Option.empty() if seeds is None else jvm.scala.Option.apply(VIRTUAL_SOURCE)
    try:
        _virtual_source(edges, seeds).select(F.concat_ws(" ", "src", "dst")).write.text(f"{scratch}/edges")
        level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
        graph = jvm.org.apache.spark.graphx.GraphLoader.edgeListFile(
            spark.sparkContext._jsc.sc(), f"{scratch}/edges", False, -1, level, level)
        any_tag = jvm.scala.reflect.ClassTag.Any()
        ranked = jvm.org.apache.spark.graphx.lib.PageRank.runWithOptions(
            graph, iterations, 1.0 - damping, source, False, any_tag, any_tag)
        ranked.vertices().saveAsTextFile(f"{scratch}/ranks")  # lines "(id,rank)"
        parsed = spark.read.text(f"{scratch}/ranks").select(
            F.regexp_extract("value", r"^\((-?\d+),", 1).cast("long").alias("id"),
            F.regexp_extract("value", r",([^,)]+)\)$", 1).cast("double").alias("leaky"))
        # vertices without any edge are not in GraphX's graph: their leaky score is the teleport,
        # 1 - d (none with seeds: every seed has the virtual source's edge)
        leaky = (ids.join(parsed, on="id", how="left")
                 .select("id", F.coalesce("leaky", F.lit(1.0 - damping if seeds is None else 0.0)).alias("leaky"))
                 .localCheckpoint(eager=True))
    finally:
        delete_path(spark, scratch)
    total = leaky.agg(F.sum("leaky")).first()[0] or 1.0
    result = leaky.select("id", (F.col("leaky") / F.lit(total)).alias("pagerank"))
    return result, {"iterations": iterations, "converged": converged, "last_change": None}


def _leaky(ranked) -> DataFrame:
    """GraphFrames' ranks (``id``, ``leaky``) without the virtual source: they sum to N (the leaky solution
    rescaled; to 1 with a source). Checkpointed, so that the sum and the callers' reads do not run
    PageRank again (or read Pregel's checkpoints, deleted once it has run)."""
    return (ranked.vertices.where(F.col("id") != F.lit(VIRTUAL_SOURCE))
            .select("id", F.col("pagerank").alias("leaky")).localCheckpoint(eager=True))


def _graphframes(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
                 max_iter: int, checkpoint_dir: str | None, seeds: DataFrame | None,
                 n_vertices: int) -> tuple[DataFrame, dict]:
    from graphframes import GraphFrame

    source = {}
    if seeds is not None:
        ids = ids.unionByName(spark.createDataFrame([(VIRTUAL_SOURCE,)], "id long"))
        source = {"sourceId": VIRTUAL_SOURCE}
    graph = GraphFrame(ids, _virtual_source(edges, seeds))
    if tol > 0:  # GraphFrames' tol mode: Pregel until no vertex's rank changes by more than tol
        # unseeded ranks sum to N (mean 1), seeded ones to 1: the threshold is scaled to match, else a
        # seed's first change (d / |S| from the virtual source) falls under tol once |S| > d / tol
        threshold = tol if seeds is None else tol / max(n_vertices, 1)
        # its supersteps checkpointed now and then (prepare.pregel_checkpoints: else each costs all before it)
        with pregel_checkpoints(spark, _scratch_dir(spark, checkpoint_dir)):
            ranked = graph.pageRank(resetProbability=1.0 - damping, tol=threshold, **source)
            leaky = _leaky(ranked)
        run = {"iterations": None, "converged": True, "last_change": None}
    else:
        ranked = graph.pageRank(resetProbability=1.0 - damping, maxIter=max_iter, **source)
        leaky = _leaky(ranked)
        run = {"iterations": max_iter, "converged": False, "last_change": None}
    total = leaky.agg(F.sum("leaky")).first()[0] or 1.0
    return leaky.select("id", (F.col("leaky") / F.lit(total)).alias("pagerank")), run


def _available_bytes() -> int | None:
    """MemAvailable of this machine (Linux), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_UNITS = {"b": 0, "k": 10, "kb": 10, "m": 20, "mb": 20, "g": 30, "gb": 30, "t": 40, "tb": 40, "p": 50, "pb": 50}


def size_bytes(text: str, unit: str) -> int:
    """Bytes of a Spark size setting (``1g``, ``384m``, ``2048``: a bare number is in ``unit``)."""
    value = text.strip().lower()
    number = value.rstrip("abgkmpt")
    return int(number) << _UNITS[value[len(number):] or unit]


def driver_edge_limit(settings: dict[str, str], available: int | None, arrow: bool = True) -> tuple[int, str]:
    """The most edges ``auto`` gives the driver engine under these Spark ``settings``, and what
    bounds it: half of what the driver's Python process may use, over DRIVER_BYTES_PER_EDGE (a
    cluster-mode driver's container: its memory overhead, ``spark.driver.memoryOverhead`` or
    Spark's default of it, which is what Python has there; a driver elsewhere: ``available``, the
    memory its machine has free, where known); and, as the collected edges pass through the
    driver's JVM, half of ``spark.driver.maxResultSize`` and a quarter of its heap
    (``spark.driver.memory``), over COLLECTED_BYTES_PER_EDGE; without ``arrow`` (edges collected as
    rows, several times the bytes) at most ROWS_MAX_EDGES."""
    heap = size_bytes(settings.get("spark.driver.memory", "1g"), "m")
    limits = [(heap // 4 // COLLECTED_BYTES_PER_EDGE, "spark.driver.memory")]
    if not arrow:
        limits.append((ROWS_MAX_EDGES, f"{ARROW} off"))
    if settings.get("spark.submit.deployMode", "client") == "cluster":
        if "spark.driver.memoryOverhead" in settings:
            python_bytes = size_bytes(settings["spark.driver.memoryOverhead"], "m")
        else:
            python_bytes = max(384 << 20, int(heap * float(settings.get("spark.driver.memoryOverheadFactor", "0.1"))))
        limits.append((python_bytes // 2 // DRIVER_BYTES_PER_EDGE, "the driver container's memory overhead"))
    elif available is not None:
        limits.append((available // 2 // DRIVER_BYTES_PER_EDGE, "the driver machine's available memory"))
    result_bytes = size_bytes(settings.get("spark.driver.maxResultSize", "1g"), "b")
    if result_bytes > 0:  # 0: no limit
        limits.append((result_bytes // 2 // COLLECTED_BYTES_PER_EDGE, "spark.driver.maxResultSize"))
    return min(limits)


def pagerank(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float = 0.85, tol: float = 1e-6,
             max_iter: int = 1000, engine: str = "auto", driver_max_edges: int | None = None,
             checkpoint_dir: str | None = None, seeds: DataFrame | None = None,
             start: DataFrame | None = None, lump_dangling: bool = True,
             block_vertices: int = BLOCK_VERTICES) -> tuple[DataFrame, RankInfo]:
    """PageRank of every vertex in ``ids`` (column ``id``) over ``edges`` (``src``, ``dst``).

    A repeated edge counts once and self-loops are dropped (the driver and block engines drop
    repeats on the arrays they build, the others by a ``distinct``; ``auto`` compares the edge rows
    with the driver's limit). With ``seeds`` (a column ``id``), the
    teleport goes uniformly to the seeds among ``ids`` (TrustRank); there must be at least one.
    With ``start`` (``id``, ``pagerank``: a previous release's scores on these ids), the iteration
    starts from them (a warm start): a vertex without a score (new, or a score that is null,
    negative or not finite) starts at its teleport value, and the vector is scaled to sum to 1.
    The fixed point is the same, and so is the stop rule's bound (``tol * d / (1 - d)``, module
    docstring: it follows from the last change alone, whatever the start); only the iterations to
    reach it change. The driver, dataframe and block engines take a start (graphx and graphframes do not).
    ``lump_dangling`` (dataframe engine): iterate with the dangling vertices lumped into one, their
    scores rebuilt after (module docstring); the same scores within the same bound.
    Returns (DataFrame ``id``, ``pagerank`` summing to 1, and what ran).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown PageRank engine {engine!r}; choose one of {ENGINES}")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must lie in (0, 1), got {damping}")
    if start is not None and engine in WARM_UNSUPPORTED:
        raise ValueError(f"a warm start works with the driver, dataframe and block engines, not {engine}; "
                         f"choose --engine auto, driver, dataframe or block, or leave out --warm-start")
    if engine == "graphframes":
        require_graphframes(spark)  # before any work: a one-line error naming what to pass
    started = time.time()
    ids, edges = loop_free(ids, edges)
    if engine not in DEDUPLICATING:
        edges = edges.distinct()
    n_vertices = ids.count()
    # auto compares the edge rows (which bound the distinct edges) with the driver's limit; an engine that
    # drops repeated edges on its own arrays reports the distinct ones, so a run named for it needs no count
    n_edges = edges.count() if engine == "auto" or engine not in DEDUPLICATING else None
    n_seeds = None
    if seeds is not None:
        if ids.where(F.col("id") < 0).limit(1).count():
            raise ValueError("seeded PageRank needs non-negative vertex ids (the graph stage writes such ids)")
        seeds = (seeds.select(F.col("id").cast("long")).distinct().join(ids, on="id", how="left_semi")
                 .localCheckpoint(eager=True))
        n_seeds = seeds.count()
        if n_seeds == 0:
            raise ValueError("no seed vertex is in the graph: TrustRank's teleport would go nowhere")
    warm = None
    if start is not None:
        finite = F.col("pagerank").isNotNull() & ~F.isnan("pagerank") & (F.col("pagerank") >= 0) \
            & (F.col("pagerank") < float("inf"))
        start = (start.select(F.col("id").cast("long"), F.col("pagerank").cast("double"))
                 .where(finite).dropDuplicates(["id"]).join(ids, on="id", how="left_semi")
                 .localCheckpoint(eager=True))
        warm = {"vertices_with_start": start.count()}
        warm["vertices_new"] = n_vertices - warm["vertices_with_start"]
    chosen, limit = engine, None
    if engine == "auto":
        arrow = spark.conf.get(ARROW, "false").strip().lower() == "true"
        edges_limit, bound = (driver_edge_limit(dict(spark.sparkContext.getConf().getAll()), _available_bytes(), arrow)
                              if driver_max_edges is None else (driver_max_edges, "--driver-max-edges"))
        limit = {"edges": edges_limit, "bound": bound}
        chosen = "driver" if n_edges <= edges_limit else "block"
    if chosen == "driver":
        scores, run = _driver(spark, ids, edges, damping, tol, max_iter, seeds, start)
    elif chosen == "graphx":
        scores, run = _graphx(spark, ids, edges, damping, tol, max_iter, checkpoint_dir, seeds)
    elif chosen == "graphframes":
        scores, run = _graphframes(spark, ids, edges, damping, tol, max_iter, checkpoint_dir, seeds, n_vertices)
    elif chosen == "block":
        scores, run = block_pagerank(spark, ids, edges, damping, tol, max_iter, checkpoint_dir, seeds, n_vertices,
                                     n_seeds, start, block_vertices)
    else:
        scores, run = _dataframe(spark, ids, edges, damping, tol, max_iter, checkpoint_dir, seeds, n_vertices,
                                 n_seeds, start, lump_dangling)
    if run["last_change"] is not None and not math.isfinite(run["last_change"]):
        run["last_change"] = None  # no iteration ran: no change to report (reports are strict JSON)
    n_edges = run.pop("edges", n_edges)  # the driver and block engines count the distinct ones
    info = RankInfo(engine=chosen, vertices=n_vertices, edges=n_edges, seconds=round(time.time() - started, 3),
                    seeds=n_seeds, warm_start=warm, driver_max_edges=limit, **run)
    return scores, info


def info_dict(info: RankInfo) -> dict:
    return asdict(info)
