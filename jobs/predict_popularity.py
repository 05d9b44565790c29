"""Fill popularity where providers publish none, with a trained model.

    python jobs/predict_popularity.py --model MODEL_DIR --table TABLE_DIR [--signals SIGNALS_DIR] --output TABLE_DIR2

Options: ``--help``; the library call is imagerank.commands ("predict_popularity").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("predict_popularity", argv)


if __name__ == "__main__":
    sys.exit(main())
