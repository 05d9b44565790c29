"""PageRank scale curve (make bench): seconds per iteration and peak memory per engine and size.

Graphs: generated power-law directed graphs of 10^5, 10^6 and 10^7 edges (10 edges per vertex on
average; out-links uniform, in-links Pareto-distributed, as on the web). Engines, each run in a
fresh process so that its peak memory is its own:
  - driver: imagerank's scipy power iteration (what the rank job runs on a small graph);
  - networkx: networkx.pagerank (the reference; skipped at 10^7 edges, where it needs tens of GB);
  - dataframe: imagerank's Spark DataFrame iteration, local[2], checkpointing each iteration;
  - block: imagerank's block engine (numpy per vertex block, score vectors shipped), local[2];
  - graphx: Spark GraphX's static PageRank over py4j, local[2] (what GraphFrames' PageRank wraps).
  - graphframes: GraphFrames' PageRank (fixed iteration count), local[2]; its JVM classes from the
    jar imagerank.graph.graphframes_jar.find_graphframes_jar finds (else it fails in one line).
Then the warm start (rank --warm-start): the iterations of a second crawl's PageRank (80% of its
pages shared with the first, the rest new) from the first crawl's scores, against those from the
teleport, and the two results' L1 distance.
Seconds per iteration exclude set-up (collecting, indexing, caching): after a warm-up run, an
engine runs 1 and then 1 + K iterations, and the difference is divided by K (single-machine
engines: K sized to take ~4 s, best of 3; dataframe: K = --iterations; graphx and graphframes:
5x that). Peak memory is the process's peak RSS (for Spark: Python driver plus its JVM). Every
figure is printed as a ratio to the fastest engine at that size, then extrapolated to Common
Crawl's host graph.

    python bench/bench_pagerank.py [--sizes 100000,1000000,10000000] [--iterations 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

CACHE = Path(tempfile.gettempdir()) / "imagerank-bench-pagerank"
CC_HOSTS, CC_EDGES = 270e6, 9.4e9  # Common Crawl host graph, order of magnitude of recent releases


def graph_arrays(n_edges: int) -> tuple[int, np.ndarray, np.ndarray]:
    n = max(n_edges // 10, 10)
    rng = np.random.default_rng(n_edges)
    src = rng.integers(0, n, n_edges, dtype=np.int64)
    dst = (rng.pareto(1.0, n_edges) * n / 100).astype(np.int64) % n
    keep = src != dst
    pairs = np.unique(np.stack([src[keep], dst[keep]], axis=1), axis=0)
    return n, pairs[:, 0].copy(), pairs[:, 1].copy()


def next_month(n: int, src: np.ndarray, dst: np.ndarray, shared: float = 0.8,
               seed: int = 2) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The graph of a crawl sharing ``shared`` of its pages with the one given: the rest are gone,
    replaced by as many new pages (ids n..), with out-links drawn as graph_arrays draws them; the
    links of shared pages to gone ones go to new pages instead. Returns (vertices, src, dst, and
    for each vertex its id in the first graph or -1 for a new page)."""
    rng = np.random.default_rng(seed)
    gone = rng.random(n) >= shared
    replacement = np.full(n, -1, dtype=np.int64)
    replacement[gone] = n + np.arange(gone.sum())  # new page i takes the gone page's place in the id space
    keep = ~gone[src]
    new_src, new_dst = src[keep], dst[keep]
    redirected = gone[new_dst]
    new_dst = np.where(redirected, replacement[new_dst], new_dst)
    fresh = replacement[gone]
    out_links = rng.poisson(len(src) / n, len(fresh))
    fresh_src = np.repeat(fresh, out_links)
    fresh_dst = (rng.pareto(1.0, len(fresh_src)) * n / 100).astype(np.int64) % n
    fresh_dst = np.where(gone[fresh_dst], replacement[fresh_dst], fresh_dst)
    all_src, all_dst = np.concatenate([new_src, fresh_src]), np.concatenate([new_dst, fresh_dst])
    # ids 0..m-1 for the second crawl: shared pages first (their old ids), then the new ones
    ids = np.concatenate([np.flatnonzero(~gone), fresh])
    position = np.full(n + len(fresh), -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    pairs = np.unique(np.stack([position[all_src], position[all_dst]], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    previous = np.where(ids < n, ids, -1)
    return len(ids), pairs[:, 0].copy(), pairs[:, 1].copy(), previous


def warm_start_saving(n_edges: int, shared: float = 0.8, tol: float = 1e-6) -> dict:
    """Iterations and seconds of the second month's PageRank (driver engine, scipy), from the
    teleport and from the first month's scores (imagerank.graph.pagerank.warm_vector)."""
    from imagerank.graph.pagerank import pagerank_arrays, warm_vector

    n, src, dst = graph_arrays(n_edges)
    first, _, _, _ = pagerank_arrays(n, src, dst, tol=tol)
    m, src2, dst2, previous = next_month(n, src, dst, shared)
    runs = {}
    for name in ("cold", "warm"):
        start = None
        if name == "warm":
            known = np.flatnonzero(previous >= 0)
            start = warm_vector(np.full(m, 1.0 / m), known, first[previous[known]])
        began = time.perf_counter()
        scores, iterations, converged, _ = pagerank_arrays(m, src2, dst2, tol=tol, start=start)
        runs[name] = {"iterations": iterations, "seconds": time.perf_counter() - began, "scores": scores}
    return {"edges": len(src2), "vertices": m, "shared": float((previous >= 0).mean()),
            "cold_iterations": runs["cold"]["iterations"], "warm_iterations": runs["warm"]["iterations"],
            "seconds_ratio": runs["warm"]["seconds"] / runs["cold"]["seconds"],
            "l1_between": float(np.abs(runs["warm"]["scores"] - runs["cold"]["scores"]).sum())}


def crawl_shaped(n_edges: int) -> tuple[int, np.ndarray, np.ndarray]:
    """A crawl's shape: a quarter of the vertices (the fetched pages) link out, 10 links each on
    average, to targets Pareto-distributed over all vertices; the rest (link targets never fetched)
    are dangling."""
    n = max(n_edges * 4 // 10, 40)
    rng = np.random.default_rng(n_edges + 1)
    src = rng.integers(0, n // 4, n_edges, dtype=np.int64)
    dst = (rng.pareto(1.0, n_edges) * n / 100).astype(np.int64) % n
    keep = src != dst
    pairs = np.unique(np.stack([src[keep], dst[keep]], axis=1), axis=0)
    return n, pairs[:, 0].copy(), pairs[:, 1].copy()


def lumping_saving(n_edges: int) -> dict:
    """The dataframe engine on a crawl-shaped graph with its dangling vertices lumped into one (the
    default) and without: seconds, iterations, and the largest difference between the two."""
    from imagerank.graph.pagerank import pagerank
    from imagerank.spark import get_spark

    spark = get_spark("bench-pagerank-lumping", master="local[2]", extra={"spark.sql.shuffle.partitions": "8"})
    n, src, dst = crawl_shaped(n_edges)
    ids = spark.createDataFrame(pd.DataFrame({"id": np.arange(n, dtype=np.int64)}))
    edges = spark.createDataFrame(pd.DataFrame({"src": src, "dst": dst})).localCheckpoint(eager=True)
    runs = {}
    for lump in (True, False, True):  # the first run warms the JVM up; the last two are timed
        began = time.perf_counter()
        scores, info = pagerank(spark, ids, edges, engine="dataframe", lump_dangling=lump)
        collected = scores.toPandas().set_index("id")["pagerank"]
        runs[lump] = {"seconds": time.perf_counter() - began, "info": info, "scores": collected}
    gap = float((runs[True]["scores"] - runs[False]["scores"].reindex(runs[True]["scores"].index)).abs().sum())
    return {"vertices": n, "edges": len(src), "lumped": runs[True]["info"].lumped,
            "iterations": (runs[True]["info"].iterations, runs[False]["info"].iterations),
            "seconds": (runs[True]["seconds"], runs[False]["seconds"]), "l1_between": gap}


def graph_parquet(n_edges: int) -> Path:
    folder = CACHE / f"graph-{n_edges}"
    if not (folder / "_SUCCESS").exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        n, src, dst = graph_arrays(n_edges)
        (folder / "edges").mkdir(parents=True, exist_ok=True)
        (folder / "vertices").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"src": src, "dst": dst}), folder / "edges" / "part-0.parquet")
        pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64)}), folder / "vertices" / "part-0.parquet")
        (folder / "_SUCCESS").touch()
    return folder


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    jvm = 0.0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"PPid:\t{os.getpid()}\n" in text and "java" in text.split("\n", 1)[0]:
            jvm = max(jvm, int(text.split("VmHWM:")[1].split()[0]) / 1024)
    return own + max(children, jvm)


def _best_times(once, iterations: int, repeats: int = 3, target_seconds: float = 4.0) -> tuple[list[float], int]:
    """Seconds for 1 and for 1 + K iterations, each the best of ``repeats`` after a warm-up; K is
    chosen so that the K iterations take about ``target_seconds`` (set-up noise then hardly matters)."""

    def timed(k: int) -> float:
        started = time.perf_counter()
        once(k)
        return time.perf_counter() - started

    first = timed(1)  # warm-up: imports, caches
    estimate = max((timed(1 + iterations) - first) / iterations, 1e-6)
    k = int(min(max(target_seconds / estimate, iterations), 5000))
    return [0.0, min(timed(1) for _ in range(repeats)), min(timed(1 + k) for _ in range(repeats))], k


def run_one(engine: str, n_edges: int, iterations: int) -> dict:
    """In a fresh process: seconds per iteration (set-up excluded) and peak RSS."""
    if engine == "driver":
        from imagerank.graph.pagerank import pagerank_arrays

        n, src, dst = graph_arrays(n_edges)
        def once(k: int) -> None:
            pagerank_arrays(n, src, dst, tol=0.0, max_iter=k)

        times, iterations = _best_times(once, iterations)
    elif engine == "networkx":
        import networkx as nx

        n, src, dst = graph_arrays(n_edges)
        graph = nx.DiGraph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from(zip(src.tolist(), dst.tolist()))
        def once(k: int) -> None:
            try:
                nx.pagerank(graph, tol=0.0, max_iter=k)
            except nx.PowerIterationFailedConvergence:
                pass  # tol=0 never converges: this runs exactly k iterations

        times, iterations = _best_times(once, iterations)
    elif engine in ("dataframe", "block", "graphx", "graphframes"):
        from imagerank.graph.pagerank import pagerank

        if engine in ("graphx", "graphframes"):
            iterations *= 5  # their iterations are short next to their set-up (loading the graph)
        from imagerank.spark import get_spark

        folder = graph_parquet(n_edges)
        extra = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "8g"}
        if engine == "graphframes":
            from imagerank.graph.graphframes_jar import find_graphframes_jar

            jar = find_graphframes_jar()
            if jar is not None:
                extra["spark.jars"] = str(jar)
        spark = get_spark("bench-pagerank", master="local[2]", extra=extra)
        spark.sparkContext.setLogLevel("ERROR")
        ids = spark.read.parquet(str(folder / "vertices"))
        edges = spark.read.parquet(str(folder / "edges"))
        times = []
        for k in (1, 1, 1 + iterations):  # the first run warms up (imports, JIT) and is dropped
            started = time.perf_counter()
            scores, _ = pagerank(spark, ids, edges, engine=engine, tol=0.0, max_iter=k)
            scores.agg({"pagerank": "sum"}).first()
            times.append(time.perf_counter() - started)
    else:
        raise ValueError(engine)
    times = times[1:]
    return {"engine": engine, "edges": n_edges, "seconds_per_iteration": max(times[1] - times[0], 0.0) / iterations,
            "setup_and_one_iteration": times[0], "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=os.environ.get("BENCH_PAGERANK_SIZES", "100000,1000000,10000000"))
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--engines", default="driver,networkx,dataframe,block,graphx,graphframes")
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "EDGES"), help=argparse.SUPPRESS)
    parser.add_argument("--lumping-edges", type=int, default=int(os.environ.get("BENCH_LUMPING_EDGES", "1000000")))
    parser.add_argument("--lumping", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.iterations)))
        return
    if args.lumping:
        print(json.dumps(lumping_saving(args.lumping_edges)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n_edges in sizes:
        import pyarrow.parquet as pq

        distinct = pq.ParquetFile(graph_parquet(n_edges) / "edges" / "part-0.parquet").metadata.num_rows
        print(f"{n_edges:>11,} edges asked: {distinct:,} distinct edges, {max(n_edges // 10, 10):,} vertices")
        for engine in args.engines.split(","):
            if engine == "networkx" and n_edges > 2_000_000:
                print(f"{n_edges:>11,} edges  networkx   skipped: a DiGraph of this size needs tens of GB")
                continue
            done = subprocess.run([sys.executable, __file__, "--one", engine, str(n_edges),
                                   "--iterations", str(args.iterations)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{n_edges:>11,} edges  {engine:<11} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        at_size = [r for r in results if r["edges"] == n_edges]
        fastest = max(min(r["seconds_per_iteration"] for r in at_size), 1e-9)
        for r in at_size:
            print(f"{n_edges:>11,} edges  {r['engine']:<11} {r['seconds_per_iteration']:9.4f} s/iteration "
                  f"({r['seconds_per_iteration'] / fastest:6.1f}x the fastest)  set-up+1: "
                  f"{r['setup_and_one_iteration']:7.2f} s  peak RSS {r['peak_rss_mb']:8.0f} MB")
        driver_here = next((r for r in at_size if r["engine"] == "driver"), None)
        for r in at_size:
            if r["engine"] in ("driver", "networkx"):
                continue
            core_us = r["seconds_per_iteration"] * 2 / r["edges"] * 1e6  # local[2]: two cores
            against = (f", {r['seconds_per_iteration'] / driver_here['seconds_per_iteration']:.1f}x scipy's "
                       f"sparse power iteration (driver) in this run") if driver_here else ""
            print(f"{n_edges:>11,} edges  {r['engine']:<11} {core_us:.3f} core-us per edge and iteration{against}")
    warm_sizes = [n for n in sizes if n <= 10_000_000]
    for n_edges, shared in [(n, share) for n in warm_sizes for share in (0.8, 0.95, 0.99)]:
        saving = warm_start_saving(n_edges, shared)
        print(f"{n_edges:>11,} edges  warm start (second crawl sharing {saving['shared']:.0%} of its pages, tol 1e-6, "
              f"driver engine): {saving['warm_iterations']} iterations against {saving['cold_iterations']} from the "
              f"teleport ({saving['warm_iterations'] / saving['cold_iterations']:.2f}x; time "
              f"{saving['seconds_ratio']:.2f}x); the two results differ by {saving['l1_between']:.1e} in L1 "
              f"(each within 5.7e-06 of the fixed point)")
    done = subprocess.run([sys.executable, __file__, "--lumping", "--lumping-edges", str(args.lumping_edges)],
                          capture_output=True, text=True)
    if done.returncode == 0:
        lumped = json.loads(done.stdout.strip().splitlines()[-1])
        (with_lump, without), (it_lump, it_plain) = lumped["seconds"], lumped["iterations"]
        print(f"{lumped['edges']:>11,} edges  dataframe engine on a crawl-shaped graph ({lumped['vertices']:,} vertices, "
              f"{lumped['lumped']:,} dangling lumped into one): {with_lump:.1f} s, {it_lump} iterations, against "
              f"{without:.1f} s, {it_plain} iterations without lumping ({with_lump / without:.2f}x the time); "
              f"the two differ by {lumped['l1_between']:.1e} in L1")
    else:
        print(f"lumping: failed: {done.stderr.strip().splitlines()[-1:]}")
    driver = [r for r in results if r["engine"] == "driver"]
    spark_engines = [max((r for r in results if r["engine"] == e), key=lambda r: r["edges"], default=None)
                     for e in ("dataframe", "block", "graphx", "graphframes")]
    spark_engines = [r for r in spark_engines if r is not None]
    if not spark_engines or not driver:
        return
    cores = 100 * 16
    print(f"\nCommon Crawl host graph ({CC_HOSTS:.3g} hosts, {CC_EDGES:.3g} edges), extrapolated linearly "
          f"from {spark_engines[0]['edges']:,} edges:")
    for big in spark_engines:
        core_seconds_per_edge = big["seconds_per_iteration"] * 2 / big["edges"]  # local[2]: two cores
        per_iteration = CC_EDGES * core_seconds_per_edge / cores
        print(f"  {big['engine']} engine on {cores} cores (100 workers x 16): ~{per_iteration:,.0f} s/iteration, "
              f"~{per_iteration * 60 / 3600:.1f} h for 60 iterations (shuffle at cluster scale not modelled)")
    big_driver = max(driver, key=lambda r: r["edges"])
    driver_per_iteration = big_driver["seconds_per_iteration"] * CC_EDGES / big_driver["edges"]
    print(f"  driver engine on one machine: ~{driver_per_iteration:,.0f} s/iteration and "
          f"~{CC_EDGES * 12 / 2**30 + CC_HOSTS * 8 * 4 / 2**30:,.0f} GiB for the CSR matrix and vectors")

if __name__ == "__main__":
    main()
