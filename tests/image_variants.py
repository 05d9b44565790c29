"""Real photographs and edited copies of them, made in memory, for the image-similarity tests.

The photographs are camera photos of different subjects (640x480 to 800x600) from
../shared/data/images/exif-samples, read in place; a test that needs them skips when they are absent.
"""

from __future__ import annotations

import io

import numpy as np
from conftest import shared_file

# photographs that get edited copies, and photographs of other subjects
ORIGINALS = (
    ("exif-org", "nikon-e950.jpg"),        # a field gun before a white colonnade
    ("exif-org", "fujifilm-mx1700.jpg"),   # a starfish on sand
    ("exif-org", "sanyo-vpcg250.jpg"),     # a harbour with towers
    ("exif-org", "olympus-c960.jpg"),      # a mountain, autumn trees, parked cars
    ("exif-org", "ricoh-rdc5300.jpg"),     # a palm before shelves of tapes
    ("gps", "DSCN0027.jpg"),               # a brick church on a square
)
UNRELATED = (
    ("exif-org", "canon-ixus.jpg"), ("exif-org", "fujifilm-dx10.jpg"), ("exif-org", "fujifilm-finepix40i.jpg"),
    ("exif-org", "kodak-dc210.jpg"), ("exif-org", "kodak-dc240.jpg"), ("exif-org", "olympus-d320l.jpg"),
    ("exif-org", "sanyo-vpcsx550.jpg"), ("exif-org", "sony-cybershot.jpg"), ("exif-org", "sony-d700.jpg"),
    ("exif-org", "sony-powershota5.jpg"),
    ("gps", "DSCN0040.jpg"),               # another church in the same town
    ("gps", "DSCN0010.jpg"), ("", "Canon_PowerShot_S40.jpg"),
)
VARIANTS = ("crop", "half", "flip", "rot90", "rot10", "hue", "sepia", "swap", "jpeg30")


def photo(folder: str, name: str):
    """An RGB photograph of exif-samples/jpg, upright by its EXIF orientation (a skip when absent)."""
    from PIL import Image, ImageOps

    parts = ("images", "exif-samples", "jpg") + ((folder,) if folder else ()) + (name,)
    with Image.open(shared_file(*parts)) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def _jpeg(image, quality: int):
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as reread:
        return reread.convert("RGB")


def _hue_shift(image, shift: int = 85):
    from PIL import Image

    hue, saturation, value = image.convert("HSV").split()
    return Image.merge("HSV", (hue.point(lambda h: (h + shift) % 256), saturation, value)).convert("RGB")


def _sepia(image):
    from PIL import Image

    gray = np.asarray(image.convert("L"), dtype=np.float32)
    toned = np.stack([gray * 1.07, gray * 0.74, gray * 0.43], axis=-1)
    return Image.fromarray(np.clip(toned, 0, 255).astype(np.uint8))


def variant(image, kind: str):
    """An edited copy: crop (the central 80%), half (half size), flip (left-right), rot90, rot10
    (turned 10 degrees, canvas expanded), hue (hue turned by a third), sepia, swap (RGB -> BGR), jpeg30."""
    from PIL import Image, ImageOps

    width, height = image.size
    if kind == "crop":
        return image.crop((width // 10, height // 10, width - width // 10, height - height // 10))
    if kind == "half":
        return image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    if kind == "flip":
        return ImageOps.mirror(image)
    if kind == "rot90":
        return image.rotate(90, expand=True)
    if kind == "rot10":
        return image.rotate(10, expand=True, resample=Image.Resampling.BICUBIC)
    if kind == "hue":
        return _hue_shift(image)
    if kind == "sepia":
        return _sepia(image)
    if kind == "swap":
        return Image.merge("RGB", image.split()[::-1])
    if kind == "jpeg30":
        return _jpeg(image, 30)
    raise ValueError(kind)
