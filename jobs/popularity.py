"""Provider popularity, standardized per provider and metric as Openverse does it.

    python jobs/popularity.py --catalog CATALOG --output POP_DIR [--percentile 0.85] [--providers conf/providers.yaml]
"""

import argparse
import json
import sys

from imagerank.catalog.popularity import run_popularity
from imagerank.catalog.read import FORMATS
from imagerank.spark import get_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", required=True, help="catalog rows: Parquet, CSV/TSV (Openverse dump) or JSON lines")
    parser.add_argument("--catalog-format", choices=FORMATS, default="auto", help="default: from the file name")
    parser.add_argument("--output", required=True, help="popularity folder (replaced whole on success)")
    parser.add_argument("--percentile", type=float, default=None,
                        help="the percentile p for every provider (default: the providers file's, 0.85)")
    parser.add_argument("--providers", default=None, help="provider -> metric YAML (default: the providers.yaml shipped in the package, lib/imagerank/conf/)")
    parser.add_argument("--approximate", action="store_true", help="percentile_approx instead of exact percentiles")
    args = parser.parse_args(argv)
    report = run_popularity(get_spark("imagerank-popularity"), args.catalog, args.output, args.percentile,
                            args.providers, args.catalog_format, exact=not args.approximate)
    print(json.dumps({k: report[k] for k in ("catalog", "providers", "providers_without_metric", "constants")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
