"""How well each signal of the published table agrees with observed popularity, per provider.

    python jobs/evaluate.py --table TABLE_DIR --output REPORT_DIR

Options: ``--help``; the library call is imagerank.commands ("evaluate").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
