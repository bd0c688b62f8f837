"""DICOM in, DICOM out: clinical photographs from a PACS (needs ``pip install 'faceanon[dicom]'``).

Reading (:func:`load_dicom`, called by :func:`faceanon.io.images.load_image` for DICOM files):

* SOP classes: VL Photographic Image Storage and Secondary Capture Image Storage, one frame;
* pixels: 8 bits per sample, unsigned; ``RGB``, ``YBR_FULL``, ``YBR_FULL_422`` (3 samples) or
  ``MONOCHROME2`` (1 sample, read as grey RGB); uncompressed (implicit/explicit VR little endian,
  big endian, deflated) or JPEG baseline (decoded by Pillow through pydicom), or any other transfer
  syntax pydicom can decode with the installed handlers;
* the size in the header is checked before the pixel data is read (``max_pixels``, 16 px minimum);
* every failure is one :class:`~faceanon.errors.ImageError` line naming the file.

Writing (:func:`write_dicom`, used by ``faceanon run`` through :func:`faceanon.io.formats.output_plan`):
a DICOM object of the same SOP class holding the anonymized pixels, encoded as the input was where
possible - uncompressed stays uncompressed (same photometric interpretation and planar configuration;
``YBR_FULL_422`` uncompressed becomes ``RGB``), JPEG baseline stays JPEG baseline at quality 95 with
the input's chroma subsampling (4:2:2 -> ``YBR_FULL_422``, 4:4:4 -> ``YBR_FULL``, RGB JPEG -> ``RGB``),
other compressed syntaxes become Explicit VR Little Endian (a note says so). The header is
de-identified by :class:`DicomDeidentifier` (see there for what is changed and why).

Attributes that described the old pixels and no longer hold (smallest/largest pixel value,
pixel data provider URL, Recognizable Visual Features) are removed; Image Type value 1 becomes
``DERIVED``; Burned In Annotation is kept as the input said (faceanon does not look for burned-in
text, so it never claims there is none).
"""

from __future__ import annotations

import copy
import io
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from faceanon.checks import check_image
from faceanon.errors import ImageError, OutputError
from faceanon.types import ImageRecord

__all__ = [
    "DicomRecord",
    "DicomDeidentifier",
    "load_dicom",
    "write_dicom",
    "check_strict",
    "run_deidentifier",
    "DEID_KEY_NAME",
    "SUPPORTED_SOP_CLASSES",
]

EXTRA_HINT = "pip install 'faceanon[dicom]'"
#: File in a run's OUT holding the secret key of its DICOM de-identification (keep it, never share it).
DEID_KEY_NAME = ".faceanon-dicom-key"

VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SUPPORTED_SOP_CLASSES = {VL_PHOTOGRAPHIC: "VL Photographic Image", SECONDARY_CAPTURE: "Secondary Capture Image"}

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422")
JPEG_QUALITY = 95


@dataclass
class DicomRecord(ImageRecord):
    """A decoded DICOM photograph: the :class:`~faceanon.types.ImageRecord` fields (``rgb`` is
    (H, W, 3) uint8 RGB, grey repeated for ``MONOCHROME2``; ``fmt`` is ``"DICOM"``) plus what
    :func:`write_dicom` needs to write it back.

    dataset:        the pydicom Dataset without its Pixel Data (file meta included)
    transfer_syntax: the input's Transfer Syntax UID
    photometric:    the input's Photometric Interpretation (RGB, YBR_FULL, YBR_FULL_422, MONOCHROME2)
    planar:         the input's Planar Configuration (0 interleaved, 1 planar; 0 for grey)
    burned_in:      Burned In Annotation as the input says it ("YES", "NO") or None when absent
    notes:          lines for the report (``warning: ...`` ones are printed per file)
    """

    dataset: object = None
    transfer_syntax: str = ""
    photometric: str = ""
    planar: int = 0
    burned_in: Optional[str] = None
    notes: list = field(default_factory=list)

    @property
    def monochrome(self) -> bool:
        return self.photometric == "MONOCHROME2"


def _require(path: Path | str):
    """pydicom and dicognito, or the one-line error naming the extra."""
    try:
        import dicognito  # noqa: F401
        import pydicom
    except ImportError as exc:
        raise ImageError(f"{path}: DICOM files need the optional extra faceanon[dicom] "
                         f"(missing module {exc.name})", hint=EXTRA_HINT) from None
    return pydicom


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------

def _read(pydicom, path: Path, force: bool, **kw):
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, force=force, **kw)
    except InvalidDicomError as exc:
        raise ImageError(f"{path}: not a valid DICOM file ({' '.join(str(exc).split())})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ImageError(f"{path}: DICOM file is truncated or corrupt ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())})") from None


def _int(ds, keyword: str, default: Optional[int] = None) -> Optional[int]:
    value = ds.get(keyword, default)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _check_header(path: Path, ds, max_pixels: Optional[int], min_side: int) -> tuple[str, str, int]:
    """(transfer syntax, photometric, planar) of a photograph this module reads; ImageError otherwise."""
    from pydicom.uid import UID

    sop = str(ds.get("SOPClassUID", "") or "")
    if sop not in SUPPORTED_SOP_CLASSES:
        what = UID(sop).name if sop else "an object without SOP Class UID"
        raise ImageError(f"{path}: DICOM {what} is not a photograph faceanon reads",
                         hint="faceanon takes VL Photographic Image and Secondary Capture Image objects")
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    ts = ts or _IMPLICIT_LE
    if "PixelData" not in ds:
        raise ImageError(f"{path}: DICOM object has no pixel data")
    frames = _int(ds, "NumberOfFrames", 1) or 1
    if frames > 1:
        raise ImageError(f"{path}: DICOM object has {frames} frames; faceanon anonymizes single photographs",
                         hint="export the frame you need as its own object")
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    if max_pixels and rows * cols > max_pixels:
        raise ImageError(f"{path}: image is {cols}×{rows} ({rows * cols / 1e6:.1f} MP), above --max-pixels {max_pixels}",
                         hint="raise --max-pixels or downscale the photo")
    if rows < max(1, min_side) or cols < max(1, min_side):
        raise ImageError(f"{path}: image is {cols}×{rows} px, too small to hold a face "
                         f"(minimum {min_side}×{min_side})")
    spp = _int(ds, "SamplesPerPixel", 1)
    bits, stored = _int(ds, "BitsAllocated", 0), _int(ds, "BitsStored", 0)
    if bits != 8 or stored != 8 or _int(ds, "PixelRepresentation", 0) != 0:
        raise ImageError(f"{path}: DICOM pixels are {stored} of {bits} bits "
                         f"{'signed' if _int(ds, 'PixelRepresentation', 0) else 'unsigned'}; "
                         "faceanon reads 8-bit unsigned photographs")
    pi = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not ((spp == 3 and pi in _COLOUR) or (spp == 1 and pi == "MONOCHROME2")):
        raise ImageError(f"{path}: DICOM photometric interpretation {pi or 'missing'} with {spp} sample(s) "
                         "is not supported (RGB, YBR_FULL, YBR_FULL_422 or MONOCHROME2)")
    planar = _int(ds, "PlanarConfiguration", 0) if spp == 3 else 0
    return ts, pi, planar or 0


def load_dicom(path: Path | str, max_pixels: Optional[int] = None, min_side: int = 16) -> DicomRecord:
    """Decode a DICOM photograph into a :class:`DicomRecord` (see the module docstring).

    The header is checked first (SOP class, frames, size against ``max_pixels``/``min_side``,
    bits, photometric interpretation), then the pixel data is decoded. Raises
    :class:`~faceanon.errors.ImageError` naming the file - also when pydicom/dicognito are missing
    (hint: ``pip install 'faceanon[dicom]'``).
    """
    from faceanon.io.formats import DICOM_EXTENSIONS

    path = Path(path)
    pydicom = _require(path)
    force = path.suffix.lower() in DICOM_EXTENSIONS  # a .dcm without the Part 10 preamble is still tried
    header = _read(pydicom, path, force, stop_before_pixels=False, defer_size="4 KB")
    ts, pi, planar = _check_header(path, header, max_pixels, min_side)
    ds = _read(pydicom, path, force)
    try:
        arr = ds.pixel_array  # YBR_FULL / YBR_FULL_422 (and JPEG's YCbCr) come back as RGB
    except MemoryError:
        raise
    except Exception as exc:
        from pydicom.uid import UID

        raise ImageError(f"{path}: cannot decode the DICOM pixel data ({UID(ts).name}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())})",
                         hint="the file may be truncated, or its compression needs another pixel handler") from None
    arr = np.asarray(arr)
    rows, cols = int(ds.Rows), int(ds.Columns)
    want = (rows, cols) if pi == "MONOCHROME2" else (rows, cols, 3)
    if arr.shape != want or arr.dtype.itemsize != 1:
        raise ImageError(f"{path}: unexpected decoded DICOM pixels {arr.dtype} {arr.shape}, expected {want}")
    arr = arr.astype(np.uint8, copy=False)
    rgb = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else np.array(arr, order="C")
    icc = ds.get("ICCProfile")
    icc = bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() or None
    notes = []
    if burned != "NO":
        said = "YES" if burned == "YES" else ("absent" if burned is None else burned)
        notes.append(f"warning: DICOM Burned In Annotation is {said}: faceanon does not look for burned-in text "
                     "(names, dates, IDs in the pixels) - check the image, or use --strict to refuse such files")
    if ts not in (_IMPLICIT_LE, _EXPLICIT_LE, _JPEG_BASELINE):
        from pydicom.uid import UID

        notes.append(f"DICOM {UID(ts).name} pixel data written as Explicit VR Little Endian (uncompressed)")
    del ds.PixelData
    return DicomRecord(path=path, rgb=rgb, icc=icc, fmt="DICOM", jpeg_quality=None, orientation=1, dataset=ds,
                       transfer_syntax=ts, photometric=pi, planar=planar, burned_in=burned, notes=notes)


def check_strict(record: DicomRecord, strict: bool) -> None:
    """With ``strict``, refuse an input whose Burned In Annotation is not NO (YES or absent)."""
    if strict and record.burned_in != "NO":
        said = "YES" if record.burned_in == "YES" else "absent"
        raise ImageError(f"{record.path}: DICOM Burned In Annotation is {said} and --strict is set: faceanon "
                         "does not look for burned-in text",
                         hint="check the pixels for names or dates and set Burned In Annotation to NO, "
                              "or run without --strict")


# ----------------------------------------------------------------------------------------------
# header de-identification
# ----------------------------------------------------------------------------------------------

_FREE_TEXT_VRS = ("LT", "ST", "UT")
_FREE_TEXT_SUFFIXES = ("Comments", "Comment", "Description", "History", "SerialNumber")


class DicomDeidentifier:
    """De-identifies DICOM headers for one run: dicognito, then faceanon's additions.

    1. ``dicognito.anonymizer.Anonymizer(seed=key)`` (the maintained library): every UID except
       class and transfer syntax UIDs is replaced, every person name, the patient/study/accession
       and other IDs, the institution name and address, station name... by values that depend only
       on the key and the original value - so files of one study (or patient, or series) stay one
       study, also across ``--jobs`` workers and resumed runs into the same OUT. Every date and
       date-time (and the time paired with a date) is shifted into the past by one offset between
       62 and 730 days drawn from the key: intervals and ages are kept, the calendar dates are not.
    2. faceanon adds what the Basic Profile removes and dicognito keeps: private attributes
       (pydicom's ``remove_private_tags``), free text (every LT, ST and UT value and every attribute
       whose keyword ends in Comments, Description or History) and device serial numbers.
    3. The markers: Patient Identity Removed ``YES``, De-identification Method naming faceanon (and
       dicognito) with their versions, and De-identification Method Code Sequence: 113100 Basic
       Application Confidentiality Profile, 113102 Clean Recognizable Visual Features Option (the
       face), 113107 Retain Longitudinal Temporal Information Modified Dates Option (the shift),
       113108 Retain Patient Characteristics Option (age, sex, size and weight are kept). Not claimed:
       113101 Clean Pixel Data (burned-in text is not looked for), 113110 Retain UIDs.

    One instance may be shared by threads (a lock serialises :meth:`apply`).
    """

    def __init__(self, key: str) -> None:
        _require("DICOM output")
        import dicognito
        from dicognito.anonymizer import Anonymizer

        if not key:
            raise ValueError("DicomDeidentifier: key must be a non-empty string")
        self._anonymizer = Anonymizer(seed=key)
        self._dicognito_version = getattr(dicognito, "__version__", "?")
        self._lock = threading.Lock()

    @property
    def method(self) -> str:
        """The De-identification Method value (LO, at most 64 characters)."""
        from faceanon import __version__

        text = f"faceanon {__version__}: 3D face morph; header by dicognito {self._dicognito_version}"
        return text[:64]

    @staticmethod
    def method_codes() -> list:
        """The pydicom Codes of De-identification Method Code Sequence (PS3.16 CID 7050)."""
        from pydicom.sr.codedict import codes

        dcm = codes.DCM
        return [dcm.BasicApplicationConfidentialityProfile, dcm.CleanRecognizableVisualFeaturesOption,
                dcm.RetainLongitudinalTemporalInformationModifiedDatesOption, dcm.RetainPatientCharacteristicsOption]

    def apply(self, ds) -> None:
        """De-identify ``ds`` (a pydicom Dataset with its file meta) in place."""
        with self._lock:
            if getattr(ds, "file_meta", None) is None:
                from pydicom.dataset import FileMetaDataset

                ds.file_meta = FileMetaDataset()
            self._anonymizer.anonymize(ds)
        ds.remove_private_tags()
        ds.walk(_strip_free_text)
        self._mark(ds)

    def _mark(self, ds) -> None:
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        ds.PatientIdentityRemoved = "YES"
        old = ds.get("DeidentificationMethod", [])
        old = [old] if isinstance(old, str) else list(old or [])
        values = [v for v in old if v and v != "DICOGNITO"] + [self.method]
        ds.DeidentificationMethod = values if len(values) > 1 else values[0]
        seq = list(ds.get("DeidentificationMethodCodeSequence", None) or [])
        have = {(str(i.get("CodeValue", "")), str(i.get("CodingSchemeDesignator", ""))) for i in seq}
        for code in self.method_codes():
            if (code.value, code.scheme_designator) in have:
                continue
            item = Dataset()
            item.CodeValue = code.value
            item.CodingSchemeDesignator = code.scheme_designator
            item.CodeMeaning = code.meaning
            seq.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(seq)


def _strip_free_text(dataset, elem) -> None:
    keyword = elem.keyword or ""
    if keyword in ("DeidentificationMethod",):
        return
    if elem.VR in _FREE_TEXT_VRS or (keyword and keyword.endswith(_FREE_TEXT_SUFFIXES)):
        del dataset[elem.tag]


_DEIDS: dict[str, DicomDeidentifier] = {}
_DEIDS_LOCK = threading.Lock()


def run_key(out: Path) -> str:
    """The secret key of the run in ``out``: read from ``out/.faceanon-dicom-key``, created once.

    Created with ``os.link`` from a complete temporary file, so concurrent workers never read a
    half-written key: the first link wins and the others read the winner's file.
    """
    path = Path(out) / DEID_KEY_NAME
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable output folder") from exc
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return path.read_text(encoding="ascii").strip()


def run_deidentifier(out: Path | str) -> DicomDeidentifier:
    """The :class:`DicomDeidentifier` of the run writing into ``out`` (one per OUT and process)."""
    key_path = str((Path(out) / DEID_KEY_NAME).resolve())
    with _DEIDS_LOCK:
        deid = _DEIDS.get(key_path)
        if deid is None:
            deid = DicomDeidentifier(run_key(Path(out)))
            _DEIDS[key_path] = deid
        return deid


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------

def _encode_jpeg(pixels: np.ndarray, photometric: str) -> tuple[bytes, str]:
    """JPEG baseline bytes of ``pixels`` ((H, W) grey or (H, W, 3) RGB) and the photometric
    interpretation that describes them, keeping the input's chroma layout."""
    from PIL import Image

    params: dict = {"quality": JPEG_QUALITY, "optimize": False, "progressive": False}
    if pixels.ndim == 2:
        out_pi = "MONOCHROME2"
    elif photometric == "YBR_FULL_422":
        params["subsampling"] = 1  # 4:2:2, as the input
        out_pi = "YBR_FULL_422"
    elif photometric == "RGB":
        params.update(subsampling=0, keep_rgb=True)  # a JPEG without colour transform, as the input
        out_pi = "RGB"
    else:
        params["subsampling"] = 0
        out_pi = "YBR_FULL"
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", **params)
    return buf.getvalue(), out_pi


def _uncompressed(pixels: np.ndarray, photometric: str, planar: int) -> tuple[bytes, str, int]:
    """Native pixel bytes (even length), photometric interpretation and planar configuration."""
    if pixels.ndim == 2:
        data, out_pi, planar = pixels.tobytes(), "MONOCHROME2", 0
    else:
        out_pi = photometric if photometric in ("RGB", "YBR_FULL") else "RGB"
        if out_pi == "YBR_FULL":
            from pydicom.pixels import convert_color_space

            pixels = np.asarray(convert_color_space(pixels, "RGB", "YBR_FULL"), dtype=np.uint8)
        data = (np.ascontiguousarray(pixels.transpose(2, 0, 1)) if planar == 1 else pixels).tobytes()
    if len(data) % 2:
        data += b"\x00"
    return data, out_pi, planar


def _set_lossy(ds, compressed: int, size: int) -> None:
    """Lossy Image Compression "01" with this encoding's ratio and method appended."""
    def listed(name):
        v = ds.get(name, [])
        return [v] if isinstance(v, (str, float, int)) else [x for x in (v or [])]

    ratios, methods = listed("LossyImageCompressionRatio"), listed("LossyImageCompressionMethod")
    if len(ratios) != len(methods):
        ratios, methods = [], []
    ratios.append(f"{size / max(1, compressed):.2f}")
    methods.append("ISO_10918_1")
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = ratios if len(ratios) > 1 else ratios[0]
    ds.LossyImageCompressionMethod = methods if len(methods) > 1 else methods[0]


def write_dicom(path: Path | str, rgb: np.ndarray, *, original: DicomRecord, deidentifier: DicomDeidentifier) -> Path:
    """Write the anonymized photo ``rgb`` ((H, W, 3) uint8, the input's size) as a de-identified
    DICOM object of the input's SOP class, atomically. Returns the path written.

    Pixel encoding and header changes: see the module docstring and :class:`DicomDeidentifier`.
    """
    pydicom = _require(path)
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate

    from faceanon.io.atomic import atomic_write

    target = Path(path)
    rgb = check_image(rgb, "rgb", where="write_dicom")
    ds = copy.deepcopy(original.dataset)
    if rgb.shape[:2] != (int(ds.Rows), int(ds.Columns)):
        raise ValueError(f"write_dicom: rgb is {rgb.shape[1]}×{rgb.shape[0]}, the input {ds.Columns}×{ds.Rows}")
    if original.monochrome:
        # the pipeline keeps R = G = B away from the faces; their mean is the input grey there
        pixels = ((rgb.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
    else:
        pixels = np.ascontiguousarray(rgb)
    size = pixels.size
    ts_in = original.transfer_syntax
    if ts_in == _JPEG_BASELINE:
        frame, out_pi = _encode_jpeg(pixels, original.photometric)
        ts_out, planar = _JPEG_BASELINE, 0
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        _set_lossy(ds, len(frame), size)
    else:
        data, out_pi, planar = _uncompressed(pixels, original.photometric, original.planar)
        ts_out = ts_in if ts_in in (_IMPLICIT_LE, _EXPLICIT_LE) else _EXPLICIT_LE
        ds.PixelData = data
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = False
    ds.PhotometricInterpretation = out_pi
    if pixels.ndim == 3:
        ds.PlanarConfiguration = planar
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    for stale in ("SmallestImagePixelValue", "LargestImagePixelValue", "PixelDataProviderURL",
                  "RecognizableVisualFeatures", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if stale in ds:
            delattr(ds, stale)
    image_type = ds.get("ImageType")
    if image_type:
        values = [image_type] if isinstance(image_type, str) else list(image_type)
        values[0] = "DERIVED"
        ds.ImageType = values
    deidentifier.apply(ds)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts_out
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    with atomic_write(target, "wb") as fh:
        pydicom.dcmwrite(fh, ds, enforce_file_format=True)
    return target
