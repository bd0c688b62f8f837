"""DICOM photographs in and out (faceanon.io.dicom), without the face models.

The inputs are written by the test (tests/support/dicom_inputs.py) from a fixture photo, with
made-up identifying values; outputs are checked byte for byte for those values, read back with
pydicom, and validated with dciodvfy (dicom3tools) when it is available.
"""

from __future__ import annotations

import datetime
import os
import stat
import sys
import threading

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom", reason="the DICOM extra (pip install 'faceanon[dicom]') is not installed")
pytest.importorskip("dicognito", reason="the DICOM extra (pip install 'faceanon[dicom]') is not installed")

from faceanon.errors import ImageError  # noqa: E402
from faceanon.io import dicom, formats  # noqa: E402
from faceanon.io.images import list_images, load_image  # noqa: E402
from tests.support.dciodvfy import dciodvfy, validate  # noqa: E402
from tests.support.dicom_inputs import (  # noqa: E402
    IDENTIFYING, PRIVATE_CREATOR, SERIES_UID, STUDY_DATE, STUDY_UID, leak_needles, write_dicom_photo,
)

KINDS = ["vl-rgb", "vl-jpeg422", "sc-mono"]
TS = {"vl-rgb": "1.2.840.10008.1.2.1", "vl-jpeg422": "1.2.840.10008.1.2.4.50", "sc-mono": "1.2.840.10008.1.2"}
PI = {"vl-rgb": "RGB", "vl-jpeg422": "YBR_FULL_422", "sc-mono": "MONOCHROME2"}


@pytest.fixture(scope="module")
def photo(photos_dir) -> np.ndarray:
    rgb = np.array(Image.open(photos_dir / "alison1.jpg").convert("RGB"))
    return np.ascontiguousarray(rgb[:400, :300])


def _psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def _grey(rgb):
    return np.array(Image.fromarray(rgb).convert("L"))


def _write(tmp_path, rec, rgb=None, key="test-key", name=None):
    deid = dicom.DicomDeidentifier(key)
    target = tmp_path / "out" / (name or rec.path.name)
    target.parent.mkdir(exist_ok=True)
    return dicom.write_dicom(target, rec.rgb if rgb is None else rgb, original=rec, deidentifier=deid)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_dicom_photo_is_read(tmp_path, photo, kind):
    rec = load_image(write_dicom_photo(tmp_path / f"{kind}.dcm", photo, kind=kind))
    assert isinstance(rec, dicom.DicomRecord) and rec.fmt == "DICOM"
    assert rec.rgb.shape == photo.shape and rec.rgb.dtype == np.uint8 and rec.rgb.flags.c_contiguous
    assert rec.photometric == PI[kind] and rec.transfer_syntax == TS[kind]
    assert rec.burned_in == "NO" and rec.notes == []
    if kind == "vl-rgb":
        assert (rec.rgb == photo).all()
    elif kind == "sc-mono":
        assert (rec.rgb == _grey(photo)[..., None]).all()
    else:
        assert _psnr(rec.rgb, photo) > 35


def test_extensionless_and_preambleless_files(tmp_path, photo):
    write_dicom_photo(tmp_path / "IM000001", photo, kind="vl-rgb")  # PACS export name, with preamble
    write_dicom_photo(tmp_path / "raw.dcm", photo, kind="vl-rgb", instance=2, preamble=False)
    assert [p.name for p in list_images(tmp_path)] == ["IM000001", "raw.dcm"]
    for name in ("IM000001", "raw.dcm"):
        assert (load_image(tmp_path / name).rgb == photo).all()


def _mutated(tmp_path, photo, name, **changes):
    path = write_dicom_photo(tmp_path / name, photo, kind="vl-rgb")
    ds = pydicom.dcmread(path)
    for k, v in changes.items():
        if k == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = v
        else:
            setattr(ds, k, v)
    ds.save_as(path)
    return path


@pytest.mark.parametrize("changes,message", [
    ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}, r"DICOM CT Image Storage is not a photograph"),
    ({"NumberOfFrames": 3}, r"has 3 frames"),
    ({"BitsAllocated": 16, "BitsStored": 12}, r"12 of 16 bits unsigned; faceanon reads 8-bit"),
    ({"PhotometricInterpretation": "PALETTE COLOR"}, r"PALETTE COLOR with 3 sample\(s\) is not supported"),
])
def test_unsupported_objects_are_refused_in_one_line(tmp_path, photo, changes, message):
    with pytest.raises(ImageError, match=message) as info:
        load_image(_mutated(tmp_path, photo, "x.dcm", **changes))
    assert "x.dcm" in info.value.one_line()


def test_header_size_limits_apply_before_decoding(tmp_path, photo):
    path = write_dicom_photo(tmp_path / "big.dcm", photo, kind="vl-rgb")
    with pytest.raises(ImageError, match=r"image is 300×400 \(0\.1 MP\), above --max-pixels 1000"):
        load_image(path, max_pixels=1000)
    tiny = write_dicom_photo(tmp_path / "tiny.dcm", photo[:8, :8].copy(), kind="vl-rgb")
    with pytest.raises(ImageError, match=r"8×8 px, too small"):
        load_image(tiny)


def test_truncated_dicom_is_one_clear_error(tmp_path, photo):
    data = write_dicom_photo(tmp_path / "whole.dcm", photo, kind="vl-rgb").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(cut)
    line = info.value.one_line()
    assert "cut.dcm" in line and ("truncated" in line or "cannot decode" in line) and "\n" not in line


def test_without_the_extra_a_dicom_input_names_it(tmp_path, photo, monkeypatch):
    path = write_dicom_photo(tmp_path / "a.dcm", photo, kind="vl-rgb")
    monkeypatch.setitem(sys.modules, "dicognito", None)  # import fails as if not installed
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert info.value.one_line() == (f"{path}: DICOM files need the optional extra faceanon[dicom] (missing module "
                                     "dicognito) (hint: pip install 'faceanon[dicom]')")


# ----------------------------------------------------------------------------------------------
# writing: pixels and encoding
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_output_is_encoded_as_the_input_and_changes_only_the_changed_pixels(tmp_path, photo, kind):
    rec = load_image(write_dicom_photo(tmp_path / f"{kind}.dcm", photo, kind=kind))
    changed = rec.rgb.copy()
    changed[100:200, 80:220] = np.array([200, 40, 90], np.uint8)  # a stand-in for the anonymized face
    out = _write(tmp_path, rec, changed)
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == rec.dataset.SOPClassUID
    assert ds.file_meta.TransferSyntaxUID == TS[kind] and ds.PhotometricInterpretation == PI[kind]
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.Rows, ds.Columns) == photo.shape[:2]
    back = load_image(out).rgb
    inside = np.zeros(photo.shape[:2], bool)
    inside[100:200, 80:220] = True
    ring = np.zeros_like(inside)  # JPEG blocks next to the edit change too: compare 16 px away from it
    ring[84:216, 64:236] = True
    if kind == "vl-jpeg422":
        assert ds.LossyImageCompression == "01" and list(ds.LossyImageCompressionMethod)[-1] == "ISO_10918_1"
        assert _psnr(back[~ring], rec.rgb[~ring]) > 38  # quality 95 re-encode
        assert np.abs(back[inside].astype(int) - [200, 40, 90]).mean() < 6
    else:
        assert (back[~inside] == rec.rgb[~inside]).all()
        assert (back[inside] == (changed[inside] if kind == "vl-rgb" else
                                 ((changed[inside].astype(int).sum(1) + 1) // 3)[:, None])).all()


def test_uncompressed_ybr_and_planar_inputs_keep_their_layout(tmp_path, photo):
    from pydicom.pixels import convert_color_space

    path = write_dicom_photo(tmp_path / "ybr.dcm", photo, kind="vl-rgb")
    ds = pydicom.dcmread(path)
    ybr = np.asarray(convert_color_space(photo, "RGB", "YBR_FULL"), np.uint8)
    ds.PhotometricInterpretation = "YBR_FULL"
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(ybr.transpose(2, 0, 1)).tobytes()
    ds.save_as(path)
    rec = load_image(path)
    assert np.abs(rec.rgb.astype(int) - photo).max() <= 2
    out = pydicom.dcmread(_write(tmp_path, rec))
    assert out.PhotometricInterpretation == "YBR_FULL" and out.PlanarConfiguration == 1
    written = np.frombuffer(out.PixelData, np.uint8)[: ybr.size].reshape(3, *photo.shape[:2]).transpose(1, 2, 0)
    assert np.abs(written.astype(int) - ybr).max() <= 2  # YBR -> RGB -> YBR rounding only


@pytest.mark.parametrize("kind", KINDS)
def test_output_validates_with_dciodvfy(tmp_path, photo, kind):
    exe, reason = dciodvfy()
    if exe is None:
        pytest.skip(reason)
    src = write_dicom_photo(tmp_path / f"{kind}.dcm", photo, kind=kind)
    errors, text = validate(exe, src)
    assert not errors, f"the test input itself is invalid:\n{text}"
    errors, text = validate(exe, _write(tmp_path, load_image(src)))
    assert not errors, text


# ----------------------------------------------------------------------------------------------
# writing: header de-identification
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_no_identifying_value_anywhere_in_the_output_bytes(tmp_path, photo, kind):
    src = write_dicom_photo(tmp_path / f"{kind}.dcm", photo, kind=kind)
    raw = src.read_bytes()
    needles = leak_needles()
    assert all(n in raw for n in needles if n not in (b"ZWIESELCAM",)), "test input lacks a made-up value"
    data = _write(tmp_path, load_image(src)).read_bytes()
    assert [n for n in needles if n in data] == []


def test_uids_are_new_and_one_study_stays_one_study(tmp_path, photo):
    a = load_image(write_dicom_photo(tmp_path / "a.dcm", photo, kind="vl-rgb", instance=1))
    b = load_image(write_dicom_photo(tmp_path / "b.dcm", photo, kind="vl-jpeg422", instance=2))
    da = pydicom.dcmread(_write(tmp_path, a, key="run-1"))
    db = pydicom.dcmread(_write(tmp_path, b, key="run-1"))  # another worker of the same run: same key
    assert da.StudyInstanceUID == db.StudyInstanceUID != STUDY_UID
    assert da.SeriesInstanceUID == db.SeriesInstanceUID != SERIES_UID
    assert da.PatientID == db.PatientID != IDENTIFYING["PatientID"]
    assert da.SOPInstanceUID != db.SOPInstanceUID
    assert da.SOPInstanceUID not in (a.dataset.SOPInstanceUID, b.dataset.SOPInstanceUID)
    for ds in (da, db):
        assert pydicom.uid.UID(ds.SOPInstanceUID).is_valid and len(ds.StudyInstanceUID) <= 64
    other = pydicom.dcmread(_write(tmp_path, a, key="run-2", name="other.dcm"))  # another run
    assert other.StudyInstanceUID != da.StudyInstanceUID


def test_markers_codes_and_burned_in_annotation(tmp_path, photo):
    from faceanon import __version__

    for burned, note in (("NO", None), ("YES", "is YES"), (None, "is absent")):
        rec = load_image(write_dicom_photo(tmp_path / f"b{burned}.dcm", photo, kind="vl-rgb", burned_in=burned))
        if note is None:
            assert rec.notes == []
        else:
            assert len(rec.notes) == 1 and rec.notes[0].startswith("warning: ") and note in rec.notes[0]
        ds = pydicom.dcmread(_write(tmp_path, rec))
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.get("BurnedInAnnotation") == burned  # never claimed clean
        method = ds.DeidentificationMethod
        assert f"faceanon {__version__}" in method and "dicognito" in method and len(method) <= 64
        codes = [(i.CodeValue, i.CodingSchemeDesignator) for i in ds.DeidentificationMethodCodeSequence]
        assert codes == [("113100", "DCM"), ("113102", "DCM"), ("113107", "DCM"), ("113108", "DCM")]
        assert ds.ImageType[0] == "DERIVED"


def test_dates_shift_into_the_past_by_one_offset(tmp_path, photo):
    rec = load_image(write_dicom_photo(tmp_path / "d.dcm", photo, kind="vl-rgb"))
    ds = pydicom.dcmread(_write(tmp_path, rec))

    def day(text):
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))

    shift = day(STUDY_DATE) - day(ds.StudyDate)
    assert 62 <= shift.days <= 731
    assert day(IDENTIFYING["PatientBirthDate"]) - day(ds.PatientBirthDate) == shift
    assert ds.SeriesDate == ds.ContentDate == ds.StudyDate
    assert ds.PatientAge == "060Y" and ds.PatientSex == "F"  # Retain Patient Characteristics (113108)


def test_private_attributes_and_free_text_are_removed(tmp_path, photo):
    rec = load_image(write_dicom_photo(tmp_path / "p.dcm", photo, kind="vl-rgb"))
    assert any(e.tag.is_private for e in rec.dataset)
    ds = pydicom.dcmread(_write(tmp_path, rec))
    assert not any(e.tag.is_private for e in ds.iterall())
    for keyword in ("StudyDescription", "ImageComments", "DeviceSerialNumber", "InstitutionAddress"):
        assert keyword not in ds, keyword
    assert ds.InstitutionName != IDENTIFYING["InstitutionName"] and ds.ReferringPhysicianName != ""
    assert ds.Manufacturer == "Made-up Cameras Inc"  # not identifying: kept


def test_strict_refuses_unless_burned_in_annotation_is_no(tmp_path, photo):
    for burned in ("YES", None):
        rec = load_image(write_dicom_photo(tmp_path / f"s{burned}.dcm", photo, kind="vl-rgb", burned_in=burned))
        dicom.check_strict(rec, False)
        with pytest.raises(ImageError, match="Burned In Annotation is .* --strict is set"):
            formats.output_plan(rec, tmp_path / "out", strict=True)
    rec = load_image(write_dicom_photo(tmp_path / "ok.dcm", photo, kind="vl-rgb", burned_in="NO"))
    plan = formats.output_plan(rec, tmp_path / "out", strict=True)
    assert plan.ext == ".dcm" and plan.notes == []


def test_run_key_is_created_once_private_and_shared(tmp_path):
    out = tmp_path / "out"
    keys, errors = [], []

    def grab():
        try:
            keys.append(dicom.run_key(out))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(keys)) == 1 and len(keys[0]) == 64
    key_file = out / dicom.DEID_KEY_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == [dicom.DEID_KEY_NAME]  # no temporary left
    assert dicom.run_deidentifier(out) is dicom.run_deidentifier(out)
