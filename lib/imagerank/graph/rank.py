"""The rank stage: PageRank and TrustRank of pages, hosts and domains, harmonic centrality and spam
mass of hosts and domains, and image authority and trust, from a graph written by the graph stage."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank.graph.authority import image_authority
from imagerank.graph.cc_webgraph import compare, read_ranks
from imagerank.graph.harmonic import DRIVER_MAX_WORK, LOG2M, harmonic_centrality
from imagerank.graph.harmonic import ENGINES as HARMONIC_ENGINES
from imagerank import fs, progress
from imagerank.graph.pagerank import ENGINES, WARM_UNSUPPORTED, info_dict, pagerank
from imagerank.graph.prepare import delete_path
from imagerank.graph.trust import GOOD_SHARE, PACKAGE_FILE, load_trusted_sources, seed_domains, seed_vertices, spam_mass
from imagerank.spark import kept_checkpoint_dir
from imagerank.stage import Stage

NAME_COLUMNS = {"page_rank": "url", "host_rank": "host", "domain_rank": "domain"}  # each level's vertex name
CHECKPOINT_PREFIX = "imagerank-rank-"  # a rank run's own folder under --checkpoint-dir: prefix, UTC start, random
# Shuffle bytes per graph row (edge or vertex) of the stage's largest SQL exchange, for
# Stage.size_shuffles: 5.5 on a generated crawl of 10^5 pages (the degrees and image authority's
# joins; the block engine's own shuffles follow its blocks), taken at 8
SHUFFLE_BYTES_PER_ROW = 8
LEVELS = (  # table, vertex kind, edge kind, harmonic centrality too
    ("page_rank", "page", "links_to", False),
    ("host_rank", "host", "host_links_to", True),
    ("domain_rank", "domain", "domain_links_to", True),
)


@dataclass
class RankOptions:
    damping: float = 0.85
    tol: float = 1e-6  # PageRank stops when the L1 change of the score vector falls below tol
    max_iter: int = 1000
    engine: str = "auto"  # PageRank engine, one of pagerank.ENGINES (graphframes needs GraphFrames' JVM package)
    driver_max_edges: int | None = None  # auto's limit for the driver engine; None: what the driver holds
    harmonic_engine: str = "auto"
    harmonic_driver_max_work: int = DRIVER_MAX_WORK
    log2m: int = LOG2M
    checkpoint_dir: str | None = None  # reliable checkpoints: each run in a folder of its own here, deleted at its end
    trusted_sources: str | None = None  # provider -> seed domains (YAML); None: the package's trusted_sources.yaml
    good_share: float = GOOD_SHARE  # share of all PageRank held by good vertices, for spam mass
    cc_domain_ranks: str | None = None  # Common Crawl's web-graph domain ranks: compared with ours in the report
    cc_host_ranks: str | None = None  # the same for hosts
    warm_start: str | None = None  # a previous rank output: PageRank and TrustRank start from its scores

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"unknown PageRank engine {self.engine!r}; choose one of {ENGINES}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")
        if self.harmonic_engine not in HARMONIC_ENGINES:
            raise ValueError(f"unknown harmonic centrality engine {self.harmonic_engine!r}; "
                             f"choose one of {HARMONIC_ENGINES}")
        if not self.tol >= 0:  # 0: run exactly max_iter iterations
            raise ValueError(f"tol must be positive (or 0 for exactly max_iter iterations), got {self.tol}")
        if not 0.0 < self.good_share <= 1.0:
            raise ValueError(f"good_share must lie in (0, 1], got {self.good_share}")
        if self.warm_start and self.engine in WARM_UNSUPPORTED:
            raise ValueError(f"--warm-start works with the driver, dataframe and block engines (and auto), not {self.engine}")
        if not 4 <= self.log2m <= 21:  # the range of Spark's HyperLogLog sketches (lgConfigK)
            raise ValueError(f"log2m must lie in 4..21, got {self.log2m}")


@contextlib.contextmanager
def own_checkpoints(spark: SparkSession, checkpoint_dir: str | None) -> Iterator[str | None]:
    """A folder of this run's own under ``checkpoint_dir`` for its reliable checkpoints (and GraphX's
    scratch), deleted with all it holds when the block ends, failed or not; None (local checkpoints,
    nothing to delete) without ``checkpoint_dir``.

    The folder is new and unique (``imagerank-rank-<UTC start>-<random>``): runs sharing a
    checkpoint folder never delete each other's checkpoints, and nothing else in it is touched.
    It is deleted through Hadoop's FileSystem (HDFS, S3A, GCS, local: where Spark wrote it); a
    deletion that fails is reported on standard error, naming the folder, and does not fail the
    run (nor hide the error that ended it). Only a driver killed outright leaves its folder behind.
    SparkContext's checkpoint folder is set back to what it was before."""
    if not checkpoint_dir:
        yield None
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = fs.join(fs.qualify(spark, checkpoint_dir), f"{CHECKPOINT_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}")
    with kept_checkpoint_dir(spark):  # not left pointing into the folder deleted below
        try:
            yield folder
        finally:
            try:
                delete_path(spark, folder)
            except Exception as error:  # noqa: BLE001 - py4j wraps Hadoop's IOException
                message = str(error).strip().splitlines()
                progress.say("rank", f"could not delete the checkpoints in {folder} "
                                     f"({message[0] if message else type(error).__name__}); delete that folder")


def _degrees(ids: DataFrame, edges: DataFrame) -> DataFrame:
    out_degree = edges.groupBy(F.col("src").alias("id")).agg(F.count(F.lit(1)).alias("out_degree"))
    in_degree = edges.groupBy(F.col("dst").alias("id")).agg(F.count(F.lit(1)).alias("in_degree"))
    return (
        ids.join(in_degree, on="id", how="left")
        .join(out_degree, on="id", how="left")
        .select("id", F.coalesce("in_degree", F.lit(0)).alias("in_degree"),
                F.coalesce("out_degree", F.lit(0)).alias("out_degree"))
    )


def _previous_scores(table: DataFrame, name: str, folder: str) -> DataFrame:
    """``name``, ``pagerank``, ``trust`` of a previous rank output's table, for a warm start; a table
    written before TrustRank existed has no ``trust``: TrustRank then starts from its teleport."""
    missing = [column for column in (NAME_COLUMNS[name], "pagerank") if column not in table.columns]
    if missing:
        raise ValueError(f"--warm-start {folder}: its {name} table has no {', '.join(missing)} column; "
                         f"pass a folder jobs/rank.py wrote (its --output)")
    trust = F.col("trust") if "trust" in table.columns else F.lit(None).cast("double")
    return table.select(F.col(NAME_COLUMNS[name]).alias("name"), "pagerank", trust.alias("trust"))


def rank_level(spark: SparkSession, vertices: DataFrame, edges: DataFrame, kind: str, edge_kind: str,
               harmonic: bool, options: RankOptions, seeds: list[str] | None = None,
               previous: DataFrame | None = None) -> tuple[DataFrame, dict]:
    """PageRank, TrustRank seeded by the vertices of the ``seeds`` domains (``trust``: null where
    none is in the graph) and, where asked, harmonic centrality, of one vertex kind over its edge kind.
    With ``previous`` (``name``, ``pagerank``, ``trust`` of an earlier release's vertices of this
    kind), PageRank and TrustRank start from those scores, matched by name (ids differ between graphs)."""
    level_vertices = vertices.where(F.col("kind") == kind)
    ids = level_vertices.select("id")
    level_edges = edges.where(F.col("kind") == edge_kind).select("src", "dst")
    engine = {"damping": options.damping, "tol": options.tol, "max_iter": options.max_iter, "engine": options.engine,
              "driver_max_edges": options.driver_max_edges, "checkpoint_dir": options.checkpoint_dir}
    starts = {}
    if previous is not None:
        matched = level_vertices.select("id", "name").join(previous, on="name", how="inner")
        starts = {"pagerank": matched.select("id", "pagerank"),
                  "trust": matched.select("id", F.col("trust").alias("pagerank"))}
    scores, info = pagerank(spark, ids, level_edges, start=starts.get("pagerank"), **engine)
    report = {"pagerank": info_dict(info)}
    table = level_vertices.join(scores, on="id", how="inner").join(_degrees(ids, level_edges), on="id", how="inner")
    seed_ids = seed_vertices(spark, level_vertices, seeds or []).localCheckpoint(eager=True)
    if seed_ids.limit(1).count():
        trust, trust_info = pagerank(spark, ids, level_edges, seeds=seed_ids, start=starts.get("trust"), **engine)
        report["trust"] = info_dict(trust_info)
        table = table.join(trust.withColumnRenamed("pagerank", "trust"), on="id", how="inner")
    else:  # no seed domain in this crawl: trust is unknown, not 0
        report["trust"] = None
        table = table.withColumn("trust", F.lit(None).cast("double"))
    if harmonic:
        centrality, report["harmonic_centrality"] = harmonic_centrality(
            spark, ids, level_edges, engine=options.harmonic_engine,
            driver_max_work=options.harmonic_driver_max_work, log2m=options.log2m,
            checkpoint_dir=options.checkpoint_dir)
        table = table.join(centrality, on="id", how="inner")
    return table, report


def run_rank(spark: SparkSession, graph: str, output: str, options: RankOptions | None = None) -> dict:
    """Write page_rank, host_rank, domain_rank and image_authority under ``output``; returns the report."""
    options = options or RankOptions()
    mass = spam_mass(F.col("pagerank"), F.col("trust"), options.good_share).alias("spam_mass")
    columns = {
        "page_rank": ["id", F.col("name").alias("url"), "host", "domain", "pagerank", "trust", "in_degree",
                      "out_degree", "crawl"],
        "host_rank": ["id", F.col("name").alias("host"), "domain", "pagerank", "trust", mass, "harmonic_centrality",
                      "in_degree", "out_degree"],
        "domain_rank": ["id", F.col("name").alias("domain"), "pagerank", "trust", mass, "harmonic_centrality",
                        "in_degree", "out_degree"],
    }
    with own_checkpoints(spark, options.checkpoint_dir) as checkpoint_dir, \
            Stage(spark, "rank", output, {"graph": graph, **asdict(options)}) as stage:
        work = replace(options, checkpoint_dir=checkpoint_dir)  # the report keeps the folder given
        sources = load_trusted_sources(spark, options.trusted_sources)  # a bad file fails before any work
        seeds = seed_domains(sources)
        # Common Crawl's rank files, read (and counted) before PageRank: a wrong path or format fails now
        cc_ranks = {level: read_ranks(spark, stage.qualify(path), level)
                    for level, path in (("domain", options.cc_domain_ranks), ("host", options.cc_host_ranks)) if path}
        previous = None
        if options.warm_start:
            start_folder = stage.input(options.warm_start, "rank", may_be_output=True,
                                       tables=tuple(name for name, *_ in LEVELS))
            previous = {name: _previous_scores(spark.read.parquet(fs.join(start_folder, name)), name, start_folder)
                        for name, *_ in LEVELS}
        folder = stage.input(graph, "build_graph", tables=("vertices", "edges"))
        graph_report = stage.input_report(folder)
        graph_rows = sum((graph_report.get("edges_by_kind") or {}).values()) + sum(
            (graph_report.get("vertices_by_kind") or {}).values())
        stage.size_shuffles({"graph": graph_rows}, {"graph": SHUFFLE_BYTES_PER_ROW})
        vertices = spark.read.parquet(fs.join(folder, "vertices"))
        if "crawl" not in vertices.columns:  # a graph built before pages carried their crawl
            vertices = vertices.withColumn("crawl", F.lit(None).cast("string"))
        edges = spark.read.parquet(fs.join(folder, "edges"))
        hosts_per_domain = (vertices.where(F.col("kind") == "host")
                            .groupBy("domain").agg(F.count(F.lit(1)).alias("n_hosts")))
        stage.report.update({"options": asdict(options), "crawls": graph_report.get("crawls", []), "levels": {},
                             "trusted_sources": {"file": options.trusted_sources or PACKAGE_FILE,
                                                 "providers": sources, "domains": seeds}})
        written = {}
        for table_name, kind, edge_kind, harmonic in LEVELS:
            table, level_report = rank_level(spark, vertices, edges, kind, edge_kind, harmonic, work, seeds,
                                             previous[table_name] if previous else None)
            table = table.select(*columns[table_name])
            if table_name == "domain_rank":
                table = (table.join(hosts_per_domain, on="domain", how="left")
                         .select("id", "domain", "pagerank", "trust", "spam_mass", "harmonic_centrality", "in_degree",
                                 "out_degree", F.coalesce("n_hosts", F.lit(0)).cast("long").alias("n_hosts")))
            written[table_name] = stage.write(table_name, table)
            stage.report["levels"][table_name] = level_report
        found = [r["domain"] for r in written["domain_rank"].where(F.col("domain").isin(*seeds))
                 .select("domain").orderBy("domain").collect()] if seeds else []
        stage.report["trusted_sources"]["domains_in_crawl"] = found
        images = stage.write("image_authority", image_authority(
            vertices, edges, written["page_rank"], written["domain_rank"],
            page_trust=stage.report["levels"]["page_rank"]["trust"] is not None))
        sums = images.agg(F.count(F.lit(1)).alias("images"), F.sum("authority").alias("authority"),
                          F.sum(F.when(F.col("n_pages") == 0, 1).otherwise(0)).alias("without_pages")).first()
        stage.report["images"] = {"rows": sums["images"], "authority_sum": sums["authority"],
                                  "without_pages": sums["without_pages"]}
        comparisons = {level: {**compare(written[f"{level}_rank"], theirs, level), "file": read}
                       for level, (theirs, read) in cc_ranks.items()}
        if comparisons:
            stage.report["cc_webgraph"] = comparisons
        stage.report["rows"] = {name: df.count() for name, df in written.items()}
        stage.report["rows"]["image_authority"] = sums["images"]
    return stage.report
