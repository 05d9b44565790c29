"""Near-duplicate families at catalog scale, never comparing all pairs.

1. Candidates: images whose perceptual hashes (flip- and 90-degree-rotation-invariant, 64 bits)
   agree on one of four 16-bit bands, plus images close in embedding space by random-projection
   LSH (VisualRank's, bounded: :func:`lsh_candidates`). A hash band value shared by more than
   ``max_bucket`` images (blank and single-colour images share one) gives no pairs and is counted;
   an LSH bucket over it is split, and counted.
2. Verification: each candidate pair is compared with VisualRank's own measure, matched interest
   points over the mean count (:func:`.similarity.match_similarity`), at least ``min_similarity``.
3. Families: connected components of the verified pairs (GraphFrames' ``connectedComponents``).
   A family's canonical image, named by ``near_duplicate_of``, is its best copy, the one a search
   engine would show: the most pixels (crops and downscales have fewer), then the most bytes
   (the least compressed: every re-save loses detail), then the one the others resemble most (the
   largest sum of verified similarity), then the identifier. Centrality alone cannot tell an
   original from a lossless flip or quarter turn of it: to a flip- and rotation-invariant
   similarity they are the same image (measured: the flip won on the sample families).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from imagerank.content.similarity import LocalFeatures, from_bytes, match_similarity
from imagerank.spark import kept_checkpoint_dir

BANDS = 4
BAND_BITS = 64 // BANDS


@dataclass(frozen=True)
class FamilyOptions:
    min_similarity: float = 0.2      # matched points over mean count, verified pairs
    max_bucket: int = 1000           # a hash band value shared by more images gives no candidates; LSH buckets at most
    lsh_distance: float = 0.6        # Euclidean distance of L2-normalised embeddings (cosine >= 0.82)
    lsh_tables: int = 4
    lsh_neighbours: int = 20         # each image's nearest kept as candidates, over the tables


def hash_candidates(images: DataFrame, max_bucket: int) -> tuple[DataFrame, DataFrame]:
    """(pairs a < b sharing a band value, the band buckets skipped for size)."""
    bands = images.where(F.col("phash").isNotNull()).select(
        "identifier", F.explode(F.array(*[
            F.struct(F.lit(b).alias("band"),
                     F.shiftrightunsigned("phash", b * BAND_BITS).bitwiseAND(F.lit((1 << BAND_BITS) - 1)).alias("value"))
            for b in range(BANDS)])).alias("b"))
    bands = bands.select("identifier", "b.band", "b.value")
    sizes = bands.groupBy("band", "value").agg(F.count(F.lit(1)).alias("size"))
    usable = sizes.where(F.col("size") <= max_bucket).where(F.col("size") > 1)
    skipped = sizes.where(F.col("size") > max_bucket)
    members = bands.join(usable.select("band", "value"), on=["band", "value"], how="inner")
    pairs = (members.alias("a")
             .join(members.alias("b"), on=["band", "value"], how="inner")
             .where(F.col("a.identifier") < F.col("b.identifier"))
             .select(F.col("a.identifier").alias("a"), F.col("b.identifier").alias("b")))
    return pairs, skipped


def _lsh_options(options: FamilyOptions):
    from imagerank.content.visualrank import VisualRankOptions

    return VisualRankOptions(lsh_distance=options.lsh_distance, lsh_tables=options.lsh_tables,
                             lsh_max_bucket=options.max_bucket, recall_sample=0)


def lsh_candidates(images: DataFrame, options: FamilyOptions) -> tuple[DataFrame, DataFrame | None, dict]:
    """(pairs a < b whose embeddings lie within ``lsh_distance``, the persisted LSH buckets they come
    from and the parameters, for :func:`lsh_report`; None and {} where no image has an embedding).

    VisualRank's bounded LSH (:func:`.visualrank.lsh_buckets`, the whole catalog one group): every
    image is compared with at most ``lsh_tables x (max_bucket - 1)`` others, whatever the catalog's
    size, and keeps its ``lsh_neighbours`` nearest within the distance (families are connected
    components, so a family's members need not all be paired). A bucket of more than ``max_bucket``
    images that no hyperplane separates (a logo the catalog holds thousands of times) is split, and
    counted. Spark ML's ``BucketedRandomProjectionLSH``, used before, puts every unit vector in one
    of two buckets per table (docs/design.md, "VisualRank"): about n^2 / 4 pairs. Approximate: LSH
    may miss a close pair."""
    from imagerank.content.visualrank import bucket_knn, lsh_buckets, min_cosine

    members = (images.where(F.col("embedding").isNotNull() & (F.size("embedding") > 0))
               .select(F.lit("catalog").alias("group"), "identifier", "embedding"))
    if members.isEmpty():
        return images.sparkSession.createDataFrame([], "a string, b string"), None, {}
    lsh = _lsh_options(options)
    buckets, vectors, parameters = lsh_buckets(members, lsh)
    buckets = buckets.persist()
    edges = bucket_knn(buckets, vectors, options.lsh_neighbours, min_cosine(lsh))
    pairs = edges.select(F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b")).distinct()
    return pairs, buckets, parameters


def lsh_report(buckets: DataFrame | None, parameters: dict, options: FamilyOptions) -> dict:
    """What :func:`lsh_candidates` cost (:func:`.visualrank.candidate_stats`: pairs, per image, buckets
    capped); its buckets unpersisted."""
    from imagerank.content.visualrank import candidate_stats

    if buckets is None:
        return {}
    stats = candidate_stats(buckets, parameters, _lsh_options(options))
    buckets.unpersist()
    return stats


VERIFIED = T.StructType([T.StructField("a", T.StringType()), T.StructField("b", T.StringType()),
                         T.StructField("similarity", T.DoubleType())])


def _verify(min_similarity: float):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            scores = [match_similarity(LocalFeatures(from_bytes(da), from_bytes(ma)),
                                       LocalFeatures(from_bytes(db), from_bytes(mb)))
                      for da, ma, db, mb in zip(batch["da"], batch["ma"], batch["db"], batch["mb"])]
            out = pd.DataFrame({"a": batch["a"], "b": batch["b"], "similarity": scores})
            yield out[out["similarity"] >= min_similarity]
    return run


def verified_pairs(images: DataFrame, candidates: DataFrame, min_similarity: float) -> DataFrame:
    features = images.select("identifier", "descriptors", "mirrored")
    both = (candidates.distinct()
            .join(features.select(F.col("identifier").alias("a"), F.col("descriptors").alias("da"),
                                  F.col("mirrored").alias("ma")), on="a", how="inner")
            .join(features.select(F.col("identifier").alias("b"), F.col("descriptors").alias("db"),
                                  F.col("mirrored").alias("mb")), on="b", how="inner"))
    return both.select("a", "b", "da", "ma", "db", "mb").mapInPandas(_verify(min_similarity), schema=VERIFIED)


def _persisted_rdds(spark: SparkSession) -> set[int]:
    """The ids of the RDDs the session keeps persisted."""
    return set(spark.sparkContext._jsc.getPersistentRDDs().keySet())


def families(spark: SparkSession, images: DataFrame, pairs: DataFrame,
             checkpoint_dir: str) -> tuple[DataFrame, Callable[[], None]]:
    """identifier, family_size, near_duplicate_of (the family's canonical image, which names the family)
    for every image in a verified pair; and a function to call once they are written, which unpersists
    what ``connectedComponents`` left persisted: its result, which the families read, and GraphFrames'
    own index of the vertices."""
    from graphframes import GraphFrame

    from imagerank.content.schemas import FAMILIES

    if pairs.isEmpty():
        return spark.createDataFrame([], FAMILIES), lambda: None
    edges = pairs.select(F.col("a").alias("src"), F.col("b").alias("dst"), "similarity")
    ends = edges.select(F.col("src").alias("id")).union(edges.select(F.col("dst").alias("id"))).distinct()
    before = _persisted_rdds(spark)
    with kept_checkpoint_dir(spark):  # its checkpoints go under checkpoint_dir, which embed deletes after
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
        components = GraphFrame(ends, edges.select("src", "dst")).connectedComponents()
    left = _persisted_rdds(spark) - before

    def release() -> None:
        components.unpersist()
        kept = spark.sparkContext._jsc.getPersistentRDDs()
        for rdd_id in left & set(kept.keySet()):
            kept.get(rdd_id).unpersist(False)
    strength = (edges.select(F.col("src").alias("id"), "similarity")
                .union(edges.select(F.col("dst").alias("id"), "similarity"))
                .groupBy("id").agg(F.sum("similarity").alias("strength")))
    pixels = images.select(F.col("identifier").alias("id"), F.col("bytes"),
                           (F.col("width").cast("long") * F.col("height").cast("long")).alias("pixels"))
    members = (components.select("id", F.col("component").alias("family"))
               .join(strength, on="id", how="inner")
               .join(pixels, on="id", how="left"))
    by_family = Window.partitionBy("family")
    first = by_family.orderBy(F.col("pixels").desc_nulls_last(), F.col("bytes").desc_nulls_last(),
                              F.col("strength").desc(), F.col("id"))
    return (members
            .withColumn("family_size", F.count(F.lit(1)).over(by_family))
            .withColumn("near_duplicate_of", F.first("id").over(first.rowsBetween(Window.unboundedPreceding,
                                                                                   Window.unboundedFollowing)))
            .select(F.col("id").alias("identifier"), "family_size", "near_duplicate_of")), release
