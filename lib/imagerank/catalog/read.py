"""Reading the image catalog (Openverse's schema) from Parquet, CSV/TSV, JSON lines or PostgreSQL.

A ``jdbc:postgresql://HOST:PORT/DB`` catalog is read from a table of Openverse's ``image`` schema
(:mod:`imagerank.postgres`: parallel slices of the table, only the columns the stage uses, each as
the text a CSV dump of it holds); its rows then go through the rules below, as a file's do, plus
one: a row with ``removed_from_source`` true is skipped and counted as ``removed_from_source``.

Every column comes back as a string except where Parquet says otherwise; ``meta_data`` and
``tags`` come back as JSON text whatever the input held (Openverse's CSV dumps carry them as
JSON text, Parquet or JSON lines may carry them as nested values).

What cannot be used is counted, never dropped silently:
- ``unreadable_row``: a CSV/TSV line with the wrong number of fields, or a JSON line that does not
  parse (Spark's PERMISSIVE mode, the raw text kept in ``_corrupt_record``);
- ``bad_quoting``: a CSV/TSV row whose quoting broke (a quote left open runs the field over the
  line breaks into the rows after it, which it swallows): a required column holding a line break,
  or ``meta_data``/``tags`` holding one and not starting as JSON (``{`` or ``[``);
- ``missing_identifier`` / ``missing_provider``: a row without one of them;
- ``duplicate_identifier``: a second row with an identifier already seen. One row is kept, the
  same whatever the input's order: the latest ``updated_on``, then the latest ``created_on`` (a
  missing value counts as the oldest; columns absent from the input are passed over), then the
  smallest value of each other column in turn, in column-name order (nulls last; a map column
  compared as its JSON text). Rows equal in every column are the same row, whichever is kept.
A required column missing from the input, or an empty input, is an error that names it, raised before
anything is written.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from imagerank import postgres
from imagerank.postgres import is_postgres

CORRUPT = "_corrupt_record"
FORMATS = ("auto", "parquet", "csv", "tsv", "json", "postgres")
DEFAULT_TABLE = "public.image"  # Openverse's catalog table, for a jdbc:postgresql:// catalog
JSON_COLUMNS = ("meta_data", "tags")
POPULARITY_COLUMNS = ("identifier", "provider", "meta_data")
PUBLISH_COLUMNS = ("identifier", "provider", "url", "foreign_landing_url")
EMBED_COLUMNS = ("identifier", "provider", "url", "thumbnail", "title", "tags", "description")
REMOVED = "_removed"  # a database catalog's removed_from_source, true or false


class CatalogError(ValueError):
    """The catalog cannot be read as asked (a missing column, an unknown format)."""


def detect_format(path: str) -> str:
    if is_postgres(path):
        return "postgres"
    name = path.rstrip("/").lower()
    for suffix, fmt in ((".parquet", "parquet"), (".tsv", "tsv"), (".tsv.gz", "tsv"), (".csv", "csv"),
                        (".csv.gz", "csv"), (".jsonl", "json"), (".ndjson", "json"), (".json", "json"),
                        (".jsonl.gz", "json"), (".json.gz", "json")):
        if name.endswith(suffix):
            return fmt
    return "parquet"  # a folder of part files, as Spark writes them


# The longest CSV/TSV field read (characters): a longer one fails the read with CatalogError
# naming the file and this setting, instead of exhausting a JVM's memory (a 300 MB field did).
MAX_FIELD_CHARS_CONF = "spark.imagerank.catalog.maxFieldChars"
MAX_FIELD_CHARS = 10_000_000


def _too_long_field(error: BaseException) -> bool:
    """True where Spark's CSV parser refused a field over maxCharsPerColumn (anywhere in the causes)."""
    return "exceeds the maximum number of characters defined in your parser settings" in str(error)


def _read_text_table(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    options = {"header": "true", "multiLine": "true", "escape": '"', "sep": "\t" if fmt == "tsv" else ",",
               "maxCharsPerColumn": str(_max_field_chars(spark))}
    header = spark.read.options(**options).csv(path)
    schema = T.StructType([T.StructField(name, T.StringType(), True) for name in header.columns]
                          + [T.StructField(CORRUPT, T.StringType(), True)])
    return (spark.read.options(**options, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT)
            .schema(schema).csv(path))


def _read_json_lines(spark: SparkSession, path: str) -> DataFrame:
    frame = spark.read.options(mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT).json(path)
    return frame if CORRUPT in frame.columns else frame.withColumn(CORRUPT, F.lit(None).cast("string"))


def _as_json_text(frame: DataFrame, column: str) -> F.Column:
    kind = frame.schema[column].dataType
    return F.col(column) if isinstance(kind, T.StringType) else F.to_json(F.col(column))


LATEST_FIRST = ("updated_on", "created_on")


def _has_map(kind: T.DataType) -> bool:
    if isinstance(kind, T.MapType):
        return True
    if isinstance(kind, T.ArrayType):
        return _has_map(kind.elementType)
    if isinstance(kind, T.StructType):
        return any(_has_map(f.dataType) for f in kind.fields)
    return False


def _copy_order(raw: DataFrame) -> list[F.Column]:
    """The order in which copies of one identifier are ranked, the first kept (module docstring):
    total, so that the row kept does not depend on the input's order or partitioning."""
    kinds = {f.name: f.dataType for f in raw.schema.fields}
    order = [F.col(c).desc_nulls_last() for c in LATEST_FIRST if c in kinds]
    for name in sorted(c for c in kinds if c not in (*LATEST_FIRST, "identifier", CORRUPT, REMOVED)):
        column = F.to_json(F.col(name)) if _has_map(kinds[name]) else F.col(name)
        order.append(column.asc_nulls_last())
    return order


def _max_field_chars(spark: SparkSession) -> int:
    return int(spark.conf.get(MAX_FIELD_CHARS_CONF, str(MAX_FIELD_CHARS)))


def read_catalog(spark: SparkSession, path: str, required: tuple[str, ...] = POPULARITY_COLUMNS,
                 fmt: str = "auto", table: str = DEFAULT_TABLE, columns: tuple[str, ...] = ()) -> tuple[DataFrame, dict]:
    """The catalog's usable rows (one per identifier) and the counts of what was read and skipped.
    ``table``: the table of a PostgreSQL catalog; ``columns``: those the stage may use beyond
    ``required`` (a database is asked for these alone; a file's columns are all kept)."""
    try:
        return _read_catalog(spark, path, required, fmt, table, columns)
    except CatalogError:
        raise
    except Exception as error:
        if _too_long_field(error):
            raise CatalogError(
                f"catalog {path}: a field longer than {_max_field_chars(spark):,} characters; fix the file, or "
                f"raise --conf {MAX_FIELD_CHARS_CONF}=N if the executors have the memory for it") from None
        raise


def _read_catalog(spark: SparkSession, path: str, required: tuple[str, ...], fmt: str, table: str,
                  wanted: tuple[str, ...]) -> tuple[DataFrame, dict]:
    if fmt not in FORMATS:
        raise CatalogError(f"unknown catalog format {fmt!r}; choose one of {FORMATS}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if (fmt == "postgres") != is_postgres(path):
        raise CatalogError(f"catalog {path}: --catalog-format postgres goes with a jdbc:postgresql:// URL, and only "
                           f"with one")
    source: dict = {}
    if fmt == "postgres":
        db = postgres.database(path, spark)
        raw, source = postgres.read_rows(spark, db, table, (*required, *wanted, *LATEST_FIRST), required)
        raw = raw.withColumn(CORRUPT, F.lit(None).cast("string"))
        path = db.url.split("?")[0]
    elif fmt in ("csv", "tsv"):
        raw = _read_text_table(spark, path, fmt)
    elif fmt == "json":
        raw = _read_json_lines(spark, path)
    else:
        raw = spark.read.parquet(path).withColumn(CORRUPT, F.lit(None).cast("string"))
    columns = [c for c in raw.columns if c not in (CORRUPT, REMOVED)]  # Spark's own column: never named to the user
    if not columns and _is_empty(spark, path):
        raise CatalogError(f"catalog {path} is empty: not one line in it; check --catalog")
    missing = [name for name in required if name not in columns]
    if missing:
        found = f"it has {columns[:40]}" if columns else f"not one line of it parses as {fmt}; check --catalog-format"
        raise CatalogError(f"catalog {path} ({fmt}) lacks required column(s) {missing}; {found}")
    raw = raw.select(*[_as_json_text(raw, c).alias(c) if c in JSON_COLUMNS else F.col(c) for c in raw.columns])
    if fmt != "parquet":
        # Spark refuses queries on the corrupt-record column of an uncached text source, and a database is
        # read once, not once per count; a Parquet catalog (5e8 rows at Openverse's size) is not copied
        # into the executors' cache: each count reads again the few columns it needs
        raw = raw.cache()
    quoting = _broken_quoting(raw, required) if fmt in ("csv", "tsv") else F.lit(None).cast("string")
    removed = F.col(REMOVED) if REMOVED in raw.columns else F.lit(False)
    flagged = raw.withColumn("_quoting", quoting).withColumn(
        "_skip",
        F.when(removed, F.lit("removed_from_source"))
        .when(F.col(CORRUPT).isNotNull(), F.lit("unreadable_row"))
        .when(F.col("_quoting").isNotNull(), F.lit("bad_quoting"))
        .when(F.col("identifier").isNull() | (F.trim(F.col("identifier")) == ""), F.lit("missing_identifier"))
        .when(F.col("provider").isNull() | (F.trim(F.col("provider")) == ""), F.lit("missing_provider")),
    )
    ranked = flagged.where(F.col("_skip").isNull()).withColumn(
        "_copy", F.row_number().over(Window.partitionBy("identifier").orderBy(*_copy_order(raw))))
    usable = ranked.where(F.col("_copy") == 1).drop("_skip", "_quoting", "_copy", CORRUPT, REMOVED)
    counts = {r["_skip"]: r["n"] for r in flagged.groupBy("_skip").agg(F.count(F.lit(1)).alias("n")).collect()}
    rows_read = sum(counts.values())
    kept = usable.count()
    skipped = {reason: n for reason, n in counts.items() if reason is not None}
    duplicates = rows_read - sum(skipped.values()) - kept
    if duplicates:
        skipped["duplicate_identifier"] = duplicates
    examples = [r[CORRUPT][:200] for r in raw.where(F.col(CORRUPT).isNotNull()).select(CORRUPT).limit(3).collect()]
    quoted = ([r["_quoting"][:200] for r in flagged.where(F.col("_skip") == "bad_quoting").select("_quoting")
               .limit(3).collect()] if skipped.get("bad_quoting") else [])
    if rows_read == 0:
        header = " (only a header row)" if fmt in ("csv", "tsv") else ""
        raise CatalogError(f"catalog {path} holds no rows{header}; check --catalog")
    if kept == 0:
        raise CatalogError(f"catalog {path}: not one usable row among the {rows_read} read (skipped: {skipped}; "
                           f"for example: {(examples + quoted)[:1]}); fix the file or check --catalog-format")
    return usable, {"path": path, "format": fmt, **source, "rows_read": rows_read, "rows_usable": kept,
                    "skipped": skipped, "unreadable_examples": examples, "bad_quoting_examples": quoted}


def _is_empty(spark: SparkSession, path: str) -> bool:
    """True where the catalog files hold not one line that is not blank."""
    return spark.read.text(path).where(F.trim(F.col("value")) != "").limit(1).count() == 0


def _broken_quoting(raw: DataFrame, required: tuple[str, ...]) -> F.Column:
    """Per CSV/TSV row: ``column: text`` of the first column whose quoting broke (module docstring:
    ``bad_quoting``), else null. Required columns (identifiers, providers, URLs) never hold a line
    break; a JSON column may (pretty-printed), but then it starts as JSON, not with the quote that
    Spark's parser keeps when it meets one left open."""
    checks = []
    for name in dict.fromkeys((*required, *JSON_COLUMNS)):
        if name in raw.columns:
            broken = F.col(name).rlike(r"[\r\n]")
            if name in JSON_COLUMNS:
                broken = broken & ~F.col(name).rlike(r"^\s*[\[{]")
            checks.append(F.when(broken, F.concat(F.lit(name + ": "), F.col(name))))
    return F.coalesce(*checks) if checks else F.lit(None).cast("string")
