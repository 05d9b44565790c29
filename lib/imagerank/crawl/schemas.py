"""Schemas of the extraction tables (documented column by column in docs/tables.md)."""

from pyspark.sql import types as T

PAGES = T.StructType(
    [
        T.StructField("url", T.StringType(), False),
        T.StructField("host", T.StringType(), False),
        T.StructField("domain", T.StringType(), True),
        T.StructField("crawl", T.StringType(), True),
        T.StructField("fetch_time", T.TimestampType(), True),
        T.StructField("status", T.IntegerType(), True),
        T.StructField("title", T.StringType(), True),
        T.StructField("n_images", T.IntegerType(), False),
        T.StructField("n_links", T.IntegerType(), False),
        T.StructField("warc_filename", T.StringType(), True),
        T.StructField("warc_record_offset", T.LongType(), True),
        T.StructField("warc_record_length", T.LongType(), True),
    ]
)

IMAGE_EMBEDS = T.StructType(
    [
        T.StructField("page_url", T.StringType(), False),
        T.StructField("image_url", T.StringType(), False),
        T.StructField("image_key", T.StringType(), False),
        T.StructField("image_host", T.StringType(), False),
        T.StructField("image_domain", T.StringType(), True),
        T.StructField("source", T.StringType(), False),
        T.StructField("alt", T.StringType(), True),
        T.StructField("title", T.StringType(), True),
        T.StructField("width", T.IntegerType(), True),
        T.StructField("height", T.IntegerType(), True),
        T.StructField("position", T.IntegerType(), False),
        T.StructField("nofollow", T.BooleanType(), True),
    ]
)

PAGE_LINKS = T.StructType(
    [
        T.StructField("src_url", T.StringType(), False),
        T.StructField("src_host", T.StringType(), False),
        T.StructField("src_domain", T.StringType(), True),
        T.StructField("dst_url", T.StringType(), False),
        T.StructField("dst_host", T.StringType(), False),
        T.StructField("dst_domain", T.StringType(), True),
        T.StructField("nofollow", T.BooleanType(), False),
    ]
)

COUNTER = T.StructType(
    [
        T.StructField("file", T.StringType(), False),
        T.StructField("name", T.StringType(), False),
        T.StructField("n", T.LongType(), False),
        T.StructField("detail", T.StringType(), True),
    ]
)

TABLES = {"pages": PAGES, "image_embeds": IMAGE_EMBEDS, "page_links": PAGE_LINKS}

# Extraction builds each row as a tuple of its table's columns in this order (cheaper to make than a
# dict, and turned into Arrow columns without a lookup per column and row); :func:`as_dict` names them.
COLUMNS = {name: tuple(schema.names) for name, schema in TABLES.items()}


def as_dict(table: str, row: tuple) -> dict:
    """A row of ``table`` (a tuple in :data:`COLUMNS` order) as a dict by column name."""
    return dict(zip(COLUMNS[table], row))
