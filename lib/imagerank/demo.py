"""What `make demo` prints: a short account of the tables the pipeline wrote."""

from __future__ import annotations

import json
import sys

from imagerank.spark import get_spark
from imagerank.tables import read_report


def show_extract(spark, path: str) -> None:
    from pyspark.sql import functions as F

    report = read_report(spark, path)
    print(f"\n== extract: {path}")
    print(json.dumps({k: report[k] for k in ("files", "records_read", "rows_written", "skipped", "urls_dropped")},
                     indent=2))
    embeds = spark.read.parquet(f"{path}/image_embeds")
    print("most embedded images (by distinct pages):")
    top = (
        embeds.groupBy("image_key")
        .agg(F.countDistinct("page_url").alias("pages"), F.countDistinct("source").alias("sources"))
        .orderBy(F.desc("pages"), "image_key")
        .limit(5)
    )
    for row in top.collect():
        print(f"  {row['pages']:4d} pages  {row['image_key']}")


def show_graph(spark, path: str) -> None:
    report = read_report(spark, path)
    print(f"\n== graph: {path}")
    print(json.dumps({k: report[k] for k in ("vertices_by_kind", "edges_by_kind")}, indent=2))


def main(argv=None) -> None:
    argv = argv if argv is not None else sys.argv[1:]
    root = argv[0] if argv else "data/demo"
    spark = get_spark("imagerank-demo")
    spark.sparkContext.setLogLevel("ERROR")
    show_extract(spark, f"{root}/extract")
    show_graph(spark, f"{root}/graph")


if __name__ == "__main__":
    main()
