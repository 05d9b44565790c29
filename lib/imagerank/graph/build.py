"""Build the graph from one or more extraction outputs (several crawls or batches merge).

Vertices are pages (normalized URLs, fetched or only linked to), images (``image_key``), hosts and
registered domains. Every vertex carries the ``host`` and registered ``domain`` it belongs to (an
image: those of the URL that serves it), as extraction computed them (``imagerank.urls.site_of``:
no URL is parsed again here), and pages and images a ``url`` (an image: its most embedded URL
variant). A page whose host is not a public host name (one label, invalid characters, a top-level
name outside the Public Suffix List) has a null ``domain`` and stays out of the host and domain
graphs, as in Common Crawl's host graph; so do IP hosts unless ``keep_ip_hosts``. Extractions
made with different Public Suffix List versions can give one host two registered domains: the host
is still one vertex, labelled with the longest of them (the most specific; ties: the greatest
name), and so is a page; a domain vertex stays for each domain some row names (the domain edges
are folded from the rows' own domains).

Ids are dense, 0..N-1, the position of ``(kind, name)`` (one vertex each) in sorted order (as
Common Crawl's webgraph numbers its vertices): they cannot collide at any N. The same vertex set
gets the same ids; a graph with more or fewer vertices renumbers them, so ids join only tables of
one run.

Edges (duplicates collapse into one, self-loops drop):
- ``links_to``: page -> page, from followed links (``nofollow`` links carry no vote), weight 1. An
  ``<a>`` link to a URL with an image extension is a page link when the crawl fetched that URL as
  an HTML page (``/wiki/File:Foo.jpg`` is Wikimedia's description page); otherwise it is:
- ``links_to_image``: page -> image, from ``<a>`` links straight to image files (weight 0.5);
- ``embeds``: page -> image, from every other embed source; the weight is the image's share of
  attention on the page (:func:`attention`, docs/design.md);
- ``host_links_to``: host -> host where at least one page of one links to a page of the other,
  from followed page links (docs/tables.md says how this differs from cc-webgraph's host graph);
  ``domain_links_to``: the same folded into registered domains; weight = number of distinct
  linking pages behind the edge.
"""

from __future__ import annotations

from functools import reduce
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.stage import Stage, StageError

_POSITION_BITS = 33  # monotonically_increasing_id: partition index above bit 33, row within below
EXTRACT_TABLES = ("pages", "image_embeds", "page_links")  # what read_extracts reads of each extract run
# Shuffle bytes per input row of the build's largest exchange, for Stage.size_shuffles: 17.6 at
# 10^5 generated pages and 22.6 at 10^6 (the map-side aggregates merge less as keys grow distinct),
# taken at 40, about the edge candidates' keyed rows unmerged (docs/scale.md, "Memory and disk")
SHUFFLE_BYTES_PER_ROW = 40


# How much of a visitor's attention an image gets on a page, relative to an ordinary <img> (1.0).
PREVIEW_WEIGHT = 2.0  # og:image / twitter:image: the picture the page chose to stand for it
LINK_WEIGHT = 0.5  # <a href="x.jpg">: an offer to look, not a display
ICON_WEIGHT = 0.1  # declared at under ICON_PX in both dimensions: icons, buttons, spacers
ICON_PX = 50
PIXEL_PX = 2  # declared at most this in both dimensions: a tracking pixel, no attention at all


def attention(source: F.Column, width: F.Column, height: F.Column) -> F.Column:
    """Attention weight of one embed (see docs/design.md, "Image authority")."""
    declared = width.isNotNull() & height.isNotNull()
    largest = F.greatest(width, height)
    return (
        F.when(source.isin("og_image", "twitter_image"), F.lit(PREVIEW_WEIGHT))
        .when(source == "link_href", F.lit(LINK_WEIGHT))
        .when(declared & (largest <= PIXEL_PX), F.lit(0.0))
        .when(declared & (largest < ICON_PX), F.lit(ICON_WEIGHT))
        .otherwise(F.lit(1.0))
    )


def read_extracts(spark: SparkSession, folders: list[str],
                  ordered: bool = False) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The extraction tables of several committed extract runs, unioned; where ``ordered``, each
    row tagged ``_order``, its run's place in ``folders`` (:func:`latest_versions` keeps the
    highest per page)."""
    def union(table: str) -> DataFrame:
        frames = [spark.read.parquet(fs.join(folder, table)) for folder in folders]
        if ordered:
            frames = [frame.withColumn("_order", F.lit(place)) for place, frame in enumerate(frames)]
        return reduce(DataFrame.unionByName, frames)

    return union("pages"), union("image_embeds"), union("page_links")


def latest_versions(pages: DataFrame, embeds: DataFrame,
                    links: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Each fetched page's rows from the latest extraction that fetched it (the highest ``_order``):
    a page fetched again replaces its older links and embeds, and a page not fetched again keeps
    its last ones. Rows without ``_order`` come out."""
    latest = pages.groupBy("url").agg(F.max("_order").alias("_order"))
    return (
        pages.join(latest, on=["url", "_order"], how="left_semi").drop("_order"),
        embeds.join(latest.withColumnRenamed("url", "page_url"), on=["page_url", "_order"], how="left_semi")
        .drop("_order"),
        links.join(latest.withColumnRenamed("url", "src_url"), on=["src_url", "_order"], how="left_semi")
        .drop("_order"),
    )


def _edges(df: DataFrame, src: F.Column, src_kind: F.Column, dst: F.Column, dst_kind: F.Column, kind: F.Column,
           via: F.Column | None, weight: F.Column | None = None) -> DataFrame:
    """Edge candidates named by (kind, name) at both ends, with the page that gives each where the
    edge's weight counts pages (``via``; null for the page-level edges, whose weight is the
    attention)."""
    return df.select(
        src.alias("src_name"), dst.alias("dst_name"), src_kind.alias("src_kind"), dst_kind.alias("dst_kind"),
        kind.alias("kind"), (F.lit(None).cast("string") if via is None else via).alias("via"),
        (F.lit(1.0) if weight is None else weight).cast("double").alias("attention"),
    )


def vertex_key(kind: F.Column, name: F.Column) -> F.Column:
    """The 64-bit key of a vertex named (kind, name): xxhash64, Spark's built-in. Keys of two
    vertices can be equal (about 3 pairs among 10^10 vertices); :func:`number_edges` finds and
    separates them, so no edge is ever given to the wrong vertex. ``KEY_BITS`` narrows the key
    (the tests force collisions so)."""
    key = F.xxhash64(kind, name)
    return key if KEY_BITS >= 64 else key.bitwiseAND(F.lit((1 << KEY_BITS) - 1))


KEY_BITS = 64
SITE_EDGES = ("host_links_to", "domain_links_to")  # weighted by distinct linking pages; the others by attention
EDGE_KINDS = ("links_to", "embeds", "links_to_image") + SITE_EDGES  # shuffled as their place here, 1..5


def assign_ids(names: DataFrame, order: tuple[str, ...] = ("kind", "name"), column: str = "id",
               collapse: Callable[[DataFrame], DataFrame] | None = None) -> tuple[DataFrame, DataFrame]:
    """``names`` (distinct on ``order``) with ``column``: the row's position 0..N-1 in ``order``
    (kind, name: the graph's ids); and the persisted sort it reads, to unpersist once the
    numbered rows are written. Where ``names`` holds several rows per ``order`` value,
    ``collapse`` (a ``groupBy(*order)`` aggregate) makes them one: it runs inside the range
    partitions, which already hold each value's rows together, so it adds no shuffle.

    A range-partitioned sort puts every partition in order; ``monotonically_increasing_id`` numbers
    the rows within each partition; the per-partition row counts (one small row per partition)
    give each partition's offset. No row passes through the driver and no task sees more than
    its partition.
    """
    mask = (1 << _POSITION_BITS) - 1
    ranged = names.repartitionByRange(*order)
    if collapse is not None:
        ranged = collapse(ranged)
    ordered = (
        ranged.sortWithinPartitions(*order)
        .withColumn("_position", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    sizes = (
        ordered.groupBy(F.shiftright(F.col("_position"), _POSITION_BITS).alias("_part"))
        .agg(F.count(F.lit(1)).alias("rows"))
        .collect()
    )
    offsets, total = [], 0
    for row in sorted(sizes, key=lambda r: r["_part"]):
        offsets.append((row["_part"], total))
        total += row["rows"]
    spark = names.sparkSession
    offset_frame = spark.createDataFrame(offsets or [], "_part long, _offset long")
    numbered = (
        ordered.withColumn("_part", F.shiftright(F.col("_position"), _POSITION_BITS))
        .join(F.broadcast(offset_frame), on="_part", how="inner")
        .withColumn(column, F.col("_offset") + F.col("_position").bitwiseAND(F.lit(mask)))
        .drop("_part", "_offset", "_position")
    )
    return numbered, ordered


def _image_variants(embeds: DataFrame) -> DataFrame:
    """One row per image_key and URL variant (with its host and domain), with the number of
    distinct pages that embed it (``n_pages``); :func:`collapse_vertices` keeps the most embedded
    variant of each image."""
    return (embeds.groupBy("image_key", "image_url", "image_host", "image_domain")
            .agg(F.countDistinct("page_url").alias("n_pages")))


def public_host(host: F.Column, domain: F.Column, keep_ip_hosts: bool) -> F.Column:
    """True for a host that belongs in the host and domain graphs."""
    valid = domain.isNotNull()
    if keep_ip_hosts:
        return valid
    # the regular expression only for a host that ends in a digit, as every IPv4 address does (And
    # evaluates its right side only where its left is true): it runs on every link's two ends
    ends_in_digit = F.substring(host, -1, 1).between("0", "9")
    is_ip = host.startswith("[") | (ends_in_digit & host.rlike(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"))
    return valid & ~is_ip


def _links(pages: DataFrame, embeds: DataFrame, links: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(page links, image embeds): ``<a>`` links to image-like URLs the crawl fetched as pages move
    from the embeds to the page links."""
    page_sites = pages.select(F.col("url").alias("page_url"), F.col("host").alias("src_host"),
                              F.col("domain").alias("src_domain")).distinct()
    fetched = page_sites.select(F.col("page_url").alias("image_url"))  # a URL's host and domain are its own
    hrefs = embeds.where(F.col("source") == "link_href")
    to_pages = hrefs.join(fetched, on="image_url", how="left_semi")
    moved = (
        to_pages.join(page_sites, on="page_url", how="inner")
        .groupBy(F.col("page_url").alias("src_url"), "src_host", "src_domain", F.col("image_url").alias("dst_url"),
                 F.col("image_host").alias("dst_host"), F.col("image_domain").alias("dst_domain"))
        .agg(F.min(F.coalesce("nofollow", F.lit(False))).alias("nofollow"))
    )
    kept_embeds = (
        embeds.where(F.col("source") != "link_href")
        .unionByName(hrefs.join(fetched, on="image_url", how="left_anti"))
    )
    all_links = links.select(*moved.columns).unionByName(moved)
    return all_links, kept_embeds


def _most_specific(value: F.Column) -> F.Column:
    """Aggregate: ``value`` (the domain, or a struct with it) of the row with the longest non-null
    ``domain``, ties broken by the greatest name; deterministic. Rows that disagree on a host's
    registered domain come from different Public Suffix List versions; newer ones mostly add
    suffixes, which makes the domain longer (``shop.myshopify.com``, not ``myshopify.com``)."""
    return F.max_by(value, F.struct(F.length("domain"), F.col("domain")))


def collapse_vertices(rows: DataFrame) -> DataFrame:
    """One vertex per (kind, name) from :func:`build_graph`'s vertex rows, deterministically: an
    image's most embedded URL variant (``n_pages``; ties: the smallest URL; a URL that rows of two
    Public Suffix List versions give two domains: the longer, then the smaller) with its host and
    domain; any other vertex's most specific host and domain (:func:`_most_specific`); a page's
    latest crawl. ``public`` rides along in the chosen struct only to keep the page rows' aggregate
    identical to the one the host and domain rows read (one shuffle serves both; see
    :func:`build_graph`)."""
    site = F.struct("url", "host", "domain", "public")
    image = F.min_by(site, F.struct(-F.col("n_pages"), F.col("url"), -F.length("domain"), F.col("domain")))
    best = F.when(F.col("kind") == "image", image).otherwise(_most_specific(site))
    return (rows.groupBy("kind", "name").agg(best.alias("best"), F.max("crawl").alias("crawl"))
            .select("kind", "name", "best.url", "best.host", "best.domain", "crawl"))


def build_graph(pages: DataFrame, embeds: DataFrame, links: DataFrame,
                keep_ip_hosts: bool = False) -> tuple[DataFrame, dict[str, DataFrame]]:
    """Vertex rows named by (kind, name), one or more per vertex (``kind``, ``name``, ``url``,
    ``host``, ``domain``, ``crawl``, ``public``, and an image variant's ``n_pages``;
    :func:`collapse_vertices` makes them one), and the edge
    candidates (a row per link or embed, named by both ends' (kind, name), with ``via`` and
    ``attention``): ``page``-level ones (links_to, embeds, links_to_image) and ``site``-level ones
    (host_links_to, domain_links_to). Ids, the vertex rows' collapse and the candidates' collapse
    into edges come later (:func:`assign_ids`, :func:`number_edges`)."""
    links, embeds = _links(pages, embeds, links)
    followed = links.where(~F.col("nofollow"))
    no_crawl = F.lit(None).cast("string")
    # every page as each extraction row names it: fetched, or a link's target. A link's source needs no
    # row of its own: it is a fetched page of the same extraction (extraction writes a page's row with
    # its links, from the same URL, and latest_versions keeps or drops them together)
    page_rows = (
        pages.select(F.col("url").alias("name"), "host", "domain", "crawl")
        .unionByName(links.select(F.col("dst_url").alias("name"), F.col("dst_host").alias("host"),
                                  F.col("dst_domain").alias("domain"), no_crawl.alias("crawl")))
    )
    # every (page, host, domain, crawl) once, by a hash aggregate on the names (partial on the map side,
    # where a link target repeats): a page has one row, two if it was fetched (its crawl's and the
    # links'), more only where Public Suffix List versions disagree. ``public`` is an aggregate, not a
    # filter: the host and domain rows below read these rows (the same shuffle, reused), where a
    # filter would be pushed below the aggregate and read the raw rows again
    page_sites = (page_rows.groupBy("name", "host", "domain", "crawl")
                  .agg(F.max(public_host(F.col("host"), F.col("domain"), keep_ip_hosts).cast("int")).alias("public")))
    # host and domain vertices are those of pages (cc-webgraph); image hosts only label images.
    # A host is one vertex, whatever registered domain its rows carry: extractions merged from
    # different Public Suffix List versions can give one host two (every (kind, name) gets one id);
    # every domain a page row names is a vertex (the domain edges' ends), though a host took another
    no_url, no_count = F.lit(None).cast("string"), F.lit(None).cast("long")
    # each public page row names a host vertex and a domain vertex: both from one distinct, which reads
    # the page rows once (a distinct of domains alone would read them again). Distinct before the
    # numbering sort: a domain has a row per page (billions for the largest), which would all meet
    # in one of its tasks
    site_rows = page_sites.where(F.col("public") == 1).select(F.inline(F.array(
        F.struct(F.lit("host").alias("kind"), F.col("host").alias("name"), F.col("host").alias("host"), "domain"),
        F.struct(F.lit("domain").alias("kind"), F.col("domain").alias("name"), no_url.alias("host"), "domain"),
    ))).distinct()
    # several rows per vertex; collapse_vertices makes them one inside the sort that numbers them
    vertex_rows = reduce(DataFrame.unionByName, [
        page_sites.select(F.lit("page").alias("kind"), "name", F.col("name").alias("url"), "host", "domain", "crawl",
                          "public", no_count.alias("n_pages")),
        _image_variants(embeds).select(F.lit("image").alias("kind"), F.col("image_key").alias("name"),
                                       F.col("image_url").alias("url"), F.col("image_host").alias("host"),
                                       F.col("image_domain").alias("domain"), no_crawl.alias("crawl"),
                                       F.lit(None).cast("int").alias("public"), "n_pages"),
        site_rows.select("kind", "name", no_url.alias("url"), "host", "domain", no_crawl.alias("crawl"),
                         F.lit(1).alias("public"), no_count.alias("n_pages")),
    ])

    site_links = followed.where(public_host(F.col("src_host"), F.col("src_domain"), keep_ip_hosts)
                                & public_host(F.col("dst_host"), F.col("dst_domain"), keep_ip_hosts))
    image_kind = F.when(F.col("source") == "link_href", "links_to_image").otherwise("embeds")
    image_attention = attention(F.col("source"), F.col("width"), F.col("height"))
    page = F.lit("page")
    page_level = _edges(followed, F.col("src_url"), page, F.col("dst_url"), page, F.lit("links_to"), None).unionByName(
        _edges(embeds, F.col("page_url"), page, F.col("image_key"), F.lit("image"), image_kind, None, image_attention))
    # both site levels from one read of the links: each link gives a host row and a domain row
    levels = F.explode(F.array(*[
        F.struct(F.col(f"src_{level}").alias("src"), F.col(f"dst_{level}").alias("dst"), F.lit(level).alias("level"),
                 F.lit(kind).alias("kind")) for level, kind in zip(("host", "domain"), SITE_EDGES)]))
    level = F.col("end.level")
    site_level = _edges(site_links.select("src_url", levels.alias("end")), F.col("end.src"), level, F.col("end.dst"),
                        level, F.col("end.kind"), F.col("src_url"))
    return vertex_rows, {"page": page_level, "site": site_level}


def number_edges(candidates: dict[str, DataFrame], vertices: DataFrame,
                 broadcast_max: int = 1_000_000) -> tuple[DataFrame, int, DataFrame]:
    """The edge candidates (:func:`build_graph`) collapsed into edges ``src``, ``dst``, ``kind``,
    ``weight`` between the numbered ``vertices`` (``id``, ``kind``, ``name``); with the number of
    vertices whose key another shares, and the persisted table of them to unpersist once the
    edges are written.

    The collapse and both id joins shuffle 64-bit keys (:func:`vertex_key`), not names: each end
    is (key, sub), sub 0, except for the vertices whose key another vertex shares, found first
    (one shuffle of the vertices' keys) and given sub = id + 1, so (key, sub) names exactly one
    vertex. Duplicate candidates collapse into one edge; self-loops drop. A page-level edge
    (``links_to``, ``embeds``, ``links_to_image``) weighs its largest attention, a host or domain
    edge the distinct pages behind it (their (key, sub) counted). The candidates' names are
    hashed where they are read and never shuffled; the (kind, name) rows of the colliding
    vertices (a handful at a crawl's size) are broadcast where there are at most
    ``broadcast_max``."""
    keyed = vertices.select("id", "kind", "name", vertex_key(F.col("kind"), F.col("name")).alias("key"))
    shared = keyed.groupBy("key").agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > 1).select("key")
    collided = (keyed.join(shared, on="key", how="left_semi")
                .select("kind", "name", (F.col("id") + 1).alias("sub"))
                .persist(StorageLevel.MEMORY_AND_DISK))
    n_collided = collided.count()
    small = F.broadcast(collided) if n_collided <= broadcast_max else collided

    def keyed_end(frame: DataFrame, prefix: str, kind: F.Column) -> DataFrame:
        """``frame`` with ``<prefix>_key`` and ``<prefix>_sub`` for the end named ``<prefix>_name``."""
        name = F.col(f"{prefix}_name")
        frame = frame.withColumn(f"{prefix}_key", vertex_key(kind, name))
        if not n_collided:
            return frame.withColumn(f"{prefix}_sub", F.lit(0).cast("long"))
        end = small.select(F.col("kind").alias("_end_kind"), F.col("name").alias(f"{prefix}_name"),
                           F.col("sub").alias(f"{prefix}_sub"))
        return (frame.withColumn("_end_kind", kind)
                .join(end, on=["_end_kind", f"{prefix}_name"], how="left").drop("_end_kind")
                .withColumn(f"{prefix}_sub", F.coalesce(F.col(f"{prefix}_sub"), F.lit(0).cast("long"))))

    def keyed_rows(frame: DataFrame, via: bool) -> DataFrame:
        frame = keyed_end(keyed_end(frame, "src", F.col("src_kind")), "dst", F.col("dst_kind"))
        if via:
            frame = keyed_end(frame.withColumnRenamed("via", "via_name"), "via", F.lit("page"))
        # the kind as a byte, not a string of up to 15 characters, through the shuffles
        code = F.when(F.col("kind") == EDGE_KINDS[0], F.lit(1))
        for place, kind in enumerate(EDGE_KINDS[1:], start=2):
            code = code.when(F.col("kind") == kind, F.lit(place))
        unknown = F.raise_error(F.concat(F.lit("an edge candidate of a kind EDGE_KINDS does not list: "),
                                         F.col("kind")))
        frame = frame.withColumn("kind", code.otherwise(unknown).cast("byte"))
        return frame.where(~((F.col("src_key") == F.col("dst_key")) & (F.col("src_sub") == F.col("dst_sub"))))

    ends = ["src_key", "src_sub", "dst_key", "dst_sub", "kind"]
    page_level = keyed_rows(candidates["page"], via=False).groupBy(*ends).agg(F.max("attention").alias("weight"))
    site_level = (keyed_rows(candidates["site"], via=True).select(*ends, "via_key", "via_sub").distinct()
                  .groupBy(*ends).agg(F.count(F.lit(1)).cast("double").alias("weight")))
    sub = F.lit(0).cast("long")
    numbered = keyed.select("key", "id", "kind", "name")
    if n_collided:
        numbered = numbered.join(small.withColumnRenamed("sub", "_sub"), on=["kind", "name"], how="left")
        sub = F.coalesce(F.col("_sub"), sub)
    numbered = numbered.select("key", sub.alias("sub"), "id")
    src = numbered.select(F.col("key").alias("src_key"), F.col("sub").alias("src_sub"), F.col("id").alias("src"))
    dst = numbered.select(F.col("key").alias("dst_key"), F.col("sub").alias("dst_sub"), F.col("id").alias("dst"))
    edges = (
        page_level.unionByName(site_level)
        .join(src, on=["src_key", "src_sub"], how="inner")
        .join(dst, on=["dst_key", "dst_sub"], how="inner")
        .select("src", "dst", F.element_at(F.array(*map(F.lit, EDGE_KINDS)), F.col("kind").cast("int")).alias("kind"),
                "weight")
    )
    return edges, n_collided, collided


def extraction_plan(spark: SparkSession, stage: Stage, inputs: list[str], previous: str | None,
                    max_crawl_age: int | None) -> tuple[list[dict], list[dict]]:
    """The extraction outputs a graph is built from, oldest first, and those left out by age.

    Each is ``{"input": qualified output folder, "run", "crawls", "folder": its committed run}``:
    ``previous``'s (the graph's report lists them) then ``inputs``, a folder named twice once, at
    its later place; ordered by their newest crawl id (Common Crawl's ``CC-MAIN-YYYY-WW`` sort by
    date), then by that place. With ``max_crawl_age`` K, an extraction none of whose crawls is among
    the K newest of all is left out (a page only it fetched is no longer a fetched page)."""
    named: list[str] = []
    if previous is not None:
        graph_folder = stage.input(previous, "build_graph", may_be_output=True, tables=("vertices", "edges"))
        recorded = stage.input_report(graph_folder).get("extractions")
        if recorded is None:
            raise StageError(f"--previous {previous}: its graph run {graph_folder.rsplit('/', 1)[1]} does not list its "
                             f"extractions (built before --previous existed); build it once with an --input per crawl")
        named += [entry["input"] for entry in recorded]
    named += [stage.qualify(path) for path in inputs]
    ordered = []  # in the order named (a folder at its last place), then sorted by newest crawl
    for place, path in enumerate(named):
        if path in named[place + 1:]:
            continue  # named again later: taken there
        folder = stage.input(path, "extract", tables=EXTRACT_TABLES)
        ordered.append({"input": path, "run": folder.rsplit("/", 1)[1], "crawls": [], "folder": folder})
    found = reduce(DataFrame.unionByName, [  # every extraction's crawls, in one job
        spark.read.parquet(fs.join(entry["folder"], "pages")).select("crawl", F.lit(i).alias("_input"))
        for i, entry in enumerate(ordered)]).where(F.col("crawl").isNotNull()).distinct().collect()
    for row in sorted(found, key=lambda r: r["crawl"]):
        ordered[row["_input"]]["crawls"].append(row["crawl"])
    ordered.sort(key=lambda entry: entry["crawls"][-1] if entry["crawls"] else "")  # stable: ties keep their place
    if max_crawl_age is None:
        return ordered, []
    newest = sorted({crawl for entry in ordered for crawl in entry["crawls"]})[-max_crawl_age:]
    kept = [entry for entry in ordered if set(entry["crawls"]) & set(newest) or not entry["crawls"]]
    return kept, [entry for entry in ordered if entry not in kept]


def run_build_graph(spark: SparkSession, inputs: list[str], output: str, keep_ip_hosts: bool = False,
                    previous: str | None = None, max_crawl_age: int | None = None) -> dict:
    """Merge extraction outputs into GRAPH_DIR/vertices and GRAPH_DIR/edges; returns the report.

    Extractions of different crawls merge page by page: a page's links and embeds are those of
    the latest crawl that fetched it (:func:`latest_versions`); extractions of one crawl (batches)
    are unioned. ``previous`` (a graph output) adds the extractions it was built from, so next
    month's graph is ``--previous GRAPH --input NEW_EXTRACT``; ``max_crawl_age`` keeps the
    extractions of the newest K crawls (:func:`extraction_plan`)."""
    if max_crawl_age is not None and max_crawl_age < 1:
        raise ValueError(f"--max-crawl-age must be 1 or more crawls, not {max_crawl_age}")
    if not inputs and previous is None:
        raise ValueError("give at least one --input (an extract output), or --previous")
    args = {"input": list(inputs), "keep_ip_hosts": keep_ip_hosts}
    if previous is not None or max_crawl_age is not None:
        args.update({"previous": previous, "max_crawl_age": max_crawl_age})
    with Stage(spark, "build_graph", output, args) as stage:
        plan, expired = extraction_plan(spark, stage, inputs, previous, max_crawl_age)
        folders = [entry.pop("folder") for entry in plan]
        for entry in expired:
            entry.pop("folder")
        by_page = len({tuple(entry["crawls"]) for entry in plan}) > 1  # more than one crawl: latest wins
        pages, embeds, links = read_extracts(spark, folders, ordered=by_page)
        written = [stage.input_report(folder).get("rows_written") or {} for folder in folders]
        if all(set(EXTRACT_TABLES) <= set(rows) for rows in written):  # every extraction says what it wrote
            input_rows = sum(rows[name] for rows in written for name in EXTRACT_TABLES)
        else:  # a report from before extraction counted its rows: Parquet's footers hold the counts
            input_rows = pages.count() + embeds.count() + links.count()
        stage.report["input_rows"] = input_rows
        stage.size_shuffles({"input": input_rows}, {"input": SHUFFLE_BYTES_PER_ROW})
        superseded = None
        if by_page:
            fetches = pages.count()
            pages, embeds, links = latest_versions(pages, embeds, links)
            superseded = fetches - pages.count()
        vertex_rows, candidates = build_graph(pages, embeds, links, keep_ip_hosts=keep_ip_hosts)
        numbered, sorted_names = assign_ids(vertex_rows, collapse=collapse_vertices)
        written_vertices = stage.write("vertices", numbered.select("id", "name", "kind", "url", "host", "domain",
                                                                   "crawl"))
        sorted_names.unpersist()  # the written table is read back from here on
        keyed_edges, collisions, collided = number_edges(candidates, written_vertices)
        written_edges = stage.write("edges", keyed_edges)
        collided.unpersist()
        kinds = written_vertices.groupBy("kind").agg(F.count(F.lit(1)).alias("n"), F.min("id").alias("min"),
                                                     F.max("id").alias("max")).collect()
        ids = {"n": sum(r["n"] for r in kinds), "min": min((r["min"] for r in kinds), default=None),
               "max": max((r["max"] for r in kinds), default=None)}
        if ids["n"] and (ids["min"] != 0 or ids["max"] != ids["n"] - 1):
            raise ValueError(f"vertex ids are not 0..{ids['n'] - 1}: {ids}")  # a bug, never data
        stage.report.update({
            "vertices_by_kind": {r["kind"]: r["n"] for r in kinds},
            "edges_by_kind": {r["kind"]: r["count"] for r in written_edges.groupBy("kind").count().collect()},
            "vertex_ids": {"vertices": ids["n"], "max_id": ids["max"]},
            "key_collisions": collisions,
            "pages_without_public_host": pages.where(F.col("domain").isNull()).count(),
            "crawls": sorted({crawl for entry in plan for crawl in entry["crawls"]}) if not by_page else
            sorted(r["crawl"] for r in pages.select("crawl").where(F.col("crawl").isNotNull()).distinct().collect()),
            "extractions": plan,
            "extractions_expired": expired,
            "pages_superseded": superseded,
        })
    return stage.report
