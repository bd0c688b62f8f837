"""Image discovery, decoding and saving.

Decoding policy (:func:`load_image`), applied identically to every input:

* formats: PNG, JPEG (and MPO, the multi-picture JPEG some cameras write), BMP, TIFF, WebP, and
  GIF, Netpbm, HEIC/HEIF, AVIF (:mod:`faceanon.io.formats`), recognised by content, not by extension;
  DICOM files are decoded by :mod:`faceanon.io.dicom`. Other formats (EPS, PSD...) are refused:
  restricting Pillow's plugins also keeps its riskier decoders (EPS runs Ghostscript) away from
  untrusted files. Animations and HEIF image sequences are refused (one line);
* the size in the header is checked *before* any pixel is decoded (``max_pixels``; 16 px
  minimum side); truncated files fail (a full decode is forced and Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is never enabled);
* the EXIF orientation (all 8 values) is baked into the pixels; ``ImageRecord.orientation`` keeps
  the original tag value (1 when absent or invalid);
* every mode becomes RGB uint8 (H, W, 3):
  - 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I``): ``round(v / 257)`` - 65535 -> 255,
    32896 -> 128 (``I`` is clipped to 0..65535 first). 16-bit RGB(A) PNGs are reduced by Pillow
    itself to their high byte (at most 1 level below the rounded value);
  - ``F`` (float): values in [0, 1] are scaled by 255, other ranges are clipped to 0..255;
  - alpha (RGBA, LA, PA, palette with a transparent colour, premultiplied modes) is
    **composited on white**, i.e. what an image viewer shows on a white page. Dropping alpha instead
    would expose whatever pixels hide under transparent areas (often black, sometimes stale
    content), which could feed the face detector garbage or leak content the author meant to hide;
  - CMYK (including Adobe inverted CMYK JPEGs), greyscale, 1-bit, palette, YCbCr, LAB, HSV are
    converted to RGB. When the file carries a non-RGB ICC profile (CMYK or grey), the pixels are
    converted to sRGB through that profile (LittleCMS) and ``icc`` becomes ``None``; an RGB ICC
    profile is kept as bytes in ``ImageRecord.icc`` so outputs can carry it;
* the file is opened read-only and never modified;
* every failure, expected or not, is an :class:`~faceanon.errors.ImageError` whose message names
  the file and the reason (``KeyboardInterrupt``/``SystemExit`` still propagate).
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image, ImageFile

from faceanon.checks import DEFAULT_MAX_PIXELS, check_image
from faceanon.errors import FaceanonError, ImageError, OutputError, UsageError
from faceanon.io import formats
from faceanon.io.atomic import atomic_write
from faceanon.types import ImageRecord

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_SIDE",
    "DEFAULT_MAX_PIXELS",
    "is_image_path",
    "list_images",
    "output_stems",
    "load_image",
    "save_image_atomic",
    "estimate_jpeg_quality",
]

#: Lower-case, dotted suffixes of the files :func:`list_images` picks up; compare with
#: ``path.suffix.lower() in IMAGE_EXTENSIONS`` (or use :func:`is_image_path`).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
IMAGE_EXTENSIONS |= formats.EXTRA_INPUT_EXTENSIONS  # HEIC/HEIF, AVIF, GIF, Netpbm, DICOM (faceanon.io.formats)
MIN_SIDE = 16

# Pillow plugins allowed to decode inputs (content sniffing is limited to these). MPO files are
# opened by the JPEG plugin (its factory returns an MpoImageFile).
_DECODE_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")
_OPEN_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


def is_image_path(path: Path | str) -> bool:
    """True when the file name has one of :data:`IMAGE_EXTENSIONS` (any letter case), or the file
    holds a DICOM preamble (:func:`faceanon.io.formats.is_dicom_path`, e.g. ``IM000001``)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS or formats.is_dicom_path(path)


# ----------------------------------------------------------------------------------------------
# discovery and output names
# ----------------------------------------------------------------------------------------------

def _sort_key(rel: Path) -> tuple:
    # case-insensitive first (what users expect), raw string as a tie-break -> total order
    return tuple((part.casefold(), part) for part in rel.parts)


def list_images(root: Path | str, recursive: bool = False) -> list[Path]:
    """The image files to process, in a deterministic order.

    ``root`` may be a folder or a single image file (returned alone, even when hidden). In a
    folder, files whose suffix is in :data:`IMAGE_EXTENSIONS` (any letter case) are returned;
    hidden files and folders (name starting with ``.``, which also covers macOS ``._*`` files and
    our own ``.*.tmp`` temporaries) and non-regular files are skipped. With ``recursive`` every
    sub-folder is searched too (symlinked folders are not followed, avoiding loops).

    Order: by relative path, compared component by component, case-insensitively first (ties
    broken by the exact name), so it does not depend on the file system's listing order.

    Raises :class:`UsageError` when ``root`` does not exist, is a file with an unsupported
    extension, or cannot be listed.
    """
    root = Path(root)
    try:
        st = root.stat()
    except FileNotFoundError:
        raise UsageError(f"input not found: {root}", hint="check the path") from None
    except OSError as exc:
        raise UsageError(f"cannot access input {root}: {exc.strerror or exc}") from None
    if stat.S_ISREG(st.st_mode):
        if not is_image_path(root):
            raise UsageError(f"{root} is not a supported image "
                             f"(extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
        return [root]
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"input {root} is neither a file nor a folder")

    found: list[Path] = []
    errors: list[OSError] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = Path(dirpath)
            found.extend(base / n for n in filenames if not n.startswith(".") and is_image_path(base / n))
    else:
        try:
            with os.scandir(root) as it:
                names = [e.name for e in it]
        except OSError as exc:
            errors.append(exc)
            names = []
        found.extend(root / n for n in names if not n.startswith(".") and is_image_path(root / n))
    if errors and (not recursive or not found):
        exc = errors[0]
        raise UsageError(f"cannot list input folder {exc.filename or root}: {exc.strerror or exc}")
    for exc in errors:  # recursive walk: report unreadable sub-folders, keep the rest
        _log.warning("skipping unreadable folder %s: %s", exc.filename, exc.strerror or exc)
    images = []
    for p in found:
        try:
            if stat.S_ISREG(p.stat().st_mode):  # follows file symlinks; skips FIFOs, sockets, broken links
                images.append(p)
        except OSError:
            continue
    return sorted(images, key=lambda p: _sort_key(p.relative_to(root)))


# Characters that are invalid in file names on at least one common file system (Windows, exFAT),
# plus control characters. Spaces and non-ASCII letters are kept.
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]')


def _safe_component(text: str) -> str:
    text = _UNSAFE_CHARS.sub("_", text)
    return text if text not in ("", ".", "..") else "_"


def output_stems(paths: Iterable[Path | str], root: Path | str) -> dict[Path, str]:
    """A unique, deterministic output stem for every input image.

    Rules, in order:

    1. The stem is the file name without its last suffix (``a.b.jpg`` -> ``a.b``), kept as it
       is, spaces and non-ASCII letters included; control characters and ``<>:"|?*\\`` (invalid
       on Windows/exFAT) become ``_``.
    2. An input inside a sub-folder of ``root`` keeps its relative folder, written with ``/``:
       ``root/2024/p1/a.jpg`` -> ``"2024/p1/a"``, so outputs mirror the input tree (and
       ``sub1/a.jpg`` / ``sub2/a.jpg`` never collide). Use it as ``out_dir / (stem + suffix)``;
       ``Path(stem).name`` is the bare file stem. Inputs directly in ``root`` (or ``root`` itself
       when it is a file, or paths outside ``root``) get just the file stem.
    3. When several inputs would get the same stem (compared case-insensitively, so that the
       outputs do not overwrite each other on macOS/Windows), each of them gets ``_<extension in
       lower case>`` appended: ``a.jpg`` -> ``a_jpg``, ``a.png`` -> ``a_png``; a lone ``a.jpg``
       stays ``a``.
    4. Any collision still left (``a.jpg`` + ``A.JPG``; ``a.jpg`` + ``a.png`` + ``a_jpg.png``) is
       resolved by appending ``_2``, ``_3``...: names that needed no change keep priority, the
       others are numbered in the order of :func:`list_images`.
    5. The extra faces of an image ``a`` are written as ``a_face1``, ``a_face2``...: an input whose
       stem is ``<another input's stem>_face<k>`` gets ``_img`` appended (``a_face1.jpg`` next to
       ``a.png`` -> ``a_face1_img``), so that it never shares output files with those faces.

    The result depends only on the set of paths, not on their order.
    """
    root = Path(root)
    plist = sorted({Path(p) for p in paths}, key=lambda p: _sort_key(p))
    root_is_dir = root.is_dir()

    base: dict[Path, str] = {}
    for p in plist:
        parts: tuple[str, ...] = ()
        if root_is_dir:
            try:
                parts = p.relative_to(root).parent.parts
            except ValueError:
                parts = ()
        name = _safe_component(p.stem if p.suffix else p.name)
        base[p] = "/".join([_safe_component(x) for x in parts] + [name])

    ordered = sorted(plist, key=lambda p: (_sort_key(Path(base[p])), _sort_key(p)))
    counts = Counter(s.casefold() for s in base.values())
    wanted: dict[Path, str] = {}
    for p in ordered:
        stem = base[p]
        if counts[stem.casefold()] > 1:
            ext = _safe_component(p.suffix.lstrip(".").lower()) if p.suffix else "noext"
            stem = f"{stem}_{ext}"
        wanted[p] = stem

    counts = Counter(s.casefold() for s in wanted.values())
    used: set[str] = set()
    result: dict[Path, str] = {}
    # unique names first, then the still-colliding ones in order
    for p in ordered:
        if counts[wanted[p].casefold()] == 1:
            result[p] = wanted[p]
            used.add(wanted[p].casefold())
    rest = [p for p in ordered if p not in result]
    rest.sort(key=lambda p: wanted[p] != base[p])  # stable: unchanged names first, then list order
    for p in rest:
        stem = wanted[p]
        if stem.casefold() in used:
            i = 2
            while f"{stem}_{i}".casefold() in used:
                i += 1
            stem = f"{stem}_{i}"
        result[p] = stem
        used.add(stem.casefold())
    # rule 5: keep clear of the names of other images' extra faces
    from faceanon.io.layout import extra_face_base

    for p in plist:
        owner = extra_face_base(result[p])
        if owner is not None and owner.casefold() in used:
            stem = f"{result[p]}_img"
            i = 2
            while stem.casefold() in used:
                stem = f"{result[p]}_img{i}"
                i += 1
            used.add(stem.casefold())
            result[p] = stem
    return {p: result[p] for p in plist}

_STEM_INDEX: dict[Path, dict[str, Path]] = {}


def photo_for_stem(folder: Path | str, stem: str) -> Optional[Path]:
    """The photo in ``folder`` (subfolders included) whose output stem is ``stem``, or None.

    The stems are recomputed with :func:`output_stems` over the folder, exactly as the commands
    named their outputs, and inverted - so every collision rule (``a_jpg``, ``a_face1_img``,
    ``sub/a``...) agrees. An exact match wins; else a unique case-insensitive one.
    """
    folder = Path(folder)
    key = folder.resolve()
    index = _STEM_INDEX.get(key)
    if index is None:
        try:
            paths = list_images(folder, recursive=True)
        except FaceanonError:
            paths = []
        index = {s: p for p, s in output_stems(paths, folder).items()}
        _STEM_INDEX.clear()
        _STEM_INDEX[key] = index
    hit = index.get(stem)
    if hit is None:
        folded = [p for s, p in index.items() if s.casefold() == stem.casefold()]
        hit = folded[0] if len(folded) == 1 else None
    return hit


# ----------------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------------

_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)
_STD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99]
    + [99] * 32, dtype=np.int64)


def _libjpeg_tables() -> np.ndarray:
    """(100, 2, 64) the tables libjpeg (and Pillow, OpenCV...) writes for quality 1..100."""
    q = np.arange(1, 101, dtype=np.int64)
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)[:, None, None]
    std = np.stack([_STD_LUMA, _STD_CHROMA])[None]
    return np.clip((std * scale + 50) // 100, 1, 255)


_QUALITY_TABLES = _libjpeg_tables()


def estimate_jpeg_quality(quantization: dict | None) -> Optional[int]:
    """Estimate the IJG quality (1..100) that produced these quantization tables.

    ``quantization`` is Pillow's ``JpegImageFile.quantization`` (table id -> 64 values, natural
    order). The quality whose standard libjpeg tables are closest (L1) to the luminance table (and
    chrominance table when present) is returned: exact for files written by libjpeg-based encoders,
    an approximation for cameras with custom tables. ``None`` when there is no usable table.
    """
    if not quantization:
        return None
    try:
        tables = [np.asarray(quantization[k], dtype=np.int64) for k in sorted(quantization)[:2]]
    except Exception:
        return None
    if not tables or any(t.shape != (64,) for t in tables):
        return None
    err = np.abs(_QUALITY_TABLES[:, 0] - np.minimum(tables[0], 255)).sum(axis=1).astype(np.float64)
    if len(tables) > 1:
        err += np.abs(_QUALITY_TABLES[:, 1] - np.minimum(tables[1], 255)).sum(axis=1)
    # ties (e.g. saturated tables) resolve to the highest quality
    best = 100 - int(np.argmin(err[::-1]))
    return best


def _sniff_reason(head: bytes) -> str:
    """A human description of what a non-image file looks like."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"heim", b"heis"):
            return formats.heif_problem() or "the HEIC/HEIF file is damaged or incomplete"
        if brand in (b"avif", b"avis"):
            return formats.avif_problem() or "the AVIF file is damaged or incomplete"
        return "it looks like a video/ISO media file, not an image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "the GIF file is damaged or incomplete"
    if head[128:132] == b"DICM":
        return "it is a DICOM file with an image extension (rename it to .dcm)"
    if head.startswith(b"%PDF"):
        return "it is a PDF document, not an image"
    if head.startswith(b"8BPS"):
        return "Photoshop PSD files are not supported (export to PNG or JPEG)"
    if head.startswith(b"%!PS"):
        return "PostScript/EPS files are not supported"
    if head.startswith((b"\xff\xd8", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")):
        return "the header is damaged or the file is incomplete"
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "it looks like a text file, not an image"
    return "the content is not a PNG, JPEG, BMP, TIFF, WebP, GIF, Netpbm, HEIC or AVIF image"


def _icc_colour_space(icc: bytes | None) -> Optional[bytes]:
    if not icc or len(icc) < 20:
        return None
    return bytes(icc[16:20])


def _cms_to_srgb(img: Image.Image, icc: bytes) -> Optional[Image.Image]:
    """Convert ``img`` (CMYK/grey with an embedded profile) to sRGB via LittleCMS; None on failure."""
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
        return out if out is not None and out.mode == "RGB" else None
    except Exception:
        return None


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    rgb = rgba[..., :3].astype(np.uint32)
    a = rgba[..., 3:4].astype(np.uint32)
    out = (rgb * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _scale16(values: np.ndarray) -> np.ndarray:
    """uint16-range values -> uint8 with rounding: round(v * 255 / 65535) == round(v / 257)."""
    v = np.clip(values, 0, 65535).astype(np.uint32)
    return ((v * 255 + 32767) // 65535).astype(np.uint8)


def _to_rgb(img: Image.Image, icc: Optional[bytes]) -> tuple[np.ndarray, Optional[bytes]]:
    """Any Pillow mode -> (H, W, 3) uint8 RGB, and the ICC profile that still applies to it."""
    mode = img.mode
    space = _icc_colour_space(icc)
    if mode == "RGB":
        return np.array(img), icc if space == b"RGB " else None
    if mode in ("RGBA", "RGBa", "RGBX"):
        rgba = np.array(img if mode == "RGBA" else img.convert("RGBA"))
        return _composite_on_white(rgba), icc if space == b"RGB " else None
    if mode in ("P", "PA"):
        if mode == "PA" or "transparency" in img.info:
            return _composite_on_white(np.array(img.convert("RGBA"))), icc if space == b"RGB " else None
        return np.array(img.convert("RGB")), icc if space == b"RGB " else None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _gray_to_rgb(_scale16(np.array(img))), None
    if mode == "F":
        f = np.nan_to_num(np.array(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if f.size and f.min() >= 0.0 and f.max() <= 1.0:
            f = f * 255.0
        return _gray_to_rgb(np.clip(np.rint(f), 0, 255).astype(np.uint8)), None
    if mode in ("CMYK", "L", "1", "LA", "La"):
        base = img
        if mode in ("1",):
            base = img.convert("L")
        alpha = None
        if mode in ("LA", "La"):
            la = img.convert("LA")
            alpha = np.array(la.getchannel("A"))
            base = la.getchannel("L")
        converted = None
        if icc and space in (b"CMYK", b"GRAY"):
            converted = _cms_to_srgb(base, icc)
        if converted is not None:
            rgb = np.array(converted)
        elif base.mode == "L":
            rgb = _gray_to_rgb(np.array(base))
        else:
            rgb = np.array(base.convert("RGB"))
        if alpha is not None:
            rgb = _composite_on_white(np.concatenate([rgb, alpha[..., None]], axis=2))
        return rgb, None
    # YCbCr, LAB, HSV and anything exotic
    converted = img.convert("RGB")
    return np.array(converted), None


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Bake an EXIF orientation into the pixels (the transforms of the EXIF 2.3 specification)."""
    if orientation == 2:  # mirrored horizontally
        out = rgb[:, ::-1]
    elif orientation == 3:  # rotated 180
        out = rgb[::-1, ::-1]
    elif orientation == 4:  # mirrored vertically
        out = rgb[::-1]
    elif orientation == 5:  # transpose (mirror about the main diagonal)
        out = rgb.transpose(1, 0, 2)
    elif orientation == 6:  # stored rotated 90 CCW -> rotate 90 clockwise to display
        out = np.rot90(rgb, k=-1)
    elif orientation == 7:  # transverse (mirror about the anti-diagonal)
        out = rgb.transpose(1, 0, 2)[::-1, ::-1]
    elif orientation == 8:  # stored rotated 90 CW -> rotate 90 counter-clockwise to display
        out = np.rot90(rgb, k=1)
    else:
        return rgb
    return np.ascontiguousarray(out)


def _read_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1..8); 1 when absent, invalid or when the EXIF block is corrupt."""
    try:
        value = img.getexif().get(0x0112)
    except Exception:
        return 1
    try:
        if isinstance(value, (tuple, list)) and value:
            value = value[0]
        value = int(value)
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _fmt_mp(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 100 else f"{mp:.1f}"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _open_header(fh, max_pixels: Optional[int]) -> Image.Image:
    """Image.open (header only) with Pillow's own bomb check lifted: ours is stricter and comes first.

    Pillow's limit is a module global; it is changed only for the duration of the header parse,
    under a lock, so concurrent load_image calls do not interfere.
    """
    with _OPEN_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(fh, formats=formats.decode_formats(_DECODE_FORMATS))
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _load(path: Path, max_pixels: Optional[int], min_side: int) -> ImageRecord:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot access the file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{path}: file is empty (0 bytes)")
    if formats.is_dicom_path(path):  # DICOM has its own decoder (faceanon.io.dicom, pydicom)
        from faceanon.io.dicom import load_dicom

        return load_dicom(path, max_pixels, min_side)

    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ImageError(f"{path}: cannot open the file ({exc.strerror or exc})") from None
    with fh:
        head = fh.read(1024)
        fh.seek(0)
        try:
            img = _open_header(fh, max_pixels)
        except Image.UnidentifiedImageError:
            raise ImageError(f"{path}: not a supported image ({_sniff_reason(head)})") from None
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{path}: image is too large ({exc})",
                             hint="raise --max-pixels if the photo is genuine") from None
        with img:
            formats.refuse_multi_frame(path, img)  # animations, HEIF sequences
            w, h = img.size
            if max_pixels is not None and max_pixels > 0 and w * h > max_pixels:
                raise ImageError(
                    f"{path}: image is {w}×{h} ({_fmt_mp(w * h)} MP), above --max-pixels {max_pixels}",
                    hint="raise --max-pixels or downscale the photo")
            if w < max(1, min_side) or h < max(1, min_side):
                if min_side <= MIN_SIDE:
                    raise ImageError(f"{path}: image is {w}×{h} px, too small to hold a face "
                                     f"(minimum {min_side}×{min_side})")
                raise ImageError(f"{path}: image is {w}×{h} px, below the {min_side} px minimum side")
            if ImageFile.LOAD_TRUNCATED_IMAGES:  # somebody enabled it process-wide; refuse to guess
                raise ImageError(f"{path}: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled in this "
                                 "process, so truncated files cannot be detected",
                                 hint="do not set LOAD_TRUNCATED_IMAGES when using faceanon")
            fmt = img.format
            try:
                img.load()  # full decode: truncated data raises here
            except Image.DecompressionBombError as exc:
                raise ImageError(f"{path}: image is too large ({exc})") from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageError(f"{path}: file is truncated or corrupt ({_describe(exc)})") from None
            orientation = _read_orientation(img)
            icc = img.info.get("icc_profile") or None
            if icc is not None and not isinstance(icc, (bytes, bytearray)):
                icc = None
            icc = bytes(icc) if icc is not None else None
            quality = None
            if fmt in ("JPEG", "MPO"):
                quality = estimate_jpeg_quality(getattr(img, "quantization", None))
            rgb, icc = _to_rgb(img, icc)
    rgb = _apply_orientation(rgb, orientation)
    check_image(rgb, "the decoded image", where=str(path), error=ImageError)  # defensive: every decoder gives RGB
    if not rgb.flags.writeable or not rgb.flags.c_contiguous:
        rgb = np.array(rgb, order="C")
    return ImageRecord(path=path, rgb=rgb, icc=icc, fmt=fmt, jpeg_quality=quality, orientation=orientation)


def load_image(path: Path | str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, *,
               min_side: int = MIN_SIDE) -> ImageRecord:
    """Decode an image file into an :class:`~faceanon.types.ImageRecord` (RGB uint8, upright).

    Args:
        path: the image file (never modified).
        max_pixels: refuse images whose header declares more than this many pixels (W×H), before
            decoding anything. ``None`` or ``0`` disables the check.
        min_side: refuse images whose width or height is below this (default 16 px: too small
            to hold a face). Pass ``min_side=1`` for non-photo inputs such as texture atlases.

    Returns the record: ``rgb`` (H, W, 3) uint8 C-contiguous and writable, EXIF orientation applied;
    ``icc`` RGB ICC profile bytes or None; ``fmt`` Pillow's format name ("JPEG", "PNG", "MPO"...);
    ``jpeg_quality`` estimated from the quantization tables for JPEG, else None; ``orientation``
    the original EXIF value (1..8).

    Raises :class:`ImageError` - and nothing else - naming the file and the reason: missing,
    empty, not an image, truncated/corrupt, too large ("image is 30000×30000 (900 MP), above
    --max-pixels 60000000"), too small ("image is 1×1 px, too small to hold a face").
    See the module docstring for the colour conversion policy.
    """
    p = Path(path)
    try:
        return _load(p, max_pixels, int(min_side))
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(f"{p}: not enough memory to decode the image",
                         hint="lower --max-pixels or free some memory") from None
    except Exception as exc:
        raise ImageError(f"{p}: cannot read the image ({_describe(exc)})") from exc


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------

_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


def _has_libtiff() -> bool:
    from PIL import features

    return bool(features.check("libtiff"))


def load_rgba(path: Path | str, max_pixels: int | None = None) -> np.ndarray:
    """A segmented photo (``faceanon segment``'s PNG) -> (H, W, 4) uint8 RGBA with the RGB as stored.

    Unlike :func:`load_image` (which composites alpha on white) the alpha is kept: it says which
    pixels were removed. Images without alpha get 255. Raises :class:`ImageError` (one line).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if max_pixels and w * h > max_pixels:
                raise ImageError(f"{path}: image is {w}×{h}, above --max-pixels {max_pixels}",
                                 "raise --max-pixels if the photo is genuine")
            im.load()
            return np.array(im.convert("RGBA"))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ImageError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def save_image_atomic(path: Path | str, rgb_or_rgba: np.ndarray, *, icc: Optional[bytes] = None,
                      jpeg_quality: int = 95, png_compress: int = 1) -> None:
    """Write an image atomically, with no metadata except the ICC profile.

    Args:
        path: output file; the format follows the suffix: .jpg/.jpeg, .png, .webp, .tif/.tiff, .bmp.
        rgb_or_rgba: (H, W, 3) RGB or (H, W, 4) RGBA uint8 (or (H, W) grey). RGBA is refused for
            JPEG and BMP (no usable alpha there) with ``ValueError``.
        icc: ICC profile bytes to embed (JPEG, PNG, WebP, TIFF; BMP cannot carry one). Ignored
            for grey images.
        jpeg_quality: JPEG/WebP quality 1..100. At 90 and above JPEG chroma is not subsampled
            (4:4:4), below it uses 4:2:0.
        png_compress: deflate level 0..9 for PNG (1 = fast; see :mod:`faceanon.io.png`).

    Nothing else is written: no EXIF (the orientation is already in the pixels), no GPS, no maker
    notes, no thumbnail, no XMP, no comments. The file appears complete or not at all (see
    :func:`faceanon.io.atomic.atomic_write`); write failures raise :class:`OutputError`.
    """
    target = Path(path)
    fmt = _SAVE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise OutputError(f"cannot write {target}: unsupported image extension {target.suffix!r}",
                          hint="use .png, .jpg, .webp, .tif or .bmp")
    arr = np.asarray(rgb_or_rgba)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_image_atomic: rgb_or_rgba must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        mode = "L"
    elif arr.ndim == 3 and arr.shape[2] == 3:
        mode = "RGB"
    elif arr.ndim == 3 and arr.shape[2] == 4:
        mode = "RGBA"
    else:
        raise ValueError(f"save_image_atomic: rgb_or_rgba must be (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"save_image_atomic: empty image {arr.shape}")
    if mode == "RGBA" and fmt in ("JPEG", "BMP"):
        raise ValueError(f"save_image_atomic: cannot store an alpha channel in {target.suffix} ({target})")
    if not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"save_image_atomic: jpeg_quality must be in 1..100, got {jpeg_quality}")
    if not 0 <= int(png_compress) <= 9:
        raise ValueError(f"save_image_atomic: png_compress must be in 0..9, got {png_compress}")

    if fmt == "PNG" and not icc and mode in ("RGB", "RGBA"):
        # No metadata to carry: our own encoder (SUB filter + ISA-L deflate) writes a 2048² face
        # texture in ~0.02 s; OpenCV's and Pillow's PNG writers spend 0.09-0.18 s in zlib.
        from faceanon.io.png import encode_png

        data = encode_png(arr, level=int(png_compress))
        with atomic_write(target, "wb") as fh:
            fh.write(data)
        return

    img = Image.fromarray(np.ascontiguousarray(arr))
    params: dict = {}
    if icc and mode != "L" and fmt != "BMP":
        params["icc_profile"] = bytes(icc)
    if fmt == "JPEG":
        params.update(quality=int(jpeg_quality), subsampling=0 if jpeg_quality >= 90 else 2, optimize=True)
    elif fmt == "PNG":
        params.update(compress_level=int(png_compress))
    elif fmt == "WEBP":
        params.update(quality=int(jpeg_quality), method=4)
    elif fmt == "TIFF" and _has_libtiff():
        params.update(compression="tiff_deflate")
    with atomic_write(target, "wb") as fh:
        img.save(fh, format=fmt, **params)
