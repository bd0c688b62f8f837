"""A corpus of awkward and broken input images, generated at test time (nothing is committed).

:func:`build_corpus` writes every case into one folder and returns the :class:`Case` list that says,
for each file, what ``faceanon run`` must do with it:

* ``FAIL``: exactly one line naming the file and a reason matching ``Case.reason`` (a regex), the
  reason recorded in report.json;
* ``OK``: processed like any photo (the odd layouts: 16-bit, CMYK, grey, RGBA, palette, EXIF
  orientations, unusual names, two inputs with one stem);
* ``EITHER``: succeeds, or fails with a clear reason (``Case.reason``) - never an internal error.

The face cases are made from the project's fixture photos (``shared/fixtures/photos``), downscaled
by ``scale`` so that a run stays fast. Every generated file is checked here against an independent
decoder (Pillow's own ``ImageOps.exif_transpose`` for the orientations), so a wrong corpus fails
loudly instead of silently testing nothing.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

FAIL, OK, EITHER = "fail", "ok", "either"

#: Face box of alison1.jpg in the fixture photo (x1, y1, x2, y2), from the lite model's reference numbers (docs/lite_model.md, section 6).
ALISON_BOX = (144.27, 156.20, 355.40, 422.38)


@dataclass(frozen=True)
class Case:
    kind: str  # short id (pytest parameter id)
    name: str  # file name inside the corpus folder
    expect: str  # FAIL | OK | EITHER
    reason: str = ""  # regex the failure reason must match (FAIL; EITHER when it fails)
    note: str = ""

    def matches(self, reason: str) -> bool:
        return re.search(self.reason, reason) is not None


# ---------------------------------------------------------------------------------------- pixels

def face_photo(photos_dir: Path, name: str = "alison1.jpg", scale: float = 1.0) -> np.ndarray:
    """A fixture photo as upright RGB uint8, downscaled by ``scale`` (area filter)."""
    with Image.open(photos_dir / name) as im:
        im = im.convert("RGB")
        if scale != 1.0:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)
        return np.asarray(im).copy()


def jpeg_bytes(rgb: np.ndarray, *, quality: int = 95, exif: Image.Exif | None = None, mode: str | None = None) -> bytes:
    im = Image.fromarray(rgb)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    kw = {"exif": exif.tobytes()} if exif is not None else {}
    im.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png_bytes(img: np.ndarray | Image.Image) -> bytes:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png16_rgb(rgb: np.ndarray, seed: int = 0) -> bytes:
    """A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16) with real low-byte content.

    Written by hand: Pillow cannot write 16-bit RGB.
    """
    h, w, _ = rgb.shape
    noise = np.random.default_rng(seed).integers(-120, 121, rgb.shape)
    v = np.clip(rgb.astype(np.int64) * 257 + noise, 0, 65535).astype(">u2")
    raw = b"".join(b"\x00" + v[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A *valid* 1-bit grey PNG of ``width``×``height`` zeros: ~0.1 MB on disk, ~900 MB decoded.

    Only a size check made from the header, before decoding, keeps a loader from allocating it.
    """
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    block = row * 1000
    parts = []
    for start in range(0, height, 1000):
        parts.append(comp.compress(block if height - start >= 1000 else row * (height - start)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that a viewer applying EXIF ``orientation`` shows ``upright``."""
    if orientation == 3:  # viewer rotates 180
        return np.ascontiguousarray(upright[::-1, ::-1])
    if orientation == 6:  # viewer rotates 90 clockwise -> stored rotated 90 counter-clockwise
        return np.ascontiguousarray(np.rot90(upright, k=1))
    if orientation == 8:  # viewer rotates 90 counter-clockwise -> stored rotated 90 clockwise
        return np.ascontiguousarray(np.rot90(upright, k=-1))
    raise ValueError(f"orientation {orientation} not used here")


def oriented_jpeg(upright: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_bytes(stored_for_orientation(upright, orientation), quality=97, exif=exif)
    # independent check of the corpus itself: Pillow's viewer-side transpose gives the upright image back
    with Image.open(io.BytesIO(data)) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.int16)
    assert shown.shape == upright.shape, (orientation, shown.shape, upright.shape)
    assert np.abs(shown - upright).mean() < 4.0, orientation
    return data


# ---------------------------------------------------------------------------------------- corpus

#: Names the corpus uses for its upright reference and its oriented copies.
UPRIGHT = "upright.jpg"
ORIENTED = {3: "orient3.jpg", 6: "orient6.jpg", 8: "orient8.jpg"}
SAME_STEM = ("pair.jpg", "pair.png")
UNICODE_NAMES = ("patient 07 – Zoë Ñúñez.jpg", "写真 1.jpg")


def build_corpus(folder: Path, photos_dir: Path, *, scale: float = 0.6) -> list[Case]:
    """Write the whole corpus into ``folder`` (created) and return its cases, sorted by name."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(case: Case, data: bytes) -> None:
        (folder / case.name).write_bytes(data)
        cases.append(case)

    alison = face_photo(photos_dir, "alison1.jpg", scale)

    # -- unreadable files
    add(Case("zero_bytes", "empty.jpg", FAIL, r"empty \(0 bytes\)"), b"")
    full = jpeg_bytes(face_photo(photos_dir, "catherine1.jpg", scale), quality=90)
    add(Case("truncated_jpeg", "truncated.jpg", FAIL, r"truncated or corrupt"), full[: len(full) * 2 // 5])
    add(Case("text_as_jpg", "notes.jpg", FAIL, r"text file"),
        b"Patient notes\nThis is not a photo, somebody renamed a .txt to .jpg.\n" * 20)
    add(Case("one_pixel", "one_pixel.png", FAIL, r"1×1 px.*too small"), png_bytes(np.full((1, 1, 3), 128, np.uint8)))
    add(Case("huge_header", "huge.png", FAIL, r"30000×30000 .*above --max-pixels",
             note="a valid 900 MP PNG: must be refused from its header, never decoded"), png_bomb())

    # -- odd layouts of a real face photo: all must work
    add(Case("png_16bit", "deep16.png", OK), png16_rgb(face_photo(photos_dir, "kay16.jpg", scale)))
    add(Case("cmyk_jpeg", "cmyk.jpg", OK), jpeg_bytes(face_photo(photos_dir, "caroline1.jpg", scale), mode="CMYK"))
    add(Case("grayscale", "grey_face.jpg", OK), jpeg_bytes(face_photo(photos_dir, "jenni7.jpg", scale), mode="L"))
    joanna = face_photo(photos_dir, "joanna1.jpg", scale)
    alpha = np.full(joanna.shape[:2], 255, np.uint8)
    alpha[:, : joanna.shape[1] // 8] = 0  # a transparent strip at the left border
    add(Case("rgba", "rgba.png", OK), png_bytes(np.dstack([joanna, alpha])))
    add(Case("palette", "palette.png", OK),
        png_bytes(Image.fromarray(face_photo(photos_dir, "kim3.jpg", scale)).quantize(256)))

    # -- EXIF orientations: upright reference + three tagged copies of the same pixels
    add(Case("upright", UPRIGHT, OK), jpeg_bytes(alison, quality=97))
    for o, name in ORIENTED.items():
        add(Case(f"exif_orientation_{o}", name, OK), oriented_jpeg(alison, o))

    # -- names
    add(Case("name_spaces_accents", UNICODE_NAMES[0], OK), jpeg_bytes(face_photo(photos_dir, "barry12.jpg", scale)))
    add(Case("name_cjk", UNICODE_NAMES[1], OK), jpeg_bytes(face_photo(photos_dir, "dbell1.jpg", scale)))
    add(Case("same_stem_jpg", SAME_STEM[0], OK), jpeg_bytes(face_photo(photos_dir, "bfegan1.jpg", scale)))
    add(Case("same_stem_png", SAME_STEM[1], OK), png_bytes(face_photo(photos_dir, "dpearson5.jpg", scale)))

    # -- faces the detector must not (or may not) find
    add(Case("no_face", "flat_grey.png", FAIL, r"no face found"), png_bytes(np.full((240, 320, 3), 128, np.uint8)))
    add(Case("face_cut_by_border", "border_cut.jpg", EITHER, r"no face found",
             note="~30% of the face box is outside the image"), jpeg_bytes(border_cut(photos_dir, scale)))
    add(Case("face_below_min_size", "small_face.png", FAIL,
             r"no face found: 1 face smaller than --min-face-size 40 px ignored \(largest [1-3]\d px\)",
             note="a ~30 px face on a 256 px canvas (default --min-face-size 40)"),
        png_bytes(small_face(photos_dir)))

    return sorted(cases, key=lambda c: (c.name.casefold(), c.name))


def border_cut(photos_dir: Path, scale: float = 0.6, outside: float = 0.3) -> np.ndarray:
    """alison1 cropped so that ``outside`` of its face box width lies beyond the left image border."""
    full = face_photo(photos_dir, "alison1.jpg", 1.0)
    x1, _y1, x2, _y2 = ALISON_BOX
    left = int(round(x1 + outside * (x2 - x1)))
    crop = np.ascontiguousarray(full[:, left:])
    im = Image.fromarray(crop)
    return np.asarray(im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)).copy()


#: Scale of alison1 in :func:`small_face`: her ~240 px face box becomes ~30 px.
SMALL_FACE_SCALE = 0.125


def small_face(photos_dir: Path, canvas: int = 256) -> np.ndarray:
    """A ~30 px face (below the default --min-face-size 40) pasted on a mid-grey canvas."""
    face = face_photo(photos_dir, "alison1.jpg", SMALL_FACE_SCALE)
    out = np.full((canvas, canvas, 3), 128, np.uint8)
    h, w = face.shape[:2]
    y, x = (canvas - h) // 2, (canvas - w) // 2
    out[y:y + h, x:x + w] = face
    return out


__all__ = ["Case", "FAIL", "OK", "EITHER", "build_corpus", "face_photo", "oriented_jpeg", "png16_rgb", "png_bomb",
           "small_face", "border_cut", "stored_for_orientation", "UPRIGHT", "ORIENTED", "SAME_STEM",
           "UNICODE_NAMES", "ALISON_BOX", "SMALL_FACE_SCALE"]


# ---------------------------------------------------------------------------------------- outputs

def check_tree_intact(out: Path) -> dict[str, int]:
    """Assert that every output under ``out`` is complete; returns the number of files checked per kind.

    Every PNG/JPEG fully decodes, every ``.npz`` loads (and its arrays read), every OBJ parses with
    its triangles in range, every JSON parses, and no temporary file of the atomic writer (``.*.tmp``)
    or download (``*.incomplete``) is left.
    """
    import json

    from faceanon.io.mesh import read_obj

    counts = {"image": 0, "npz": 0, "obj": 0, "json": 0, "mtl": 0}
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        name = p.name
        assert not (name.startswith(".") and name.endswith(".tmp")), f"temporary file left: {p}"
        assert not name.endswith(".incomplete"), f"partial download left: {p}"
        suffix = p.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            with Image.open(p) as im:
                im.load()  # raises on truncated data (LOAD_TRUNCATED_IMAGES is off)
                assert im.width > 0 and im.height > 0, p
            counts["image"] += 1
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as npz:
                assert npz.files, p
                for key in npz.files:
                    npz[key]
            counts["npz"] += 1
        elif suffix == ".obj":
            v, _uv, tri, _tex = read_obj(p)
            assert len(v) > 0 and len(tri) > 0 and int(tri.max()) < len(v), p
            counts["obj"] += 1
        elif suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
            counts["json"] += 1
        elif suffix == ".mtl":
            assert "newmtl" in p.read_text(encoding="utf-8"), p
            counts["mtl"] += 1
    return counts


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """relative path -> (sha256, size, mtime_ns) of every file under ``folder`` (hidden ones too)."""
    import hashlib

    snap = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            snap[p.relative_to(folder).as_posix()] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size,
                                                      st.st_mtime_ns)
    return snap


__all__ += ["check_tree_intact", "snapshot"]
