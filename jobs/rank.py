"""PageRank of pages, hosts and domains, harmonic centrality of hosts and domains, image authority.

    python jobs/rank.py --graph GRAPH_DIR --output RANK_DIR [--damping 0.85] [--tol 1e-9 | --max-iter N]
        [--engine auto|driver|dataframe|graphx|graphframes]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from imagerank.graph.graphframes_jar import GraphFramesUnavailable, require_graphframes  # noqa: E402
from imagerank.graph.pagerank import ENGINES  # noqa: E402
from imagerank.graph.rank import RankOptions, run_rank  # noqa: E402
from imagerank.spark import get_spark  # noqa: E402


def main(argv=None) -> int:
    defaults = RankOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", required=True, help="a folder written by jobs/build_graph.py")
    parser.add_argument("--output", required=True, help="rank folder (replaced whole on success)")
    parser.add_argument("--damping", type=float, default=defaults.damping)
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--tol", type=float, default=None,
                      help=f"stop when the summed change falls below N * tol (default {defaults.tol})")
    stop.add_argument("--max-iter", type=int, default=None, help="run exactly this many iterations")
    parser.add_argument("--engine", choices=list(ENGINES), default=defaults.engine,
                        help="PageRank engine; auto: driver (scipy) up to --driver-max-edges edges, else dataframe; "
                             "graphframes needs GraphFrames' JVM package (--packages or --jars, see README)")
    parser.add_argument("--driver-max-edges", type=int, default=defaults.driver_max_edges)
    parser.add_argument("--harmonic-engine", choices=["auto", "driver", "hyperanf"], default=defaults.harmonic_engine)
    parser.add_argument("--log2m", type=int, default=defaults.log2m, help="HyperANF registers per vertex, log2")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="reliable checkpoints here (HDFS/S3 on a cluster); default: local checkpoints")
    args = parser.parse_args(argv)
    options = RankOptions(
        damping=args.damping,
        tol=0.0 if args.max_iter is not None else (args.tol if args.tol is not None else defaults.tol),
        max_iter=args.max_iter if args.max_iter is not None else defaults.max_iter,
        engine=args.engine, driver_max_edges=args.driver_max_edges, harmonic_engine=args.harmonic_engine,
        log2m=args.log2m, checkpoint_dir=args.checkpoint_dir,
    )
    spark = get_spark("imagerank-rank")
    try:
        if options.engine == "graphframes":
            require_graphframes(spark)  # fail before reading anything
        report = run_rank(spark, args.graph, args.output, options)
    except GraphFramesUnavailable as error:
        print(f"rank: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("levels", "images", "rows")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
