"""Decoding untrusted image bytes under a pixel limit.

Every signal taken from an image itself starts from bytes a crawler fetched, and those may be empty,
not an image, cut short, corrupt, or a decompression bomb (a small file whose header promises billions
of pixels). ``decode`` turns any bytes into a ``Decoded``: an upright image (EXIF orientation applied,
as a browser displays it) in RGB or L, or one of ``SKIP_REASONS`` for the stage to count. It never
raises for the bytes, only for the machine (``MemoryError``, ``KeyboardInterrupt``).

The pixel limit is checked from the header, before a pixel is allocated. Pillow keeps its own limit
too: a header over ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (~179 million pixels by default) fails inside
``Image.open`` and is reported as ``decompression_bomb`` whatever ``max_pixels`` says, so a limit above
Pillow's has no effect. Pillow's globals are never changed here (other threads rely on them); its
warnings (the bomb warning between its two limits, corrupt-EXIF warnings) are silenced inside
``warnings.catch_warnings``, so a caller that turns warnings into errors still gets the same answer.
``catch_warnings`` swaps the process-wide filter list, so a warning another thread raises during a
decode may be silenced too; PySpark runs one Python task at a time per worker process, where that
cannot happen.
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False (Pillow's default), or truncated files decode
with grey filling instead of being reported.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000
SKIP_REASONS = ("empty", "unknown_format", "decompression_bomb", "truncated", "corrupt")

# The raster formats pages embed (TIFF for Safari and Commons). Pillow's other plugins stay closed to
# untrusted bytes: EPS would run Ghostscript, and the rest are decoder surface for formats no browser shows.
WEB_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "TIFF", "BMP", "ICO")

ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the stored pixels upright; the table of
# PIL.ImageOps.exif_transpose, applied without that function's rewriting of the EXIF bytes, which
# can fail on broken EXIF and is not needed here (the EXIF is returned as read).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_GREY_MODES = ("1", "L", "LA", "La", "I", "F")  # and every "I;16..." mode
_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Decoded:
    """One image's bytes, decoded or skipped.

    ``image`` is loaded, upright and in mode RGB or L (None when skipped); ``format`` is Pillow's format
    name lowercased ("jpeg", "mpo" for a camera's multi-picture JPEG, "png", ...); ``width`` and
    ``height`` are the stored image's, from the header, before orientation (None when no header was
    read); ``reason`` is one of ``SKIP_REASONS`` when ``image`` is None, with ``detail`` a short text
    naming the exception; ``exif`` is the file's EXIF as Pillow reads it (an XMP ``tiff:Orientation``
    fills in a missing orientation), None when it has no tag or cannot be read.
    """

    image: Image.Image | None
    format: str | None
    width: int | None
    height: int | None
    reason: str | None
    detail: str | None
    exif: Image.Exif | None


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode ``data`` (the first frame of a multi-frame file), or say why it is skipped."""
    if not data:
        return _skipped("empty", "no bytes")
    fmt = width = height = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                image = Image.open(io.BytesIO(data), formats=_web_formats())
            except UnidentifiedImageError:
                return _skipped("unknown_format", f"not a {', '.join(_web_formats())} image "
                                                  f"(starts {bytes(data[:8])!r})")
            fmt = image.format.lower() if image.format else None
            width, height = image.size
            # Pillow's TIFF plugin gives the displayed size and turns the pixels upright itself while
            # loading, dropping the orientation from its EXIF; other plugins leave both to us.
            tiff_orientation = image.tag_v2.get(ORIENTATION_TAG) if fmt == "tiff" else None
            if tiff_orientation in (5, 6, 7, 8):
                width, height = height, width
            if width < 1 or height < 1:
                return _skipped("corrupt", f"header gives {width}x{height} pixels", fmt, width, height)
            if width * height > max_pixels:
                return _skipped("decompression_bomb", f"{width}x{height} = {width * height} pixels, "
                                f"over the limit of {max_pixels}", fmt, width, height)
            image.load()
            exif = _exif_of(image)
            if tiff_orientation is not None:
                if exif is not None:
                    exif[ORIENTATION_TAG] = tiff_orientation  # the file's EXIF, as read
            else:
                image = _upright(image, exif)
            image = _rgb_or_l(image)
        return Decoded(image, fmt, width, height, None, None, exif)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return _skipped("decompression_bomb", _describe(error), fmt, width, height)
    except MemoryError:
        raise  # the machine, not the bytes: under the pixel limit a decode fits in memory
    except Exception as error:
        return _skipped(_failure_reason(error, data), _describe(error), fmt, width, height)


@lru_cache(maxsize=1)
def _web_formats() -> tuple[str, ...]:
    """WEB_FORMATS this Pillow can open (Image.open fails outright on a format it lacks)."""
    Image.init()
    return tuple(name for name in WEB_FORMATS if name in Image.OPEN)


def _skipped(reason: str, detail: str, fmt=None, width=None, height=None) -> Decoded:
    return Decoded(None, fmt, width, height, reason, detail[:_DETAIL_CHARS], None)


def _describe(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:_DETAIL_CHARS]


def _failure_reason(error: Exception, data: bytes) -> str:
    """``truncated`` when the data ended early, else ``corrupt``.

    Pillow says "image file is truncated" or "Truncated File Read" when a decoder ran out of bytes;
    "broken data stream", "decoder error" and the like come from flipped bytes inside the data
    (measured by cutting and by corrupting saved JPEG, PNG, GIF, WebP, TIFF and BMP files), so they are
    ``corrupt``. libwebp refuses a cut-short WebP inside ``Image.open`` and only says it "could not
    create decoder object"; a RIFF size larger than the bytes tells it from a broken one.
    """
    if isinstance(error, EOFError) or "truncated" in str(error).lower():
        return "truncated"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and int.from_bytes(data[4:8], "little") + 8 > len(data):
        return "truncated"
    return "corrupt"


def _exif_of(image: Image.Image) -> Image.Exif | None:
    """The loaded image's EXIF (a PNG's eXIf chunk may follow its pixels), None when empty or broken."""
    try:
        exif = image.getexif()
    except Exception:
        return None
    return exif if len(exif) else None


def _upright(image: Image.Image, exif: Image.Exif | None) -> Image.Image:
    orientation = exif.get(ORIENTATION_TAG) if exif is not None else None
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def _rgb_or_l(image: Image.Image) -> Image.Image:
    """RGB, or L for a grey image; transparency composited over white, as on a white page.

    16-bit grey keeps its top 8 bits (Pillow's own conversion clips it at 255, mostly white).
    """
    mode = image.mode
    grey = mode in _GREY_MODES or mode.startswith("I;16")
    if mode.startswith("I;16"):
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif image.has_transparency_data:
        over = Image.new("RGBA", image.size, (255, 255, 255, 255))
        over.alpha_composite(image.convert("RGBA"))
        image = over
    target = "L" if grey else "RGB"
    return image if image.mode == target else image.convert(target)
