"""The EXIF signals of one image: camera, capture settings and time, orientation, and whether it is geotagged.

A photo's EXIF says whether it came from a camera (make, model, exposure) or an editor (software), when
it was taken and whether it carries a location. EXIF comes from anyone's camera, firmware or editor, so
every field is read on its own: a missing, malformed or out-of-range tag gives None for that field and
never an exception or a wrong value. Tags are read from the Exif sub-IFD (0x8769) where the standard puts
them, falling back to IFD0 where some writers put them instead.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import datetime

from PIL import Image

EXIF_FIELDS = ("make", "model", "software", "capture_time", "exposure_time", "f_number", "iso",
               "focal_length", "flash", "orientation", "gps")

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, SOFTWARE, DATE_TIME, ORIENTATION = 0x010F, 0x0110, 0x0131, 0x0132, 0x0112
DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED = 0x9003, 0x9004
EXPOSURE_TIME, F_NUMBER, ISO, FOCAL_LENGTH, FLASH = 0x829A, 0x829D, 0x8827, 0x920A, 0x9209
GPS_LATITUDE = 2

# "YYYY:MM:DD HH:MM:SS" (EXIF); "-" in the date and "T" before the time are accepted too.
_EXIF_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def exif_fields(exif: Image.Exif | None) -> dict:
    """Every key of EXIF_FIELDS, None where absent or unreadable (``gps`` False when there is no GPS IFD).

    ``make``, ``model``, ``software``: text up to its first NUL, stripped, None if empty;
    ``capture_time``: "YYYY-MM-DDTHH:MM:SS" from the first well-formed of DateTimeOriginal,
    DateTimeDigitized and DateTime; ``exposure_time`` (seconds), ``f_number``, ``focal_length`` (mm):
    positive finite floats; ``iso``: a positive int; ``flash``: whether it fired (bit 0 of Flash, None
    for values outside the 7 bits EXIF defines); ``orientation``: 1..8; ``gps``: whether a GPS IFD holds
    a latitude. Zero counts as absent for the numbers: it is what cameras write when they do not know.
    """
    if exif is None:
        return {**dict.fromkeys(EXIF_FIELDS), "gps": False}
    sub = _read(lambda: exif.get_ifd(EXIF_IFD)) or {}

    def tag(number):
        return sub[number] if number in sub else exif.get(number)

    readers = {
        "make": lambda: _text(exif.get(MAKE)),
        "model": lambda: _text(exif.get(MODEL)),
        "software": lambda: _text(exif.get(SOFTWARE)),
        "capture_time": lambda: next(filter(None, (_iso_time(tag(number)) for number in
                                                   (DATE_TIME_ORIGINAL, DATE_TIME_DIGITIZED, DATE_TIME))), None),
        "exposure_time": lambda: _positive(tag(EXPOSURE_TIME)),
        "f_number": lambda: _positive(tag(F_NUMBER)),
        "iso": lambda: _positive_int(tag(ISO)),
        "focal_length": lambda: _positive(tag(FOCAL_LENGTH)),
        "flash": lambda: _flash_fired(tag(FLASH)),
        "orientation": lambda: _orientation(exif.get(ORIENTATION)),
        "gps": lambda: GPS_LATITUDE in exif.get_ifd(GPS_IFD),
    }
    return {name: _read(readers[name]) for name in EXIF_FIELDS}


def _read(reader):
    """One field's value, None when reading it fails in any way."""
    try:
        return reader()
    except Exception:
        return None


def _first(value):
    """A tag's first value: a tag may hold several (ISO speeds, or a writer's stray count)."""
    if isinstance(value, (tuple, list)):
        return value[0] if value else None
    return value


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.split("\x00", 1)[0].strip() or None


def _iso_time(value) -> str | None:
    text = _text(value)
    match = _EXIF_TIME.fullmatch(text) if text else None
    if match is None:
        return None
    try:
        return datetime(*map(int, match.groups())).isoformat()
    except ValueError:  # "0000:00:00 00:00:00", month 13, February 30, ...
        return None


def _positive(value) -> float | None:
    """A positive finite float (an IFDRational with a zero denominator is NaN, hence None)."""
    value = _first(value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _positive_int(value) -> int | None:
    number = _positive(value)
    return int(number) if number is not None and number == int(number) else None


def _flash_fired(value) -> bool | None:
    value = _first(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0x7F:
        return None
    return bool(value & 1)


def _orientation(value) -> int | None:
    value = _first(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8 else None
