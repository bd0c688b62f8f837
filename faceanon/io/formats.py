"""The input formats beyond the classic ones: phone photos (HEIC/HEIF, AVIF), GIF, Netpbm, DICOM.

This module holds the small entry points that :mod:`faceanon.io.images`, the pipeline and the
command line call into, so that every format decision lives in one place:

* :data:`EXTRA_INPUT_EXTENSIONS` - the suffixes added to :data:`faceanon.io.images.IMAGE_EXTENSIONS`
  (``.heic .heif .hif .avif .gif .ppm .pgm .pbm .pnm .dcm .dicom``); a file without a known suffix is DICOM when it
  holds the ``DICM`` preamble (:func:`sniff_dicom`, e.g. ``IM000001`` from a PACS export);
* :func:`decode_formats` - the Pillow plugins allowed to decode an input, with the HEIF opener
  registered on first use (``pi-heif``, the decode-only, LGPL build of pillow-heif; ``pillow-heif``
  is used when it is the one installed). AVIF is decoded by Pillow itself (Pillow >= 11.3);
* :func:`refuse_multi_frame` - an animated GIF/WebP/PNG/AVIF or a HEIF image sequence is refused
  with one line: anonymizing one frame and dropping the others would silently change what the
  file shows (and the other frames are the same face), so the user extracts the frame they need;
* :func:`fallback_extension` - what a read-only format is written as: HEIC/AVIF -> ``.jpg``
  (``.png`` with ``--lossless``), GIF, Netpbm and anything else -> ``.png``;
* :func:`output_plan` - per image, how ``faceanon run`` writes its anonymized photo (DICOM in,
  DICOM out through :mod:`faceanon.io.dicom`) and the notes the report carries;
* :func:`skipped_files` / :func:`describe_skipped` - the files of IN that are not images, named once
  in the run summary ("skipped 3 files: 2 .txt, 1 .xyz").

Nothing here imports :mod:`faceanon.io.images` at module level (images imports this module).
"""

from __future__ import annotations

import os
import stat
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

__all__ = [
    "HEIF_EXTENSIONS",
    "AVIF_EXTENSIONS",
    "GIF_EXTENSIONS",
    "NETPBM_EXTENSIONS",
    "DICOM_EXTENSIONS",
    "EXTRA_INPUT_EXTENSIONS",
    "WRITE_BACK_EXTENSIONS",
    "sniff_dicom",
    "is_dicom_path",
    "decode_formats",
    "refuse_multi_frame",
    "fallback_extension",
    "OutputPlan",
    "output_plan",
    "skipped_files",
    "describe_skipped",
]

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
AVIF_EXTENSIONS = frozenset({".avif"})
GIF_EXTENSIONS = frozenset({".gif"})
#: Netpbm (P1-P6: bitmap, grey, colour; Pillow's "PPM" plugin), the raw format of research image sets
NETPBM_EXTENSIONS = frozenset({".ppm", ".pgm", ".pbm", ".pnm"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
#: Suffixes (lower case, dotted) read in addition to png/jpg/jpeg/bmp/tif/tiff/webp.
EXTRA_INPUT_EXTENSIONS = (HEIF_EXTENSIONS | AVIF_EXTENSIONS | GIF_EXTENSIONS | NETPBM_EXTENSIONS
                          | DICOM_EXTENSIONS)
#: Input suffixes whose anonymized photo is written in the same format (``save_image_atomic``).
WRITE_BACK_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

_DICM_OFFSET = 128  # PS3.10 7.1: a 128-byte preamble, then "DICM"
_HEIF_LOCK = threading.Lock()
_HEIF_STATE: dict = {}


# ----------------------------------------------------------------------------------------------
# recognising files
# ----------------------------------------------------------------------------------------------

def sniff_dicom(path: Path | str) -> bool:
    """True when ``path`` is a regular file holding the DICOM Part 10 preamble (``DICM`` at byte 128).

    Never raises: unreadable or missing files are simply not DICOM.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_DICM_OFFSET + 4)
    except OSError:
        return False
    return len(head) == _DICM_OFFSET + 4 and head[_DICM_OFFSET:] == b"DICM"


def is_dicom_path(path: Path | str) -> bool:
    """A DICOM input: a ``.dcm``/``.dicom`` suffix (any case), or the ``DICM`` preamble in a file
    whose suffix is not one of the raster image formats (a sniff of 132 bytes)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return True
    if suffix in WRITE_BACK_EXTENSIONS or suffix in EXTRA_INPUT_EXTENSIONS:
        return False
    return p.name.upper() != "DICOMDIR" and sniff_dicom(p)


# ----------------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------------

def _register_heif() -> Optional[str]:
    """Register a HEIF opener with Pillow once; returns None, or why HEIF cannot be decoded."""
    with _HEIF_LOCK:
        if "error" in _HEIF_STATE:
            return _HEIF_STATE["error"]
        error = None
        try:
            import pi_heif as heif  # decode-only build of pillow-heif, LGPL libheif + libde265
        except ImportError:
            try:
                import pillow_heif as heif  # the full build (also encodes), when that is what is installed
            except ImportError:
                heif = None
        if heif is None:
            error = "reading HEIC/HEIF needs the pi-heif package (pip install pi-heif)"
        else:
            try:
                heif.register_heif_opener()
            except Exception as exc:  # pragma: no cover - a broken native install
                error = f"the HEIF decoder could not be loaded ({type(exc).__name__}: {exc})"
        _HEIF_STATE["error"] = error
        return error


def heif_problem() -> Optional[str]:
    """Why a HEIC/HEIF file cannot be decoded here (decoder missing), or None when it can."""
    return _register_heif()


def avif_problem() -> Optional[str]:
    """Why an AVIF file cannot be decoded here (Pillow without AVIF), or None when it can."""
    if "avif" not in _HEIF_STATE:  # checked once per process (decode_formats runs for every input)
        problem = "reading AVIF needs Pillow 11.3 or newer built with AVIF (pip install -U pillow)"
        try:
            from PIL import features

            if features.check("avif"):
                problem = None
        except Exception:  # pragma: no cover - very old Pillow
            pass
        _HEIF_STATE["avif"] = problem
    return _HEIF_STATE["avif"]


def decode_formats(base: tuple[str, ...]) -> tuple[str, ...]:
    """The Pillow format names allowed to decode an input: ``base`` plus GIF, Netpbm ("PPM"), AVIF
    and HEIF (when their decoders are available)."""
    extra = ["GIF", "PPM"]
    if avif_problem() is None:
        extra.append("AVIF")
    if heif_problem() is None:
        extra.append("HEIF")
    return tuple(base) + tuple(f for f in extra if f not in base)


def refuse_multi_frame(path: Path, img) -> None:
    """Raise :class:`~faceanon.errors.ImageError` for an animation or image sequence.

    Animated GIF, WebP, PNG (APNG) and AVIF files and HEIF files with several top-level images are
    refused (one line, naming the frame count). MPO (a JPEG with a second, preview/depth image) and
    multi-page TIFF keep using their first image, as before.
    """
    from faceanon.errors import ImageError

    fmt = getattr(img, "format", None)
    if fmt not in ("GIF", "WEBP", "PNG", "AVIF", "HEIF"):
        return
    try:
        frames = int(getattr(img, "n_frames", 1) or 1)
    except Exception:
        frames = 1
    if frames > 1:
        kind = "an image sequence" if fmt == "HEIF" else "animated"
        raise ImageError(f"{path}: {fmt} file is {kind} ({frames} frames); faceanon anonymizes still "
                         "photos only", hint="save the frame you need as a PNG or JPEG and run on that")


def fallback_extension(original) -> str:
    """The output extension of an input whose own format is not written back: ``.jpg`` for
    HEIC/HEIF and AVIF photos (``faceanon run --lossless`` turns it into ``.png``), ``.png``
    otherwise (GIF, Netpbm, DICOM with the stage commands, files without a suffix)."""
    fmt = getattr(original, "fmt", None)
    suffix = Path(str(getattr(original, "path", ""))).suffix.lower()
    if fmt in ("HEIF", "AVIF") or suffix in HEIF_EXTENSIONS | AVIF_EXTENSIONS:
        return ".jpg"
    return ".png"


# ----------------------------------------------------------------------------------------------
# writing (faceanon run)
# ----------------------------------------------------------------------------------------------

@dataclass
class OutputPlan:
    """How ``faceanon run`` writes one image's anonymized photo.

    ext:   the output extension, or None to keep the pipeline's own choice
    write: ``write(path, rgb, original=record)``, or None for ``write_composite``
    notes: lines for the image's report entry; those starting with ``warning:`` are also
           printed for the file as they happen (see :func:`faceanon.cli.formats_cli.print_notes`)
    """

    ext: Optional[str] = None
    write: Optional[Callable] = None
    notes: list = field(default_factory=list)

    def output(self, ext: str, default_write: Callable) -> tuple[str, Callable]:
        """(extension, writer) for the anonymized photo, given the pipeline's defaults."""
        return (self.ext or ext), (self.write or default_write)


_FORMAT_NAMES = {"HEIF": "HEIC/HEIF", "AVIF": "AVIF", "GIF": "GIF", "PPM": "Netpbm"}


def output_plan(image, out: Path | None, *, lossless: bool = False, strict: bool = False) -> OutputPlan:
    """The :class:`OutputPlan` of a loaded input (an :class:`~faceanon.types.ImageRecord`).

    * DICOM (:class:`faceanon.io.dicom.DicomRecord`): written as ``<stem>.dcm`` by
      :func:`faceanon.io.dicom.write_dicom` with the run's de-identifier (its key lives in
      ``out``); the record's warnings (burned-in annotation) become notes, or - with ``strict`` -
      the image is refused here, before any work (:class:`~faceanon.errors.ImageError`);
    * HEIC/HEIF and AVIF: a note "written as JPEG" (or PNG with ``lossless``); GIF and Netpbm:
      "written as PNG".
    """
    from faceanon.io import dicom

    if isinstance(image, dicom.DicomRecord):
        dicom.check_strict(image, strict)

        def write(path, rgb, *, original):
            # the run's key lives in OUT; without one (the Python API) next to the written file
            deid = dicom.run_deidentifier(out if out is not None else Path(path).parent)
            return dicom.write_dicom(path, rgb, original=original, deidentifier=deid)

        return OutputPlan(ext=".dcm", write=write, notes=list(image.notes))
    name = _FORMAT_NAMES.get(getattr(image, "fmt", None) or "")
    if name is None:
        return OutputPlan()
    target = fallback_extension(image)
    if lossless:
        target = ".png"
    what = "JPEG (quality 95; --lossless writes PNG)" if target == ".jpg" else "PNG"
    return OutputPlan(notes=[f"{name} input written as {what}"])


# ----------------------------------------------------------------------------------------------
# files that are not images
# ----------------------------------------------------------------------------------------------

def skipped_files(root: Path | str, recursive: bool = False) -> list[Path]:
    """The regular, non-hidden files under ``root`` that :func:`faceanon.io.images.list_images` does
    not take (same walk: hidden files and folders are ignored, symlinked folders not followed)."""
    from faceanon.io.images import is_image_path

    root = Path(root)
    if not root.is_dir():
        return []
    found: list[Path] = []
    if recursive:
        walk = os.walk(root, followlinks=False)
    else:
        try:
            walk = iter([(str(root), [], [e.name for e in os.scandir(root)])])
        except OSError:
            return []
    for dirpath, dirnames, filenames in walk:
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath)
        for n in filenames:
            p = base / n
            if n.startswith(".") or is_image_path(p):
                continue
            try:
                if stat.S_ISREG(p.stat().st_mode):
                    found.append(p)
            except OSError:
                continue
    return sorted(found)


def _kind(path: Path) -> str:
    if path.name.upper() == "DICOMDIR":
        return "DICOMDIR"
    return path.suffix.lower() or "without extension"


def describe_skipped(paths: Iterable[Path]) -> Optional[str]:
    """``"skipped 3 files: 2 .txt, 1 .xyz"`` (most frequent kind first), or None when there are none."""
    counts = Counter(_kind(Path(p)) for p in paths)
    total = sum(counts.values())
    if not total:
        return None
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} file{'s' if total != 1 else ''} (not images): {kinds}"
