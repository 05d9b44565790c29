"""Extract pages, image embeds and page links from Common Crawl WARC/WAT files.

    python jobs/extract.py --input INPUT --output DIR [--format auto|warc|wat] [--crawl ID] [--resume]
    spark-submit --properties-file conf/spark-cluster.conf jobs/extract.py --input s3://... --output s3://...

Options: ``--help``; the library call is imagerank.commands ("extract").
"""

import sys

from imagerank.commands import main as run


def main(argv=None) -> int:
    return run("extract", argv)


if __name__ == "__main__":
    sys.exit(main())
