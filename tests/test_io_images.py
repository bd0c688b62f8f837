"""faceanon.io.images: discovery, output names, decoding policy, saving without metadata.

Every test image is generated here at test time (no binary fixtures).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from faceanon.errors import ImageError, OutputError, UsageError
from faceanon.io import images as images_mod
from faceanon.io.images import (
    IMAGE_EXTENSIONS,
    estimate_jpeg_quality,
    list_images,
    load_image,
    output_stems,
    save_image_atomic,
)
from faceanon.types import ImageRecord


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def asymmetric(h: int = 24, w: int = 40) -> np.ndarray:
    """An RGB image with no symmetry: every pixel value encodes its (row, col)."""
    r, c = np.mgrid[0:h, 0:w]
    return np.stack([r * 10 % 256, c * 6 % 256, (r * 7 + c * 3) % 256], axis=2).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png_header(w: int, h: int) -> bytes:
    """A tiny PNG file whose IHDR declares w×h RGB pixels (the data is a few bytes only)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def jpeg_bytes(rgb: np.ndarray, quality: int = 90, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def opened_mode(path) -> str:
    with Image.open(path) as im:
        return im.mode


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(orientation: int | None = None, gps: bool = False, make: str | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
        exif[0x927C] = b"MAKERNOTE-SECRET"
    if gps:
        g = exif.get_ifd(0x8825)
        g[1] = "N"
        g[2] = (45.0, 30.0, 12.5)
        g[3] = "E"
        g[4] = (9.0, 11.0, 7.25)
    return exif.tobytes()


def expected_upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """The displayed image for an EXIF orientation, straight from the tag's definition
    (where the stored row 0 / column 0 end up), written with explicit index maps."""
    h, w = stored.shape[:2]
    i, j = np.mgrid[0:h, 0:w]
    rows_cols = {
        1: (i, j, h, w), 2: (i, w - 1 - j, h, w), 3: (h - 1 - i, w - 1 - j, h, w), 4: (h - 1 - i, j, h, w),
        5: (j, i, w, h), 6: (j, h - 1 - i, w, h), 7: (w - 1 - j, h - 1 - i, w, h), 8: (w - 1 - j, i, w, h),
    }
    rr, cc, oh, ow = rows_cols[orientation]
    out = np.zeros((oh, ow, 3), np.uint8)
    out[rr, cc] = stored[i, j]
    return out


# ----------------------------------------------------------------------------------------------
# list_images / output_stems
# ----------------------------------------------------------------------------------------------

def test_image_extensions_cover_the_brief():
    assert IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                                ".heic", ".heif", ".hif", ".avif", ".gif", ".ppm", ".pgm", ".pbm", ".pnm",
                                ".dcm", ".dicom"}


def test_list_images_filters_sorts_and_skips_hidden(tmp_path):
    for name in ["b.JPG", "a.png", "C.Jpeg", "d.tiff", "e.TIF", "f.webp", "g.bmp", "notes.txt", "h.gif",
                 ".hidden.jpg", "._mac.jpg", ".x.png.0123456789abcdef.tmp", "noext"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dir.jpg").mkdir()  # a folder named like an image
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.jpg").write_bytes(b"x")
    got = [p.name for p in list_images(tmp_path)]
    assert got == ["a.png", "b.JPG", "C.Jpeg", "d.tiff", "e.TIF", "f.webp", "g.bmp", "h.gif"]


def test_list_images_recursive_skips_hidden_folders_and_is_deterministic(tmp_path):
    for rel in ["b/2.jpg", "b/1.png", "a.jpg", "A/x.jpg", ".git/y.jpg", "b/.cache/z.png", "c/d/e.webp"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert got == ["A/x.jpg", "a.jpg", "b/1.png", "b/2.jpg", "c/d/e.webp"]
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg"]


def test_list_images_single_file_and_errors(tmp_path):
    f = tmp_path / "one photo.JPG"
    f.write_bytes(b"x")
    assert list_images(f) == [f]
    with pytest.raises(UsageError, match="not found"):
        list_images(tmp_path / "missing")
    t = tmp_path / "notes.txt"
    t.write_text("hi")
    with pytest.raises(UsageError, match="not a supported image"):
        list_images(t)


def test_output_stems_plain_and_unicode(tmp_path):
    paths = [tmp_path / "my photo.jpg", tmp_path / "visage é 写真.png", tmp_path / "a.b.jpeg"]
    stems = output_stems(paths, tmp_path)
    assert stems == {paths[0]: "my photo", paths[1]: "visage é 写真", paths[2]: "a.b"}


def test_output_stems_same_stem_different_extensions(tmp_path):
    a_jpg, a_png, b = tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "b.png"
    stems = output_stems([a_png, b, a_jpg], tmp_path)
    assert stems == {a_jpg: "a_jpg", a_png: "a_png", b: "b"}
    # order of the input list does not matter
    assert output_stems([a_jpg, a_png, b], tmp_path) == stems


def test_output_stems_case_insensitive_and_second_round_collisions(tmp_path):
    p = [tmp_path / n for n in ["a.jpg", "A.JPG", "a.png", "a_jpg.png", "X.png", "x.jpg"]]
    stems = output_stems(p, tmp_path)
    values = list(stems.values())
    assert len({v.casefold() for v in values}) == len(values), stems
    assert stems[tmp_path / "a_jpg.png"] == "a_jpg"  # unchanged names keep priority
    assert stems[tmp_path / "a.png"] == "a_png"
    assert {stems[tmp_path / "a.jpg"], stems[tmp_path / "A.JPG"]} == {"a_jpg_2", "A_jpg_3"} or \
        {stems[tmp_path / "a.jpg"].casefold(), stems[tmp_path / "A.JPG"].casefold()} == {"a_jpg_2", "a_jpg_3"}
    assert stems[tmp_path / "X.png"] == "X_png" and stems[tmp_path / "x.jpg"] == "x_jpg"


def test_output_stems_keep_relative_folder_when_recursive(tmp_path):
    p1, p2, p3 = tmp_path / "s1" / "a.jpg", tmp_path / "s2" / "deep" / "a.jpg", tmp_path / "a.jpg"
    stems = output_stems([p1, p2, p3], tmp_path)
    assert stems == {p1: "s1/a", p2: "s2/deep/a", p3: "a"}


def test_output_stems_replace_unsafe_characters(tmp_path):
    p = tmp_path / 'we:ird?na*me"<x>|.jpg'
    assert output_stems([p], tmp_path)[p] == "we_ird_na_me__x__"


# ----------------------------------------------------------------------------------------------
# load_image: bad inputs
# ----------------------------------------------------------------------------------------------

def test_zero_byte_file(tmp_path):
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: file is empty \(0 bytes\)"):
        load_image(f)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path / "d.png")


def test_text_file_named_jpg(tmp_path):
    f = tmp_path / "fake.jpg"
    f.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError) as ei:
        load_image(f)
    assert "fake.jpg" in ei.value.message and "text file" in ei.value.message


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg(tmp_path, cut):
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    f = tmp_path / "trunc.jpg"
    f.write_bytes(data[: int(len(data) * cut)])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageError, match=r"trunc\.jpg: file is truncated or corrupt"):
        load_image(f)


def test_truncated_png(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    f = tmp_path / "trunc.png"
    f.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="trunc.png"):
        load_image(f)


def test_one_pixel_image(tmp_path):
    f = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(f)
    with pytest.raises(ImageError, match=r"image is 1×1 px, too small to hold a face"):
        load_image(f)
    small = tmp_path / "tex.png"
    Image.new("RGB", (8, 4), (1, 2, 3)).save(small)
    with pytest.raises(ImageError, match=r"image is 8×4 px, too small"):
        load_image(small)
    assert load_image(small, min_side=1).rgb.shape == (4, 8, 3)  # e.g. a tiny texture atlas
    assert load_image(f, min_side=1).rgb.tolist() == [[[255, 0, 0]]]


def test_huge_header_refused_before_decoding(tmp_path, monkeypatch):
    f = tmp_path / "bomb.png"
    f.write_bytes(huge_png_header(30000, 30000))
    assert f.stat().st_size < 200
    calls = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(1) or real_load(self))
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as ei:
        load_image(f)
    assert time.perf_counter() - t0 < 1.0
    assert calls == []  # no pixel decoded
    assert "image is 30000×30000 (900 MP), above --max-pixels 60000000" in ei.value.message
    assert "bomb.png" in ei.value.message
    # Pillow's own DecompressionBombError / warning never leaks, whatever its limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="above --max-pixels 60000000"):
        load_image(f)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_max_pixels_parameter(tmp_path):
    f = tmp_path / "p.png"
    Image.fromarray(asymmetric(100, 200)).save(f)
    with pytest.raises(ImageError, match=r"image is 200×100 \(0.0 MP\), above --max-pixels 19999"):
        load_image(f, max_pixels=19_999)
    assert load_image(f, max_pixels=20_000).rgb.shape == (100, 200, 3)
    assert load_image(f, max_pixels=None).rgb.shape == (100, 200, 3)


def test_unexpected_exceptions_are_wrapped(tmp_path, monkeypatch):
    f = tmp_path / "ok.png"
    Image.fromarray(asymmetric()).save(f)

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(images_mod, "_to_rgb", boom)
    with pytest.raises(ImageError, match=r"ok\.png: cannot read the image \(RuntimeError: kaboom\)"):
        load_image(f)


def test_damaged_heic_and_gif_are_explained(tmp_path):
    heic = tmp_path / "phone.jpg"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100)
    with pytest.raises(ImageError, match="HEIC/HEIF file is damaged or incomplete"):
        load_image(heic)
    gif = tmp_path / "cut.gif"
    gif.write_bytes(b"GIF89a\x00")
    with pytest.raises(ImageError, match="GIF file is damaged or incomplete"):
        load_image(gif)


# ----------------------------------------------------------------------------------------------
# load_image: modes
# ----------------------------------------------------------------------------------------------

def check_record(rec: ImageRecord, h: int, w: int) -> None:
    assert isinstance(rec, ImageRecord)
    assert rec.rgb.dtype == np.uint8 and rec.rgb.shape == (h, w, 3)
    assert rec.rgb.flags.c_contiguous and rec.rgb.flags.writeable


def test_rgb_png_exact_and_file_untouched(tmp_path):
    rgb = asymmetric()
    f = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(f)
    before = (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
    rec = load_image(f)
    check_record(rec, 24, 40)
    assert np.array_equal(rec.rgb, rgb)
    assert rec.fmt == "PNG" and rec.jpeg_quality is None and rec.orientation == 1 and rec.icc is None
    assert rec.path == f
    assert (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) == before


def test_16bit_png_scaled_not_clipped(tmp_path):
    values = np.array([0, 1, 128, 129, 257, 32767, 32896, 65279, 65535], dtype=np.uint16)
    gray = np.tile(values, (16, 2))  # 16 × 18
    f = tmp_path / "deep.png"
    Image.fromarray(gray).save(f)
    assert opened_mode(f).startswith("I")
    rec = load_image(f)
    check_record(rec, 16, 18)
    got = rec.rgb[0, :9, 0]
    assert got.tolist() == [0, 0, 0, 1, 1, 127, 128, 254, 255]
    assert got.tolist() == np.round(values / 257).astype(int).tolist()
    assert np.array_equal(rec.rgb[..., 0], rec.rgb[..., 1]) and np.array_equal(rec.rgb[..., 1], rec.rgb[..., 2])


@pytest.mark.parametrize("mode", ["I;16B", "I;16", "I"])
def test_16bit_tiff_variants(tmp_path, mode):
    values = np.array([0, 32896, 65535, 257], dtype=np.uint16)
    arr = np.tile(values, (16, 4))
    if mode == "I":
        img = Image.fromarray(arr.astype(np.int32))
    elif mode == "I;16B":
        img = Image.frombytes("I;16B", (arr.shape[1], arr.shape[0]), arr.astype(">u2").tobytes())
    else:
        img = Image.fromarray(arr)
    assert img.mode == mode
    f = tmp_path / f"deep_{mode.replace(';', '')}.tif"
    img.save(f)
    rec = load_image(f)
    assert rec.rgb[0, :4, 0].tolist() == [0, 128, 255, 1]


def test_cmyk_jpeg(tmp_path):
    cmyk = np.zeros((32, 32, 4), np.uint8)
    cmyk[:, :16, 0] = 255  # cyan
    cmyk[:, 16:, 3] = 255  # black
    f = tmp_path / "cmyk.jpg"
    Image.frombytes("CMYK", (32, 32), cmyk.tobytes()).save(f, quality=95)
    assert opened_mode(f) == "CMYK"
    rec = load_image(f)
    check_record(rec, 32, 32)
    cyan, black = rec.rgb[16, 4].astype(int), rec.rgb[16, 28].astype(int)
    assert cyan[0] < 40 and cyan[1] > 215 and cyan[2] > 215
    assert black.max() < 40
    assert rec.fmt == "JPEG" and rec.jpeg_quality == 95


def test_grayscale_and_one_bit(tmp_path):
    g = (np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32)
    f = tmp_path / "gray.png"
    Image.fromarray(g).save(f)
    rec = load_image(f)
    assert all(np.array_equal(rec.rgb[..., c], g) for c in range(3))
    b = tmp_path / "bits.png"
    Image.fromarray(g > 127).convert("1").save(b)
    assert opened_mode(b) == "1"
    rec = load_image(b)
    assert set(np.unique(rec.rgb).tolist()) <= {0, 255}
    assert np.array_equal(rec.rgb[..., 0] == 255, g > 127)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((16, 20, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere, including under transparent pixels
    rgba[:, :5, 3] = 0
    rgba[:, 5:10, 3] = 255
    rgba[:, 10:, 3] = 128
    f = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(f)
    rec = load_image(f)
    assert rec.rgb[0, 0].tolist() == [255, 255, 255]  # hidden red must not leak
    assert rec.rgb[0, 7].tolist() == [200, 0, 0]
    assert rec.rgb[0, 15].tolist() == [round((200 * 128 + 255 * 127) / 255), 127, 127]


def test_la_png(tmp_path):
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0] = 50
    la[:8, :, 1] = 255
    f = tmp_path / "la.png"
    Image.frombytes("LA", (16, 16), la.tobytes()).save(f)
    rec = load_image(f)
    assert rec.rgb[0, 0].tolist() == [50, 50, 50] and rec.rgb[15, 0].tolist() == [255, 255, 255]


def test_palette_png_with_transparency(tmp_path):
    px = np.zeros((16, 16), np.uint8)
    px[:, 8:] = 1
    p = Image.frombytes("P", (16, 16), px.tobytes())
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    f = tmp_path / "pal.png"
    p.save(f, transparency=1)
    rec = load_image(f)
    assert rec.rgb[0, 0].tolist() == [255, 0, 0]
    assert rec.rgb[0, 15].tolist() == [255, 255, 255]
    f2 = tmp_path / "pal_opaque.png"
    p.save(f2)
    assert load_image(f2).rgb[0, 15].tolist() == [0, 0, 255]


@pytest.mark.parametrize("ext,fmt", [(".bmp", "BMP"), (".webp", "WEBP"), (".tiff", "TIFF")])
def test_other_formats(tmp_path, ext, fmt):
    rgb = asymmetric()
    f = tmp_path / f"img{ext}"
    Image.fromarray(rgb).save(f, **({"lossless": True} if fmt == "WEBP" else {}))
    rec = load_image(f)
    assert rec.fmt == fmt and np.array_equal(rec.rgb, rgb)


def test_extension_does_not_matter(tmp_path):
    f = tmp_path / "really_a_png.jpg"
    Image.fromarray(asymmetric()).save(f, "PNG")
    assert load_image(f).fmt == "PNG"


def test_jpeg_quality_estimate(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    for q in (20, 50, 75, 87, 95, 100):
        f = tmp_path / f"q{q}.jpg"
        f.write_bytes(jpeg_bytes(rgb, quality=q))
        assert load_image(f).jpeg_quality == q
    ok, enc = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 63])
    f = tmp_path / "cv.jpg"
    f.write_bytes(enc.tobytes())
    assert load_image(f).jpeg_quality == 63
    assert estimate_jpeg_quality(None) is None and estimate_jpeg_quality({}) is None


def test_icc_kept_in_record(tmp_path):
    icc = srgb_icc()
    f = tmp_path / "icc.jpg"
    f.write_bytes(jpeg_bytes(asymmetric(), icc_profile=icc))
    assert load_image(f).icc == icc


def test_non_rgb_icc_is_not_kept(tmp_path):
    gray_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB space
    f = tmp_path / "g.png"
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(f, icc_profile=gray_icc)
    rec = load_image(f)
    assert rec.icc is None and rec.rgb.shape == (16, 16, 3)


# ----------------------------------------------------------------------------------------------
# EXIF orientation
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_png_exact(tmp_path, orientation):
    stored = asymmetric(24, 40)
    f = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored).save(f, exif=exif_bytes(orientation))
    rec = load_image(f)
    assert rec.orientation == orientation
    assert np.array_equal(rec.rgb, expected_upright(stored, orientation))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg(tmp_path, orientation):
    stored = np.zeros((48, 80, 3), np.uint8)  # big flat blocks survive JPEG
    stored[:16, :32] = (255, 0, 0)
    stored[32:, 48:] = (0, 0, 255)
    stored[:16, 64:] = (0, 255, 0)
    f = tmp_path / f"o{orientation}.jpg"
    f.write_bytes(jpeg_bytes(stored, quality=95, exif=exif_bytes(orientation)))
    rec = load_image(f)
    want = expected_upright(stored, orientation)
    assert rec.rgb.shape == want.shape and rec.orientation == orientation
    assert np.abs(rec.rgb.astype(int) - want.astype(int)).mean() < 4
    # OpenCV applies the EXIF orientation too: an independent decoder agrees
    cv = cv2.imread(str(f), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert np.abs(rec.rgb.astype(int) - cv.astype(int)).max() <= 8


def test_bad_exif_orientation_values_are_ignored(tmp_path):
    for value in (0, 9, 300):
        f = tmp_path / f"bad{value}.png"
        Image.fromarray(asymmetric()).save(f, exif=exif_bytes(value))
        rec = load_image(f)
        assert rec.orientation == 1 and np.array_equal(rec.rgb, asymmetric())


def test_unicode_and_spaces_in_names(tmp_path):
    folder = tmp_path / "patient ü 病人"
    folder.mkdir()
    f = folder / "face photo é 写真.JPG"
    f.write_bytes(jpeg_bytes(asymmetric(32, 32)))
    [found] = list_images(folder)
    assert found == f
    rec = load_image(found)
    assert rec.rgb.shape == (32, 32, 3)
    assert output_stems([found], folder)[found] == "face photo é 写真"


# ----------------------------------------------------------------------------------------------
# save_image_atomic
# ----------------------------------------------------------------------------------------------

SECRET = "SECRETCAM-9000"


def _metadata_free(path: Path) -> None:
    raw = path.read_bytes()
    assert SECRET.encode() not in raw and b"MAKERNOTE-SECRET" not in raw
    with Image.open(path) as im:
        im.load()
        exif = im.getexif()
        assert 0x8825 not in exif and 0x0112 not in exif and 0x010F not in exif and 0x927C not in exif
        assert not exif.get_ifd(0x8825)
        assert "exif" not in im.info and "xmp" not in im.info


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".png", ".webp", ".tif"])
def test_save_drops_exif_gps_keeps_icc(tmp_path, ext):
    icc = srgb_icc()
    src = tmp_path / "src.jpg"
    src.write_bytes(jpeg_bytes(asymmetric(32, 48), quality=95, icc_profile=icc,
                               exif=exif_bytes(6, gps=True, make=SECRET)))
    with Image.open(src) as im:  # the source really carries all of it
        assert im.getexif().get_ifd(0x8825) and im.info.get("icc_profile") == icc
    rec = load_image(src)
    assert rec.icc == icc and rec.rgb.shape == (48, 32, 3)
    out = tmp_path / f"out{ext}"
    save_image_atomic(out, rec.rgb, icc=rec.icc)
    _metadata_free(out)
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
        assert im.size == (32, 48)  # orientation baked in: no tag needed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_save_without_icc_and_bmp(tmp_path):
    rgb = asymmetric()
    for ext in (".png", ".bmp", ".jpg"):
        out = tmp_path / f"plain{ext}"
        save_image_atomic(out, rgb)
        with Image.open(out) as im:
            assert "icc_profile" not in im.info or not im.info["icc_profile"]
    assert np.array_equal(pixels(tmp_path / "plain.png"), rgb)
    assert np.array_equal(pixels(tmp_path / "plain.bmp"), rgb)


def test_save_jpeg_quality_and_rgba_png(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = tmp_path / "q.jpg"
    save_image_atomic(out, rgb, jpeg_quality=80)
    assert load_image(out).jpeg_quality == 80
    rgba = np.dstack([rgb, np.full((32, 32), 7, np.uint8)])
    save_image_atomic(tmp_path / "a.png", rgba, png_compress=9)
    assert np.array_equal(pixels(tmp_path / "a.png"), rgba)
    with pytest.raises(ValueError, match="alpha"):
        save_image_atomic(tmp_path / "a.jpg", rgba)
    with pytest.raises(ValueError, match="uint8"):
        save_image_atomic(tmp_path / "f.png", rgb.astype(np.float32))
    with pytest.raises(OutputError, match="unsupported image extension"):
        save_image_atomic(tmp_path / "x.gif", rgb)
    assert not (tmp_path / "a.jpg").exists()


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_save_failure_leaves_nothing(tmp_path, monkeypatch, exc_type):
    out = tmp_path / "out.jpg"  # encoded by Pillow (PNGs without ICC go through OpenCV, tested below)
    real_save = Image.Image.save

    def half_then_fail(self, fp, *args, **kw):
        fp.write(b"\x89PNG partial")
        raise exc_type("interrupted")

    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    with pytest.raises(exc_type):
        save_image_atomic(out, asymmetric())
    assert list(tmp_path.iterdir()) == []
    # an existing output survives a failed rewrite
    monkeypatch.setattr(Image.Image, "save", real_save)
    save_image_atomic(out, asymmetric())
    good = out.read_bytes()
    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    with pytest.raises(exc_type):
        save_image_atomic(out, asymmetric() // 2)
    assert out.read_bytes() == good and list(tmp_path.iterdir()) == [out]


def test_save_disk_full_is_output_error(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "o.png"
    with pytest.raises(OutputError) as ei:
        save_image_atomic(out, asymmetric())
    assert ei.value.message == f"cannot write {out}: no space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_png_fast_path_failure_leaves_nothing(tmp_path, monkeypatch, exc_type):
    """The OpenCV PNG path is atomic too: a failure while the bytes are written leaves no file."""
    import faceanon.io.atomic as atomic_mod

    out = tmp_path / "out.png"
    save_image_atomic(out, asymmetric())
    good = out.read_bytes()
    real_fdopen = atomic_mod.os.fdopen

    class Failing:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[:10])
            raise exc_type("interrupted")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return self.fh.__exit__(*a)

    monkeypatch.setattr(atomic_mod.os, "fdopen", lambda *a, **k: Failing(real_fdopen(*a, **k)))
    with pytest.raises(exc_type):
        save_image_atomic(out, asymmetric() // 2)
    assert out.read_bytes() == good and list(tmp_path.iterdir()) == [out]


def test_png_fast_path_round_trips_rgb_and_rgba(tmp_path):
    rgb = asymmetric()
    save_image_atomic(tmp_path / "a.png", rgb)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png").convert("RGB")), rgb)
    rgba = np.dstack([rgb, np.arange(rgb.shape[0] * rgb.shape[1], dtype=np.uint32).reshape(rgb.shape[:2]) % 256]).astype(np.uint8)
    save_image_atomic(tmp_path / "b.png", rgba)
    back = Image.open(tmp_path / "b.png")
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back), rgba)


def test_output_stems_keep_clear_of_extra_face_names(tmp_path):
    """`a_face1.jpg` next to `a.png` would share anon/a_face1/ with a's second face: renamed."""
    root = tmp_path
    (root / "sub").mkdir()
    got = output_stems([root / "a.png", root / "a_face1.jpg", root / "b_face2.jpg", root / "sub" / "c.jpg",
                        root / "sub" / "c_FACE3.png"], root)
    assert got[root / "a.png"] == "a"
    assert got[root / "a_face1.jpg"] == "a_face1_img"
    assert got[root / "b_face2.jpg"] == "b_face2"  # no image "b": nothing to collide with
    assert got[root / "sub" / "c_FACE3.png"] == "sub/c_FACE3_img"
    assert len(set(got.values())) == len(got)
