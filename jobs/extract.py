"""Extract pages, image embeds and page links from Common Crawl WARC/WAT files.

    python jobs/extract.py --input INPUT --output DIR [--format auto|warc|wat] [--crawl ID]
    spark-submit --py-files dist/imagerank.zip jobs/extract.py --input s3://... --output s3a://...
"""

import argparse
import json
import sys

from imagerank.crawl.extract import run_extract
from imagerank.crawl.files import FORMATS
from imagerank.crawl.html import PARSERS
from imagerank.spark import get_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, action="append",
                        help="manifest (one path a line, plain or .gz), a WARC/WAT file, or a glob; repeatable")
    parser.add_argument("--output", required=True, help="output folder (replaced whole on success)")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="auto: detected per file")
    parser.add_argument("--crawl", help="crawl id (default: the CC-MAIN-YYYY-WW in the file path, if any)")
    parser.add_argument("--input-base-url", help="base for relative paths in a manifest, e.g. s3://commoncrawl/")
    parser.add_argument("--parser", default="selectolax", choices=sorted(PARSERS),
                        help="HTML parser: selectolax (fast, default) or bs4 (reference)")
    parser.add_argument("--max-page-bytes", type=int, default=5 << 20,
                        help="records longer than this are skipped and counted as oversized")
    args = parser.parse_args(argv)
    spark = get_spark("imagerank-extract")
    report = run_extract(spark, args.input, args.output, fmt=args.format, crawl=args.crawl,
                         input_base_url=args.input_base_url, parser=args.parser,
                         max_page_bytes=args.max_page_bytes)
    print(json.dumps({k: report[k] for k in ("files", "records_read", "rows_written", "skipped")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
