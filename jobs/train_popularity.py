"""Train the popularity model on the providers that publish a metric.

    python jobs/train_popularity.py --table TABLE_DIR [--signals SIGNALS_DIR] --output MODEL_DIR

Options: ``--help``; the library call is imagerank.commands ("train_popularity").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("train_popularity", argv)


if __name__ == "__main__":
    sys.exit(main())
