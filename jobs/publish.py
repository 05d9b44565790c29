"""The published authority table: one row per catalog image, partitioned by provider.

    python jobs/publish.py --catalog CATALOG --ranks RANK_DIR --popularity POP_DIR --output TABLE_DIR

Options: ``--help``; the library call is imagerank.commands ("publish").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("publish", argv)


if __name__ == "__main__":
    sys.exit(main())
