"""Phone photos (HEIC/HEIF, AVIF), GIF and files that are not images (faceanon.io.formats).

Every input is written by the test itself from a fixture photo: HEIC with pillow-heif (the test
extra), AVIF, GIF and WebP with Pillow.
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
from faceanon.types import ImageRecord

pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (test extra) writes the HEIC test files")


@pytest.fixture(scope="module")
def photo(photos_dir) -> np.ndarray:
    """(H, W, 3) uint8 - a fixture photo, cropped so that its height and width differ (orientation)."""
    rgb = np.array(Image.open(photos_dir / "alison1.jpg").convert("RGB"))
    return np.ascontiguousarray(rgb[:400, :300])


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _write_heic(path: Path, rgb: np.ndarray, orientation: int = 1, quality: int = 95) -> Path:
    img = Image.fromarray(rgb)
    heif = pillow_heif.from_pillow(img)
    heif.save(path, quality=quality, exif=_exif(orientation) if orientation != 1 else None)
    return path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


# ----------------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------------

def test_heic_is_read_like_a_jpeg(tmp_path, photo):
    rec = load_image(_write_heic(tmp_path / "IMG_0001.HEIC", photo))
    assert rec.fmt == "HEIF" and rec.rgb.shape == photo.shape and rec.rgb.dtype == np.uint8
    assert _psnr(rec.rgb, photo) > 35, "HEIC decode far from the photo it was written from"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_heic_orientation_gives_the_upright_photo(tmp_path, photo, orientation):
    # the photo as a phone stores it: pixels rotated, and the orientation that undoes it
    stored = {3: np.rot90(photo, 2), 6: np.rot90(photo, 1), 8: np.rot90(photo, -1)}[orientation]
    rec = load_image(_write_heic(tmp_path / "turned.heic", np.ascontiguousarray(stored), orientation))
    assert rec.rgb.shape == photo.shape, "orientation not applied (or applied twice)"
    assert _psnr(rec.rgb, photo) > 35


@pytest.mark.parametrize("orientation", [1, 6])
def test_avif_is_read_upright(tmp_path, photo, orientation):
    stored = photo if orientation == 1 else np.ascontiguousarray(np.rot90(photo, 1))
    path = tmp_path / "b.avif"
    Image.fromarray(stored).save(path, "AVIF", quality=90, exif=_exif(orientation))
    rec = load_image(path)
    assert rec.fmt == "AVIF" and rec.rgb.shape == photo.shape
    assert _psnr(rec.rgb, photo) > 30


def test_static_gif_is_read_from_its_palette(tmp_path, photo):
    pal = Image.fromarray(photo).convert("P")
    pal.save(tmp_path / "c.gif")
    rec = load_image(tmp_path / "c.gif")
    assert rec.fmt == "GIF"
    assert (rec.rgb == np.array(pal.convert("RGB"))).all()


@pytest.mark.parametrize("fmt,name", [("GIF", "anim.gif"), ("WEBP", "anim.webp"), ("PNG", "anim.png")])
def test_animations_are_refused_naming_the_frames(tmp_path, photo, fmt, name):
    frames = [Image.fromarray(photo), Image.fromarray(255 - photo), Image.fromarray(photo[::-1].copy())]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    frames[0].save(tmp_path / name, fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match=r"animated \(3 frames\).*still photos only"):
        load_image(tmp_path / name)


def test_heif_sequence_is_refused(tmp_path, photo):
    heif = pillow_heif.from_pillow(Image.fromarray(photo))
    heif.add_from_pillow(Image.fromarray(255 - photo))
    heif.save(tmp_path / "burst.heic", quality=80)
    with pytest.raises(ImageError, match=r"image sequence \(2 frames\)"):
        load_image(tmp_path / "burst.heic")


def test_broken_heic_is_one_clear_error(tmp_path, photo):
    data = _write_heic(tmp_path / "whole.heic", photo).read_bytes()
    broken = tmp_path / "broken.heic"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(broken)
    line = info.value.one_line()
    assert "broken.heic" in line and ("truncated or corrupt" in line or "damaged or incomplete" in line)
    assert "\n" not in line


def test_missing_heif_decoder_names_the_package(tmp_path, photo, monkeypatch):
    path = _write_heic(tmp_path / "a.heic", photo)
    monkeypatch.setitem(formats._HEIF_STATE, "error", "reading HEIC/HEIF needs the pi-heif package (pip install pi-heif)")
    assert "HEIF" not in formats.decode_formats(("JPEG",))
    with pytest.raises(ImageError, match=r"a\.heic: not a supported image \(reading HEIC/HEIF needs the pi-heif"):
        load_image(path)


# ----------------------------------------------------------------------------------------------
# discovery, output names and formats
# ----------------------------------------------------------------------------------------------

def test_list_images_takes_phone_photos_gif_and_dicom_and_skipped_files_are_named(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["a.heic", "b.HEIF", "c.avif", "d.gif", "e.dcm", "f.jpg", "notes.txt", "x.xyz", "DICOMDIR",
                 "sub/g.xyz", ".DS_Store"]:
        (tmp_path / name).write_bytes(b"x" * 200)
    (tmp_path / "IM000001").write_bytes(b"\x00" * 128 + b"DICM" + b"\x00" * 10)  # a PACS export name
    (tmp_path / "1.2.840.99").write_bytes(b"\x00" * 128 + b"DICM")  # a UID-named export
    (tmp_path / "noext").write_bytes(b"not dicom at all" * 20)
    got = [p.name for p in list_images(tmp_path)]
    assert got == ["1.2.840.99", "a.heic", "b.HEIF", "c.avif", "d.gif", "e.dcm", "f.jpg", "IM000001"]
    skipped = formats.skipped_files(tmp_path)
    assert sorted(p.name for p in skipped) == ["DICOMDIR", "noext", "notes.txt", "x.xyz"]
    assert formats.describe_skipped(skipped) == \
        "skipped 4 files (not images): 1 .txt, 1 .xyz, 1 DICOMDIR, 1 without extension"
    assert "g.xyz" in [p.name for p in formats.skipped_files(tmp_path, recursive=True)]
    assert formats.describe_skipped([]) is None


@pytest.mark.parametrize("name,fmt,ext", [("a.heic", "HEIF", ".jpg"), ("a.HIF", "HEIF", ".jpg"),
                                          ("b.avif", "AVIF", ".jpg"), ("c.gif", "GIF", ".png"),
                                          ("IM0001", "DICOM", ".png"), ("phone.jpg", "HEIF", ".jpg")])
def test_read_only_formats_get_a_written_format(tmp_path, name, fmt, ext):
    rec = ImageRecord(path=tmp_path / name, rgb=np.zeros((16, 16, 3), np.uint8), fmt=fmt)
    assert composite_extension(rec) == ext


@pytest.mark.parametrize("fmt,lossless,note", [
    ("HEIF", False, "HEIC/HEIF input written as JPEG (quality 95; --lossless writes PNG)"),
    ("HEIF", True, "HEIC/HEIF input written as PNG"),
    ("AVIF", False, "AVIF input written as JPEG (quality 95; --lossless writes PNG)"),
    ("GIF", False, "GIF input written as PNG"),
    ("JPEG", False, None), ("PNG", True, None)])
def test_output_plan_notes_the_format_change(tmp_path, fmt, lossless, note):
    rec = ImageRecord(path=tmp_path / "a.x", rgb=np.zeros((16, 16, 3), np.uint8), fmt=fmt)
    plan = formats.output_plan(rec, tmp_path, lossless=lossless)
    assert plan.notes == ([note] if note else [])
    assert plan.ext is None and plan.write is None  # the pipeline's extension and writer are kept
