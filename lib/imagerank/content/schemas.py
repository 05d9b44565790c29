"""The content stages' tables (docs/tables.md, "Embed" and "VisualRank")."""

from pyspark.sql import types as T

# One row per catalog image whose pixels decoded.
IMAGE_FEATURES = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("provider", T.StringType(), True),
    T.StructField("width", T.IntegerType(), True),
    T.StructField("height", T.IntegerType(), True),
    T.StructField("format", T.StringType(), True),
    T.StructField("bytes", T.LongType(), True),
    T.StructField("make", T.StringType(), True),
    T.StructField("model", T.StringType(), True),
    T.StructField("software", T.StringType(), True),
    T.StructField("capture_time", T.StringType(), True),
    T.StructField("exposure_time", T.DoubleType(), True),
    T.StructField("f_number", T.DoubleType(), True),
    T.StructField("iso", T.IntegerType(), True),
    T.StructField("focal_length", T.DoubleType(), True),
    T.StructField("flash", T.BooleanType(), True),
    T.StructField("orientation", T.IntegerType(), True),
    T.StructField("gps", T.BooleanType(), True),
])

# One row per catalog image whose pixels could not be used, and why.
IMAGE_SKIPS = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("provider", T.StringType(), True),
    T.StructField("reason", T.StringType(), False),
    T.StructField("detail", T.StringType(), True),
])

# Per-image output of the pixel pass: features, or a skip, plus what similarity needs.
PIXEL_ROWS = T.StructType(IMAGE_FEATURES.fields + [
    T.StructField("skip_reason", T.StringType(), True),
    T.StructField("skip_detail", T.StringType(), True),
    T.StructField("phash", T.LongType(), True),
    T.StructField("descriptors", T.BinaryType(), True),
    T.StructField("mirrored", T.BinaryType(), True),
    T.StructField("embedding", T.ArrayType(T.FloatType()), True),
])

IMAGE_EMBEDDINGS = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("provider", T.StringType(), True),
    T.StructField("backend", T.StringType(), False),
    T.StructField("embedding", T.ArrayType(T.FloatType()), False),
    T.StructField("phash", T.LongType(), True),
    T.StructField("descriptors", T.BinaryType(), True),
    T.StructField("mirrored", T.BinaryType(), True),
])

TEXT_EMBEDDINGS = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("provider", T.StringType(), True),
    T.StructField("embedding", T.ArrayType(T.FloatType()), False),
])

# One row per image in a near-duplicate family of two or more.
FAMILIES = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("family_size", T.LongType(), False),
    T.StructField("near_duplicate_of", T.StringType(), False),
])

VISUALRANK = T.StructType([
    T.StructField("identifier", T.StringType(), False),
    T.StructField("group", T.StringType(), False),
    T.StructField("visualrank", T.DoubleType(), False),
    T.StructField("n_neighbours", T.IntegerType(), False),
    T.StructField("family_size", T.LongType(), False),
    T.StructField("near_duplicate_of", T.StringType(), True),
])
