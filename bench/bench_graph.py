"""The graph build alone (make bench): its cost per input row, as Spark counts it, on a generated crawl.

bench/synthetic_crawl.py's crawl of N pages (default 100,000; BENCH_GRAPH_PAGES or --pages; cached
with bench_scale's crawls) is extracted once (cached beside it), then build_graph runs on that
extraction ``--repeat`` times (default 3) in one Spark session (local[2]); the first run warms
the JVM up and is not counted. Printed per run, from the stage's report (``spark``, Spark's own
counters for its jobs): wall seconds, executor CPU seconds and executor run seconds per input
row (core-µs: the CPU figure is what the task threads used, which a busy machine does not
inflate; run time includes waiting for a core), shuffle bytes written per input row, and the
vertex key collisions found. To compare two versions of the code, run this at each, interleaved,
on the same machine (the figures in docs/scale.md were taken so).

    python bench/bench_graph.py [--pages 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from imagerank import commit  # noqa: E402
from imagerank.crawl.extract import run_extract  # noqa: E402
from imagerank.graph.build import run_build_graph  # noqa: E402
from imagerank.spark import get_spark  # noqa: E402
from synthetic_crawl import generate  # noqa: E402

CACHE = Path("/tmp/imagerank-bench-scale")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=int(os.environ.get("BENCH_GRAPH_PAGES", 100_000)))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = CACHE / str(args.pages) / "seed1"
    crawl = generate(args.pages, folder, 1)
    spark = get_spark("bench-graph", master="local[2]", extra={
        "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8", "spark.driver.memory": "4g"})
    extract = folder / "extract"
    try:
        commit.current_run(str(extract), "extract")
    except Exception:  # not extracted yet (or damaged): extract again
        shutil.rmtree(extract, ignore_errors=True)
        run_extract(spark, crawl["manifest"], str(extract))
    print(f"build_graph on {args.pages:,} generated pages, local[2], {args.repeat} runs (the first not counted)")
    cpu, run_time = [], []
    with tempfile.TemporaryDirectory() as work:
        for attempt in range(args.repeat):
            report = run_build_graph(spark, [str(extract)], os.path.join(work, f"graph{attempt}"))
            counted, rows = report["spark"], report["input_rows"]
            per_cpu = 1e6 * counted["executor_cpu_seconds"] / rows
            per_run = 1e6 * counted["executor_run_seconds"] / rows
            print(f"  run {attempt}: {report['seconds']:6.1f} s, {rows:,} input rows, executor CPU {per_cpu:5.2f} "
                  f"core-µs per row (run time {per_run:5.2f}), shuffle {counted['shuffle_write_bytes_per_input_row']} "
                  f"bytes per row, key collisions {report.get('key_collisions')}", flush=True)
            if attempt:
                cpu.append(per_cpu)
                run_time.append(per_run)
    if cpu:
        print(f"median of the counted runs: executor CPU {statistics.median(cpu):.2f} core-µs per input row, "
              f"run time {statistics.median(run_time):.2f}")


if __name__ == "__main__":
    main()
