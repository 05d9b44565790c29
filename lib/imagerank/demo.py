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


def show_rank(spark, path: str, graph: str, top: int = 5) -> None:
    from pyspark.sql import functions as F

    report = read_report(spark, path)
    print(f"\n== rank: {path}")
    for level, info in report["levels"].items():
        engines = ", ".join(f"{what} by {run['engine']}" for what, run in info.items())
        print(f"  {level}: {engines}; PageRank {info['pagerank']['iterations']} iterations")
    images = spark.read.parquet(f"{path}/image_authority")
    vertices = spark.read.parquet(f"{graph}/vertices")
    edges = spark.read.parquet(f"{graph}/edges").where(F.col("kind").isin("embeds", "links_to_image"))
    leaders = images.orderBy(F.desc("authority"), "image_key").limit(top)
    carriers = (
        leaders.select(F.col("id").alias("dst"))
        .join(edges, on="dst", how="inner")
        .join(vertices.select(F.col("id").alias("src"), "domain"), on="src", how="inner")
        .groupBy("dst").agg(F.sort_array(F.collect_set("domain")).alias("domains"))
    )
    print(f"top {top} images by authority (surfer share before one-vote-per-domain in brackets):")
    for row in leaders.join(carriers, leaders["id"] == carriers["dst"], how="left").orderBy(F.desc("authority")).collect():
        print(f"  {row['authority']:.4f} ({row['surfer_share']:.4f})  {row['image_key']}")
        print(f"      {row['n_pages']} pages on {row['n_domains']} domains: {', '.join(row['domains'] or [])}")
        print(f"      best page {row['best_page']}")


def show_published(spark, root: str, top: int = 8) -> None:
    from pyspark.sql import functions as F

    popularity = read_report(spark, f"{root}/popularity")
    print(f"\n== popularity: {root}/popularity")
    for constant in popularity["constants"]:
        print(f"  {constant['provider']}: {constant['metric']} percentile {constant['percentile']} = "
              f"{constant['value']:g}, constant {constant['constant']:.4f} ({constant['n']} rows)")
    if popularity["providers_without_metric"]:
        print(f"  no metric: {popularity['providers_without_metric']}")
    report = read_report(spark, f"{root}/table")
    print(f"\n== published table: {root}/table/authority ({report['rows_written']} rows; "
          f"catalog rows skipped: {report['catalog']['skipped']})")
    print("coverage per provider (images matched to a crawl image / a landing page / a domain / nothing):")
    for c in report["coverage"]:
        print(f"  {c['provider']:<11} {c['images']:3d} images: {c['crawl_image']:3d} / {c['landing_page']:3d} / "
              f"{c['domain']:3d} / {c['nothing']:3d}; popularity observed for {c['popularity_observed']}")
    table = spark.read.parquet(f"{root}/table/authority")
    print(f"top {top} by score:")
    for r in table.orderBy(F.desc("score"), "identifier").limit(top).collect():
        authority = "-" if r["authority"] is None else f"{r['authority']:.3f}"
        popularity_value = "-" if r["popularity"] is None else f"{r['popularity']:.3f}"
        print(f"  {r['score']:.3f}  authority {authority:>5}  popularity {popularity_value:>5} ({r['popularity_source']})"
              f"  {r['provider']:<10} {r['image_key']}")


def main(argv=None) -> None:
    argv = argv if argv is not None else sys.argv[1:]
    root = argv[0] if argv else "data/demo"
    spark = get_spark("imagerank-demo")
    spark.sparkContext.setLogLevel("ERROR")
    show_extract(spark, f"{root}/extract")
    show_graph(spark, f"{root}/graph")
    show_rank(spark, f"{root}/rank", f"{root}/graph")
    show_published(spark, root)


if __name__ == "__main__":
    main()
