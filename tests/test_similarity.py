"""The model-free image similarity (imagerank.content.similarity) on real photographs and edited copies.

Every variant of an original must resemble it more than any two different photographs resemble each
other. The measured distributions are printed (pytest -s); the module docstring quotes them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from image_variants import ORIGINALS, UNRELATED, VARIANTS, photo, variant
from PIL import Image

from imagerank.content import similarity as sim


@pytest.fixture(scope="module")
def corpus():
    """Photographs (originals first), their variants, and features, vectors and hashes of all of them."""
    photos = {key: photo(*key) for key in ORIGINALS + UNRELATED}
    edited = {(key, kind): variant(photos[key], kind) for key in ORIGINALS for kind in VARIANTS}
    images = {**photos, **edited}
    features = {key: sim.local_features(image) for key, image in images.items()}
    vectors = {key: sim.global_vector(f) for key, f in features.items()}
    hashes = {key: sim.perceptual_hash(image) for key, image in images.items()}
    return images, features, vectors, hashes


def _name(key) -> str:
    return key[1].rsplit(".", 1)[0]


def _summary(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"min {values.min():.3f}  mean {values.mean():.3f}  max {values.max():.3f}"


def _different_pairs():
    return list(itertools.combinations(ORIGINALS + UNRELATED, 2))


def _hamming(a: int, b: int) -> int:
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")


def test_every_variant_matches_its_original_more_than_any_two_different_photographs(corpus):
    _, features, _, _ = corpus
    different = [sim.match_similarity(features[a], features[b]) for a, b in _different_pairs()]
    same = {(key, kind): sim.match_similarity(features[key], features[(key, kind)])
            for key in ORIGINALS for kind in VARIANTS}
    print(f"\nmatch_similarity, {len(different)} pairs of different photographs: {_summary(different)}")
    for kind in VARIANTS:
        print(f"  {kind:7s}", " ".join(f"{same[(key, kind)]:.3f}" for key in ORIGINALS))
    weakest = min(same, key=same.get)
    print(f"  weakest variant {_name(weakest[0])}/{weakest[1]} {same[weakest]:.3f}, "
          f"margin over the most similar different pair {same[weakest] - max(different):.3f}")
    assert all(0.0 <= s <= 1.0 for s in list(same.values()) + different)
    assert min(same.values()) > max(different)
    assert all(same[(key, "flip")] == pytest.approx(1.0) for key in ORIGINALS)


def test_match_similarity_is_symmetric_and_one_for_the_same_image(corpus):
    _, features, _, _ = corpus
    a, b = features[ORIGINALS[0]], features[(ORIGINALS[0], "crop")]
    assert sim.match_similarity(a, b) == sim.match_similarity(b, a)
    assert sim.match_similarity(a, a) == 1.0


def test_global_vector_puts_every_variant_nearer_its_original_than_any_other_photograph(corpus):
    _, features, vectors, _ = corpus
    keys = ORIGINALS + UNRELATED
    different = [float(vectors[a] @ vectors[b]) for a, b in _different_pairs()]
    print(f"\nglobal_vector cosine, {len(different)} pairs of different photographs: {_summary(different)}")
    margins = {}
    for kind in VARIANTS:
        row = []
        for key in ORIGINALS:
            nearest_other = max(float(vectors[key] @ vectors[other]) for other in keys if other != key)
            cosine = float(vectors[key] @ vectors[(key, kind)])
            margins[(key, kind)] = cosine - nearest_other
            row.append(f"{cosine:.3f} ({cosine - nearest_other:+.3f})")
        print(f"  {kind:7s}", " ".join(row))
    print("  (cosine with the original, and its margin over the original's nearest other photograph)")
    for kind in VARIANTS:
        print(f"  least margin {kind:7s} {min(margins[(key, kind)] for key in ORIGINALS):+.4f}")
    matched = [(sim.match_similarity(features[a], features[b]), float(vectors[a] @ vectors[b]))
               for a, b in _different_pairs()]
    matched += [(sim.match_similarity(features[key], features[(key, kind)]), float(vectors[key] @ vectors[(key, kind)]))
                for key in ORIGINALS for kind in VARIANTS]
    print(f"  Pearson correlation of cosine and match_similarity over these {len(matched)} pairs: "
          f"{np.corrcoef(np.array(matched).T)[0, 1]:.3f}")
    failing = sorted((_name(key), kind) for (key, kind), margin in margins.items() if margin <= 0)
    assert not failing, f"variants nearer another photograph than their original: {failing}"


def test_global_vector_is_unit_nonnegative_and_the_same_for_a_flip(corpus):
    _, _, vectors, _ = corpus
    for key in ORIGINALS:
        vector = vectors[key]
        assert vector.dtype == np.float32 and vector.shape == (sim.VECTOR_DIMS,)
        assert (vector >= 0).all() and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(vectors[(key, "flip")], vector, atol=1e-6)


def test_global_vector_of_other_sizes(corpus):
    _, features, _, _ = corpus
    vector = sim.global_vector(features[ORIGINALS[0]], dims=256)
    assert vector.shape == (256,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        sim.global_vector(features[ORIGINALS[0]], dims=1001)


def test_perceptual_hash_ignores_flips_and_quarter_turns_and_tells_photographs_apart(corpus):
    _, _, _, hashes = corpus
    different = [_hamming(hashes[a], hashes[b]) for a, b in _different_pairs()]
    print(f"\nperceptual_hash bits apart, {len(different)} pairs of different photographs: "
          f"min {min(different)} mean {np.mean(different):.1f} max {max(different)}")
    for kind in VARIANTS:
        print(f"  {kind:7s}", " ".join(f"{_hamming(hashes[key], hashes[(key, kind)]):2d}" for key in ORIGINALS))
    for key in ORIGINALS:
        assert -(1 << 63) <= hashes[key] < (1 << 63)
        assert hashes[(key, "flip")] == hashes[key]
        assert hashes[(key, "rot90")] == hashes[key]
        assert _hamming(hashes[key], hashes[(key, "half")]) < 10
        assert _hamming(hashes[key], hashes[(key, "jpeg30")]) < 10
    assert min(different) > 20


def test_perceptual_hash_is_the_same_for_every_flip_and_quarter_turn(corpus):
    images, _, _, hashes = corpus
    key = ORIGINALS[2]
    t = Image.Transpose
    for op in (t.FLIP_TOP_BOTTOM, t.ROTATE_180, t.ROTATE_270, t.TRANSPOSE, t.TRANSVERSE):
        assert sim.perceptual_hash(images[key].transpose(op)) == hashes[key]


def test_hash_bands_are_tagged_with_their_band():
    h = -0x0123456789ABCDEF
    bands = sim.hash_bands(h)
    unsigned = h & ((1 << 64) - 1)
    assert bands == [(i << 16) | ((unsigned >> (16 * i)) & 0xFFFF) for i in range(4)]
    assert [b >> 16 for b in bands] == [0, 1, 2, 3]
    assert sim.hash_bands(0) == [0, 1 << 16, 2 << 16, 3 << 16]          # equal bits, different bands
    assert len(set(sim.hash_bands(0))) == 4
    assert sim.hash_bands(h, bands=8)[7] >> 8 == 7
    assert sim.hash_bands(h, bands=1) == [h]
    with pytest.raises(ValueError):
        sim.hash_bands(h, bands=3)


def test_descriptors_round_trip_through_bytes(corpus):
    _, features, _, _ = corpus
    descriptors = features[ORIGINALS[0]].descriptors
    data = sim.to_bytes(descriptors)
    assert isinstance(data, bytes) and len(data) == descriptors.size
    back = sim.from_bytes(data)
    assert back.dtype == np.uint8 and back.shape == descriptors.shape
    np.testing.assert_array_equal(back, descriptors)
    assert sim.to_bytes(np.empty((0, 32), np.uint8)) == b""
    assert sim.from_bytes(b"").shape == (0, 32) and sim.from_bytes(None).shape == (0, 32)
    with pytest.raises(ValueError):
        sim.from_bytes(b"x" * 33)
    with pytest.raises(ValueError):
        sim.to_bytes(descriptors.astype(np.int32))


def test_blank_image_has_no_keypoints_similarity_zero_and_the_zero_vector():
    noise = np.random.default_rng(0).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    textured = sim.local_features(Image.fromarray(noise))
    assert len(textured.descriptors) > 0
    blank = sim.local_features(Image.new("RGB", (16, 16), (128, 128, 128)))
    assert blank.descriptors.shape == (0, 32) and blank.mirrored.shape == (0, 32)
    assert blank.descriptors.dtype == np.uint8
    assert sim.match_similarity(blank, blank) == 0.0
    assert sim.match_similarity(blank, textured) == 0.0 and sim.match_similarity(textured, blank) == 0.0
    vector = sim.global_vector(blank)
    assert vector.shape == (sim.VECTOR_DIMS,) and not vector.any()
    assert isinstance(sim.perceptual_hash(Image.new("L", (16, 16), 128)), int)
