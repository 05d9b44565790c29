"""The published authority table: one row per catalog image, partitioned by provider.

    python jobs/publish.py --catalog CATALOG --ranks RANK_DIR --popularity POP_DIR --output TABLE_DIR [--percentile 0.85]
"""

import argparse
import json
import sys

from imagerank.catalog.publish import run_publish
from imagerank.catalog.read import FORMATS
from imagerank.spark import get_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", required=True, help="catalog rows: Parquet, CSV/TSV (Openverse dump) or JSON lines")
    parser.add_argument("--catalog-format", choices=FORMATS, default="auto", help="default: from the file name")
    parser.add_argument("--ranks", required=True, help="a folder written by jobs/rank.py")
    parser.add_argument("--popularity", required=True, help="a folder written by jobs/popularity.py")
    parser.add_argument("--output", required=True, help="table folder (replaced whole on success)")
    parser.add_argument("--percentile", type=float, default=0.85,
                        help="p of the saturation x / (x + C) applied to authority (Openverse's formula)")
    args = parser.parse_args(argv)
    report = run_publish(get_spark("imagerank-publish"), args.catalog, args.ranks, args.popularity, args.output,
                         args.percentile, args.catalog_format)
    print(json.dumps({k: report[k] for k in ("catalog", "rows_written", "coverage", "saturation")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
