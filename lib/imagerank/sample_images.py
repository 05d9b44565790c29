"""A sample image catalog for the content stages: near-duplicate families beside unrelated photos.

Each family is one original photo and some of its variants (crop, resize, flip, rotate,
recolour, recompress), the edits a web page or a re-upload makes, each re-saved at JPEG quality
75 (the original at 95); unrelated photos have no family.
Files are written as ``IMAGES/<identifier>.jpg``, with a catalog CSV in Openverse's columns.

    python -m imagerank.sample_images --output data/sample-images     # photos from scikit-image (CC0)

The demo's photos are the public-domain and CC0 ones scikit-image's wheel ships; the tests use the
real camera photos of ../shared/data/images/ instead.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from typing import Sequence

VARIANTS = ("crop", "resize", "flip", "rotate", "recolour", "recompress")
# Every copy is re-saved, as a re-upload is: a copy loses detail its original has. (A lossless flip
# or quarter turn is the original to any flip- and rotation-invariant similarity: they would tie.)
ORIGINAL_QUALITY = 95
COPY_QUALITY = 75
SKIMAGE_ORIGINALS = ("astronaut", "chelsea", "coffee")
SKIMAGE_UNRELATED = ("camera", "rocket", "moon", "brick", "grass", "hubble_deep_field", "retina", "coins")


def variant(image, kind: str):
    """One edit of ``image`` (RGB PIL image)."""
    from PIL import Image, ImageOps

    width, height = image.size
    if kind == "crop":
        return image.crop((width // 10, height // 10, width - width // 10, height - height // 10))
    if kind == "resize":
        return image.resize((max(1, width // 2), max(1, height // 2)), Image.LANCZOS)
    if kind == "flip":
        return ImageOps.mirror(image)
    if kind == "rotate":
        return image.rotate(90, expand=True)
    if kind == "recolour":
        r, g, b = image.split()
        return Image.merge("RGB", (b, r, g))
    if kind == "recompress":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=25)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    raise ValueError(f"unknown variant {kind!r}; choose one of {VARIANTS}")


def write_image_sample(output: str, originals: Sequence[tuple[str, object]], unrelated: Sequence[tuple[str, object]],
                       family_sizes: Sequence[int] | None = None, provider: str = "sample") -> dict:
    """Write the images and ``catalog.csv`` under ``output``; returns what was written, with each
    family's original and members."""
    images = os.path.join(output, "images")
    os.makedirs(images, exist_ok=True)
    sizes = list(family_sizes or [len(VARIANTS) + 1 - 2 * i for i in range(len(originals))])
    rows, families = [], {}

    def save(identifier: str, image, subject: str, note: str, quality: int) -> None:
        image.convert("RGB").save(os.path.join(images, identifier + ".jpg"), "JPEG", quality=quality)
        rows.append({"identifier": identifier, "provider": provider, "url": f"https://example.org/{identifier}.jpg",
                     "foreign_landing_url": f"https://example.org/{identifier}", "title": f"{subject} ({note})",
                     "tags": json.dumps([{"name": "photo"}, {"name": subject}]),
                     "description": f"A photograph of {subject}, {note}.", "meta_data": "{}"})

    for (name, image), size in zip(originals, sizes):
        original = f"{name}-original"
        save(original, image, name, "original", ORIGINAL_QUALITY)
        members = [original]
        for kind in VARIANTS[:max(0, size - 1)]:
            save(f"{name}-{kind}", variant(image, kind), name, kind, COPY_QUALITY)
            members.append(f"{name}-{kind}")
        families[name] = {"original": original, "members": members}
    for name, image in unrelated:
        save(f"{name}-alone", image, name, "unrelated", ORIGINAL_QUALITY)
    catalog = os.path.join(output, "catalog.csv")
    with open(catalog, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"images": images, "catalog": catalog, "families": families,
            "unrelated": [f"{name}-alone" for name, _ in unrelated], "rows": len(rows)}


def skimage_photos(names: Sequence[str]) -> list[tuple[str, object]]:
    """Photos scikit-image's wheel ships (public domain / CC0), as RGB PIL images."""
    import numpy as np
    import skimage.data
    from PIL import Image

    photos = []
    for name in names:
        pixels = getattr(skimage.data, name)()
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        photos.append((name, Image.fromarray(pixels[..., :3].astype("uint8"))))
    return photos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    info = write_image_sample(args.output, skimage_photos(SKIMAGE_ORIGINALS), skimage_photos(SKIMAGE_UNRELATED))
    print(json.dumps({k: v for k, v in info.items() if k != "families"} | {
        "families": {k: len(v["members"]) for k, v in info["families"].items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
