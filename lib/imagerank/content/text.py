"""Text embeddings of catalog images: title + tags + description through a sentence-transformers
model, loaded once per Python worker and run in batches (``mapInPandas``)."""

from __future__ import annotations

import json
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from imagerank.content import models
from imagerank.content.schemas import TEXT_EMBEDDINGS

BATCH = 64


def tag_names(tags_json: str | None) -> list[str]:
    """Names from Openverse's tags JSON (a list of {"name": ...} or of strings); [] when unreadable."""
    if not isinstance(tags_json, str) or not tags_json:
        return []
    try:
        tags = json.loads(tags_json)
    except (TypeError, ValueError):
        return []
    names = []
    for tag in tags if isinstance(tags, list) else []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def document(title: str | None, tags_json: str | None, description: str | None) -> str:
    """The text embedded for one image: its title, its tags, its description, one per line."""
    parts = [title, ", ".join(tag_names(tags_json)), description]
    return "\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())  # pandas gives NaN for null


def _embed_batches(model_path: str):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = models.load(model_path)
        for batch in batches:
            texts = [document(t, g, d) for t, g, d in zip(batch["title"], batch["tags"], batch["description"])]
            vectors = model.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
            yield pd.DataFrame({"identifier": batch["identifier"], "provider": batch["provider"],
                                "embedding": [v.astype("float32").tolist() for v in vectors]})
    return run


def text_embeddings(catalog: DataFrame, model_path: str) -> DataFrame:
    """identifier, provider, embedding (L2-normalised) for every catalog row."""
    columns = [F.col(c) if c in catalog.columns else F.lit(None).cast("string").alias(c)
               for c in ("title", "tags", "description")]
    rows = catalog.select("identifier", "provider", *columns)
    return rows.mapInPandas(_embed_batches(model_path), schema=TEXT_EMBEDDINGS)
