"""Fuzzing load_image: whatever the bytes, it returns an ImageRecord or raises ImageError.

Bounded and reproducible by default (derandomized); set FACEANON_FUZZ_RANDOM=1 for fresh random
examples and FACEANON_FUZZ_EXAMPLES=<n> for a longer run.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from faceanon.errors import ImageError
from faceanon.io.images import load_image
from faceanon.types import ImageRecord

EXAMPLES = int(os.environ.get("FACEANON_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("FACEANON_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8825)[1] = "N"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = {}
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=80, exif=exif.tobytes(), icc_profile=icc)
    out["jpeg"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=60, progressive=True)
    out["jpeg_progressive"] = buf.getvalue()
    buf = io.BytesIO()
    rgba = np.dstack([rgb, rng.integers(0, 255, (24, 20), dtype=np.uint8)])
    Image.fromarray(rgba).save(buf, "PNG", exif=exif.tobytes())
    out["png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(buf, "PNG")
    out["png16"] = buf.getvalue()
    for fmt in ("TIFF", "BMP", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        out[fmt.lower()] = buf.getvalue()
    return out


SEEDS = _seed_files()


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "sample.jpg"


def check(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        rec = load_image(path, max_pixels=2_000_000)
    except ImageError as exc:
        assert exc.message and str(path) in exc.message
        return
    assert isinstance(rec, ImageRecord)
    assert rec.rgb.dtype == np.uint8 and rec.rgb.ndim == 3 and rec.rgb.shape[2] == 3
    assert rec.rgb.shape[0] >= 16 and rec.rgb.shape[1] >= 16
    assert 1 <= rec.orientation <= 8


def test_seeds_are_valid(fuzz_file):
    for name, data in SEEDS.items():
        fuzz_file.write_bytes(data)
        assert load_image(fuzz_file).rgb.shape[:2] in ((24, 20), (20, 24)), name


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes(fuzz_file, data):
    check(fuzz_file, data)


@FUZZ
@given(data=st.binary(min_size=0, max_size=512), prefix=st.sampled_from(
    [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 "]))
def test_random_bytes_with_magic(fuzz_file, data, prefix):
    check(fuzz_file, prefix + data)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 64)),
)


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in ops:
        if not buf:
            break
        pos %= len(buf)
        if kind == "flip":
            buf[pos] = arg
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = bytes([arg]) * 4
        else:
            del buf[pos:pos + arg]
    return bytes(buf)


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_valid_images(fuzz_file, seed, ops):
    check(fuzz_file, mutate(SEEDS[seed], ops))


@FUZZ
@given(seed=st.sampled_from(["jpeg", "png"]), pos=st.integers(0, 400), value=st.integers(0, 255))
def test_header_byte_flips(fuzz_file, seed, pos, value):
    """Single-byte changes in the first 400 bytes: markers, IHDR, EXIF and ICC segments."""
    data = bytearray(SEEDS[seed])
    data[pos % len(data)] = value
    check(fuzz_file, bytes(data))
