"""The stages' command lines, shared by the thin ``jobs/*.py`` entry points and the pipeline.

Each stage has one argument parser and one call into its library function; ``jobs/rank.py`` is
``main("rank")``, and the pipeline turns each stage's mapping in ``conf/pipeline.yaml`` into the
same command line (keys are the long options without dashes), so both validate alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable

STAGES = ("extract", "graph", "rank", "popularity", "publish")  # in the order data flows


@dataclass(frozen=True)
class Command:
    stage: str  # the name its outputs carry in their commit marker
    usage: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    call: Callable  # (spark, parsed args) -> report
    summary: tuple[str, ...]  # report keys printed when the job ends


def _extract_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.crawl.files import FORMATS
    from imagerank.crawl.html import PARSERS

    parser.add_argument("--input", required=True, action="append",
                        help="manifest (one path a line, plain or .gz), a WARC/WAT file, or a glob; repeatable")
    parser.add_argument("--output", required=True, help="output folder (a new run, committed on success)")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="auto: detected per file")
    parser.add_argument("--crawl", help="crawl id (default: the CC-MAIN-YYYY-WW in the file path, if any)")
    parser.add_argument("--input-base-url", help="base for relative paths in a manifest, e.g. s3://commoncrawl/")
    parser.add_argument("--parser", default="selectolax", choices=sorted(PARSERS),
                        help="HTML parser: selectolax (fast, default) or bs4 (reference)")
    parser.add_argument("--max-page-bytes", type=int, default=5 << 20,
                        help="records longer than this are skipped and counted as oversized")
    parser.add_argument("--resume", action="store_true",
                        help="continue an unfinished run with the same arguments: crawl files it finished are kept")


def _extract(spark, args):
    from imagerank.crawl.extract import run_extract

    return run_extract(spark, args.input, args.output, fmt=args.format, crawl=args.crawl,
                       input_base_url=args.input_base_url, parser=args.parser,
                       max_page_bytes=args.max_page_bytes, resume=args.resume)


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, action="append", help="an extract output folder; repeatable")
    parser.add_argument("--output", required=True, help="graph folder (a new run, committed on success)")
    parser.add_argument("--keep-ip-hosts", action="store_true",
                        help="keep hosts named by an IP address in the host and domain graphs (dropped by default, "
                             "as in Common Crawl's host graph)")


def _graph(spark, args):
    from imagerank.graph.build import run_build_graph

    return run_build_graph(spark, args.input, args.output, keep_ip_hosts=args.keep_ip_hosts)


def _rank_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.graph.pagerank import ENGINES
    from imagerank.graph.rank import RankOptions

    defaults = RankOptions()
    parser.add_argument("--graph", required=True, help="a folder written by jobs/build_graph.py")
    parser.add_argument("--output", required=True, help="rank folder (a new run, committed on success)")
    parser.add_argument("--damping", type=float, default=defaults.damping)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--tol", type=float, default=None,
                      help=f"stop when the L1 change of the score vector (sum 1) falls below tol (default {defaults.tol})")
    stop.add_argument("--max-iter", type=int, default=None, help="run exactly this many iterations")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine,
                        help="PageRank engine; auto: driver (scipy) up to --driver-max-edges edges, else dataframe; "
                             "graphframes needs GraphFrames' JVM package (--packages or --jars, see README)")
    parser.add_argument("--driver-max-edges", type=int, default=defaults.driver_max_edges)
    parser.add_argument("--harmonic-engine", choices=["auto", "driver", "hyperanf"], default=defaults.harmonic_engine)
    parser.add_argument("--log2m", type=int, default=defaults.log2m, help="HyperANF registers per vertex, log2")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="reliable checkpoints here (HDFS/S3 on a cluster); default: local checkpoints")


def _rank(spark, args):
    from imagerank.graph.graphframes_jar import require_graphframes
    from imagerank.graph.rank import RankOptions, run_rank

    defaults = RankOptions()
    options = RankOptions(
        damping=args.damping,
        tol=0.0 if args.max_iter is not None else (args.tol if args.tol is not None else defaults.tol),
        max_iter=args.max_iter if args.max_iter is not None else defaults.max_iter,
        engine=args.engine, driver_max_edges=args.driver_max_edges, harmonic_engine=args.harmonic_engine,
        log2m=args.log2m, checkpoint_dir=args.checkpoint_dir,
    )
    if options.engine == "graphframes":
        require_graphframes(spark)  # fail before reading anything
    return run_rank(spark, args.graph, args.output, options)


def _catalog_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.catalog.read import FORMATS

    parser.add_argument("--catalog", required=True, help="catalog rows: Parquet, CSV/TSV (Openverse dump) or JSON lines")
    parser.add_argument("--catalog-format", choices=FORMATS, default="auto", help="default: from the file name")


def _popularity_arguments(parser: argparse.ArgumentParser) -> None:
    _catalog_arguments(parser)
    parser.add_argument("--output", required=True, help="popularity folder (a new run, committed on success)")
    parser.add_argument("--percentile", type=float, default=None,
                        help="the percentile p for every provider (default: the providers file's, 0.85)")
    parser.add_argument("--providers", default=None,
                        help="provider -> metric YAML (default: the providers.yaml shipped in the package)")
    parser.add_argument("--approximate", action="store_true", help="percentile_approx instead of exact percentiles")


def _popularity(spark, args):
    from imagerank.catalog.popularity import run_popularity

    return run_popularity(spark, args.catalog, args.output, args.percentile, args.providers, args.catalog_format,
                          exact=not args.approximate)


def _publish_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.catalog.publish import MIN_CRAWL_MATCH_FRACTION, MIN_MATCH_FRACTION

    _catalog_arguments(parser)
    parser.add_argument("--ranks", required=True, help="a folder written by jobs/rank.py")
    parser.add_argument("--popularity", required=True, help="a folder written by jobs/popularity.py")
    parser.add_argument("--output", required=True, help="table folder (a new run, committed on success)")
    parser.add_argument("--percentile", type=float, default=0.85,
                        help="p of the saturation x / (x + C) applied to authority (Openverse's formula)")
    parser.add_argument("--min-match-fraction", type=float, default=MIN_MATCH_FRACTION,
                        help="warn when under this fraction of catalog rows has a popularity row (when the "
                             f"popularity output has any rows; default {MIN_MATCH_FRACTION})")
    parser.add_argument("--min-crawl-match-fraction", type=float, default=MIN_CRAWL_MATCH_FRACTION,
                        help="warn when under this fraction of catalog rows matches a crawl image or landing page "
                             f"(default {MIN_CRAWL_MATCH_FRACTION})")


def _publish(spark, args):
    from imagerank.catalog.publish import run_publish

    return run_publish(spark, args.catalog, args.ranks, args.popularity, args.output, args.percentile,
                       args.catalog_format, min_match_fraction=args.min_match_fraction,
                       min_crawl_match_fraction=args.min_crawl_match_fraction)


COMMANDS = {
    "extract": Command("extract", "Extract pages, image embeds and page links from Common Crawl WARC/WAT files.",
                       _extract_arguments, _extract, ("files", "records_read", "rows_written", "skipped")),
    "graph": Command("build_graph", "Build the image -> page -> host -> domain graph from extraction outputs.",
                     _graph_arguments, _graph, ("vertices_by_kind", "edges_by_kind", "vertex_ids")),
    "rank": Command("rank", "PageRank of pages, hosts and domains, harmonic centrality, image authority.",
                    _rank_arguments, _rank, ("levels", "images", "rows")),
    "popularity": Command("popularity", "Provider popularity, standardized per provider and metric as Openverse does.",
                          _popularity_arguments, _popularity,
                          ("catalog", "providers", "providers_without_metric", "constants")),
    "publish": Command("publish", "The published authority table: one row per catalog image, by provider.",
                       _publish_arguments, _publish,
                       ("catalog", "rows_written", "coverage", "saturation", "matching", "warnings")),
}


def parser_for(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=prog, description=command.usage)
    command.add_arguments(parser)
    return parser


def summary(name: str, report: dict) -> dict:
    return {key: report[key] for key in COMMANDS[name].summary if key in report}


def user_errors() -> tuple[type[Exception], ...]:
    """Failures whose message says all a user needs: printed as one line, without a trace."""
    from imagerank.catalog.read import CatalogError
    from imagerank.commit import OutputError
    from imagerank.fs import FsError
    from imagerank.graph.graphframes_jar import GraphFramesUnavailable
    from imagerank.stage import StageError

    return (CatalogError, OutputError, FsError, GraphFramesUnavailable, StageError)


def main(name: str, argv: list[str] | None = None) -> int:
    """A stage's job: parse its command line, run it in the session spark-submit gave (or a local one).

    Exit codes: 0 committed; 2 a usage or input problem (one line on standard error naming it and
    the path); anything else is a failure with its trace.
    """
    from imagerank.spark import get_spark

    args = parser_for(name).parse_args(argv)
    try:
        report = COMMANDS[name].call(get_spark(f"imagerank-{name}"), args)
    except user_errors() as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary(name, report), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
