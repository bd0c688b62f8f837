"""DICOM photographs built by the tests from the fixture photos, with made-up identifying values.

No real patient data: every identifying value below is invented, and each is distinctive enough
that finding it anywhere in an output file's bytes means it leaked.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

# one made-up study: two files of it share these UIDs
STUDY_UID = "1.2.826.0.1.3680043.8.498.11223344556677"
SERIES_UID = "1.2.826.0.1.3680043.8.498.11223344556677.1"

#: made-up identifying values (keyword -> value) written into every test file
IDENTIFYING = {
    "PatientName": "Quaggafeld^Hortensia^Marisol",
    "PatientID": "PID-77120934",
    "PatientBirthDate": "19630817",
    "InstitutionName": "Zwieselbrook Dermatology Clinic",
    "InstitutionAddress": "42 Larkspur Wynd, Zwieselbrook",
    "ReferringPhysicianName": "Oddbjorn^Theophrastus",
    "AccessionNumber": "ACC5522991",
    "StudyDescription": "Mole check Hortensia Quaggafeld",
    "ImageComments": "photo taken by nurse Wilhelmina Frobisher",
    "DeviceSerialNumber": "SN-8675309-QX",
}
PRIVATE_CREATOR = "ZWIESELBROOK PHOTO"
PRIVATE_VALUE = "private-note-Hortensia-Q-secret"
STUDY_DATE = "20240305"
STUDY_TIME = "101500"

#: the byte strings that must not occur anywhere in an anonymized output
def leak_needles() -> list[bytes]:
    needles = [v.encode() for v in IDENTIFYING.values()]
    needles += [b"Quaggafeld", b"Hortensia", b"Zwieselbrook", b"Oddbjorn", b"Frobisher", PRIVATE_VALUE.encode(),
                PRIVATE_CREATOR.encode(), b"ZWIESELCAM", STUDY_UID.encode(), SERIES_UID.encode(),
                IDENTIFYING["PatientBirthDate"].encode(), STUDY_DATE.encode()]
    return needles


def write_dicom_photo(path: Path, rgb: np.ndarray, *, kind: str, instance: int = 1, burned_in: str | None = "NO",
                      preamble: bool = True) -> Path:
    """Write ``rgb`` ((H, W, 3) uint8) as a DICOM photograph of one made-up study.

    kind: ``"vl-rgb"`` VL Photographic, uncompressed explicit VR little endian RGB;
          ``"vl-jpeg422"`` VL Photographic, JPEG baseline YBR_FULL_422 (4:2:2, quality 95);
          ``"sc-mono"`` Secondary Capture, implicit VR little endian MONOCHROME2 (the photo's grey);
    instance: instance number (and the last component of the SOP Instance UID)
    burned_in: Burned In Annotation value, or None to leave it out
    """
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence

    sop_class = SECONDARY_CAPTURE if kind == "sc-mono" else VL_PHOTOGRAPHIC
    ts = {"vl-rgb": EXPLICIT_LE, "vl-jpeg422": JPEG_BASELINE, "sc-mono": IMPLICIT_LE}[kind]
    sop_uid = f"{SERIES_UID}.{instance}"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.SourceApplicationEntityTitle = "ZWIESELCAM"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    for k, v in IDENTIFYING.items():
        setattr(ds, k, v)
    ds.PatientSex = "F"
    ds.PatientAge = "060Y"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = STUDY_TIME
    ds.StudyID = "STUDY-4471"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.Manufacturer = "Made-up Cameras Inc"
    ds.PatientOrientation = ""
    ds.BodyPartExamined = "HEAD"  # unpaired: General Series Laterality (type 2C) is then absent
    if sop_class == VL_PHOTOGRAPHIC:
        ds.Modality = "XC"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.AcquisitionContextSequence = Sequence([])
        ds.LossyImageCompression = "01" if ts == JPEG_BASELINE else "00"
    else:
        ds.Modality = "OT"
        ds.ConversionType = "DI"
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)

    h, w = rgb.shape[:2]
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if kind == "sc-mono":
        grey = np.array(Image.fromarray(rgb).convert("L"))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        data = grey.tobytes()
        ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
    elif kind == "vl-rgb":
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        data = np.ascontiguousarray(rgb).tobytes()
        ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
    else:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=95, subsampling=1)
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
        ds.LossyImageCompressionRatio = f"{rgb.size / len(buf.getvalue()):.2f}"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    if not preamble:
        ds.preamble = None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=preamble)
    return path
