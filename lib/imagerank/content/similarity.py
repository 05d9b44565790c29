"""Model-free image similarity, after VisualRank (Jing & Baluja 2008): local features, their matching,
a fixed-length vector for nearest-neighbour search, and a perceptual hash for near-duplicates.

No model, no training and no weights: everything here is a fixed computation on the pixels.

* ``local_features``: ORB interest points (``cv2.ORB_create(nfeatures=keypoints)``) of the grayscale
  image (so that recolouring matters little) scaled so that its longest side is ``side`` pixels (so
  that resizing matters little), and the same of its left-right mirror. ORB's descriptors are
  rotation invariant; the mirror makes matching flip invariant. Descriptors are stored strongest
  keypoint first (by ORB's Harris response, ties in ORB's own order).
* ``match_similarity``: VisualRank's measure, the number of matched interest points divided by the
  mean number of interest points of the two images, in [0, 1]. Two descriptors match when each is
  the other's nearest neighbour by Hamming distance and both pass Lowe's ratio test (nearest <
  0.75 x second nearest). Flip invariance: the maximum over (upright vs upright), (upright vs
  mirrored) and (mirrored vs upright), which also makes the measure exactly symmetric.
* ``global_vector``: a bag of hashed binary features whose cosine stands in for
  ``match_similarity`` when comparing all pairs is too costly; see its docstring.
* ``perceptual_hash``: pHash (``imagehash.phash``) of the image's canonical dihedral form, the
  minimum over its 8 flips and quarter turns, as a signed 64-bit integer; ``hash_bands`` cuts it
  into tagged bands for candidate generation (two images sharing a band are candidates).

Measured on 6 real photographs (640x480 and 800x600 camera photos of different subjects from
../shared/data/images/exif-samples, tests/test_similarity.py) against 13 unrelated photographs, with
9 variants of each original (central 80% crop, half size, left-right flip, quarter turn, 10 degree
turn, hue shift, sepia, channel swap, JPEG quality 30):

* match_similarity: different photographs 0.000 to 0.015 (mean 0.003); variants 0.12 to 1.0 (flip);
  the weakest variants are the crop (0.125 to 0.46) and the 10 degree turn (0.12 to 0.275), then
  hue shift and channel swap (0.625 to 0.93). Margin of the weakest variant over the most similar
  different pair: 0.105. Matching by cross-check alone does not separate (different photographs up
  to 0.39, variants from 0.33); the ratio test without the mutual check separates by a smaller
  factor (0.16 vs 0.045); the mutual ratio test by 8 (0.12 vs 0.015).
* global_vector: cosines between different photographs 0.62 to 0.78 (mean 0.71: a bag of 400
  descriptors in 1024 buckets collides by chance). Every variant's cosine with its original exceeds
  the original's cosine with every other photograph, for all 9 kinds of variant, widely for flips
  (exactly 1.0) and quarter turns (margin at least 0.19), narrowly for the crop and the 10 degree
  turn (margins at least 0.023 and 0.022); with other bit samplings (20 seeds) the crop fell below
  another photograph once. Correlation with match_similarity over those pairs: 0.95. Good for
  finding an image's family among its nearest neighbours; too flat to order images inside a family
  (see tests/test_visualrank_math.py), where match_similarity does better.
* perceptual_hash: equal for original, flip and quarter turn; 0 bits apart for half size, JPEG 30
  and sepia; 22 to 42 bits (mean 30) between different photographs; not robust to crops, 10 degree
  turns, hue shifts or channel swaps (pHash is a luminance hash of the whole frame).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

DEFAULT_KEYPOINTS = 200
VECTOR_DIMS = 1024
DESCRIPTOR_BYTES = 32            # ORB: 256 binary tests
RATIO = 0.75                     # Lowe's ratio test
VECTOR_TABLES = 4                # global_vector: hash tables, each VECTOR_DIMS / VECTOR_TABLES buckets
VECTOR_SEED = 0                  # global_vector: seed of the sampled descriptor bits

_EMPTY = np.empty((0, DESCRIPTOR_BYTES), dtype=np.uint8)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class LocalFeatures:
    """ORB descriptors of an image and of its left-right mirror, strongest keypoint first."""

    descriptors: np.ndarray      # (n, 32) uint8 ORB descriptors of the upright image
    mirrored: np.ndarray         # (m, 32) uint8 ORB descriptors of its left-right mirror


def _descriptors(gray: np.ndarray, keypoints: int) -> np.ndarray:
    import cv2

    orb = cv2.ORB_create(nfeatures=keypoints)
    points, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None or len(points) == 0:
        return _EMPTY.copy()
    order = sorted(range(len(points)), key=lambda i: -points[i].response)  # stable: ties keep ORB's order
    return np.ascontiguousarray(descriptors[order], dtype=np.uint8)


def _gray(image, side: int) -> np.ndarray:
    from PIL import Image

    gray = image.convert("L")
    width, height = gray.size
    scale = side / max(width, height, 1)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != gray.size:
        gray = gray.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def local_features(image, keypoints: int = DEFAULT_KEYPOINTS, side: int = 512) -> LocalFeatures:
    """ORB descriptors of a PIL image (any mode) and of its mirror, at most ``keypoints`` each.

    An image without texture (a blank or tiny one) has no keypoints: both arrays are then (0, 32).
    """
    if keypoints < 1 or side < 1:
        raise ValueError(f"keypoints and side must be positive, got {keypoints} and {side}")
    gray = _gray(image, side)
    return LocalFeatures(_descriptors(gray, keypoints), _descriptors(np.ascontiguousarray(gray[:, ::-1]), keypoints))


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Hamming distances of packed binary descriptors (exact, as float32)."""
    x = np.unpackbits(a, axis=1).astype(np.float32)
    y = np.unpackbits(b, axis=1).astype(np.float32)
    return x @ (1.0 - y).T + (1.0 - x) @ y.T


def _passing(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest column and whether it passes the ratio test (needs two columns)."""
    nearest = np.argmin(distances, axis=1)
    two = np.partition(distances, 1, axis=1)[:, :2]
    return nearest, two[:, 0] < RATIO * two[:, 1]


def _matches(a: np.ndarray, b: np.ndarray) -> int:
    """Mutual nearest neighbours that pass the ratio test both ways."""
    if len(a) < 2 or len(b) < 2:
        return 0
    distances = _hamming(a, b)
    forward, forward_ok = _passing(distances)
    backward, backward_ok = _passing(distances.T)
    rows = np.arange(len(a))
    return int(np.count_nonzero(forward_ok & backward_ok[forward] & (backward[forward] == rows)))


def match_similarity(a: LocalFeatures, b: LocalFeatures) -> float:
    """Matched interest points / mean number of interest points, in [0, 1], flip invariant and symmetric.

    0.0 when either image has fewer than two keypoints (the ratio test needs two neighbours).
    """
    best = 0.0
    for x, y in ((a.descriptors, b.descriptors), (a.descriptors, b.mirrored), (a.mirrored, b.descriptors)):
        mean = (len(x) + len(y)) / 2
        if mean > 0:
            best = max(best, _matches(x, y) / mean)
    return min(best, 1.0)


def to_bytes(descriptors) -> bytes:
    """(n, 32) uint8 descriptors as n * 32 bytes, row after row (for a Parquet binary column)."""
    array = np.asarray(descriptors)
    if array.size == 0:
        return b""
    if array.ndim != 2 or array.shape[1] != DESCRIPTOR_BYTES or array.dtype != np.uint8:
        raise ValueError(f"expected (n, {DESCRIPTOR_BYTES}) uint8 descriptors, got {array.shape} {array.dtype}")
    return np.ascontiguousarray(array).tobytes()


def from_bytes(data) -> np.ndarray:
    """The (n, 32) uint8 descriptors of ``to_bytes`` (None or empty: (0, 32))."""
    if not data:
        return _EMPTY.copy()
    if len(data) % DESCRIPTOR_BYTES:
        raise ValueError(f"{len(data)} bytes are not a whole number of {DESCRIPTOR_BYTES}-byte descriptors")
    return np.frombuffer(bytes(data), dtype=np.uint8).reshape(-1, DESCRIPTOR_BYTES).copy()


@functools.lru_cache(maxsize=8)
def _bit_sample(dims: int) -> tuple[np.ndarray, int]:
    """(tables x bits) descriptor bit positions, distinct over all tables, and the buckets per table."""
    if dims % VECTOR_TABLES or dims < 2 * VECTOR_TABLES:
        raise ValueError(f"dims must be a multiple of {VECTOR_TABLES} and at least {2 * VECTOR_TABLES}, got {dims}")
    buckets = dims // VECTOR_TABLES
    bits = max(1, math.ceil(math.log2(buckets)))
    if bits * VECTOR_TABLES > 8 * DESCRIPTOR_BYTES:
        raise ValueError(f"dims {dims} needs more than the {8 * DESCRIPTOR_BYTES} descriptor bits")
    order = np.random.default_rng(VECTOR_SEED).permutation(8 * DESCRIPTOR_BYTES)
    return order[: bits * VECTOR_TABLES].reshape(VECTOR_TABLES, bits), buckets


def global_vector(features: LocalFeatures, dims: int = VECTOR_DIMS) -> np.ndarray:
    """A (dims,) float32 vector, nonnegative and of unit length, whose cosine approximates ``match_similarity``.

    A bag of hashed binary features (locality-sensitive hashing for Hamming distance, no training):
    4 hash tables, each reading its own bits of the 256-bit descriptor (for 1024 dims, 8 bits per
    table; bit k is ``np.unpackbits(descriptor)[k]``; the 32 positions are the first of
    ``np.random.default_rng(0).permutation(256)``, all distinct) as a bucket number among dims / 4
    (modulo, when dims / 4 is not a power of two); table t fills dims [t * dims / 4, (t + 1) * dims
    / 4). Every descriptor of the image *and* of its mirror adds 1 to its bucket in each table, so
    a left-right flip gives the same vector. Counts are square-rooted (a repeated texture does not
    dominate) and the vector is L2-normalised. Two descriptors a Hamming distance d apart share a
    table's bucket with probability about (1 - d / 256) ** 8: 0.44 to 0.91 for matched descriptors
    (median d measured 3 to 6 for half size, JPEG 30 and hue shift, 18 for the crop, 25 for the 10
    degree turn), 0.005 for descriptors of different photographs (median d 123), besides chance
    collisions among the 256 buckets.

    Why this choice (measured on the photographs of the module docstring, 20 bit-sampling seeds
    or 12): with 1024 dims, fewer and longer codes (1 table of 10 bits, 2 of 9) let crops fall below
    other photographs for many seeds; more and shorter ones (8 of 7, 16 of 6, 32 of 5) narrow every
    variant's margin; 4 of 8 separated best (the crop fell below another photograph for 1 seed of
    20), square roots better than raw counts or presence. Larger dims lower the chance collisions
    (mean cosine between different photographs 0.71 at 1024 dims, 0.46 at 4096).

    No descriptors (a blank image): the zero vector, whose cosine with anything is 0.
    """
    sample, buckets = _bit_sample(dims)
    vector = np.zeros(dims, dtype=np.float64)
    descriptors = np.concatenate([np.asarray(features.descriptors, np.uint8).reshape(-1, DESCRIPTOR_BYTES),
                                  np.asarray(features.mirrored, np.uint8).reshape(-1, DESCRIPTOR_BYTES)])
    if len(descriptors) == 0:
        return vector.astype(np.float32)
    bits = np.unpackbits(descriptors, axis=1).astype(np.int64)
    weights = np.int64(1) << np.arange(sample.shape[1], dtype=np.int64)
    for table, positions in enumerate(sample):
        codes = (bits[:, positions] @ weights) % buckets
        vector[table * buckets:(table + 1) * buckets] += np.bincount(codes, minlength=buckets)
    vector = np.sqrt(vector)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _dihedral(square):
    """The 8 flips and quarter turns of a PIL image."""
    from PIL import Image

    t = Image.Transpose
    turns = [square] + [square.transpose(r) for r in (t.ROTATE_90, t.ROTATE_180, t.ROTATE_270)]
    return turns + [turn.transpose(t.FLIP_LEFT_RIGHT) for turn in turns]


def perceptual_hash(image) -> int:
    """pHash of the canonical dihedral form, as a signed 64-bit integer (fits Spark's LongType).

    The image is reduced once to imagehash.phash's own 32 x 32 grayscale (Lanczos) thumbnail;
    imagehash.phash of each of the thumbnail's 8 flips and quarter turns (which it takes as is,
    being already 32 x 32) is read as an unsigned 64-bit number, and the least is kept. A flipped
    or quarter-turned image therefore has the same hash.
    """
    import imagehash
    from PIL import Image

    square = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    unsigned = min(int(str(imagehash.phash(form)), 16) for form in _dihedral(square))
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def hash_bands(h: int, bands: int = 4) -> list[int]:
    """The hash cut into ``bands`` bands of 64 / bands bits, lowest bits first, each tagged with its index.

    Band i's value is ``(i << width) | bits``, so equal bits in different bands never collide;
    with 4 bands (16 bits each) every value is below 2 ** 18 and fits any integer column. Two
    hashes within 3 bits of each other share at least one of 4 bands.
    """
    if bands < 1 or 64 % bands:
        raise ValueError(f"bands must divide 64, got {bands}")
    width = 64 // bands
    unsigned = h & _MASK64
    mask = (1 << width) - 1
    if bands == 1:
        return [h]
    return [(i << width) | ((unsigned >> (i * width)) & mask) for i in range(bands)]
