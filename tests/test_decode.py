"""imagerank.content.decode and imagerank.content.exif on real camera files and on bytes made here.

The real files are the exif-samples JPEGs in ../shared/data/images/exif-samples/jpg (read in place);
the expected values were read from the files (Pillow's own EXIF dump) and the READMEs beside them.
"""

import io
import random
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from imagerank.content.decode import DEFAULT_MAX_PIXELS, SKIP_REASONS, Decoded, decode
from imagerank.content.exif import EXIF_FIELDS, exif_fields

from conftest import shared_file

SAMPLES = ("images", "exif-samples", "jpg")


def sample(*parts: str) -> bytes:
    return shared_file(*SAMPLES, *parts).read_bytes()


def fields_of(*parts: str) -> dict:
    decoded = decode(sample(*parts))
    assert decoded.image is not None, decoded
    return exif_fields(decoded.exif)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def with_png_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR claims another size (CRC recomputed), its pixel data left as it was."""
    assert png[12:16] == b"IHDR"
    ihdr = png[12:16] + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def upright_match(image: Image.Image, reference: Image.Image) -> float:
    """Correlation of two images as 32x32 grey thumbnails: 1.0 for the same picture. Correlation, not a
    difference of levels, because the orientation samples differ in brightness (by ~13 levels)."""
    def normalized(im):
        values = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=float).ravel()
        return (values - values.mean()) / values.std()
    return float(np.mean(normalized(image) * normalized(reference)))


# ---------------------------------------------------------------------------------------------- EXIF, real


@pytest.mark.parametrize(
    "path, make, model",
    [
        (("Canon_40D.jpg",), "Canon", "Canon EOS 40D"),
        (("Fujifilm_FinePix_E500.jpg",), "FUJIFILM", "FinePix E500"),  # trailing blanks in the file
        (("Konica_Minolta_DiMAGE_Z3.jpg",), "KONICA MINOLTA", "DiMAGE Z3"),
        (("Nikon_D70.jpg",), "NIKON CORPORATION", "NIKON D70"),
        (("Pentax_K10D.jpg",), "PENTAX Corporation", "PENTAX K10D"),
        (("Samsung_Digimax_i50_MP3.jpg",), "Samsung Techwin", "<Digimax i50 MP3, Samsung #1 MP3>"),
        (("WWL_(Polaroid)_ION230.jpg",), "WWL", "ION230"),  # the file's model is "ION230\0F": C text ends at NUL
        (("exif-org", "sony-d700.jpg"), "SONY", "DSC-D700"),  # both NUL-terminated in the file
        (("exif-org", "canon-ixus.jpg"), "Canon", "Canon DIGITAL IXUS"),
        (("exif-org", "olympus-c960.jpg"), "OLYMPUS OPTICAL CO.,LTD", "C960Z,D460Z"),
        (("corrupted.jpg",), "OLYMPUS IMAGING CORP.", "u1020,S1020"),
    ],
)
def test_make_and_model(path, make, model):
    fields = fields_of(*path)
    assert (fields["make"], fields["model"]) == (make, model)


@pytest.mark.parametrize(
    "path, expected",
    [
        (("Canon_40D.jpg",), dict(
            make="Canon", model="Canon EOS 40D", software="GIMP 2.4.5", capture_time="2008-05-30T15:56:01",
            exposure_time=1 / 160, f_number=7.1, iso=100, focal_length=135.0, flash=True, orientation=1,
            gps=False)),
        (("gps", "DSCN0010.jpg"), dict(
            make="NIKON", model="COOLPIX P6000", software="Nikon Transfer 1.1 W",
            capture_time="2008-10-22T16:28:39", exposure_time=1 / 75, f_number=5.9, iso=64, focal_length=24.0,
            flash=False, orientation=1, gps=True)),
        (("exif-org", "nikon-e950.jpg"), dict(
            make="NIKON", model="E950", software="v981-79", capture_time="2001-04-06T11:51:40",
            exposure_time=1 / 77, f_number=5.5, iso=80, focal_length=12.8, flash=False, orientation=1,
            gps=False)),
    ],
)
def test_every_field_of_a_camera_file(path, expected):
    fields = fields_of(*path)
    assert list(fields) == list(EXIF_FIELDS)
    assert fields == {name: pytest.approx(value, rel=1e-6) if isinstance(value, float) else value
                      for name, value in expected.items()}
    assert type(fields["iso"]) is int and type(fields["flash"]) is bool and type(fields["f_number"]) is float


def test_capture_time_falls_back_to_date_time():
    # no Exif sub-IFD dates here: DateTime (the GIMP export) is the only time there is
    assert fields_of("Canon_40D_photoshop_import.jpg")["capture_time"] == "2008-07-31T10:05:49"


def test_flash_outside_the_defined_bits_is_unreadable():
    # long_description.jpg's Flash tag holds 9969: not a value of EXIF's 7 flash bits
    fields = fields_of("long_description.jpg")
    assert fields["flash"] is None
    assert fields["software"] == "GIMP 2.4.5" and fields["orientation"] == 1


def test_gps_files_are_geotagged():
    paths = sorted(shared_file(*SAMPLES, "gps").glob("*.jpg"))
    assert len(paths) == 9
    for path in paths:
        assert exif_fields(decode(path.read_bytes()).exif)["gps"] is True, path.name


@pytest.mark.parametrize("name", ["Canon_40D.jpg", "Nikon_D70.jpg", "Pentax_K10D.jpg", "corrupted.jpg"])
def test_files_without_gps(name):
    assert fields_of(name)["gps"] is False


def test_a_geotagged_camera_without_gps():
    # a Kodak CX7530 has no GPS, but this file was geotagged afterwards (0 deg 22' S, 36 deg 3' E)
    assert fields_of("Kodak_CX7530.jpg")["gps"] is True


@pytest.mark.parametrize("path", [("exif-org", "olympus-d320l.jpg"), ("exif-org", "sony-powershota5.jpg")])
def test_files_with_no_exif_at_all(path):
    # these keep their camera data in maker formats (Olympus APP12, Canon CIFF), not in EXIF
    decoded = decode(sample(*path))
    assert decoded.image is not None and decoded.exif is None
    assert exif_fields(decoded.exif) == {**dict.fromkeys(EXIF_FIELDS), "gps": False}


def test_xmp_no_exif_sample_does_have_exif():
    # despite its name, no_exif.jpg has an EXIF segment (written by Photoshop): no camera, no settings
    fields = fields_of("xmp", "no_exif.jpg")
    assert fields == {**dict.fromkeys(EXIF_FIELDS), "software": "Adobe Photoshop CC (Macintosh)",
                      "capture_time": "2014-09-22T10:56:35", "orientation": 1, "gps": False}


# --------------------------------------------------------------------------------------- EXIF, made here


def made_exif(ifd0: dict, sub: dict = (), gps: dict = ()) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in ifd0.items():
        exif[tag] = value
    exif.get_ifd(0x8769).update(dict(sub))
    if gps:
        exif.get_ifd(0x8825).update(dict(gps))
    return exif


def test_exif_fields_of_nothing():
    assert exif_fields(None) == {**dict.fromkeys(EXIF_FIELDS), "gps": False}
    assert exif_fields(Image.Exif()) == {**dict.fromkeys(EXIF_FIELDS), "gps": False}


def test_malformed_and_out_of_range_values_are_none():
    fields = exif_fields(made_exif(
        {0x010F: " \x00\x00", 0x0110: b"EOS\x00junk", 0x0131: 12, 0x0112: 9},
        {0x9003: "0000:00:00 00:00:00", 0x9004: "2008:02:30 10:00:00", 0x829A: IFDRational(1, 0),
         0x829D: -2.8, 0x920A: float("inf"), 0x8827: 0, 0x9209: 9969},
        {1: "N"}))
    assert fields == {**dict.fromkeys(EXIF_FIELDS), "model": "EOS", "gps": False}


def test_well_formed_values_and_fallbacks():
    fields = exif_fields(made_exif(
        {0x010F: "Make\x00", 0x0132: "2010:01:02 03:04:05", 0x0112: 6},
        {0x9003: "garbage", 0x829A: IFDRational(1, 250), 0x829D: IFDRational(28, 10),
         0x8827: (200, 400), 0x920A: 50, 0x9209: 0x19},
        {2: (43.0, 28.0, 2.8)}))
    assert fields == {"make": "Make", "model": None, "software": None, "capture_time": "2010-01-02T03:04:05",
                      "exposure_time": 0.004, "f_number": 2.8, "iso": 200, "focal_length": 50.0,
                      "flash": True, "orientation": 6, "gps": True}


def test_a_broken_ifd_spoils_only_its_own_fields():
    class BrokenIfds(Image.Exif):
        def get_ifd(self, tag):
            raise ValueError("IFD offset past the end")

    exif = BrokenIfds()
    exif[0x010F] = "Canon"
    exif[0x0132] = "2010:01:02 03:04:05"
    fields = exif_fields(exif)
    assert fields == {**dict.fromkeys(EXIF_FIELDS), "make": "Canon", "capture_time": "2010-01-02T03:04:05",
                      "gps": None}


# ----------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
def test_all_eight_orientations_come_out_upright(kind):
    reference = decode(sample("orientation", f"{kind}_1.jpg")).image
    assert reference.size == ((600, 450) if kind == "landscape" else (450, 600))
    for number in range(1, 9):
        data = sample("orientation", f"{kind}_{number}.jpg")
        decoded = decode(data)
        stored = Image.open(io.BytesIO(data))
        assert exif_fields(decoded.exif)["orientation"] == number
        assert (decoded.width, decoded.height) == stored.size
        assert decoded.image.size == reference.size, number
        assert upright_match(decoded.image, reference) > 0.97, number
        if number > 1:  # the stored pixels are not upright: the check above can fail
            assert upright_match(stored, reference) < 0.8, number


def test_orientation_of_a_tiff_is_applied_once():
    # Pillow's TIFF plugin turns the pixels itself while loading; decode must not turn them again
    image = Image.new("RGB", (40, 20), "red")
    image.paste((0, 0, 255), (0, 0, 10, 10))  # stored top-left corner
    expected_blue = {1: (0, 0), 3: (39, 19), 6: (19, 0), 8: (0, 39)}
    for orientation, corner in expected_blue.items():
        for fmt, options in (("TIFF", {"tiffinfo": {0x0112: orientation}}),
                             ("PNG", {"exif": made_exif({0x0112: orientation}).tobytes()})):
            decoded = decode(encoded(image, fmt, **options))
            assert (decoded.width, decoded.height) == (40, 20), (fmt, orientation)
            assert decoded.exif[0x0112] == orientation, (fmt, orientation)
            assert decoded.image.getpixel(corner) == (0, 0, 255), (fmt, orientation)


# ----------------------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("path, size", [
    (("invalid", "image00971.jpg"), (636, 227)),
    (("invalid", "image01088.jpg"), (425, 120)),
    (("invalid", "image01137.jpg"), (88, 64)),
    (("invalid", "image01551.jpg"), (61, 58)),
    (("invalid", "image01713.jpg"), (49, 500)),
    (("invalid", "image01980.jpg"), (284, 25)),
    (("invalid", "image02206.jpg"), (65, 65)),
    (("corrupted.jpg",), (3648, 2736)),
])
def test_invalid_samples_decode(path, size):
    # "invalid" for an EXIF parser (their only APP1 is XMP; corrupted.jpg's EXIF is damaged): their pixels
    # are whole, so every one decodes; the point is that none raises or loops
    started = time.monotonic()
    decoded = decode(sample(*path))
    assert time.monotonic() - started < 5
    assert decoded.reason is None and decoded.image is not None
    assert decoded.image.size == size and decoded.image.mode == "RGB"
    assert exif_fields(decoded.exif)["make"] == ("OLYMPUS IMAGING CORP." if path == ("corrupted.jpg",) else None)


def test_every_invalid_file_is_covered():
    names = sorted(path.name for path in shared_file(*SAMPLES, "invalid").glob("*.jpg"))
    assert names == ["image00971.jpg", "image01088.jpg", "image01137.jpg", "image01551.jpg", "image01713.jpg",
                     "image01980.jpg", "image02206.jpg"]


def test_a_real_jpeg_cut_in_half_is_truncated():
    data = sample("Canon_PowerShot_S40.jpg")
    decoded = decode(data[: len(data) // 2])
    assert (decoded.image, decoded.reason, decoded.format) == (None, "truncated", "jpeg")
    assert (decoded.width, decoded.height) == (480, 360)
    assert decoded.detail.startswith("OSError: image file is truncated")


# ---------------------------------------------------------------------------------------- made here


def noise(width=64, height=48, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_empty_and_not_an_image():
    assert decode(b"") == Decoded(None, None, None, None, "empty", "no bytes", None)
    for data in (random.Random(0).randbytes(4096), b"<html><body>not found</body></html>"):
        decoded = decode(data)
        assert (decoded.image, decoded.reason, decoded.format) == (None, "unknown_format", None)


def test_formats_that_pages_do_not_embed_stay_closed():
    # Pillow reads these, but no browser shows them, and EPS would run Ghostscript
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    for data in (encoded(noise(), "PPM"), encoded(noise(), "TGA"), eps):
        assert decode(data).reason == "unknown_format"


def test_pixel_limit():
    png = encoded(noise(100, 100), "PNG")
    decoded = decode(png, max_pixels=5000)
    assert (decoded.image, decoded.reason, decoded.width, decoded.height) == (None, "decompression_bomb", 100, 100)
    assert "10000 pixels" in decoded.detail
    assert decode(png, max_pixels=10_000).image.size == (100, 100)
    assert decode(png).image.size == (100, 100)


def test_huge_headers_are_refused_before_loading():
    png = encoded(noise(100, 100), "PNG")
    # over our limit and under Pillow's: were the pixels loaded, the missing data would say "truncated"
    over_ours = decode(with_png_size(png, 10_000, 6_000))
    assert (over_ours.reason, over_ours.width, over_ours.height) == ("decompression_bomb", 10_000, 6_000)
    assert 10_000 * 6_000 > DEFAULT_MAX_PIXELS
    # over Pillow's error limit: Image.open itself refuses it
    started = time.monotonic()
    huge = decode(with_png_size(png, 100_000, 100_000))
    assert time.monotonic() - started < 1
    assert (huge.reason, huge.width) == ("decompression_bomb", None)
    assert huge.detail.startswith("DecompressionBombError")


def test_pillow_warning_limit_does_not_fail_an_image_under_ours(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow warns over 1000 pixels, refuses over 2000
    before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a caller that turns warnings into errors
        assert decode(encoded(noise(40, 40), "PNG")).image.size == (40, 40)
        # Pillow's own refusal stays a ceiling on max_pixels
        assert decode(encoded(noise(50, 50), "PNG")).reason == "decompression_bomb"
    assert warnings.filters == before


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_cut_short_is_truncated(fmt):
    data = encoded(noise(), fmt)
    for fraction in (0.5, 0.9):
        decoded = decode(data[: int(len(data) * fraction)])
        # libwebp refuses a cut-short file inside Image.open, before Pillow names the format
        expected_format = None if fmt == "WEBP" else fmt.lower()
        assert (decoded.image, decoded.reason, decoded.format) == (None, "truncated", expected_format), fraction


def test_damaged_data_is_corrupt():
    png = bytearray(encoded(noise(), "PNG"))
    start = png.index(b"IDAT") + 4
    png[start + 100: start + 140] = bytes(40)  # zeros inside the compressed stream, CRC left stale
    decoded = decode(bytes(png))
    assert (decoded.reason, decoded.format, decoded.width) == ("corrupt", "png", 64)
    assert len(decoded.detail) <= 200


def test_reasons_are_the_published_ones():
    made = [b"", b"junk" * 10, encoded(noise(), "JPEG")[:300], with_png_size(encoded(noise(), "PNG"), 10**4, 10**4)]
    assert {decode(data).reason for data in made} <= set(SKIP_REASONS)


def test_first_frame_of_an_animation():
    frames = [Image.new("RGB", (30, 20), colour) for colour in ("red", "blue")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = decode(data)
    assert (decoded.format, decoded.image.mode, decoded.image.size) == ("gif", "RGB", (30, 20))
    assert decoded.image.getpixel((5, 5)) == (255, 0, 0)


def test_modes_become_rgb_or_l():
    cmyk = decode(encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.image.mode == "RGB"
    assert np.abs(np.asarray(cmyk.image, dtype=int) - (255, 0, 0)).max() < 8  # red

    rgba = Image.new("RGBA", (16, 16), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 8, 16))  # left half fully transparent, black underneath
    flat = decode(encoded(rgba, "PNG")).image
    assert flat.mode == "RGB"
    assert flat.getpixel((2, 2)) == (255, 255, 255) and flat.getpixel((12, 2)) == (0, 0, 255)

    grey = decode(encoded(noise().convert("L"), "JPEG")).image
    assert grey.mode == "L"

    bilevel = decode(encoded(Image.new("1", (8, 8), 1), "PNG")).image
    assert bilevel.mode == "L" and bilevel.getpixel((0, 0)) == 255

    palette = decode(encoded(noise().convert("P"), "PNG")).image
    assert palette.mode == "RGB"


def test_sixteen_bit_grey_keeps_its_levels():
    values = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21)
    for fmt in ("PNG", "TIFF"):
        decoded = decode(encoded(Image.fromarray(values), fmt))
        assert decoded.image.mode == "L"
        assert np.array_equal(np.asarray(decoded.image), (values >> 8).astype(np.uint8)), fmt

