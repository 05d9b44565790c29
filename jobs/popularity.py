"""Provider popularity, standardized per provider and metric as Openverse does it.

    python jobs/popularity.py --catalog CATALOG --output POP_DIR [--percentile 0.85] [--providers FILE.yaml]

Options: ``--help``; the library call is imagerank.commands ("popularity").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("popularity", argv)


if __name__ == "__main__":
    sys.exit(main())
