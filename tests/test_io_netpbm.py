"""Netpbm inputs (.ppm .pgm .pbm .pnm), the raw format of research image sets (faceanon.io.formats).

The files are written byte by byte by the test from the Netpbm definitions (magic number, width,
height, maxval, samples big-endian), not by Pillow's encoder, so the decode is checked against an
independent oracle: the array the bytes were made from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceanon.errors import ImageError
from faceanon.io import formats
from faceanon.io.images import list_images, load_image
from faceanon.stages.composite import composite_extension


@pytest.fixture(scope="module")
def photo(photos_dir) -> np.ndarray:
    """(H, W, 3) uint8 - a fixture photo, cropped to differing height and width."""
    rgb = np.array(Image.open(photos_dir / "kay16.jpg").convert("RGB"))
    return np.ascontiguousarray(rgb[:200, :150])


def _p6(rgb: np.ndarray, maxval: int = 255) -> bytes:
    h, w = rgb.shape[:2]
    if maxval > 255:  # 16-bit samples, most significant byte first
        samples = (rgb.astype(np.uint32) * maxval // 255).astype(">u2").tobytes()
    else:
        samples = rgb.astype(np.uint8).tobytes()
    return f"P6\n# written by the test\n{w} {h}\n{maxval}\n".encode() + samples


def test_binary_ppm_is_read_exactly(tmp_path, photo):
    (tmp_path / "takeo.ppm").write_bytes(_p6(photo))
    rec = load_image(tmp_path / "takeo.ppm")
    assert rec.fmt == "PPM" and rec.rgb.dtype == np.uint8 and rec.rgb.shape == photo.shape
    assert (rec.rgb == photo).all()


def test_ascii_ppm_and_upper_case_pnm_suffix(tmp_path, photo):
    small = photo[:20, :17]
    h, w = small.shape[:2]
    text = f"P3\n{w} {h}\n255\n" + "\n".join(" ".join(map(str, row.ravel())) for row in small) + "\n"
    (tmp_path / "a.PNM").write_text(text)
    rec = load_image(tmp_path / "a.PNM")
    assert (rec.rgb == small).all()


def test_16_bit_greyscale_pgm_is_scaled_to_8_bits(tmp_path, photo):
    grey = photo[..., 1]
    h, w = grey.shape
    samples = (grey.astype(np.uint32) * 257).astype(">u2").tobytes()  # 0..255 -> 0..65535
    (tmp_path / "g.pgm").write_bytes(f"P5 {w} {h} 65535\n".encode() + samples)
    rec = load_image(tmp_path / "g.pgm")
    assert rec.rgb.shape == (h, w, 3)
    assert (rec.rgb[..., 0] == rec.rgb[..., 2]).all()
    assert np.abs(rec.rgb[..., 0].astype(int) - grey).max() <= 1


def test_bitmap_pbm_is_black_on_white(tmp_path):
    bits = np.zeros((32, 24), bool)
    bits[8:20, 4:10] = True  # 1 = black in Netpbm
    rows = "\n".join("".join("1" if b else "0" for b in row) for row in bits)
    (tmp_path / "b.pbm").write_text(f"P1\n24 32\n{rows}\n")
    rgb = load_image(tmp_path / "b.pbm").rgb
    assert (rgb[bits] == 0).all() and (rgb[~bits] == 255).all()


def test_truncated_ppm_is_one_clear_error(tmp_path, photo):
    data = _p6(photo)
    (tmp_path / "cut.ppm").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.ppm: file is truncated or corrupt"):
        load_image(tmp_path / "cut.ppm")


def test_netpbm_files_are_listed_and_written_as_png(tmp_path, photo):
    for name in ("a.ppm", "b.PGM", "c.pbm", "d.pnm", "e.txt"):
        (tmp_path / name).write_bytes(b"x" * 50)
    assert [p.name for p in list_images(tmp_path)] == ["a.ppm", "b.PGM", "c.pbm", "d.pnm"]
    assert formats.describe_skipped(formats.skipped_files(tmp_path)) == "skipped 1 file (not images): 1 .txt"
    (tmp_path / "f.ppm").write_bytes(_p6(photo))
    rec = load_image(tmp_path / "f.ppm")
    assert composite_extension(rec) == ".png"
    plan = formats.output_plan(rec, tmp_path)
    assert plan.notes == ["Netpbm input written as PNG"] and plan.ext is None
