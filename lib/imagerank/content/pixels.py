"""Where a catalog image's bytes come from: a folder or bucket of files named by identifier, or the
catalog's own ``url`` / ``thumbnail`` column fetched over HTTP(S) (:mod:`imagerank.content.fetch`).

    IMAGES = s3://bucket/resized/           IMAGES/<identifier><suffix>, read directly (no listing:
                                            a catalog holds ~10^8 images)
    IMAGES = url | thumbnail                that catalog column, fetched with the fetcher's guards

Identifiers name files, so one that could leave the folder (a ``/``, a leading ``.``, anything
outside letters, digits, ``-``, ``_``, ``.``) is a skip ``bad_identifier``, never a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from imagerank import fs
from imagerank.content.fetch import FetchOptions, fetch_all

COLUMNS = ("url", "thumbnail")
SAFE_IDENTIFIER = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
READ_SKIPS = ("missing_url", "bad_identifier", "missing_file", "read_error", "too_large")
# what a folder's files may end in where <identifier> alone is not there (the hint of nothing_decoded)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp",
                  ".JPG", ".JPEG", ".PNG", ".WEBP", ".GIF", ".TIF", ".TIFF")


@dataclass(frozen=True)
class ImageSource:
    column: str | None                 # "url" / "thumbnail", or None for a folder
    folder: str | None = None          # qualified URI of the folder
    suffix: str = ""                   # appended to the identifier to name its file
    fetch: FetchOptions = field(default_factory=FetchOptions)
    settings: fs.FsSettings = field(default_factory=fs.FsSettings)

    def describe(self) -> str:
        return f"column {self.column}" if self.column else f"folder {self.folder} (files <identifier>{self.suffix})"


@dataclass(frozen=True)
class ImageBytes:
    identifier: str
    data: bytes | None
    reason: str | None = None
    detail: str | None = None


def _read_file(source: ImageSource, identifier: str) -> ImageBytes:
    if not SAFE_IDENTIFIER.fullmatch(identifier or ""):
        return ImageBytes(identifier, None, "bad_identifier", (identifier or "")[:200])
    uri = fs.join(source.folder, identifier + source.suffix)
    try:
        found = fs.info(uri)
        if found.type != fs.pafs.FileType.File:
            return ImageBytes(identifier, None, "missing_file", uri)
        if found.size is not None and found.size > source.fetch.max_bytes:
            return ImageBytes(identifier, None, "too_large", f"{uri}: {found.size} bytes")
        return ImageBytes(identifier, fs.read_bytes(uri))
    except fs.FsError as error:
        return ImageBytes(identifier, None, "read_error", str(error)[:200])


def image_bytes(source: ImageSource, rows: Iterable[tuple[str, str | None]]) -> Iterator[ImageBytes]:
    """(identifier, url) in, the image's bytes or a skip out, in the same order."""
    rows = list(rows)
    if source.column is None:
        fs.configure(source.settings)
        for identifier, _ in rows:
            yield _read_file(source, identifier)
        return
    rows = [(identifier, url if isinstance(url, str) and url.strip() else None) for identifier, url in rows]
    wanted = [(identifier, url) for identifier, url in rows if url]
    fetched = iter(fetch_all([url for _, url in wanted], source.fetch))
    for identifier, url in rows:
        if not url:
            yield ImageBytes(identifier, None, "missing_url", f"no {source.column}")
            continue
        got = next(fetched)
        if got.data is None:
            yield ImageBytes(identifier, None, got.reason, f"{url}: {got.detail}"[:200])
        else:
            yield ImageBytes(identifier, got.data)


def _suffix_found(source: ImageSource, identifiers: list[str]) -> tuple[str | None, int]:
    """The image suffix under which the folder holds the most of ``identifiers`` (a handful looked up
    by name, never a listing: a bucket may hold 10^8 files), and how many it holds."""
    fs.configure(source.settings)
    best, best_found = None, 0
    for suffix in IMAGE_SUFFIXES:
        if suffix == source.suffix:
            continue
        found = sum(1 for identifier in identifiers if SAFE_IDENTIFIER.fullmatch(identifier)
                    and fs.info(fs.join(source.folder, identifier + suffix)).type == fs.pafs.FileType.File)
        if found > best_found:
            best, best_found = suffix, found
    return best, best_found


def nothing_decoded(source: ImageSource, rows: int, reasons: dict[str, int], missing: list[str]) -> str:
    """One line for an embed run in which not one of ``rows`` images decoded: what was looked for
    where, what is there instead, and the option that fixes it. ``missing``: a few identifiers
    skipped as missing_file."""
    counts = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    head = f"not one of the catalog's {rows} images was decoded ({counts or 'no image read'})"
    if source.column is not None:
        return f"{head}: their {source.column} column gave nothing usable; see image_skips' details, or give --images FOLDER"
    if not missing:
        return f"{head} from {source.describe()}"
    example = fs.join(source.folder, missing[0] + source.suffix)
    if fs.info(source.folder).type == fs.pafs.FileType.NotFound:
        return f"{head}: the folder {source.folder} does not exist; check --images"
    suffix, found = _suffix_found(source, missing)
    looked = f"it looked for <identifier>{source.suffix} in {source.folder}, e.g. {example}"
    if suffix is None:
        return (f"{head}: {looked}, and none of {len(missing)} identifiers tried is there under a usual image "
                f"suffix either; check --images and --image-suffix")
    return (f"{head}: {looked}; {found} of {len(missing)} identifiers tried are there as <identifier>{suffix}: "
            f"pass --image-suffix {suffix}")
