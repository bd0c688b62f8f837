"""`faceanon run <the fixture photos> OUT --outputs all` end to end with the real lite model.

One run of the whole fixture folder (module scope) with every output folder (face3d/ and seg/
included: their files are checked, and the projections give the face boxes), then checks on every output:
* every output file of every image exists and decodes;
* in every composite, pixels outside the dilated face boxes equal the input (exactly for lossless
  outputs; within JPEG re-encoding noise for JPEG outputs), pixels inside the face differ;
* on eos_image_0010.png the ground-truth eye polygons contain no original eye pixels;
* a second `run` skips everything; report.json parses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.images import load_image
from faceanon.io.mesh import read_obj
from faceanon.io.records import load_projections
from tests.support.lite_home import copy_photos, lite_home, offline_home  # noqa: F401 (fixture)

# The in-place composite warps the photo around each face (hair, ears and background follow the new
# silhouette) within a fade radius: pixels farther than HALF A FACE SIZE (sqrt of the box area) from
# every face box must be untouched.
FAR_FRACTION = 0.5


def _run(*args):
    return CliRunner().invoke(app, ["run", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def run_out(tmp_path_factory, lite_home, photos_dir):
    with offline_home(lite_home):
        out = tmp_path_factory.mktemp("run") / "out"
        first = _run(photos_dir, out, "--outputs", "all")
        yield out, first


def _images(photos_dir: Path) -> list[Path]:
    return sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def _outside_boxes_mask(shape, boxes) -> np.ndarray:
    h, w = shape[:2]
    outside = np.ones((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        dw = dh = FAR_FRACTION * float(np.sqrt((x2 - x1) * (y2 - y1)))
        xa, ya = int(max(0, np.floor(x1 - dw))), int(max(0, np.floor(y1 - dh)))
        xb, yb = int(min(w, np.ceil(x2 + dw))), int(min(h, np.ceil(y2 + dh)))
        outside[ya:yb, xa:xb] = False
    return outside


def test_run_exit_code_and_report(run_out, photos_dir):
    out, first = run_out
    assert first.exit_code == 0, first.output
    report = json.loads((out / "report.json").read_text())
    names = [Path(i["input"]).name for i in report["images"]]
    assert names == [p.name for p in _images(photos_dir)]
    for item in report["images"]:
        assert item["status"] == "ok" and item["faces"] == 1, item
        assert len(item["poses"]) == 1 and len(item["poses"][0]) == 3
        for stage in ("reconstruct", "segment", "anonymize", "render", "composite"):
            assert item["seconds"][stage] >= 0
    assert report["summary"] == {**report["summary"], "images": 16, "ok": 16, "failed": 0}


@pytest.mark.parametrize("name", ["alison1.jpg", "kim3.jpg", "eos_image_0010.png"])
def test_every_output_exists_and_loads(run_out, photos_dir, name):
    out, _ = run_out
    stem = Path(name).stem
    d = out / "face3d" / stem
    rec = load_projections(d / f"{stem}_projections.npz")
    v, uv, tri, tex = read_obj(d / f"{stem}_extractTex.obj")
    assert v.shape[0] == rec["v2d_full"].shape[0] and tex == d / f"{stem}_extractTex.png"
    masked = cv2.imread(str(out / "seg" / f"{stem}_masked.png"), cv2.IMREAD_UNCHANGED)
    assert masked.ndim == 3 and masked.shape[2] == 4
    v2, uv2, tri2, tex2 = read_obj(out / "anon" / stem / f"{stem}.obj")
    assert tex2 == out / "anon" / stem / f"{stem}_texture.png" and tex2.is_file()
    assert "Tr 1" not in (out / "anon" / stem / f"{stem}.mtl").read_text()
    render = cv2.imread(str(out / "render" / f"{stem}_front.png"), cv2.IMREAD_UNCHANGED)
    assert render.shape == (1024, 1024, 4) and render[..., 3].max() == 255 and render[0, 0, 3] == 0
    comp = load_image(out / "anonymized" / f"{stem}{Path(name).suffix}")
    assert comp.rgb.shape == load_image(photos_dir / name).rgb.shape


def test_composites_change_the_face_only(run_out, photos_dir):
    out, _ = run_out
    for src in _images(photos_dir):
        stem = src.stem
        orig = load_image(src).rgb.astype(np.int16)
        comp = load_image(out / "anonymized" / f"{stem}{src.suffix}").rgb.astype(np.int16)
        npzs = sorted((out / "face3d" / stem).glob("*_projections.npz"))
        recs = [load_projections(p) for p in npzs]
        outside = _outside_boxes_mask(orig.shape, [r["box"] for r in recs])
        diff = np.abs(comp - orig).max(axis=2)
        face = np.zeros(orig.shape[:2], bool)
        for r in recs:
            face |= r["seg_visible_labels_full"] > 0
        if not outside.any():  # a close-up: no pixel is half a face size away from the face
            assert diff[face].mean() > 4, stem
            continue
        if src.suffix.lower() == ".png":  # lossless: bit-exact outside the faces
            assert diff[outside].max() == 0, stem
        else:  # JPEG written again: only re-encoding noise outside the faces
            assert diff[outside].mean() < 1.5, (stem, diff[outside].mean())
            assert np.percentile(diff[outside], 99.5) <= 12, stem
        assert diff[face].mean() > 4 * max(diff[outside].mean(), 0.5), stem


def _eye_polygons(pts_path: Path, shape) -> np.ndarray:
    lines = pts_path.read_text().split("{")[1].split("}")[0].split()
    pts = np.array(lines, float).reshape(68, 2) - 1.0  # 1-based -> 0-based pixel centres
    mask = np.zeros(shape[:2], np.uint8)
    for sl in (slice(36, 42), slice(42, 48)):
        cv2.fillPoly(mask, [np.round(pts[sl]).astype(np.int32)], 1)
    return mask.astype(bool)


def test_ground_truth_eyes_hold_no_original_pixels(run_out, photos_dir):
    out, _ = run_out
    src = photos_dir / "eos_image_0010.png"
    orig = load_image(src).rgb.astype(np.int16)
    comp = load_image(out / "anonymized" / "eos_image_0010.png").rgb.astype(np.int16)
    eyes = _eye_polygons(photos_dir / "eos_image_0010.pts", orig.shape)
    assert eyes.sum() > 200
    same = np.abs(comp - orig).max(axis=2) <= 2
    assert same[eyes].mean() < 0.005, f"{same[eyes].mean():.3%} of the eye pixels kept their original colour"


def test_second_run_skips_everything(run_out, photos_dir):
    out, _ = run_out
    ignore = ("report.json", ".faceanon.lock")  # the run lock is re-opened by every run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in ignore}
    second = _run(photos_dir, out, "--outputs", "all")
    assert second.exit_code == 0, second.output
    report = json.loads((out / "report.json").read_text())
    assert {i["status"] for i in report["images"]} == {"skipped"}
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in ignore}
    assert before == after


def test_force_redoes_one_image(run_out, photos_dir, tmp_path):
    out, _ = run_out
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(photos_dir / "kim3.jpg", one / "kim3.jpg")
    o2 = tmp_path / "o2"
    assert _run(one, o2, "--tex-size", "256", "--img-size", "128").exit_code == 0
    mt = (o2 / "anonymized" / "kim3.jpg").stat().st_mtime_ns
    r = _run(one, o2, "--tex-size", "256", "--img-size", "128", "--force")
    assert r.exit_code == 0, r.output
    assert json.loads((o2 / "report.json").read_text())["images"][0]["status"] == "ok"
    assert (o2 / "anonymized" / "kim3.jpg").stat().st_mtime_ns != mt


def test_lossless_composites_are_bit_exact_away_from_the_faces(run_out, photos_dir, tmp_path):
    """--lossless: JPEG inputs give PNG composites whose pixels outside the faces equal the input."""
    inp = copy_photos(photos_dir, tmp_path / "in", ("alison1.jpg", "dbell1.jpg"))
    out = tmp_path / "out"
    r = _run(inp, out, "--lossless", "--tex-size", "512", "--img-size", "128", "--outputs", "all")
    assert r.exit_code == 0, r.output
    for name in ("alison1.jpg", "dbell1.jpg"):
        stem = Path(name).stem
        assert not (out / "anonymized" / f"{stem}.jpg").exists()
        orig = load_image(inp / name).rgb
        comp = load_image(out / "anonymized" / f"{stem}.png").rgb
        rec = load_projections(out / "face3d" / stem / f"{stem}_projections.npz")
        outside = _outside_boxes_mask(orig.shape, [rec["box"]])
        assert np.array_equal(comp[outside], orig[outside]), stem
        assert (comp[~outside] != orig[~outside]).any(), stem


def test_a_redo_with_other_options_removes_outputs_the_new_set_lacks(run_out, photos_dir, tmp_path):
    """--lossless wrote anonymized/kim3.png; a rerun without it writes kim3.jpg and drops the .png."""
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(photos_dir / "kim3.jpg", one / "kim3.jpg")
    out = tmp_path / "o"
    fast = ("--tex-size", "256", "--img-size", "128")
    assert _run(one, out, "--lossless", *fast).exit_code == 0
    assert (out / "anonymized" / "kim3.png").is_file()
    r = _run(one, out, *fast)  # other options: not complete, redone
    assert r.exit_code == 0, r.output
    assert (out / "anonymized" / "kim3.jpg").is_file()
    assert not (out / "anonymized" / "kim3.png").exists()
    marker = json.loads((out / ".done" / "kim3.json").read_text())
    assert "anonymized/kim3.jpg" in marker["report"]["outputs"]


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(run_out, photos_dir, tmp_path):
    """Two runs on one OUT would interleave their files and delete each other's temporary files:
    while a run holds OUT's lock (here: another process), a second run stops at once, writing nothing."""
    import subprocess
    import sys

    out = tmp_path / "locked"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom faceanon.io.atomic import out_lock\n"
         f"with out_lock({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = _run(photos_dir, out)
        assert r.exit_code == 1
        assert f"another faceanon run is writing to {out}" in " ".join(r.output.split())
        assert sorted(p.name for p in out.iterdir()) == [".faceanon.lock"]
    finally:
        holder.kill()
        holder.wait()
    # the holder died (as with kill -9): the OS released its lock, the folder is usable again
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(photos_dir / "kim3.jpg", one / "kim3.jpg")
    r = _run(one, out, "--tex-size", "256", "--img-size", "128")
    assert r.exit_code == 0, r.output
    assert (out / "anonymized" / "kim3.jpg").is_file()
