"""Common Crawl's published web-graph ranks (cc-webgraph): host and domain ranks per release.

Each release publishes ``<release>-host-ranks.txt.gz`` and ``<release>-domain-ranks.txt.gz``:
tab-separated lines under one header line,

    #harmonicc_pos  #harmonicc_val  #pr_pos  #pr_val  #host_rev  [#n_hosts: the domain file only]
    1               24993276.0      2        0.0127504075179097    com.facebook    7348

names written reversed (``com.facebook``, ``be.youtu``; a host's leading ``www.`` is stripped in
the host graph), about 10^8 rows and 2-3 GB gzipped per file. A gzip file cannot be split, so one
file is one task: split it first for a parallel read (README, "Common Crawl's web-graph ranks"),
and pass the folder or a glob; several files are one table.

:func:`read_ranks` gives ``name`` (turned back: ``facebook.com``), ``harmonic``, ``harmonic_pos``,
``pagerank``, ``pagerank_pos`` (and ``n_hosts``); header, blank and CRLF-ended lines are read as
the format allows, a line with the wrong number of fields or a value that is not a number is a
counted skip (``bad_line``), never a failure and never a zero.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

LEVELS = {"host": 5, "domain": 6}  # fields per line


class WebgraphError(ValueError):
    """A ranks file that cannot be used at all (none of its lines is a rank line)."""


def unreversed(column: F.Column) -> F.Column:
    """``com.example.www`` -> ``www.example.com``, lowercased (Spark built-ins: no Python per row)."""
    return F.lower(F.array_join(F.reverse(F.split(column, r"\.")), "."))


def _lines(spark: SparkSession, path: str) -> DataFrame:
    """The file's lines; :class:`WebgraphError` in one line where ``path`` names no readable file."""
    try:
        return spark.read.text(path)
    except Exception as error:  # noqa: BLE001 - Spark's AnalysisException for a path that is not there
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WebgraphError(f"{path}: cannot read it ({first[:200]}); give cc-webgraph's ranks file, its split "
                            f"parts' folder, or a glob") from None


def read_ranks(spark: SparkSession, path: str, level: str) -> tuple[DataFrame, dict]:
    """The rank rows of a host or domain ranks file (or folder, or glob), and what was read:
    ``lines`` (rank lines), ``skipped`` ({"bad_line": n}), ``bad_line_examples`` (three at most)."""
    fields = LEVELS[level]
    text = _lines(spark, path).select(F.regexp_replace("value", r"\r$", "").alias("line"))
    lines = text.where((F.trim("line") != "") & ~F.col("line").startswith("#"))
    parts = F.split("line", "\t")  # get(): a short line gives nulls (a counted bad_line), not an error under ANSI
    number = {name: F.expr(f"try_cast(trim(get(_parts, {i})) AS {kind})")
              for i, (name, kind) in enumerate((("harmonic_pos", "BIGINT"), ("harmonic", "DOUBLE"),
                                                ("pagerank_pos", "BIGINT"), ("pagerank", "DOUBLE")))}
    parsed = lines.withColumn("_parts", parts).select(
        "line", *[value.alias(name) for name, value in number.items()],
        unreversed(F.trim(F.expr("get(_parts, 4)"))).alias("name"),
        *([F.expr("try_cast(trim(get(_parts, 5)) AS BIGINT)").alias("n_hosts")] if level == "domain" else []),
        (F.size("_parts") == fields).alias("_shape"))
    complete = F.col("_shape") & F.col("name").isNotNull() & (F.col("name") != "")
    for name in number:
        complete = complete & F.col(name).isNotNull()
    if level == "domain":
        complete = complete & F.col("n_hosts").isNotNull()
    flagged = parsed.withColumn("_ok", complete)
    counts = {r["_ok"]: r["n"] for r in flagged.groupBy("_ok").agg(F.count(F.lit(1)).alias("n")).collect()}
    good, bad = counts.get(True, 0), counts.get(False, 0)
    examples = ([r["line"][:200] for r in flagged.where(~F.col("_ok")).select("line").limit(3).collect()]
                if bad else [])
    if good == 0:
        raise WebgraphError(f"{path}: not one {level} rank line ({bad} lines of another shape, e.g. {examples[:1]}); "
                            f"give cc-webgraph's {level}-ranks.txt.gz (tab-separated, {fields} fields)")
    ranks = flagged.where("_ok").drop("line", "_shape", "_ok")
    return ranks, {"path": path, "lines": good, "skipped": {"bad_line": bad} if bad else {},
                   "bad_line_examples": examples}


TOP = 100


def compare(ours: DataFrame, theirs: DataFrame, key: str) -> dict:
    """How our ranks agree with Common Crawl's on the names both have: ``shared`` (how many),
    Spearman's rank correlation of PageRank and of harmonic centrality (ties take their mean rank;
    distributed, MLlib's), and the overlap of the top ``TOP`` by each among the shared names.
    ``ours``: ``key``, pagerank, harmonic_centrality; ``theirs``: :func:`read_ranks`' rows."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.stat import Correlation

    named = (ours.select(F.regexp_replace(F.lower(key), r"^www\.", "").alias("name"), "pagerank", "harmonic_centrality")
             .groupBy("name")  # the host graph drops a leading www.: www.example.com and example.com are one
             .agg(F.max("pagerank").alias("our_pagerank"), F.max("harmonic_centrality").alias("our_harmonic")))
    both = (named
            .join(theirs.groupBy("name").agg(F.max("pagerank").alias("cc_pagerank"),
                                             F.max("harmonic").alias("cc_harmonic")), on="name", how="inner")
            .cache())
    shared = both.count()
    result: dict = {"shared": shared}
    for measure in ("pagerank", "harmonic"):
        pairs = both.where(F.col(f"our_{measure}").isNotNull())
        n = pairs.count()
        correlation = None
        if n >= 3:  # MLlib's Spearman on the JVM: distributed ranks, ties at their mean rank
            vectors = VectorAssembler(inputCols=[f"our_{measure}", f"cc_{measure}"], outputCol="_v").transform(pairs)
            value = Correlation.corr(vectors, "_v", "spearman").first()[0].toArray()[0][1]
            correlation = None if value != value else round(float(value), 4)  # NaN: one side constant
        top = min(TOP, n)
        ours_top = {r["name"] for r in pairs.orderBy(F.desc(f"our_{measure}"), "name").limit(top).collect()}
        theirs_top = {r["name"] for r in pairs.orderBy(F.desc(f"cc_{measure}"), "name").limit(top).collect()}
        result[measure] = {"pairs": n, "spearman": correlation, "top": top,
                           "top_overlap": round(len(ours_top & theirs_top) / top, 4) if top else None}
    both.unpersist()
    return result
