"""`make demo`: the pipeline on the embedded sample, then the content and popularity stages, then the
evaluation and its report; printed: a summary first (each stage's time, main table, rows, and
where the report is), the key figures, and with ``--details`` every stage's tables."""

from __future__ import annotations

import json

from imagerank import commit, fs
from imagerank.progress import say
from imagerank.spark import get_spark


def _report(spark, output: str) -> dict:
    return commit.read_report(fs.qualify(spark, output))


def _table(spark, output: str, name: str):
    return commit.table(spark, fs.qualify(spark, output), name)


def show_extract(spark, path: str) -> None:
    from pyspark.sql import functions as F

    report = _report(spark, path)
    print(f"\n== extract: {path}")
    print(json.dumps({k: report[k] for k in ("files", "records_read", "rows_written", "skipped", "urls_dropped")},
                     indent=2))
    embeds = _table(spark, path, "image_embeds")
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
    report = _report(spark, path)
    print(f"\n== graph: {path}")
    print(json.dumps({k: report[k] for k in ("vertices_by_kind", "edges_by_kind")}, indent=2))


def show_rank(spark, path: str, graph: str, top: int = 5) -> None:
    from pyspark.sql import functions as F

    report = _report(spark, path)
    print(f"\n== rank: {path}")
    for level, info in report["levels"].items():
        engines = ", ".join(f"{what} by {run['engine']}" for what, run in info.items() if run)
        print(f"  {level}: {engines}; PageRank {info['pagerank']['iterations']} iterations")
    trusted = report.get("trusted_sources") or {}
    print(f"TrustRank seeds: {', '.join(trusted.get('domains_in_crawl') or []) or 'none in this crawl'} "
          f"(from {trusted.get('file')})")
    print("top hosts by PageRank, with trust and spam mass (the share of PageRank trust does not explain):")
    for row in _table(spark, path, "host_rank").orderBy(F.desc("pagerank"), "host").limit(top).collect():
        trust = "-" if row["trust"] is None else f"{row['trust']:.4f}"
        mass = "-" if row["spam_mass"] is None else f"{row['spam_mass']:.2f}"
        print(f"  {row['pagerank']:.4f}  trust {trust:>6}  spam mass {mass:>4}  {row['host']}")
    images = _table(spark, path, "image_authority")
    vertices = _table(spark, graph, "vertices")
    edges = _table(spark, graph, "edges").where(F.col("kind").isin("embeds", "links_to_image"))
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

    popularity = _report(spark, f"{root}/popularity")
    print(f"\n== popularity: {root}/popularity")
    for constant in popularity["constants"]:
        print(f"  {constant['provider']}: {constant['metric']} percentile {constant['percentile']} = "
              f"{constant['value']:g}, constant {constant['constant']:.4f} ({constant['n']} rows)")
    if popularity["providers_without_metric"]:
        print(f"  no metric: {popularity['providers_without_metric']}")
    report = _report(spark, f"{root}/table")
    print(f"\n== published table: {root}/table/authority ({report['rows_written']} rows; "
          f"catalog rows skipped: {report['catalog']['skipped']})")
    print("coverage per provider (images matched to a crawl image / a landing page / a domain / nothing):")
    for c in report["coverage"]:
        print(f"  {c['provider']:<11} {c['images']:3d} images: {c['crawl_image']:3d} / {c['landing_page']:3d} / "
              f"{c['domain']:3d} / {c['nothing']:3d}; popularity observed for {c['popularity_observed']}")
    print("provider authority (measured boost beside Openverse's static one; '-': no site of it in the crawl):")
    for p in report.get("provider_authority", []):
        boost = "-" if p["boost"] is None else f"{p['boost']:.1f}"
        print(f"  {p['provider']:<11} boost {boost:>5} (Openverse {p['openverse_boost']}, {p['openverse_type']}); "
              f"sites {', '.join(p['sites'])}"
              + ("" if p["pages_showing"] is None else
                 f"; shown on {p['pages_showing']} pages of {p['domains_showing']} domains"))
    table = _table(spark, f"{root}/table", "authority")
    print(f"top {top} by score:")
    for r in table.orderBy(F.desc("score"), "identifier").limit(top).collect():
        authority = "-" if r["authority"] is None else f"{r['authority']:.3f}"
        popularity_value = "-" if r["popularity"] is None else f"{r['popularity']:.3f}"
        print(f"  {r['score']:.3f}  authority {authority:>5}  popularity {popularity_value:>5} ({r['popularity_source']})"
              f"  {r['provider']:<10} {r['image_key']}")


def show_all(spark, root: str) -> None:
    show_extract(spark, f"{root}/extract")
    show_graph(spark, f"{root}/graph")
    show_rank(spark, f"{root}/rank", f"{root}/graph")
    show_published(spark, root)


def show_visualrank(spark, out: str, group: str = "photo", top: int = 8) -> None:
    """The top of one tag's VisualRank, with near-duplicate families."""
    from pyspark.sql import functions as F

    embed = _report(spark, f"{out}/signals")
    print(f"\n== embed: {out}/signals")
    print(json.dumps({k: embed[k] for k in ("images", "image_backend", "near_duplicates")}, indent=2, default=str))
    report = _report(spark, f"{out}/visualrank")
    print(f"\n== visualrank: {out}/visualrank ({report['groups']} tag groups; largest {report['largest_group']})")
    ranks = _table(spark, f"{out}/visualrank", "visualrank").where(F.col("group") == group)
    n = ranks.count()
    print(f"top {top} of tag '{group}' ({n} images; score x n, 1.0 = the group's average):")
    for r in ranks.orderBy(F.desc("visualrank"), "identifier").limit(top).collect():
        family = f"family of {r['family_size']}, best copy {r['near_duplicate_of']}" if r["family_size"] > 1 else "no family"
        print(f"  {r['visualrank'] * n:6.3f}  {r['identifier']:<28} {family}")


def done(spark, label: str, output: str, table: str | None) -> dict:
    """A stage just run (or found): its label, seconds, main table and rows, and output folder."""
    report = _report(spark, output)
    rows = None if table is None else _table(spark, output, table).count()
    return {"label": label, "seconds": report["seconds"], "table": table or "(model)", "rows": rows,
            "output": output}


def print_summary(stages: list[dict]) -> None:
    print(f"{'stage':<20} {'seconds':>8}  {'rows':>7}  {'table':<16} output")
    for s in stages:
        rows = "" if s["rows"] is None else str(s["rows"])
        print(f"{s['label']:<20} {s['seconds']:8.1f}  {rows:>7}  {s['table']:<16} {s['output']}")


# each pipeline stage's main table, for the summary's row count
PIPELINE_TABLES = {"extract": "pages", "graph": "edges", "rank": "image_authority", "popularity": "popularity",
                   "publish": "authority"}


def pipeline_steps(root: str) -> list[tuple[str, str, str]]:
    """(label, output, main table) of the pipeline's stages under root (the folders the pipeline gives them)."""
    from imagerank.pipeline import FOLDERS

    return [(name, f"{root}/{FOLDERS[name]}", table) for name, table in PIPELINE_TABLES.items()]


def later_steps(root: str) -> list[tuple[str, str, str | None]]:
    """(label, output, main table) of the stages the demo runs after the pipeline."""
    return [("embed (text)", f"{root}/signals", "text_embeddings"), ("train_popularity", f"{root}/model", None),
            ("predict_popularity", f"{root}/predicted", "authority"),
            ("embed (photos)", f"{root}/content/signals", "image_features"),
            ("visualrank", f"{root}/content/visualrank", "visualrank"), ("evaluate", f"{root}/report", "evaluation")]


def show_figures(report: dict) -> None:
    """The evaluation's key figures: each scorer against observed popularity, per provider."""
    print("\nagainst observed popularity (Spearman per provider; * no better than chance):")
    by = {(r["scorer"], r["provider"]): r for r in report["figures"]}
    providers = sorted({p for _, p in by})
    scorers = [s for s in ("authority", "model", "baseline_2020") if any((s, p) in by for p in providers)]
    print(f"  {'provider':<16}" + "".join(f"{s:>16}" for s in scorers))
    for provider in providers:
        cells = []
        for scorer in scorers:
            row = by.get((scorer, provider))
            rho = None if row is None else row["spearman"]
            cells.append("-" if rho is None else f"{rho:+.3f}{'*' if row['chance'] else ' '}")
        print(f"  {provider:<16}" + "".join(f"{c:>16}" for c in cells))
    note = report["holdout"].get("note")
    if note:
        print(f"  leave-one-provider-out: {note}")


def popularity_stages(spark, catalog: str, root: str, options) -> list[dict]:
    """Text embeddings of the catalog, the popularity model (``options``: its TrainOptions) trained on
    the providers that publish a metric, and the published table with its
    predictions where none is published (``predicted``: publish's own folder stays publish's, so that
    ``pipeline --resume`` finds it up to date)."""
    import importlib.util

    from imagerank.content.embed import EmbedOptions, run_embed
    from imagerank.prediction.predict import run_predict
    from imagerank.prediction.train import run_train

    if importlib.util.find_spec("sentence_transformers") is None:
        print("\n== popularity model skipped: text embeddings need the embed extra (sentence-transformers)")
        return []
    say("demo", "text embeddings of the catalog (embed --images none), the popularity model, its predictions")
    run_embed(spark, catalog, "none", f"{root}/signals", EmbedOptions())
    stages = [done(spark, "embed (text)", f"{root}/signals", "text_embeddings")]
    run_train(spark, f"{root}/table", f"{root}/model", f"{root}/signals", options)
    stages.append(done(spark, "train_popularity", f"{root}/model", None))
    run_predict(spark, f"{root}/model", f"{root}/table", f"{root}/predicted", f"{root}/signals")
    return stages + [done(spark, "predict_popularity", f"{root}/predicted", "authority")]


def content_stages(spark, images_root: str, out: str) -> list[dict]:
    """The content stages on the sample photos: embed, then VisualRank per tag."""
    from imagerank.content.embed import EmbedOptions, run_embed
    from imagerank.content.visualrank import VisualRankOptions, run_visualrank
    from imagerank.graph.graphframes_jar import graphframes_on_classpath

    if not graphframes_on_classpath(spark):
        print("\n== content stages skipped: they need GraphFrames' JVM classes (README, \"GraphFrames\")")
        return []
    say("demo", "the content stages on the sample photos (embed, VisualRank per tag)")
    run_embed(spark, f"{images_root}/catalog.csv", f"{images_root}/images", f"{out}/signals",
              EmbedOptions(image_suffix=".jpg"))
    stages = [done(spark, "embed (photos)", f"{out}/signals", "image_features")]
    run_visualrank(spark, f"{out}/signals", f"{out}/visualrank", VisualRankOptions(group_by="tag", k=10))
    return stages + [done(spark, "visualrank", f"{out}/visualrank", "visualrank")]


def main(argv=None) -> None:
    """``python -m imagerank.demo --config conf/pipeline.yaml``: the pipeline, the popularity model and
    the content stages, then the evaluation, in one Spark session; ``python -m imagerank.demo ROOT``:
    what an earlier run wrote under ROOT."""
    import argparse

    import yaml

    from imagerank.commands import model_arguments, train_options
    from imagerank.evaluation.evaluate import run_evaluate
    from imagerank.pipeline import run_pipeline, stage_options
    from imagerank.sample import DEMO_NOTE

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("root", nargs="?", help="output_root of an earlier run (default: the config's)")
    parser.add_argument("--config", help="run this pipeline first (conf/pipeline.yaml)")
    parser.add_argument("--images", help="a sample image catalog (python -m imagerank.sample_images): run the "
                                         "content stages on it too")
    parser.add_argument("--details", action="store_true", help="print every stage's tables after the summary")
    model_arguments(parser, "the popularity model and of the models the evaluation's holdout trains")
    args = parser.parse_args(argv)
    options = train_options(args)
    spark = get_spark("imagerank-demo")  # with GraphFrames' JVM package (imagerank.spark)
    spark.sparkContext.setLogLevel("ERROR")
    root = args.root
    stages: list[dict] = []
    if args.config:
        config = yaml.safe_load(fs.read_text(fs.qualify(spark, args.config)))
        root = root or config["output_root"]
        run_pipeline(spark, args.config)
        stages += [done(spark, *step) for step in pipeline_steps(root)]
        popularity = popularity_stages(spark, stage_options(config)["publish"]["catalog"], root, options)
        stages += popularity
        if args.images:
            stages += content_stages(spark, args.images, f"{root}/content")
        say("demo", "evaluate: each signal and the model against observed popularity, and the report")
        if popularity:  # the predicted table, with the text embeddings as the model's features
            run_evaluate(spark, f"{root}/predicted", f"{root}/report", f"{root}/signals", note=DEMO_NOTE,
                         train=options)
        else:
            run_evaluate(spark, f"{root}/table", f"{root}/report", note=DEMO_NOTE, train=options)
        stages.append(done(spark, "evaluate", f"{root}/report", "evaluation"))
    root = root or "data/demo"
    if not stages:  # an earlier run: what it holds now
        stages = [done(spark, *step) for step in pipeline_steps(root) + later_steps(root)
                  if commit.marker(fs.qualify(spark, step[1])) is not None]
    print(f"\n== imagerank demo: {root}")
    print_summary(stages)
    report = _report(spark, f"{root}/report")
    show_figures(report)
    print(f"\nThe run report: open {fs.local_path(fs.qualify(spark, root))}/report/index.html in a browser "
          f"(self-contained; no server, no network). {DEMO_NOTE.split(':')[0]}: its figures say nothing about "
          f"real providers.")
    if args.details:
        show_all(spark, root)
        if any(s["label"] == "visualrank" for s in stages):
            show_visualrank(spark, f"{root}/content")
    else:
        print(f"Every stage's tables: python -m imagerank.demo --details {root}")


if __name__ == "__main__":
    main()
