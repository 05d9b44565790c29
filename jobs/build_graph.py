"""Build the image -> page -> host -> domain graph from extraction outputs.

    python jobs/build_graph.py --input EXTRACT_DIR [--input EXTRACT_DIR ...] --output GRAPH_DIR
"""

import argparse
import json
import sys

from imagerank.graph.build import run_build_graph
from imagerank.spark import get_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, action="append", help="an extract output folder; repeatable")
    parser.add_argument("--output", required=True, help="graph folder (replaced whole on success)")
    args = parser.parse_args(argv)
    report = run_build_graph(get_spark("imagerank-build-graph"), args.input, args.output)
    print(json.dumps({k: report[k] for k in ("vertices_by_kind", "edges_by_kind", "id_collisions")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
