"""Preparing a graph for the rank engines, shared by PageRank and harmonic centrality.

- :func:`simple_graph`: networkx's DiGraph of the edge list (long ids, distinct edges, no self-loops);
- :func:`collect_indexed`: the graph on the driver, as positions into the vertex list (driver engines);
- :func:`checkpointer`: eager checkpoints that cut an iterative engine's lineage each iteration.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def simple_graph(ids: DataFrame, edges: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Distinct long vertex ids, and distinct edges without self-loops (networkx's DiGraph)."""
    ids = ids.select(F.col("id").cast("long")).distinct()
    edges = edges.select(F.col("src").cast("long"), F.col("dst").cast("long")).where(
        F.col("src") != F.col("dst")).distinct()
    return ids, edges


def collect_indexed(ids: DataFrame, edges: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The graph on the driver: vertex ids, and edges as positions 0..n-1 into them."""
    vertex_ids = ids.toPandas()["id"].to_numpy(dtype=np.int64)
    edge_frame = edges.toPandas()
    index = pd.Index(vertex_ids)
    src = index.get_indexer(edge_frame["src"].to_numpy(dtype=np.int64))
    dst = index.get_indexer(edge_frame["dst"].to_numpy(dtype=np.int64))
    if (src < 0).any() or (dst < 0).any():
        raise ValueError("edges name vertices that are not in the vertex list")
    return vertex_ids, src, dst


def checkpointer(spark: SparkSession, checkpoint_dir: str | None) -> Callable[[DataFrame], DataFrame]:
    """Eager checkpoints that cut an iteration's lineage: reliable ones under ``checkpoint_dir``, else local."""
    if checkpoint_dir is None:
        return lambda df: df.localCheckpoint(eager=True)
    spark.sparkContext.setCheckpointDir(checkpoint_dir)
    return lambda df: df.checkpoint(eager=True)
