"""The pixel pass: per catalog image, its bytes (:mod:`.pixels`), decoded under a pixel limit
(:mod:`.decode`), its properties and EXIF (:mod:`.exif`), its perceptual hash and local features
(:mod:`.similarity`) and its image embedding from the chosen backend. One ``mapInPandas`` over the
catalog; set-up (fetcher pool, model) happens once per partition, models once per worker.

Backends:
- ``local`` (model-free, no weights): ORB interest points and their hashed bag
  (:func:`.similarity.global_vector`), which survives flips, rotations, crops, resizing and recolouring;
- ``learned``: a sentence-transformers image model (CLIP and the like) from a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from imagerank.content import models
from imagerank.content.decode import DEFAULT_MAX_PIXELS, decode
from imagerank.content.exif import EXIF_FIELDS, exif_fields
from imagerank.content.pixels import ImageSource, image_bytes
from imagerank.content.schemas import PIXEL_ROWS
from imagerank.content.similarity import (DEFAULT_KEYPOINTS, global_vector, local_features, perceptual_hash,
                                          to_bytes)

BACKENDS = ("local", "learned")
LEARNED_BATCH = 32
CHUNK = 256  # images handled and yielded at a time: an Arrow batch of 10,000 images would hold ~170 MB


@dataclass(frozen=True)
class PixelOptions:
    backend: str = "local"
    image_model: str | None = None     # a local folder, for the learned backend
    max_pixels: int = DEFAULT_MAX_PIXELS
    keypoints: int = DEFAULT_KEYPOINTS


def _row(identifier, provider, **values) -> dict:
    row = {name.name: None for name in PIXEL_ROWS.fields}
    row.update(identifier=identifier, provider=provider, **values)
    return row


def _skip(identifier, provider, reason, detail) -> dict:
    return _row(identifier, provider, skip_reason=reason, skip_detail=(detail or "")[:200] or None)


def _pixel_chunk(batch: pd.DataFrame, source: ImageSource, options: PixelOptions, learned) -> pd.DataFrame:
    """PIXEL_ROWS of one chunk of catalog rows (identifier, provider, source)."""
    providers = dict(zip(batch["identifier"], batch["provider"]))
    rows, images = [], []
    for got in image_bytes(source, zip(batch["identifier"], batch["source"])):
        provider = providers.get(got.identifier)
        if got.data is None:
            rows.append(_skip(got.identifier, provider, got.reason, got.detail))
            continue
        decoded = decode(got.data, options.max_pixels)
        if decoded.image is None:
            rows.append(_skip(got.identifier, provider, decoded.reason, decoded.detail))
            continue
        features = local_features(decoded.image, options.keypoints)
        row = _row(got.identifier, provider, width=decoded.width, height=decoded.height,
                   format=decoded.format, bytes=len(got.data), phash=perceptual_hash(decoded.image),
                   descriptors=to_bytes(features.descriptors), mirrored=to_bytes(features.mirrored),
                   **exif_fields(decoded.exif))
        if learned is None:
            row["embedding"] = global_vector(features).astype("float32").tolist()
        else:
            images.append((len(rows), decoded.image))
        rows.append(row)
    for first in range(0, len(images), LEARNED_BATCH):
        chunk = images[first:first + LEARNED_BATCH]
        vectors = learned.encode([image for _, image in chunk], normalize_embeddings=True, show_progress_bar=False)
        for (at, _), vector in zip(chunk, vectors):
            rows[at]["embedding"] = vector.astype("float32").tolist()
    return pd.DataFrame(rows, columns=[f.name for f in PIXEL_ROWS.fields])


def _pixel_batches(source: ImageSource, options: PixelOptions):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        learned = models.load(options.image_model) if options.backend == "learned" else None
        for batch in batches:
            for first in range(0, len(batch), CHUNK):
                yield _pixel_chunk(batch.iloc[first:first + CHUNK], source, options, learned)
    return run


def pixel_rows(catalog: DataFrame, source: ImageSource, options: PixelOptions, tasks: int | None = None) -> DataFrame:
    """PIXEL_ROWS for every catalog row: features, hash, descriptors and embedding, or a skip; in
    ``tasks`` tasks where given (a catalog's input partitions hold far more images than one task
    should decode)."""
    column = F.col(source.column) if source.column else F.lit(None).cast("string")
    rows = catalog.select("identifier", "provider", column.alias("source"))
    if tasks:
        rows = rows.repartition(tasks)
    return rows.mapInPandas(_pixel_batches(source, options), schema=PIXEL_ROWS)


assert set(EXIF_FIELDS) <= {f.name for f in PIXEL_ROWS.fields}
