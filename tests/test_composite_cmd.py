"""``faceanon composite``: a synthetic reconstruct/anonymize layout over a real photo (CliRunner)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.mesh import write_obj
from faceanon.stages.geometry import rotation_matrix

from test_composite import BOX, CELL, T, _box_mask, _jpeg_with_gps, checker, grid


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _build(root: Path, reference_dir: Path, stem: str, *, keep_pose: bool, ext: str = ".png") -> dict:
    """photos/<stem><ext>, RECON/<stem>/..., ANON/<stem>/... for a flat grid 'face' over sis."""
    photos, recon, anon = root / "photos", root / "recon" / stem, root / "anon" / stem
    for d in (photos, recon, anon):
        d.mkdir(parents=True, exist_ok=True)
    rgb = np.array(Image.open(reference_dir / "sis.jpg").convert("RGB"))
    H = rgb.shape[0]
    if ext == ".png":
        Image.fromarray(rgb).save(photos / f"{stem}{ext}")
    else:
        _jpeg_with_gps(photos / f"{stem}{ext}", rgb, quality=92)
    v, tris, uv = grid(*BOX, n=20)
    obj_v = v.copy()
    obj_v[:, 1] = H - obj_v[:, 1]  # reconstruct's y-up photo frame
    write_obj(recon / f"{stem}_extractTex.obj", obj_v, uv, tris, texture_png_name=None)
    with np.load(reference_dir / "sis_projections.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["v2d_full"] = v[:, :2].copy()
    np.savez(recon / f"{stem}_projections.npz", **arrays)
    if keep_pose:
        anon_v = obj_v
    else:  # some canonical frame: rotated, scaled, moved
        R = rotation_matrix(15, -20, 10)
        anon_v = ((obj_v - obj_v.mean(0)) @ R.T) * 250.0 + [1e4, -3e3, 42.0]
    Image.fromarray(checker()).save(anon / f"{stem}_texture.png")
    write_obj(anon / f"{stem}.obj", anon_v.astype(np.float32), uv, tris, texture_png_name=f"{stem}_texture.png")
    return {"photos": photos, "recon": root / "recon", "anon": root / "anon", "rgb": rgb}


@pytest.mark.parametrize("keep_pose", [False, True], ids=["canonical", "keep-pose"])
def test_composite_command_places_the_face(tmp_path, reference_dir, keep_pose):
    L = _build(tmp_path, reference_dir, "img", keep_pose=keep_pose)
    seg, out = tmp_path / "seg", tmp_path / "final"
    r = cli("segment", L["recon"], seg, "--images", L["photos"])
    assert r.exit_code == 0, r.output
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "--images", L["photos"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in out.iterdir()] == ["img.png"]
    res = np.array(Image.open(out / "img.png"))
    seg_rgba = np.array(Image.open(seg / "img_masked.png"))
    removed = seg_rgba[..., 3] == 0
    outside = ~_box_mask(res.shape, BOX, 3) & ~removed
    assert (res[outside] == seg_rgba[..., :3][outside]).all()
    # interior cell centres hold the texture: placed at the original pose, not mirrored
    tex = checker()
    x0, y0, x1, y1 = BOX
    sx, sy = (x1 - x0) / (T - 1), (y1 - y0) / (T - 1)
    hits = 0
    for ci in range(1, T // CELL - 1):
        for cj in range(1, T // CELL - 1):
            tx, ty = cj * CELL + CELL // 2, ci * CELL + CELL // 2
            px, py = int(round(x0 + tx * sx)), int(round(y0 + ty * sy))
            assert np.abs(res[py, px].astype(int) - tex[ty, tx]).max() <= 2, (px, py)
            hits += 1
    assert hits == 36
    # removed pixels outside the face (the lips reach below the grid) hold no original pixel
    below = removed & ~_box_mask(res.shape, BOX, 0)
    assert below.any()
    assert (res[below] != L["rgb"][below]).any(axis=1).mean() > 0.9


def test_composite_jpeg_input_and_failure_isolation(tmp_path, reference_dir):
    L = _build(tmp_path, reference_dir, "good", keep_pose=False, ext=".jpg")
    _build(tmp_path, reference_dir, "bad", keep_pose=False, ext=".jpg")
    shutil.rmtree(L["anon"] / "bad")  # anonymize never ran for it
    seg, out = tmp_path / "seg", tmp_path / "final"
    r = cli("segment", L["recon"], seg, "--images", L["photos"])
    assert r.exit_code == 0, r.output
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "--images", L["photos"])
    assert r.exit_code == 1
    assert [p.name for p in out.iterdir()] == ["good.jpg"]
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "bad" in failed[0] and "anonymize" in failed[0]
    im = Image.open(out / "good.jpg")
    assert im.format == "JPEG" and len(im.getexif()) == 0 and im.info.get("icc_profile")


def test_composite_usage_errors(tmp_path, reference_dir):
    L = _build(tmp_path, reference_dir, "img", keep_pose=True)
    r = cli("composite", L["recon"], L["anon"], tmp_path / "o", "--seg", tmp_path / "noseg", "--images", L["photos"])
    assert r.exit_code == 2 and "--seg" in r.stderr
    seg = tmp_path / "seg"
    seg.mkdir()
    # OUT = the photos folder would overwrite the originals
    r = cli("composite", L["recon"], L["anon"], L["photos"], "--seg", seg, "--images", L["photos"])
    assert r.exit_code == 2 and "inside" in r.stderr
    # no segmented image yet
    r = cli("composite", L["recon"], L["anon"], tmp_path / "o", "--seg", seg, "--images", L["photos"])
    assert r.exit_code == 1 and "faceanon segment" in r.stderr


def test_composite_help_has_examples():
    r = cli("composite", "--help")
    assert r.exit_code == 0
    assert "faceanon composite face3d/ anon/ final/ --seg seg/ --images photos/" in r.stdout
    for option in ("--seg", "--images", "--feather-px", "--max-pixels"):
        assert option in r.stdout


def test_documented_example_feather_option(tmp_path, reference_dir):
    """`faceanon composite face3d/ anon/ final/ --seg seg/ -i photos/ --feather-px 6`."""
    L = _build(tmp_path, reference_dir, "img", keep_pose=True)
    seg, out = tmp_path / "seg", tmp_path / "final"
    assert cli("segment", L["recon"], seg, "-i", L["photos"]).exit_code == 0
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "-i", L["photos"], "--feather-px", "0")
    assert r.exit_code == 0, r.output
    hard = np.array(Image.open(out / "img.png"))
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "-i", L["photos"], "--feather-px", "6")
    assert r.exit_code == 0, r.output
    soft = np.array(Image.open(out / "img.png"))
    row = int((BOX[1] + BOX[3]) / 2)
    x0 = int(BOX[0])
    assert (hard[row, x0 + 8:x0 + 200] == soft[row, x0 + 8:x0 + 200]).all()  # interior identical
    assert (hard[row, x0:x0 + 6] != soft[row, x0:x0 + 6]).any()  # the border band differs
