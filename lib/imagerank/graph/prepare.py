"""Preparing a graph for the rank engines, shared by PageRank and harmonic centrality.

- :func:`loop_free`: long ids, distinct vertices, no self-loops, duplicate edges kept (no shuffle of
  the edges): the engines drop a repeated edge where they sort or partition the edges anyway, so
  each sees networkx's DiGraph of the edge list;
- :func:`collect_indexed`: the graph on the driver, as positions into the vertex list, each edge once (driver engines);
- :func:`checkpointer`: eager checkpoints that cut an iterative engine's lineage each iteration;
- :func:`delete_path`: a folder removed through Hadoop's FileSystem (checkpoints, scratch);
- :func:`pregel_checkpoints`: GraphX's Pregel (GraphFrames' tol-mode PageRank) checkpointed every few supersteps.
"""

from __future__ import annotations

import contextlib
import uuid

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.spark import kept_checkpoint_dir


def loop_free(ids: DataFrame, edges: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Distinct long vertex ids, and the edges as long ids without self-loops, duplicates kept.

    The graph stage's edges are distinct already: a ``distinct`` would shuffle every edge only to
    find nothing to drop (at 10^6 pages about a sixth of the page level's PageRank, in each of two
    passes). The driver and block engines and HyperANF drop duplicates where they sort or
    partition the edges anyway."""
    ids = ids.select(F.col("id").cast("long")).distinct()
    edges = edges.select(F.col("src").cast("long"), F.col("dst").cast("long")).where(F.col("src") != F.col("dst"))
    return ids, edges


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once: a sort and a comparison of neighbours (numpy 2's ``np.unique``
    hashes integers first, about 20x slower on the 5x10^6 edge keys of a block at 10^6 pages)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def collect_indexed(ids: DataFrame, edges: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph on the driver: vertex ids, and edges as positions 0..n-1 into them, each (source,
    target) pair once, sorted by source (``edges`` may repeat a pair: :func:`loop_free`)."""
    vertex_ids = ids.toPandas()["id"].to_numpy(dtype=np.int64)
    edge_frame = edges.toPandas()
    index = pd.Index(vertex_ids)
    src = index.get_indexer(edge_frame["src"].to_numpy(dtype=np.int64))
    dst = index.get_indexer(edge_frame["dst"].to_numpy(dtype=np.int64))
    if (src < 0).any() or (dst < 0).any():
        raise ValueError("edges name vertices that are not in the vertex list")
    n = max(len(vertex_ids), 1)
    pairs = sorted_distinct(src.astype(np.int64) * n + dst)  # n vertices the driver holds: far below 3x10^9, no overflow
    return vertex_ids, pairs // n, pairs % n


def delete_path(spark: SparkSession, path: str) -> bool:
    """Remove a folder and what it holds (or a file) through Hadoop's FileSystem, so on whatever
    filesystem Spark wrote it (HDFS, S3A, GCS, local); absent is fine. True if something was removed."""
    jpath = spark._jvm.org.apache.hadoop.fs.Path(path)
    return bool(jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(jpath, True))


class Checkpointer:
    """Eager checkpoints that cut an iteration's lineage: reliable ones under ``folder``, else local.

    ``checkpoint(df)`` returns ``df`` checkpointed. A reliable checkpoint goes into a folder of its
    own under ``folder`` (Spark adds its own ``<uuid>/rdd-N`` below), so that ``checkpoint.drop(df)``
    can delete it as soon as no later step reads it: an iteration's table once the next one's is
    written, so a run holds two iterations' tables, not one per iteration. Nothing else is deleted
    here: the folder's owner (the rank stage, :func:`imagerank.graph.rank.own_checkpoints`) removes
    what is left (the tables the results are read from) when it ends. Local checkpoints live in the
    executors' block stores and go with the DataFrames that use them (``drop`` does nothing).
    """

    def __init__(self, spark: SparkSession, folder: str | None):
        self.spark = spark
        self.folder = folder.rstrip("/") if folder else None
        self._folders: dict[int, tuple[DataFrame, str]] = {}  # id(checkpointed) -> (it, its folder)

    def _new_folder(self) -> str:
        """A folder of its own under ``folder`` for the next reliable checkpoint, set as the SparkContext's."""
        folder = f"{self.folder}/{uuid.uuid4().hex[:12]}"
        self.spark.sparkContext.setCheckpointDir(folder)
        return folder

    def __call__(self, df: DataFrame) -> DataFrame:
        if self.folder is None:
            return df.localCheckpoint(eager=True)
        folder = self._new_folder()
        checkpointed = df.checkpoint(eager=True)  # written now, under the folder set just before
        self._folders[id(checkpointed)] = (checkpointed, folder)
        return checkpointed

    def mark(self, rdd):
        """``rdd`` persisted and marked to be checkpointed by the next job that computes it (an
        RDD's checkpoint is not eager; persisting it spares the reliable one a second computation):
        locally, or reliably in a folder of its own that ``drop(rdd)`` deletes."""
        rdd.persist(StorageLevel.MEMORY_AND_DISK)
        if self.folder is None:
            rdd.localCheckpoint()
            return rdd
        self._folders[id(rdd)] = (rdd, self._new_folder())
        rdd.checkpoint()
        return rdd

    def drop(self, df) -> None:
        """Delete the reliable checkpoint ``df`` (a DataFrame or RDD as returned by this
        checkpointer) is read from: no later step may read ``df``."""
        entry = self._folders.pop(id(df), None)
        if entry is not None:
            delete_path(self.spark, entry[1])


PREGEL_INTERVAL = "spark.graphx.pregel.checkpointInterval"
PREGEL_SUPERSTEPS = 10  # supersteps between two of Pregel's checkpoints, where the session does not set its own


@contextlib.contextmanager
def pregel_checkpoints(spark: SparkSession, folder: str):
    """Within the block, GraphX's Pregel (what GraphFrames' PageRank runs with ``tol``) checkpoints its
    graph every :data:`PREGEL_SUPERSTEPS` supersteps under ``folder``, which is deleted after.

    Pregel checkpoints only with ``spark.graphx.pregel.checkpointInterval`` set and a checkpoint
    folder (Spark's default is neither). Without them every superstep's graph keeps the whole lineage
    of the ones before, so each task carries all earlier supersteps' RDDs and the run costs the square
    of its supersteps (README, "GraphFrames", has the measurement). A value the session set itself is
    kept. The setting is read when Pregel starts, from the running context's configuration (set here
    for the block and removed after), as is the context's checkpoint folder (set back after:
    :func:`imagerank.spark.kept_checkpoint_dir`)."""
    conf = spark.sparkContext._jsc.sc().conf()  # the running context's own SparkConf
    ours = not conf.contains(PREGEL_INTERVAL)
    with kept_checkpoint_dir(spark):
        try:
            if ours:
                conf.set(PREGEL_INTERVAL, str(PREGEL_SUPERSTEPS))
            spark.sparkContext.setCheckpointDir(folder)
            yield
        finally:
            if ours:
                conf.remove(PREGEL_INTERVAL)
            delete_path(spark, folder)


def checkpointer(spark: SparkSession, checkpoint_dir: str | None) -> Checkpointer:
    """Eager checkpoints that cut an iteration's lineage: reliable ones under ``checkpoint_dir``, else local."""
    return Checkpointer(spark, checkpoint_dir)
