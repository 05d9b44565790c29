"""PageRank's ``block`` engine: the vertices cut into blocks, each block's out-edges stored once as
numpy arrays, and each iteration shipping score vectors between blocks instead of a row per edge.

The iteration is :mod:`imagerank.graph.pagerank`'s (same teleport, seeds, dangling rule, warm
start, stop rule and bound); only where the work happens differs. Vertex positions 0..N-1 (the
graph stage's ids, which are dense, minus their least; any other ids are numbered first) are cut
into B blocks of S consecutive positions, B at least the session's default parallelism, S at
most ``block_vertices``. The graph stage numbers pages in URL order, so a host's pages, and most
of its links, fall in one block.

Set-up, once: the edges are grouped by source block, one Spark partition and one element per
block (``_pack``: Arrow batches to numpy in the edges' own scan tasks, no row through Python and
no shuffle of rows). Block i's element, persisted (memory, then disk) for the whole run, holds
what its shares read (the sources as positions in i, int32, sorted by destination, a repeated
edge dropped by that sort; where each destination's run of edges starts; the destinations cut
by destination block; 1 / out-degree) and what its step reads (which vertices are dangling,
the seeds' teleport, a warm start's scores). Every RDD here holds one element per partition and
is serialized one element per batch (``_one_per_batch``), so the ``zip`` is the JVM's alone, not
a Python pass re-pickling both sides.

Each iteration is one Spark job of two stages, one Python pass each. Block i's scores, zipped
with its element (same partition: no shuffle), give each edge its share, each run of them summed
with ``np.add.reduceat``; the sums go out as one (positions, values) pair per destination block j,
and block i's own scores, dangling flags and teleport go to its own partition beside them: the
only shuffle. Block j adds its pairs into its received vector and takes the step ``x' = d
(received + dangling mass x teleport) + (1 - d) teleport``, with nothing else to read. The step's
L1 change, dangling mass and total come back through an accumulator, one small tuple per block
keyed by block (a task run twice counts once), and the job is the JVM's count of the new scores'
serialized batches, so no Python pass reads them again. The new scores are checkpointed (local,
or reliable under ``checkpoint_dir`` through :class:`~imagerank.graph.prepare.Checkpointer`, the
previous iteration's deleted) so the lineage never grows. The shuffle carries 12 bytes per
distinct (source block, destination) pair, at most one per edge and far fewer where links stay
within a block, plus 9 bytes per vertex (17 with seeds) for the blocks' own scores; the DataFrame
engine shuffles a row per edge and joins the ranks to the edges every iteration.

Memory: a task's Python worker holds one block's edges (about 16 bytes an edge while it works:
the int32 sources, as read and unpickled, and each edge's share) and a few score vectors of S float64 (8 MB at the
default S): about 200 MB at a crawl's 10 edges per vertex, outside the JVM's heap (on YARN, count
it in ``spark.executor.memoryOverhead``, once per core). The results come back as one row per block,
turned into ``id, pagerank`` rows by Arrow.
"""

from __future__ import annotations

import math
import pickle
import time
from functools import partial, reduce

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.accumulators import AccumulatorParam
from pyspark.serializers import BatchedSerializer, CPickleSerializer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.graph.prepare import sorted_distinct

BLOCK_VERTICES = 1 << 20  # vertices per block at most: a score vector of 8 MB, about 10^7 edges
# what the set-up packs per block, in one pass: edges (position, position), seeds, warm-start scores
_EDGE, _SEED, _START = 0, 1, 2
_WIDTH = {_EDGE: (np.int64, np.int64), _SEED: (np.int64,), _START: (np.int64, np.float64)}  # (a, b), (a,), (a, value)
PACKED_ROWS = 1 << 22  # rows a set-up task groups at a time (about 64 MB of edges in Python)
_PACKED = "block long, payload binary"


def _identity(key: int) -> int:
    return key


def blocks_for(n: int, parallelism: int, block_vertices: int = BLOCK_VERTICES) -> tuple[int, int]:
    """(B, S): B blocks of S consecutive positions (the last may be shorter) covering 0..n-1, at
    least ``parallelism`` of them (so every core has one) where there are as many vertices, and no
    block over ``block_vertices``."""
    wanted = max(1, math.ceil(n / block_vertices), min(parallelism, n))
    size = max(1, math.ceil(n / wanted))
    return max(1, math.ceil(n / size)), size


def _positions(ids: DataFrame, n: int) -> tuple[int | None, DataFrame | None, DataFrame | None]:
    """How ids become positions 0..n-1: (least id, None, None) where the ids are dense (the graph
    stage's), else (None, ``id, pos`` numbered in id order, the persisted sort to release after)."""
    least, most = ids.agg(F.min("id"), F.max("id")).first()
    if most - least + 1 == n:
        return least, None, None
    from imagerank.graph.build import assign_ids

    numbered, ordered = assign_ids(ids, order=("id",), column="pos")
    return None, numbered.select("id", "pos"), ordered


def _to_positions(frame: DataFrame, columns: tuple[str, ...], least: int | None,
                  numbered: DataFrame | None) -> DataFrame:
    """``frame`` with each id column in ``columns`` replaced by its position."""
    for column in columns:
        if numbered is None:
            frame = frame.withColumn(column, F.col(column) - F.lit(least))
        else:
            frame = (frame.join(numbered.withColumnRenamed("id", column), on=column, how="inner")
                     .drop(column).withColumnRenamed("pos", column))
    return frame


def _block_pieces(held: list, kind: int, size: int):
    """Arrow rows (``block``, ``payload``), one per block among the rows of ``held`` (Arrow
    batches of positions ``a`` and, by kind, ``b`` or ``value``): that block's rows as numpy
    arrays, pickled with their kind."""
    table = pa.Table.from_batches(held)
    block = table.column("a").to_numpy() // size
    order = np.argsort(block, kind="stable")
    block = block[order]
    arrays = [table.column(name).to_numpy()[order] for name in table.column_names]
    cuts = np.flatnonzero(np.diff(block)) + 1
    for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(block)]):
        payload = pickle.dumps((kind, tuple(array[start:end] for array in arrays)), protocol=5)
        yield pa.RecordBatch.from_arrays([pa.array([int(block[start])], pa.int64()),
                                          pa.array([payload], pa.binary())], names=["block", "payload"])


def _pack_task(batches, kind: int, size: int):
    """One scan task's part of :func:`_pack`: its Arrow batches by block, at most PACKED_ROWS rows
    at a time (a task's Python memory bounded, whatever its split's size)."""
    held, rows = [], 0
    for batch in batches:
        if batch.num_rows:
            held.append(batch)
            rows += batch.num_rows
        if rows >= PACKED_ROWS:
            yield from _block_pieces(held, kind, size)
            held, rows = [], 0
    if held:
        yield from _block_pieces(held, kind, size)


def _merge_pieces(index: int, items):
    """Partition ``index``'s pieces (:func:`_pack_task`) as one element (index, {kind: arrays})."""
    pieces = {kind: [] for kind in _WIDTH}
    for _, payload in items:
        kind, arrays = pickle.loads(payload)
        pieces[kind].append(arrays)
    yield index, {kind: tuple(np.concatenate([piece[k] for piece in pieces[kind]]) if pieces[kind] else
                              np.zeros(0, dtype) for k, dtype in enumerate(_WIDTH[kind]))
                  for kind in _WIDTH}


def _pack(parts: list[tuple[int, DataFrame]], size: int, n_blocks: int):
    """``parts``, (kind, frame of positions ``a`` and, by kind, ``b`` or ``value``), as an RDD of
    ``n_blocks`` partitions, partition i holding exactly one element (i, {kind: arrays}), the rows
    of block ``a // size``. Each task of the frames' own scan groups its Arrow batches by block into
    numpy arrays, and one row per (task, block, up to PACKED_ROWS rows) crosses to the partition of
    its block: the only shuffle, of numpy bytes, not of rows (docs/design.md, "The block engine")."""
    packed = reduce(DataFrame.unionByName, [frame.mapInArrow(partial(_pack_task, kind=kind, size=size), _PACKED)
                                            for kind, frame in parts])
    return (packed.rdd.map(lambda row: (row[0], bytes(row[1])))
            .partitionBy(n_blocks, _identity)
            .mapPartitionsWithIndex(_merge_pieces, preservesPartitioning=True))


def _block_element(index: int, packed: dict, size: int, length: int, n_seeds: int | None) -> tuple[dict, dict]:
    """Block ``index``'s arrays (module docstring), as two parts: what each iteration's shares read
    (its out-edges' sources sorted by destination, where each distinct destination's run starts,
    the destinations cut by block, each vertex's 1 / out-degree) and what its step reads
    (which vertices are dangling, the teleport: None for uniform 1/n, warm-start scores)."""
    first = index * size
    src, dst = packed[_EDGE]
    pairs = sorted_distinct(dst * size + (src - first))  # by destination, then source; a repeated edge once
    dst = pairs // size
    src_local = (pairs - dst * size).astype(np.int32)
    runs = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]]) if len(dst) else np.zeros(0, np.int64)
    targets = dst[runs]
    target_block = targets // size
    cuts = np.flatnonzero(np.diff(target_block)) + 1
    splits = [(int(target_block[start]), int(start), int(end))
              for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(targets)])] if len(targets) else []
    out_degree = np.bincount(src_local, minlength=length).astype(np.float64)
    teleport = None
    if n_seeds is not None:
        teleport = np.zeros(length)
        teleport[packed[_SEED][0] - first] = 1.0 / n_seeds
    start_at, start_values = packed[_START]
    edges = {"src": src_local, "runs": runs, "targets": (targets - target_block * size).astype(np.int32),
             "splits": splits, "share": np.divide(1.0, out_degree, out=np.zeros(length), where=out_degree > 0)}
    vertices = {"index": index, "dangling": out_degree == 0, "teleport": teleport, "edges": len(src_local),
                "start": (start_at - first, start_values) if len(start_at) else None}
    return edges, vertices


def _one_per_batch(rdd):
    """``rdd`` serialized one element per batch. PySpark's ``zip`` re-serializes both sides in a
    Python pass of their own unless their batch sizes are equal and fixed; the engine's RDDs (one
    element a partition) all use this one, so each zip is the JVM's alone."""
    return rdd._reserialize(BatchedSerializer(CPickleSerializer(), 1))


class _PerBlock(AccumulatorParam):
    """An accumulator of block -> the sums of its step (or start): a block's entry replaces any earlier
    one, so a task run twice (retried, speculated, recomputed) counts once."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, value1: dict, value2: dict) -> dict:
        value1.update(value2)
        return value1


def _block_sums(stats, n_blocks: int) -> tuple:
    """(L1 change, dangling mass, total), and at the start the edges, summed over every block's
    entry in the accumulator ``stats``."""
    per_block = stats.value
    if len(per_block) != n_blocks:
        raise RuntimeError(f"block PageRank: sums came back from {len(per_block)} of {n_blocks} blocks")
    return tuple(sum(column) for column in zip(*per_block.values()))


def _computed(rdd):
    """``rdd`` (persisted and marked for its checkpoint) computed now, by a job of the JVM's alone:
    it counts the serialized batches, so no Python pass beyond the one that computes it."""
    rdd._jrdd.count()
    return rdd


def block_pagerank(spark: SparkSession, ids: DataFrame, edges: DataFrame, damping: float, tol: float,
                   max_iter: int, checkpoint_dir: str | None, seeds: DataFrame | None, n: int,
                   n_seeds: int | None, start: DataFrame | None,
                   block_vertices: int = BLOCK_VERTICES) -> tuple[DataFrame, dict]:
    """PageRank (``pagerank``'s contract: simple graph, seeds restricted to ``ids``, a start already
    filtered to usable scores) by blocks; returns (``id, pagerank`` summing to 1, what ran)."""
    from imagerank.graph.prepare import checkpointer

    if n == 0:
        return spark.createDataFrame([], "id long, pagerank double"), {
            "iterations": 0, "converged": True, "last_change": 0.0, "blocks": 0, "edges": 0}
    n_blocks, size = blocks_for(n, spark.sparkContext.defaultParallelism, block_vertices)
    least, numbered, ordered = _positions(ids, n)
    lengths = [min(size, n - i * size) for i in range(n_blocks)]

    edge_rows = edges.select(F.col("src").cast("long").alias("a"), F.col("dst").cast("long").alias("b"))
    parts = [(_EDGE, _to_positions(edge_rows, ("a", "b"), least, numbered).select("a", "b"))]
    if seeds is not None:
        seed_rows = seeds.select(F.col("id").cast("long").alias("a"))
        parts.append((_SEED, _to_positions(seed_rows, ("a",), least, numbered).select("a")))
    if start is not None:
        start_rows = start.select(F.col("id").cast("long").alias("a"), F.col("pagerank").cast("double").alias("value"))
        parts.append((_START, _to_positions(start_rows, ("a",), least, numbered).select("a", "value")))

    checkpoint = checkpointer(spark, checkpoint_dir)

    blocks = _one_per_batch(_pack(parts, size, n_blocks).map(
        lambda item: _block_element(item[0], item[1], size, lengths[item[0]], n_seeds),
        preservesPartitioning=True)).persist(StorageLevel.MEMORY_AND_DISK)

    stats = spark.sparkContext.accumulator({}, _PerBlock())  # block -> the sums of its start

    def first_scores(pair, stats=stats) -> tuple[int, np.ndarray]:
        _, element = pair
        length = lengths[element["index"]]
        x = np.full(length, 1.0 / n) if element["teleport"] is None else element["teleport"].copy()
        if element["start"] is not None:
            at, values = element["start"]
            x[at] = values
        stats.add({element["index"]: (0.0, float(x[element["dangling"]].sum()), float(x.sum()), element["edges"])})
        return element["index"], x

    try:
        state = _computed(checkpoint.mark(_one_per_batch(blocks.map(first_scores, preservesPartitioning=True))))
        if ordered is not None:
            ordered.unpersist()
        _, dangling_mass, total, n_edges = _block_sums(stats, n_blocks)
        scale = 1.0 / total if start is not None and total > 0 else 1.0
        dangling_mass *= scale
        change, iterations, converged = float("inf"), 0, False

        looping = time.perf_counter()
        while iterations < max_iter:
            stats = spark.sparkContext.accumulator({}, _PerBlock())  # this iteration's: block -> its sums

            def shares(pair, factor=scale):
                (edges, vertices), (index, x) = pair
                # the block's own scores and what its step reads go to its own partition with the sums
                yield index, (None, (x * factor, vertices["dangling"], vertices["teleport"]))
                if not len(edges["src"]):
                    return
                sums = np.add.reduceat((x * (edges["share"] * factor))[edges["src"]], edges["runs"])
                for target, begin, end in edges["splits"]:
                    yield target, (edges["targets"][begin:end], sums[begin:end])

            def step(index, items, mass=dangling_mass, stats=stats):
                inflow = np.zeros(lengths[index])
                for _, (at, values) in items:
                    if at is None:
                        x, dangling, teleport = values
                    else:
                        inflow[at] += values
                if teleport is None:
                    new = damping * inflow + (damping * mass + 1.0 - damping) / n
                else:
                    new = damping * (inflow + mass * teleport) + (1.0 - damping) * teleport
                stats.add({index: (float(np.abs(new - x).sum()), float(new[dangling].sum()), float(new.sum()))})
                yield index, new

            updated = _computed(checkpoint.mark(_one_per_batch(
                blocks.zip(state).flatMap(shares).partitionBy(n_blocks, _identity)
                .mapPartitionsWithIndex(step, preservesPartitioning=True))))
            state.unpersist()
            checkpoint.drop(state)  # the previous iteration's: nothing reads it any more
            state, scale, iterations = updated, 1.0, iterations + 1
            change, dangling_mass, total = _block_sums(stats, n_blocks)
            if change < tol:
                converged = True
                break

        iteration_seconds = time.perf_counter() - looping
        norm = total if total > 0 else 1.0  # the last scores' sum (the unscaled start where none ran)

        def as_rows(batches):
            for batch in batches:
                indexes, payloads = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                for index, payload in zip(indexes, payloads):
                    vector = np.frombuffer(payload, dtype=np.float64)
                    positions = index * size + np.arange(len(vector), dtype=np.int64)
                    yield pa.RecordBatch.from_arrays([pa.array(positions), pa.array(vector / norm)],
                                                     names=["pos", "pagerank"])

        vectors = state.map(lambda item: (item[0], item[1].astype(np.float64).tobytes()))
        result = spark.createDataFrame(vectors, _PACKED).mapInArrow(as_rows, "pos long, pagerank double")
        if numbered is None:
            result = result.select((F.col("pos") + F.lit(least)).alias("id"), "pagerank")
        else:
            result = result.join(numbered, on="pos", how="inner").select("id", "pagerank")
        result = result.localCheckpoint(eager=True)  # read before the blocks and checkpoints go
        state.unpersist()
        checkpoint.drop(state)
        return result, {"iterations": iterations, "converged": converged, "last_change": change,
                        "blocks": n_blocks, "edges": n_edges, "iteration_seconds": round(iteration_seconds, 3)}
    finally:
        blocks.unpersist()
        if ordered is not None:
            ordered.unpersist()
