"""VisualRank per group of images over their similarity graph.

    python jobs/visualrank.py --signals SIGNALS_DIR --output VR_DIR [--group-by tag|provider|none] [--k 20]

Options: ``--help``; the library call is imagerank.commands ("visualrank").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("visualrank", argv)


if __name__ == "__main__":
    sys.exit(main())
