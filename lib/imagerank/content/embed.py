"""The embed stage: the catalog's images as signals (SIGNALS_DIR, one row per image).

    image_features     width, height, format, bytes and EXIF, per image whose pixels decoded
    image_skips        identifier, reason, detail, per image whose pixels could not be used
    image_embeddings   the image backend's embedding, perceptual hash and local features
    text_embeddings    title + tags + description through a sentence-transformers model
    families           near-duplicate families of two or more (:mod:`.families`)

Every catalog row ends in ``image_features`` or ``image_skips``: the report's ``images`` counts add up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from imagerank import fs
from imagerank.catalog.read import DEFAULT_TABLE, EMBED_COLUMNS, read_catalog
from imagerank.postgres import is_postgres
from imagerank.content import models
from imagerank.content.families import (VERIFIED, FamilyOptions, families, hash_candidates, lsh_candidates,
                                        lsh_report, verified_pairs)
from imagerank.content.fetch import FetchOptions
from imagerank.content.pixels import COLUMNS, ImageSource, nothing_decoded
from imagerank.content.schemas import FAMILIES, IMAGE_EMBEDDINGS, IMAGE_FEATURES, IMAGE_SKIPS
from imagerank.content.signals import BACKENDS, PixelOptions, pixel_rows
from imagerank.graph.graphframes_jar import require_graphframes
from imagerank.progress import say
from imagerank.stage import Stage, StageError

# a run that decodes less than this share of its catalog's images warns (none at all is an error)
MIN_DECODED_SHARE = 0.5
NO_IMAGES = "none"  # --images none: text embeddings alone


@dataclass(frozen=True)
class EmbedOptions:
    text_model: str | None = None          # None: all-MiniLM-L6-v2 from its package; "none": no text embeddings
    image_backend: str = "local"
    image_model: str | None = None
    image_suffix: str = ""
    images_per_task: int = 2000
    pixels: PixelOptions = field(default_factory=PixelOptions)
    fetch: FetchOptions = field(default_factory=FetchOptions)
    family: FamilyOptions = field(default_factory=FamilyOptions)


def image_source(stage: Stage, images: str, options: EmbedOptions) -> ImageSource:
    settings = fs.FsSettings.from_spark(stage.spark)
    if images in COLUMNS:
        return ImageSource(column=images, fetch=options.fetch, settings=settings)
    return ImageSource(column=None, folder=stage.qualify(images), suffix=options.image_suffix,
                       fetch=options.fetch, settings=settings)


def choose_backend(options: EmbedOptions, warnings: list[str]) -> tuple[PixelOptions, dict]:
    """The backend that will run: the learned one only where its model loads from a local folder."""
    if options.image_backend not in BACKENDS:
        raise ValueError(f"unknown image backend {options.image_backend!r}; choose one of {BACKENDS}")
    if options.image_backend == "learned":
        try:
            if not options.image_model:
                raise models.ModelUnavailable("no --image-model folder was given")
            path = models.resolve_model(options.image_model)
            described = models.describe(path)
            return (PixelOptions("learned", path, options.pixels.max_pixels, options.pixels.keypoints),
                    {"backend": "learned", "model": described})
        except (models.ModelUnavailable, OSError, ValueError) as error:
            warnings.append(f"no learned image model could be loaded ({error}); the model-free backend ran instead")
    return (PixelOptions("local", None, options.pixels.max_pixels, options.pixels.keypoints),
            {"backend": "local", "model": "ORB interest points, hashed bag (no weights)"})


def image_tags(catalog) -> "DataFrame":
    """identifier, tag (lowercased, trimmed) from the catalog's tags JSON: a list of {"name": ...} as
    Openverse keeps them, or a list of strings."""
    if "tags" not in catalog.columns:
        return catalog.select("identifier", F.lit(None).cast("string").alias("tag")).where(F.lit(False))
    as_objects = F.transform(F.from_json("tags", "array<struct<name:string>>"), lambda t: t["name"])
    as_strings = F.from_json("tags", "array<string>")
    names = F.concat(F.coalesce(as_objects, F.array()), F.coalesce(as_strings, F.array()))
    return (catalog.select("identifier", F.explode(names).alias("tag"))
            .select("identifier", F.lower(F.trim("tag")).alias("tag"))
            .where(F.col("tag").isNotNull() & (F.col("tag") != "") & ~F.col("tag").startswith("{"))
            .distinct())


def run_embed(spark: SparkSession, catalog_path: str, images: str, output: str,
              options: EmbedOptions = EmbedOptions(), catalog_format: str = "auto",
              catalog_table: str = DEFAULT_TABLE) -> dict:
    """Signals of the catalog's images under ``output``. ``images``: a folder, a catalog column to
    fetch (:data:`COLUMNS`), or ``none`` (text embeddings alone: the image tables are written empty)."""
    args = {"catalog": catalog_path, "images": images, "catalog_format": catalog_format,
            **({"catalog_table": catalog_table} if is_postgres(catalog_path) else {}),
            **{k: v for k, v in asdict(options).items()}}
    with Stage(spark, "embed", output, args) as stage:
        text_path = None if (options.text_model or "").lower() == "none" else models.resolve_model(options.text_model)
        if images == NO_IMAGES and text_path is None:
            raise StageError("--images none and --text-model none: nothing to embed; give an image folder or column, "
                             "or a text model")
        if images != NO_IMAGES:
            require_graphframes(spark)  # families need connectedComponents; fail before any work
        source = None if images == NO_IMAGES else image_source(stage, images, options)
        required = ("identifier", "provider") + ((source.column,) if source and source.column else ())
        catalog, catalog_report = read_catalog(spark, stage.qualify(catalog_path), required=required,
                                               fmt=catalog_format, table=catalog_table, columns=EMBED_COLUMNS)
        warnings: list[str] = []
        if text_path is not None:
            import sentence_transformers  # noqa: F401 - a missing embed extra fails now, not after the image work
        if source is None:
            say("embed", "no images (--images none): text embeddings alone")
            stage.report.update(_no_image_tables(spark, stage, catalog_report))
        else:
            stage.report.update(_image_tables(spark, stage, catalog, catalog_report, source, options, warnings))
        stage.write("image_tags", image_tags(catalog))

        text = {"model": None}
        if text_path is not None:
            from imagerank.content.text import text_embeddings

            text = {"model": models.describe(text_path)}
            stage.write("text_embeddings", text_embeddings(catalog, text_path))
        stage.report.update({"catalog": catalog_report, "text": text, "warnings": warnings})
        for warning in warnings:
            say("embed", "warning: " + warning)
    return stage.report


def _no_image_tables(spark: SparkSession, stage: Stage, catalog_report: dict) -> dict:
    """The image tables, empty (``--images none``), and what the report says of them."""
    for name, schema in (("image_features", IMAGE_FEATURES), ("image_skips", IMAGE_SKIPS),
                         ("image_embeddings", IMAGE_EMBEDDINGS), ("near_duplicate_pairs", VERIFIED),
                         ("families", FAMILIES)):
        stage.write(name, spark.createDataFrame([], schema))
    return {"images": {"catalog_rows": catalog_report["rows_usable"], "with_features": 0, "skipped": 0,
                       "skipped_by_reason": {}},
            "source": "none (--images none)", "image_backend": None, "near_duplicates": None}


def _image_tables(spark: SparkSession, stage: Stage, catalog, catalog_report: dict, source: ImageSource,
                  options: EmbedOptions, warnings: list[str]) -> dict:
    """Pixels, features, skips, embeddings and near-duplicate families of the catalog's images; a
    run that decodes none of them fails here (:func:`~imagerank.content.pixels.nothing_decoded`)."""
    pixel_options, backend = choose_backend(options, warnings)
    say("embed", f"images from {source.describe()}; image backend {backend['backend']}")
    tasks = -(-catalog_report["rows_usable"] // options.images_per_task)
    pixels = stage.write("_pixels", pixel_rows(catalog, source, pixel_options, tasks))
    skip_counts = {r["skip_reason"]: r["n"] for r in
                   pixels.groupBy("skip_reason").agg(F.count(F.lit(1)).alias("n")).collect()}
    n_features = skip_counts.pop(None, 0)
    n_skipped = sum(skip_counts.values())
    if n_features == 0 and skip_counts:
        missing = [r["identifier"] for r in pixels.where(F.col("skip_reason") == "missing_file")
                   .select("identifier").limit(5).collect()]
        raise StageError(nothing_decoded(source, n_skipped, skip_counts, missing))
    if n_features < MIN_DECODED_SHARE * (n_features + n_skipped):
        top = max(skip_counts, key=skip_counts.get)
        warnings.append(f"only {n_features} of {n_features + n_skipped} images decoded "
                        f"(most skips: {top}, {skip_counts[top]}); see image_skips")
    used = pixels.where(F.col("skip_reason").isNull())
    features = stage.write("image_features", used.select(*[f.name for f in IMAGE_FEATURES.fields]))
    skipped = (pixels.where(F.col("skip_reason").isNotNull())
               .withColumnRenamed("skip_reason", "reason").withColumnRenamed("skip_detail", "detail"))
    stage.write("image_skips", skipped.select(*[f.name for f in IMAGE_SKIPS.fields]))
    embeddings = stage.write("image_embeddings", used.withColumn("backend", F.lit(backend["backend"]))
                             .select(*[f.name for f in IMAGE_EMBEDDINGS.fields]))

    by_hash, skipped_buckets = hash_candidates(embeddings, options.family.max_bucket)
    by_embedding, lsh_buckets, lsh_parameters = lsh_candidates(embeddings, options.family)
    candidates = stage.write("_candidates", by_hash.union(by_embedding).distinct())
    embedding_search = lsh_report(lsh_buckets, lsh_parameters, options.family)
    pairs = stage.write("near_duplicate_pairs", verified_pairs(embeddings, candidates,
                                                                options.family.min_similarity))
    family_frame, release_families = families(spark, features, pairs, fs.join(stage.folder, "_checkpoints"))
    family_table = stage.write("families", family_frame)
    release_families()  # the written table is read back from here on
    reported = {
        "images": {"catalog_rows": catalog_report["rows_usable"], "with_features": n_features,
                   "skipped": n_skipped, "skipped_by_reason": skip_counts},
        "source": source.describe(),
        "image_backend": backend,
        "near_duplicates": {
            "candidate_pairs": candidates.count(), "verified_pairs": pairs.count(),
            "families": family_table.select("near_duplicate_of").distinct().count(),
            "images_in_families": family_table.count(),
            "hash_buckets_skipped": skipped_buckets.count(), "embedding_candidates": embedding_search,
            "min_similarity": options.family.min_similarity},
    }
    for scratch in ("_checkpoints", "_pixels", "_candidates"):  # what the tables above were made from
        fs.delete_tree(fs.join(stage.folder, scratch))
    return reported
