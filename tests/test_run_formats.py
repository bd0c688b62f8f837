"""`faceanon run` on a folder as a clinic has it: JPEG next to HEIC, AVIF and GIF phone photos, a Netpbm
file from a research set, an
animation, a broken HEIC, files that are not images, and DICOM photographs of one made-up study
(VL Photographic uncompressed RGB, VL Photographic JPEG baseline YBR_FULL_422 without a
Burned In Annotation, Secondary Capture MONOCHROME2). Real lite model, real subprocesses.

Every input must be anonymized or named in the output, and the exit code must say whether all of
them succeeded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceanon.io.images import load_image
from faceanon.io.records import load_projections
from tests.support.lite_home import cli_env, faceanon_command, lite_home  # noqa: F401 (fixture)

pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (test extra) writes the HEIC test files")
pydicom = pytest.importorskip("pydicom", reason="the DICOM extra (pip install 'faceanon[dicom]') is not installed")
pytest.importorskip("dicognito", reason="the DICOM extra (pip install 'faceanon[dicom]') is not installed")

from tests.support.dciodvfy import dciodvfy, validate  # noqa: E402
from tests.support.dicom_inputs import IDENTIFYING, SERIES_UID, STUDY_UID, leak_needles, write_dicom_photo  # noqa: E402

pytestmark = [pytest.mark.assets, pytest.mark.slow]

FAST = ["--tex-size", "256", "--img-size", "128", "--outputs", "all"]  # the checks read face3d/
# the in-place warp moves the surroundings of a face within a fade radius: pixels farther than half a
# face size (sqrt of the box area) from every box are untouched
FAR_FRACTION = 0.5
DICOMS = {"s1.dcm": "s1", "IM0002": "IM0002", "s3.dcm": "s3"}


def run_cli(args, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*faceanon_command(), *map(str, args)], env=cli_env(home, COLUMNS="250"), cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=900)


def _photo(photos_dir: Path, name: str) -> np.ndarray:
    return np.array(Image.open(photos_dir / name).convert("RGB"))


def build_folder(inp: Path, photos_dir: Path) -> None:
    a, b, c = (_photo(photos_dir, n) for n in ("alison1.jpg", "kim3.jpg", "barry12.jpg"))
    inp.mkdir(parents=True)
    shutil.copy(photos_dir / "alison1.jpg", inp / "a.jpg")
    pillow_heif.from_pillow(Image.fromarray(a)).save(inp / "a.heic", quality=92)  # same stem as a.jpg
    Image.fromarray(b).save(inp / "b.avif", "AVIF", quality=90)
    Image.fromarray(c).convert("P").save(inp / "c.gif")
    d = _photo(photos_dir, "kay16.jpg")
    (inp / "d.ppm").write_bytes(f"P6 {d.shape[1]} {d.shape[0]} 255\n".encode() + d.tobytes())  # raw Netpbm
    frames = [Image.fromarray(c).convert("P"), Image.fromarray(255 - c).convert("P")]
    frames[0].save(inp / "anim.gif", save_all=True, append_images=frames[1:])
    heic = (inp / "a.heic").read_bytes()
    (inp / "broken.heic").write_bytes(heic[: len(heic) // 2])
    (inp / "x.xyz").write_bytes(b"some instrument export")
    (inp / "notes.txt").write_text("taken on ward 3\n")
    write_dicom_photo(inp / "s1.dcm", a, kind="vl-rgb", instance=1)
    write_dicom_photo(inp / "IM0002", b, kind="vl-jpeg422", instance=2, burned_in=None)
    write_dicom_photo(inp / "s3.dcm", c, kind="sc-mono", instance=3)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, lite_home, photos_dir):
    root = tmp_path_factory.mktemp("formats")
    inp, out = root / "in", root / "out"
    build_folder(inp, photos_dir)
    proc = run_cli(["run", inp, out, *FAST], lite_home, root)
    report = json.loads((out / "report.json").read_text())
    return inp, out, proc, report


def _entry(report: dict, path: Path) -> dict:
    (e,) = [e for e in report["images"] if e["input"] == str(path.resolve())]
    return e


def _face_masks(out: Path, stem: str, shape) -> tuple[np.ndarray, np.ndarray]:
    """(outside the dilated face boxes, inside the face labels) for the image ``stem``."""
    recs = [load_projections(p) for p in sorted((out / "face3d" / stem).glob("*_projections.npz"))]
    assert recs, f"{stem}: no face reconstructed"
    h, w = shape[:2]
    outside = np.ones((h, w), bool)
    face = np.zeros((h, w), bool)
    for r in recs:
        x1, y1, x2, y2 = r["box"]
        dw = dh = FAR_FRACTION * float(np.sqrt((x2 - x1) * (y2 - y1)))
        outside[int(max(0, y1 - dh)):int(min(h, y2 + dh + 1)), int(max(0, x1 - dw)):int(min(w, x2 + dw + 1))] = False
        face |= r["seg_visible_labels_full"] > 0
    return outside, face


def _check_face_only(orig: np.ndarray, comp: np.ndarray, outside, face, exact: bool, what: str) -> None:
    diff = np.abs(comp.astype(np.int16) - orig.astype(np.int16)).max(axis=2)
    if not outside.any():  # a close-up: nothing is half a face size away from the face
        assert diff[face].mean() > 4, what
        return
    if exact:
        assert diff[outside].max() == 0, what
    else:
        assert diff[outside].mean() < 1.5, (what, diff[outside].mean())
    assert diff[face].mean() > 4 * max(diff[outside].mean(), 0.5), (what, diff[face].mean())


def test_every_input_is_anonymized_or_named_and_the_exit_code_says_so(mixed):
    inp, out, proc, report = mixed
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    for name in ("broken.heic", "anim.gif"):
        lines = [ln for ln in err.splitlines() if ln.startswith(f"failed {inp / name}:")]
        assert len(lines) == 1, (name, err)
    assert "anim.gif: GIF file is animated (2 frames)" in err
    assert "skipped 2 files (not images): 1 .txt, 1 .xyz" in err
    named = {ln.split()[1].rstrip(":") for ln in err.splitlines() if ln.startswith("failed ")}
    for f in sorted(inp.iterdir()):
        if f.suffix in (".txt", ".xyz"):
            continue
        e = _entry(report, f)
        if str(f) in named:
            assert e["status"] == "failed" and e["error"], f
        else:
            assert e["status"] == "ok", (f, e)
            assert [o for o in e["outputs"] if o.startswith("anonymized/")], f
    assert report["summary"]["ok"] == 8 and report["summary"]["failed"] == 2


def test_phone_photos_are_written_as_jpeg_and_change_only_the_face(mixed):
    inp, out, proc, report = mixed
    assert sorted(p.name for p in (out / "anonymized").iterdir()) == \
        ["IM0002.dcm", "a_heic.jpg", "a_jpg.jpg", "b.jpg", "c.png", "d.png", "s1.dcm", "s3.dcm"]
    assert "note: HEIC/HEIF input written as JPEG (quality 95; --lossless writes PNG) (1 file)" in proc.stderr
    assert "note: AVIF input written as JPEG (quality 95; --lossless writes PNG) (1 file)" in proc.stderr
    assert "note: Netpbm input written as PNG (1 file)" in proc.stderr
    assert _entry(report, inp / "a.heic")["notes"] == ["HEIC/HEIF input written as JPEG (quality 95; --lossless "
                                                       "writes PNG)"]
    for src, stem, ext, exact in (("a.heic", "a_heic", ".jpg", False), ("b.avif", "b", ".jpg", False),
                                  ("c.gif", "c", ".png", True), ("d.ppm", "d", ".png", True)):
        orig = load_image(inp / src).rgb
        comp = load_image(out / "anonymized" / f"{stem}{ext}")
        assert comp.fmt == ("JPEG" if ext == ".jpg" else "PNG")
        outside, face = _face_masks(out, stem, orig.shape)
        _check_face_only(orig, comp.rgb, outside, face, exact, src)


def test_dicom_outputs_are_valid_deidentified_photos_of_one_study(mixed):
    inp, out, proc, report = mixed
    needles = leak_needles()
    written = {}
    for src, stem in DICOMS.items():
        path = out / "anonymized" / f"{stem}.dcm"
        data = path.read_bytes()
        assert [n for n in needles if n in data] == [], src
        ds = pydicom.dcmread(path)
        original = pydicom.dcmread(inp / src)
        assert ds.SOPClassUID == original.SOPClassUID
        assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert ds.PhotometricInterpretation == original.PhotometricInterpretation
        assert ds.SOPInstanceUID != original.SOPInstanceUID and ds.PatientIdentityRemoved == "YES"
        assert ds.PatientName != IDENTIFYING["PatientName"]
        written[src] = ds
        orig = load_image(inp / src).rgb
        comp = load_image(path).rgb
        outside, face = _face_masks(out, stem, orig.shape)
        _check_face_only(orig, comp, outside, face, exact=src != "IM0002", what=src)
    studies = {ds.StudyInstanceUID for ds in written.values()}
    series = {ds.SeriesInstanceUID for ds in written.values()}
    assert len(studies) == 1 and STUDY_UID not in studies
    assert len(series) == 1 and SERIES_UID not in series
    assert len({ds.SOPInstanceUID for ds in written.values()}) == 3


def test_dicom_outputs_validate_with_dciodvfy(mixed):
    exe, reason = dciodvfy()
    if exe is None:
        pytest.skip(reason)
    inp, out, proc, report = mixed
    for stem in DICOMS.values():
        errors, text = validate(exe, out / "anonymized" / f"{stem}.dcm")
        assert not errors, text


def test_burned_in_annotation_warning_line(mixed):
    inp, out, proc, report = mixed
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"warning {inp / 'IM0002'}:")]
    assert len(lines) == 1 and "Burned In Annotation is absent" in lines[0], proc.stderr
    assert not [ln for ln in proc.stderr.splitlines() if ln.startswith(f"warning {inp / 's1.dcm'}")]
    assert _entry(report, inp / "IM0002")["notes"][0].startswith("warning: DICOM Burned In Annotation is absent")
    assert pydicom.dcmread(out / "anonymized" / "IM0002.dcm").get("BurnedInAnnotation") is None


def test_all_good_lossless_jobs2_exits_0_and_strict_refuses(tmp_path, lite_home, photos_dir):
    full = tmp_path / "full"
    build_folder(full, photos_dir)
    inp = tmp_path / "good"
    inp.mkdir()
    for name in ("a.heic", "b.avif", "s1.dcm", "s3.dcm", "x.xyz"):
        shutil.copy(full / name, inp / name)
    proc = run_cli(["run", inp, tmp_path / "out", *FAST, "--lossless", "--jobs", "2"], lite_home, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "anonymized").iterdir()) == ["a.png", "b.png", "s1.dcm", "s3.dcm"]
    assert "skipped 1 file (not images): 1 .xyz" in proc.stderr
    s1, s3 = (pydicom.dcmread(tmp_path / "out" / "anonymized" / n) for n in ("s1.dcm", "s3.dcm"))
    assert s1.StudyInstanceUID == s3.StudyInstanceUID  # two worker processes, one run key

    strict = tmp_path / "strict"
    strict.mkdir()
    shutil.copy(full / "IM0002", strict / "IM0002")
    shutil.copy(full / "s1.dcm", strict / "s1.dcm")
    proc = run_cli(["run", strict, tmp_path / "out2", *FAST, "--strict"], lite_home, tmp_path)
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed ")]
    assert line.startswith(f"failed {strict / 'IM0002'}: DICOM Burned In Annotation is absent and --strict is set")
    assert (tmp_path / "out2" / "anonymized" / "s1.dcm").is_file()
    assert not list((tmp_path / "out2" / "anonymized").glob("IM0002*"))


def test_audit_reads_dicom_outputs(mixed):
    pytest.importorskip("dlib", reason="the audit extra (pip install 'faceanon[audit]') is not installed")
    from faceanon.audit import run_audit

    inp, out, proc, report = mixed
    result = run_audit(out, None, 0.6, write=False)
    by_stem = {r.stem: r for r in result.rows if r.face == 0}
    for stem in DICOMS.values():
        row = by_stem[stem]
        assert row.anonymized.endswith(f"{stem}.dcm") and not row.error, row
        assert np.isfinite(row.strong_composite_dist) and np.isfinite(row.skin_de_mean), row
