"""The pipeline's cost curve (make bench): seconds, peak memory and shuffle bytes of each stage against crawl size.

For each size N (pages; default 10^4, 10^5, 10^6; BENCH_SCALE_SIZES or --sizes overrides), a
synthetic crawl of N pages and its catalog (bench/synthetic_crawl.py: gzipped WARC files of 5,000
pages, a catalog of N/10 rows) is generated once and cached under
/tmp/imagerank-bench-scale/<N>/seed<seed>. Then each stage (extract, graph, rank, popularity,
publish) runs as its own spark-submit process of its jobs/ entry point, in local-cluster mode
(``local-cluster[2,1,2048]``: a master and two workers inside the driver JVM, two executor JVMs of
one core each, as on a cluster), with the options ``conf/pipeline.yaml`` would give it
(``imagerank.pipeline.stage_options``). Measured per stage:

  - wall seconds of the spark-submit process (JVM and cluster start included) and the stage's own
    ``seconds`` from its ``_report.json`` (from session ready to commit);
  - peak memory: the largest total RSS of the whole process tree under spark-submit (driver JVM,
    Python driver, executor JVMs, their Python workers), sampled from /proc every 0.2 s by a
    thread of this process, with the split between those four at that moment. A sum of RSS counts
    the pages forked Python workers share with their daemon once per process, so it overstates a
    little; it is what a machine must hold, give or take those. A child caught between fork and
    exec (the JVM runs commands such as chmod without Hadoop's native library) shares all of its
    parent's pages and is not counted;
  - the stage's input size: pages, links and embeds (extract, graph), vertices and edges (rank),
    catalog rows (popularity, publish);
  - what Spark counted for the stage's jobs (the report's ``spark``: bytes shuffled, written and
    spilled, executor time, tasks; the graph stage's shuffle bytes per input row);
  - the machine's 1-minute load average when the stage ended: on a shared machine, a load above
    the core count means the stage had less than all of it, and its seconds grow accordingly.

Last, the release estimate: core-hours per stage of one Common Crawl release (docs/scale.md's
assumptions: 3x10^9 pages, 2.3x10^11 graph input rows, 1.5x10^11 page edges x 60 iterations),
from the marginal costs between the two largest sizes (extraction: one task's rate on the real
HTML of ../shared/data, as bench_extract measures it), so the figure in docs/scale.md is this
program's output.

Printed per stage: N, seconds, peak RSS, and the slope between consecutive sizes, the log-log
exponent log(t2 / t1) / log(N2 / N1) of wall seconds, stage seconds and peak RSS (1: linear; near
0 while fixed costs dominate: JVM and executor start, Python worker start, Spark's cost per job
and task, JVM heaps that grow before they need to). The results go to a JSON file
(bench/results/scale-<UTC time>.json unless --json names one).

    python bench/bench_scale.py [--sizes 10000,100000,1000000] [--seed 1] [--json PATH] [--earlier JSON]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from imagerank import commit  # noqa: E402
from imagerank.commands import STAGES  # noqa: E402
from imagerank.pipeline import FOLDERS, stage_options, to_argv  # noqa: E402
from imagerank.spark import with_log_conf  # noqa: E402
from synthetic_crawl import generate  # noqa: E402

CACHE = Path("/tmp/imagerank-bench-scale")
RELEASE_DRIVER_MAX_EDGES = 5_000_000  # rank's page level on the block engine from 10^6 pages on, as before 2026-12-05
MASTER = "local-cluster[2,1,2048]"
JOBS = {"extract": "extract.py", "graph": "build_graph.py", "rank": "rank.py", "popularity": "popularity.py",
        "publish": "publish.py"}
SPARK_CONF = {  # spark.executor.memory may be at most the worker's 2048 MB
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "4g",
    # Spark's log: warnings and errors, on standard error (the package's log4j2.properties)
    "spark.driver.extraJavaOptions": with_log_conf(""), "spark.executor.extraJavaOptions": with_log_conf(""),
    "spark.executor.memory": "2g", "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true", "spark.sql.session.timeZone": "UTC",
}
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, RSS bytes) of every process, from /proc/<pid>/stat."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is the state (field 3 of stat)
        found[int(entry.name)] = (int(fields[1]), name, int(fields[21]) * PAGE_SIZE)
    return found


class TreeMemory(threading.Thread):
    """Peak total RSS of a process and all its descendants, sampled every ``interval`` seconds,
    and how it split between the driver JVM, the Python driver, executor JVMs and Python workers
    at that peak."""

    def __init__(self, root_pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.peak, self.split = 0, {}
        self.roles: dict[int, str] = {}
        self.done = threading.Event()

    def sample(self) -> None:
        processes = _processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in processes.items():
            children.setdefault(parent, []).append(pid)
        total, split, stack = 0, {}, [self.root_pid]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            if pid not in processes:
                continue
            parent, name, rss = processes[pid]
            role = self.roles.get(pid) or self.classify(pid, name, parent, processes)
            if name == "java" or name.startswith("python"):  # spark-submit is a shell script until it execs java
                self.roles[pid] = role
            if role == "fork":
                continue
            total += rss
            split[role] = split.get(role, 0) + rss
        if total > self.peak:
            self.peak, self.split = total, split

    def classify(self, pid: int, name: str, parent: int, processes: dict) -> str:
        if name == "java":
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    executor = b"CoarseGrainedExecutorBackend" in fh.read()
            except OSError:
                executor = False
            return "executor JVMs" if executor else "driver JVM"
        if name.startswith("python"):
            grandparent, parent_name, _ = processes.get(parent, (0, "", 0))
            parent_role = self.roles.get(parent) or self.classify(parent, parent_name, grandparent, processes)
            return "Python driver" if parent_role == "driver JVM" else "Python workers"
        try:  # a JVM's child between fork and exec: named after the forking thread, its pages are the JVM's
            if os.readlink(f"/proc/{pid}/exe") == os.readlink(f"/proc/{parent}/exe"):
                return "fork"
        except OSError:
            pass
        return name

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()


def submit(stage: str, argv: list[str], log: Path) -> dict:
    """One stage as its own spark-submit process: exit code, wall seconds, peak memory of its tree."""
    python = sys.executable
    lib = str(ROOT / "lib")
    command = [str(spark_home() / "bin" / "spark-submit"), "--master", MASTER]
    for key, value in {**SPARK_CONF, "spark.pyspark.python": python, "spark.pyspark.driver.python": python,
                       "spark.executorEnv.PYTHONPATH": lib}.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(ROOT / "jobs" / JOBS[stage]), *argv]
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": python, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([lib, *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        memory = TreeMemory(process.pid)
        memory.start()
        try:
            code = process.wait()
        except BaseException:  # Ctrl-C here does not reach spark-submit's own session: end its tree
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            memory.stop()
        wall = time.perf_counter() - started
    return {"exit_code": code, "wall_seconds": round(wall, 2), "load_average_1min": os.getloadavg()[0],
            "peak_rss_mb": round(memory.peak / 2**20),
            "peak_rss_split_mb": {role: round(rss / 2**20) for role, rss in sorted(memory.split.items())
                                  if rss >= 2**20}}


def input_size(stage: str, crawl: dict, reports: dict) -> dict:
    """What the stage reads: the crawl, the extraction's rows, the graph, or the catalog."""
    if stage == "extract":
        return {key: crawl[key] for key in ("pages", "links", "embeds", "files", "bytes")}
    if stage == "graph":
        return {f"extract_{table}": rows for table, rows in reports["extract"]["rows_written"].items()}
    if stage == "rank":
        graph = reports["graph"]
        return {"vertices": sum(graph["vertices_by_kind"].values()), "edges": sum(graph["edges_by_kind"].values()),
                **{f"edges_{kind}": n for kind, n in graph["edges_by_kind"].items()}}
    size = {"catalog_rows": crawl["catalog_rows"]}
    if stage == "publish":
        size["image_authority_rows"] = reports["rank"]["rows"]["image_authority"]
    return size


def stage_notes(stage: str, report: dict) -> dict:
    """The engines rank chose and how long they iterated (they change with size)."""
    if stage != "rank":
        return {}
    notes = {}
    for level, info in report["levels"].items():
        pagerank = info["pagerank"]
        notes[level] = {"pagerank": f"{pagerank['engine']}, {pagerank['iterations']} iterations, "
                                    f"{pagerank['seconds']} s"}
        if "harmonic_centrality" in info:
            harmonic = info["harmonic_centrality"]
            notes[level]["harmonic"] = f"{harmonic['engine']}, {harmonic['seconds']} s"
    return notes


def run_size(n_pages: int, seed: int) -> list[dict]:
    """Generate (or reuse) the crawl of ``n_pages`` pages, then run every stage on it in turn."""
    folder = CACHE / str(n_pages) / f"seed{seed}"
    cached = (folder / "generated.json").exists()
    crawl = generate(n_pages, folder, seed)
    print(f"\n== {n_pages:,} pages: crawl of {crawl['files']} files, {crawl['bytes'] / 1e6:,.0f} MB, "
          f"{crawl['links']:,} links, {crawl['embeds']:,} embeds, catalog {crawl['catalog_rows']:,} rows "
          f"(generated in {crawl['seconds']} s{', cached' if cached else ''})", flush=True)
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    (out / "logs").mkdir(parents=True)
    # rank's page level on the engine auto gives a release's (the block engine): at these sizes it
    # would fit the driver, whose engine does not go beyond one machine (the host and domain levels,
    # under this limit here, stay on the driver)
    options = stage_options({"output_root": str(out), "extract": {"input": [crawl["manifest"]]},
                             "rank": {"driver_max_edges": RELEASE_DRIVER_MAX_EDGES},
                             "popularity": {"catalog": crawl["catalog"]}})
    results, reports = [], {}
    for stage in STAGES:
        log = out / "logs" / f"{stage}.log"
        measured = submit(stage, to_argv(options[stage]), log)
        row = {"n": n_pages, "stage": stage, **measured, "input": input_size(stage, crawl, reports)}
        if measured["exit_code"] != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"  {stage:<10} FAILED (exit {measured['exit_code']}), {log}:\n    " + "\n    ".join(tail))
            results.append(row)
            break
        reports[stage] = commit.read_report(str(out / FOLDERS[stage]))
        row.update(stage_seconds=reports[stage]["seconds"], notes=stage_notes(stage, reports[stage]),
                   spark=reports[stage].get("spark", {}))
        if stage == "rank":
            row["page_pagerank"] = reports[stage]["levels"]["page_rank"]["pagerank"]
        results.append(row)
        print(f"  {stage:<10} {row['wall_seconds']:8.1f} s wall {row['stage_seconds']:8.1f} s in stage  "
              f"peak RSS {row['peak_rss_mb']:6,} MB  {row['peak_rss_split_mb']}  "
              f"load {row['load_average_1min']:.1f}", flush=True)
        counted = row["spark"]
        if counted:
            per_row = counted.get("shuffle_write_bytes_per_input_row")
            print(f"    spark: shuffle written {counted['shuffle_write_bytes'] / 1e6:,.1f} MB"
                  f"{f' ({per_row:,} bytes per input row)' if per_row is not None else ''}, "
                  f"read {counted['shuffle_read_bytes'] / 1e6:,.1f} MB, spilled {counted['spilled_disk_bytes'] / 1e6:,.1f} MB; "
                  f"executor time {counted['executor_run_seconds']:,.1f} s ({counted['executor_cpu_seconds']:,.1f} s CPU) "
                  f"in {counted['tasks']:,} tasks of {counted['jobs']:,} jobs", flush=True)
        for level, note in row["notes"].items():
            print(f"    {level}: " + "; ".join(f"{what} {how}" for what, how in note.items()))
    return results


def slope(a: float, b: float, n_a: int, n_b: int) -> float | None:
    """The log-log exponent between two sizes: b / a = (n_b / n_a) ** slope."""
    if not a or not b or a <= 0 or b <= 0:
        return None
    return math.log(b / a) / math.log(n_b / n_a)


def print_curves(results: list[dict]) -> dict:
    """A table per stage: seconds, peak RSS and their slopes against N; returns the slopes."""
    slopes = {}
    for stage in STAGES:
        rows = [r for r in results if r["stage"] == stage and r["exit_code"] == 0]
        if not rows:
            continue
        print(f"\n{stage}: input {', '.join(f'{k}' for k in rows[0]['input'])}")
        print(f"{'pages':>11} {'wall s':>8} {'stage s':>8} {'peak RSS MB':>11} {'shuffle MB':>10} {'slope wall':>10} "
              f"{'slope stage':>11} {'slope RSS':>9}  input")
        slopes[stage] = []
        for before, row in zip([None] + rows[:-1], rows):
            s_wall = s_time = s_rss = None
            if before is not None:
                s_wall = slope(before["wall_seconds"], row["wall_seconds"], before["n"], row["n"])
                s_time = slope(before["stage_seconds"], row["stage_seconds"], before["n"], row["n"])
                s_rss = slope(before["peak_rss_mb"], row["peak_rss_mb"], before["n"], row["n"])
                slopes[stage].append({"from": before["n"], "to": row["n"], "wall_seconds": s_wall,
                                      "stage_seconds": s_time, "peak_rss": s_rss})
            shown = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
            shuffled = row.get("spark", {}).get("shuffle_write_bytes")
            print(f"{row['n']:>11,} {row['wall_seconds']:>8.1f} {row['stage_seconds']:>8.1f} "
                  f"{row['peak_rss_mb']:>11,} {'' if shuffled is None else f'{shuffled / 1e6:,.1f}':>10} "
                  f"{shown(s_wall):>10} {shown(s_time):>11} {shown(s_rss):>9}  "
                  + ", ".join(f"{v:,}" for v in row["input"].values()))
    return slopes


# One release, as docs/scale.md assumes it ("One release": assumptions, not measured here)
RELEASE = {"pages": 3e9, "input_rows": 2.3e11, "page_edges": 1.5e11, "iterations": 60, "keyed_rows": 5.5e9}
CORES = 2  # local-cluster[2,1,...]: two one-core executors busy, so core-seconds are twice the seconds


def real_extraction_rate() -> float | None:
    """Pages per core-second of one extraction task (extraction and Parquet parts) on the real
    Common Crawl HTML of ../shared/data (bench_extract's corpus, its imagerank_task): synthetic
    pages are far smaller than real ones. None where that data is absent."""
    import tempfile

    import bench_extract

    if not (bench_extract.SHARED / "warc").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "real.warc.gz")
        bench_extract.build_input(Path(path))
        bench_extract.imagerank_python(path)  # warm-up: imports, the Public Suffix List
        pages, seconds = bench_extract.timed(bench_extract.imagerank_task, path, os.path.join(tmp, "task"))
    return pages / seconds


def marginal(rows: list[dict], units) -> float | None:
    """Core-seconds per unit between the two largest sizes: CORES x (stage seconds difference) /
    (units difference); ``units(row)`` is what the stage's work grows with."""
    if len(rows) < 2:
        return None
    small, large = rows[-2], rows[-1]
    grown = units(large) - units(small)
    return CORES * (large["stage_seconds"] - small["stage_seconds"]) / grown if grown > 0 else None


def release_estimate(results: list[dict], extract_rate: float | None) -> dict:
    """Core-hours of one release (RELEASE) per stage, from the marginal costs measured here, the
    way docs/scale.md ("One release") computes them; printed as a table."""
    ok = {stage: [r for r in results if r["stage"] == stage and r["exit_code"] == 0 and "stage_seconds" in r]
          for stage in STAGES}
    rows = {}
    if extract_rate:
        rows["extract"] = (1.0 / extract_rate, "core-s per real page (bench_extract's corpus, one task)",
                           RELEASE["pages"])
    graph = marginal(ok["graph"], lambda r: r["input"]["extract_page_links"] + r["input"]["extract_image_embeds"])
    if graph:
        per_row = ok["graph"][-1].get("spark", {}).get("shuffle_write_bytes_per_input_row")
        shuffled = f"; {per_row:,} shuffle bytes per input row at {ok['graph'][-1]['n']:,} pages" if per_row else ""
        rows["graph"] = (graph, f"core-s per input row (page link or embed){shuffled}", RELEASE["input_rows"])
    page_level = [r for r in ok["rank"] if r.get("page_pagerank")]
    skipped = None
    if page_level and page_level[-1]["page_pagerank"]["engine"] == "driver":
        skipped = (f"rank: left out: the page level ran on the driver engine at {page_level[-1]['n']:,} pages "
                   f"(its seconds are collection, not iterations); the release runs the dataframe engine, "
                   f"which auto picks above 5M edges: run 10^6 pages")
    elif page_level:
        last = page_level[-1]["page_pagerank"]
        edges, iterations, looped = max(last["edges"], 1), max(last["iterations"] or 1, 1), last.get("iteration_seconds")
        where = f"{last['engine']} engine at {last['edges']:,} edges; host and domain levels not counted"
        if looped is None:  # a run from before the report split its seconds (2026-12-07): all priced as iterations
            rows["rank"] = (CORES * last["seconds"] / iterations / edges, f"core-s per page edge and iteration ({where})",
                            RELEASE["page_edges"] * RELEASE["iterations"])
        else:  # the set-up once, at one size (its fixed cost included: an upper bound); the iterations x 60
            rows["rank setup"] = (CORES * (last["seconds"] - looped) / edges,
                                  f"core-s per page edge, once (ids, packing the blocks, output; {where})",
                                  RELEASE["page_edges"])
            rows["rank iter"] = (CORES * looped / iterations / edges, f"core-s per page edge and iteration ({where})",
                                 RELEASE["page_edges"] * RELEASE["iterations"])
    publish = marginal(ok["publish"], lambda r: r["input"]["catalog_rows"] + r["input"]["image_authority_rows"])
    if publish:
        rows["publish"] = (publish, "core-s per keyed row (catalog and crawl image rows)", RELEASE["keyed_rows"])
    print(f"\none release ({RELEASE['pages']:.0e} pages, {RELEASE['input_rows']:.1e} graph input rows, "
          f"{RELEASE['page_edges']:.1e} page edges x {RELEASE['iterations']} iterations, "
          f"{RELEASE['keyed_rows']:.1e} keyed rows; docs/scale.md's assumptions), from these runs' marginal costs:")
    estimate, total = {}, 0.0
    for stage, (unit_cost, unit, units) in rows.items():
        hours = unit_cost * units / 3600
        total += hours
        estimate[stage] = {"core_seconds_per_unit": unit_cost, "unit": unit, "units": units, "core_hours": hours}
        print(f"  {stage:<10} {unit_cost * 1e6:10.2f} core-us x {units:.2e} = {hours:10,.0f} core-hours  ({unit})")
    if skipped:
        print(f"  {skipped}")
    print(f"  {'total':<10} {total:,.0f} core-hours{' without rank' if skipped else ''} "
          f"(popularity: below what the runs resolve)")
    estimate["total_core_hours"] = total
    estimate["rank_left_out"] = skipped
    return estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SCALE_SIZES", "10000,100000,1000000"),
                        help="pages per crawl, comma-separated (env BENCH_SCALE_SIZES)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="where to write the results (default bench/results/scale-<UTC time>.json)")
    parser.add_argument("--earlier", metavar="JSON",
                        help="an earlier run's results (its --json) whose sizes not run now join the curves and the "
                             "estimate, so that a large size can run alone (the same seed; its date is printed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    earlier = []
    if args.earlier:
        kept = json.loads(Path(args.earlier).read_text())
        if kept.get("seed") != args.seed:
            parser.error(f"--earlier {args.earlier}: its runs used seed {kept.get('seed')}, not {args.seed}")
        earlier = [r for r in kept["stages"] if r["n"] not in sizes]
        print(f"sizes {sorted({r['n'] for r in earlier})} from {args.earlier} (run {kept['when']})")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = Path(args.json) if args.json else ROOT / "bench" / "results" / f"scale-{stamp}.json"
    print(f"stages as spark-submit processes, master {MASTER}, {SPARK_CONF}")
    results = []
    for n_pages in sizes:
        results += run_size(n_pages, args.seed)
        if results[-1]["exit_code"] != 0:
            break
    results = sorted(earlier + results, key=lambda r: r["n"])  # stable: each size's stages in their order
    slopes = print_curves(results)
    estimate = release_estimate(results, real_extraction_rate())
    crawls = {n: json.loads((CACHE / str(n) / f"seed{args.seed}" / "generated.json").read_text())
              for n in sizes if (CACHE / str(n) / f"seed{args.seed}" / "generated.json").exists()}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"when": stamp, "master": MASTER, "spark_conf": SPARK_CONF, "cpus": os.cpu_count(),
                                  "seed": args.seed, "crawls": crawls, "earlier": args.earlier, "stages": results,
                                  "slopes": slopes, "release_estimate": estimate},
                                 indent=2))
    print(f"\nresults: {target}")
    if any(r["exit_code"] != 0 for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
