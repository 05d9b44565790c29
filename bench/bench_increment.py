"""The monthly increment (make bench): next month's graph and rank against a full run of both crawls.

Two crawls sharing 80% of their pages: the first is bench/synthetic_crawl.py's crawl of N pages
(default 20,000; BENCH_INCREMENT_PAGES or --pages overrides; cached with bench_scale's crawls),
extracted; the second is made from that extraction in Spark: a fifth of the pages (by a hash of
their URL) are gone and as many new ones take their place (same host, the URL with ``?m=2``, the
same links and images; links to a gone page go to its new one), the shared pages fetched again
unchanged, under a later crawl id. Then, in one Spark session (local[2]), with the default options:

  - last month: build_graph --input MARCH and rank (not timed; it also warms the JVM up);
  - full run: build_graph --input MARCH --input APRIL, then rank from the teleport;
  - the second month: build_graph --previous GRAPH --input APRIL --output GRAPH, then
    rank --warm-start RANK --output RANK.

Printed: each stage's seconds (its report's: session ready to commit), the second month's graph
plus rank as a ratio to the full run's, the PageRank iterations per level from the teleport and
warm, and a check that the two graphs and page ranks agree.

    python bench/bench_increment.py [--pages 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from pyspark.sql import functions as F  # noqa: E402

from imagerank import commit, fs  # noqa: E402
from imagerank.crawl.extract import run_extract  # noqa: E402
from imagerank.graph.build import run_build_graph  # noqa: E402
from imagerank.graph.rank import RankOptions, run_rank  # noqa: E402
from imagerank.spark import get_spark  # noqa: E402
from imagerank.stage import Stage  # noqa: E402
from synthetic_crawl import generate  # noqa: E402

CACHE = Path("/tmp/imagerank-bench-scale")
NEXT_CRAWL = "CC-MAIN-2099-06"


def read(spark, output: str, name: str):
    return spark.read.parquet(fs.join(commit.current_run(output, None), name))


def second_crawl(spark, first: str, output: str, shared: float = 0.8) -> None:
    """An extraction of next month's crawl, made from ``first``'s (module docstring)."""
    gone = F.pmod(F.xxhash64("url"), F.lit(1000)) >= int(shared * 1000)

    def moved(column):  # a gone page's URL becomes its new page's
        return F.when(F.col(f"_{column}_gone"), F.concat(F.col(column), F.lit("?m=2"))).otherwise(F.col(column))

    pages = read(spark, first, "pages")
    gone_urls = pages.select("url").where(gone).withColumn("_gone", F.lit(True))

    def mark(frame, column):
        return (frame.join(gone_urls.withColumnRenamed("url", column).withColumnRenamed("_gone", f"_{column}_gone"),
                           on=column, how="left")
                .withColumn(f"_{column}_gone", F.coalesce(F.col(f"_{column}_gone"), F.lit(False))))

    tables = {
        "pages": mark(pages, "url").withColumn("url", moved("url")).withColumn("crawl", F.lit(NEXT_CRAWL))
        .drop("_url_gone"),
        "image_embeds": mark(read(spark, first, "image_embeds"), "page_url").withColumn("page_url", moved("page_url"))
        .drop("_page_url_gone"),
        "page_links": mark(mark(read(spark, first, "page_links"), "src_url"), "dst_url")
        .withColumn("src_url", moved("src_url")).withColumn("dst_url", moved("dst_url"))
        .drop("_src_url_gone", "_dst_url_gone"),
    }
    with Stage(spark, "extract", output, {"made_from": first}) as stage:
        for name, frame in tables.items():
            stage.write(name, frame.select(*read(spark, first, name).columns))


def iterations(report: dict) -> dict:
    return {level: (values["pagerank"]["iterations"], (values["trust"] or {}).get("iterations"))
            for level, values in report["levels"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=int(os.environ.get("BENCH_INCREMENT_PAGES", "20000")))
    args = parser.parse_args()
    crawl = generate(args.pages, CACHE / str(args.pages) / "seed1", 1)
    work = Path(tempfile.mkdtemp(prefix="imagerank-bench-increment-"))
    spark = get_spark("bench-increment", extra={"spark.sql.shuffle.partitions": "8"})
    try:
        march, april = str(work / "extract" / "march"), str(work / "extract" / "april")
        run_extract(spark, crawl["manifest"], march)
        second_crawl(spark, march, april)
        pages = [read(spark, folder, "pages").count() for folder in (march, april)]
        both = read(spark, march, "pages").select("url").intersect(read(spark, april, "pages").select("url")).count()
        print(f"{args.pages:,} pages generated; crawls of {pages[0]:,} and {pages[1]:,} pages sharing {both:,} "
              f"({both / pages[1]:.0%})")

        graph, rank = str(work / "monthly" / "graph"), str(work / "monthly" / "rank")
        run_build_graph(spark, [march], graph)  # last month's (and the JVM's warm-up: not timed)
        run_rank(spark, graph, rank)
        full_graph = run_build_graph(spark, [march, april], str(work / "full" / "graph"))
        full_rank = run_rank(spark, str(work / "full" / "graph"), str(work / "full" / "rank"))
        next_graph = run_build_graph(spark, [april], graph, previous=graph)
        next_rank = run_rank(spark, graph, rank, RankOptions(warm_start=rank))

        full = full_graph["seconds"] + full_rank["seconds"]
        monthly = next_graph["seconds"] + next_rank["seconds"]
        print(f"full run:     graph {full_graph['seconds']:7.1f} s  rank {full_rank['seconds']:7.1f} s  "
              f"(PageRank, TrustRank iterations per level: {iterations(full_rank)})")
        print(f"second month: graph {next_graph['seconds']:7.1f} s  rank {next_rank['seconds']:7.1f} s  "
              f"(warm: {iterations(next_rank)})")
        print(f"second month's graph + rank: {monthly / full:.2f}x the full run's (target: at most 0.30x)")
        same = full_graph["edges_by_kind"] == next_graph["edges_by_kind"] and \
            full_graph["vertices_by_kind"] == next_graph["vertices_by_kind"]
        ranks = (read(spark, str(work / "full" / "rank"), "page_rank").select("url", F.col("pagerank").alias("a"))
                 .join(read(spark, rank, "page_rank").select("url", F.col("pagerank").alias("b")), on="url",
                       how="inner")
                 .agg(F.count(F.lit(1)).alias("n"), F.max(F.abs(F.col("a") - F.col("b"))).alias("gap")).first())
        print(f"the two graphs have the same vertices and edges by kind: {same}; page PageRank over "
              f"{ranks['n']:,} pages differs by at most {ranks['gap']:.1e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
