"""The PNG encoder: every array round-trips bit-exactly through two independent decoders."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

import faceanon.io.png as png
from faceanon.io.images import save_image_atomic


def _decode_pil(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.array(im)


def _decode_cv2(data: bytes) -> np.ndarray:
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    code = cv2.COLOR_BGR2RGB if out.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    return cv2.cvtColor(out, code)


def _images():
    rng = np.random.default_rng(7)
    yield rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # noise: nothing to compress
    yield rng.integers(0, 256, (20, 31, 4), dtype=np.uint8)
    yield np.zeros((1, 1, 3), np.uint8)
    yield np.full((1, 200, 4), 255, np.uint8)
    yield np.arange(256, dtype=np.uint8).reshape(256, 1, 1).repeat(3, axis=2)  # one column
    g = np.linspace(0, 255, 300 * 400 * 3).reshape(300, 400, 3)
    yield np.ascontiguousarray(g.astype(np.uint8))  # smooth gradient (wraps through SUB)


@pytest.mark.parametrize("level", [0, 1, 3, 6])
def test_round_trip_two_decoders(level):
    for img in _images():
        data = png.encode_png(img, level=level)
        assert np.array_equal(_decode_pil(data), img)
        assert np.array_equal(_decode_cv2(data), img)


def test_zlib_fallback_writes_the_same_pixels(monkeypatch):
    img = next(iter(_images()))
    fast = png.encode_png(img)
    monkeypatch.setattr(png, "_isal", None)
    assert png.backend() == "zlib"
    slow = png.encode_png(img)
    assert np.array_equal(_decode_pil(slow), img)
    assert np.array_equal(_decode_pil(fast), _decode_pil(slow))


def test_non_contiguous_views_and_large_streams_are_split_into_idat_chunks(monkeypatch):
    monkeypatch.setattr(png, "IDAT_CHUNK", 1000)
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (80, 90, 4), dtype=np.uint8)
    view = base[::2, ::-1, :3]  # strided, reversed, channel slice
    data = png.encode_png(view)
    assert np.array_equal(_decode_pil(data), view)
    # walk the chunks: valid CRCs, several IDATs of at most 1000 bytes, IEND last
    pos, kinds = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body)
        kinds.append((kind, n))
        pos += 12 + n
    assert kinds[0][0] == b"IHDR" and kinds[-1] == (b"IEND", 0)
    idat = [n for k, n in kinds if k == b"IDAT"]
    assert len(idat) > 3 and max(idat) <= 1000
    assert {k for k, _ in kinds} == {b"IHDR", b"IDAT", b"IEND"}  # no metadata


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((4, 4, 3), np.uint16), np.zeros((0, 4, 3), np.uint8)])
def test_refuses_what_it_cannot_encode(bad):
    with pytest.raises(ValueError, match="encode_png"):
        png.encode_png(bad)


def test_level_out_of_range():
    with pytest.raises(ValueError, match="level"):
        png.encode_png(np.zeros((2, 2, 3), np.uint8), level=10)


def test_save_image_atomic_png_uses_it_and_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (64, 48, 4), dtype=np.uint8)
    target = tmp_path / "x.png"
    save_image_atomic(target, rgba)
    assert target.read_bytes() == png.encode_png(rgba)
    assert np.array_equal(_decode_pil(target.read_bytes()), rgba)
