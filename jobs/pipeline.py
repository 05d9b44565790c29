"""Every stage in one Spark session: extract, graph, rank, popularity, publish.

    python jobs/pipeline.py --config conf/pipeline.yaml [--stages extract,graph] [--resume]
    spark-submit --properties-file conf/spark-cluster.conf jobs/pipeline.py --config s3://bucket/pipeline.yaml

Progress goes to standard error while it runs; each stage's summary to standard output at the end.
"""

import argparse
import sys
from pathlib import Path

from imagerank.commands import STAGES, run_job
from imagerank.pipeline import run_pipeline
from imagerank.postgres import packages_for
from imagerank.spark import get_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="pipeline YAML (conf/pipeline.yaml shows the keys)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--resume", action="store_true",
                        help="skip stages whose committed output is built from the current inputs; "
                             "continue an unfinished extraction")
    parser.add_argument("--verbose", action="store_true", help="on a failure, print the whole trace too")
    args = parser.parse_args(argv)
    stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    packages = packages_for([Path(args.config).read_text(encoding="utf-8")] if Path(args.config).is_file() else [])
    return run_job("pipeline", lambda: run_pipeline(get_spark("imagerank-pipeline", packages=packages), args.config,
                                                    stages, resume=args.resume), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
