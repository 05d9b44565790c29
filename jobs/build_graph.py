"""Build the image -> page -> host -> domain graph from extraction outputs.

    python jobs/build_graph.py --input EXTRACT_DIR [--input EXTRACT_DIR ...] --output GRAPH_DIR

Options: ``--help``; the library call is imagerank.commands ("graph").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("graph", argv)


if __name__ == "__main__":
    sys.exit(main())
