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


def _build(root: Path, reference_dir: Path, stem: str, *, keep_pose: bool, ext: str = ".png",
           seed_frame: bool = True, shift: float = 0.0) -> dict:
    """photos/<stem><ext>, RECON/<stem>/..., ANON/<stem>/... for a flat grid 'face' over sis.

    seed_frame: the reconstruct OBJ is in a world frame (as the seed writes it), so the composite
    pastes the rendered texture; False: faceanon's photo-aligned frame, so the photo is warped in place.
    shift: the anonymized grid is moved right by this many px (keep_pose only).
    """
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
    recon_v = obj_v
    if seed_frame:  # a world frame: rotated, scaled and moved (v2d_full still gives the photo position)
        recon_v = ((obj_v - obj_v.mean(0)) @ rotation_matrix(5, 10, -5).T * 0.01).astype(np.float32)
    write_obj(recon / f"{stem}_extractTex.obj", recon_v, uv, tris, texture_png_name=None)
    with np.load(reference_dir / "sis_projections.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["v2d_full"] = v[:, :2].copy()
    np.savez(recon / f"{stem}_projections.npz", **arrays)
    if keep_pose:
        anon_v = recon_v + np.float32([shift, 0, 0])
    else:  # some canonical frame: rotated, scaled, moved
        R = rotation_matrix(15, -20, 10)
        anon_v = ((recon_v - recon_v.mean(0)) @ R.T) * 250.0 + [1e4, -3e3, 42.0]
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


def test_documented_example_blend_option(tmp_path, reference_dir):
    """`faceanon composite face3d/ anon/ final/ --seg seg/ -i photos/ --blend-px 6`."""
    L = _build(tmp_path, reference_dir, "img", keep_pose=True)
    seg, out = tmp_path / "seg", tmp_path / "final"
    # faceanon 0.1's removal: the row below crosses the face border outside the removed parts
    assert cli("segment", L["recon"], seg, "-i", L["photos"], "--fill", "inpaint", "--margin", "0.15").exit_code == 0
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "-i", L["photos"], "--blend-px", "0")
    assert r.exit_code == 0, r.output
    hard = np.array(Image.open(out / "img.png"))
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "-i", L["photos"], "--blend-px", "6")
    assert r.exit_code == 0, r.output
    soft = np.array(Image.open(out / "img.png"))
    row = int((BOX[1] + BOX[3]) / 2)
    x0 = int(BOX[0])
    assert (hard[row, x0 + 8:x0 + 200] == soft[row, x0 + 8:x0 + 200]).all()  # interior identical
    assert (hard[row, x0:x0 + 6] != soft[row, x0:x0 + 6]).any()  # the border band differs


def test_composite_command_warps_faceanons_reconstructions_in_place(tmp_path, reference_dir):
    """A photo-aligned reconstruction (faceanon's own): the segmented photo itself is warped by the
    morph (here the grid squeezed to 90 % of its width, which no similarity undoes), so the interior
    shows the seg's pixels at their morphed places - out(q) = seg(source of q) - never the texture
    (the npz has no vertex labels: nothing to draw), and pixels far away are the seg's, bit for bit."""
    import cv2

    from faceanon.io.mesh import read_obj
    from faceanon.stages.composite import posed_image_vertices

    L = _build(tmp_path, reference_dir, "img", keep_pose=True, seed_frame=False)
    obj = L["anon"] / "img" / "img.obj"
    v, uv, tris, _ = read_obj(obj)
    cx = float(v[:, 0].mean())
    v[:, 0] = cx + (v[:, 0] - cx) * 0.9
    write_obj(obj, v.astype(np.float32), uv, tris, texture_png_name="img_texture.png")
    seg, out = tmp_path / "seg", tmp_path / "final"
    assert cli("segment", L["recon"], seg, "--images", L["photos"]).exit_code == 0
    r = cli("composite", L["recon"], L["anon"], out, "--seg", seg, "--images", L["photos"])
    assert r.exit_code == 0, r.output
    res = np.array(Image.open(out / "img.png")).astype(int)
    base = np.array(Image.open(seg / "img_masked.png"))[..., :3]
    # the oracle: the posed morphed grid is an affine image of the original grid (x -> a x + b, y -> y + c)
    H = base.shape[0]
    rv, _, _, _ = read_obj(L["recon"] / "img" / "img_extractTex.obj")
    posed = posed_image_vertices(v, rv, H)
    src = np.column_stack([rv[:, 0], H - rv[:, 1]])
    A = np.column_stack([src, np.ones(len(src))])
    M, *_ = np.linalg.lstsq(A, posed[:, :2], rcond=None)  # posed = [src, 1] @ M
    x0, y0, x1, y1 = (int(c) for c in BOX)
    ys, xs = np.mgrid[y0 + 60:y1 - 60, x0 + 60:x1 - 60].astype(np.float64)
    q = np.stack([xs, ys], -1) - M[2]
    inv = np.linalg.inv(M[:2])
    s_xy = q @ inv
    want = cv2.remap(base, s_xy[..., 0].astype(np.float32), s_xy[..., 1].astype(np.float32), cv2.INTER_CUBIC)
    got = res[y0 + 60:y1 - 60, x0 + 60:x1 - 60]
    assert np.abs(got - want.astype(int)).mean() < 1.0
    assert np.abs(got - base[y0 + 60:y1 - 60, x0 + 60:x1 - 60].astype(int)).mean() > 2.0  # it did move
    far = ~_box_mask(res.shape, BOX, int(0.5 * np.sqrt((x1 - x0) * (y1 - y0))))
    assert np.array_equal(res[far], base[far].astype(int))


def test_old_feather_px_spelling_is_blend_px_with_a_warning(tmp_path, reference_dir):
    """composite --feather-px (the paste blend width, renamed --blend-px: --feather-px is the removal
    mask's ramp of segment and run) still works for one release: the same photo, byte for byte."""
    from tests.support.renamed import assert_no_warning, assert_one_warning, assert_same_files

    L = _build(tmp_path, reference_dir, "img", keep_pose=True)  # the seed's frame: the face is pasted
    seg = tmp_path / "seg"
    assert cli("segment", L["recon"], seg, "-i", L["photos"], "--fill", "inpaint").exit_code == 0
    runs = {name: cli("composite", L["recon"], L["anon"], tmp_path / name, "--seg", seg, "-i", L["photos"], *flag)
            for name, flag in (("new", ("--blend-px", "9")), ("old", ("--feather-px", "9")),
                               ("default", ()))}
    assert_no_warning(runs["new"])
    assert_one_warning(runs["old"], "--feather-px", "--blend-px")
    assert_same_files(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "new" / "img.png").read_bytes() != (tmp_path / "default" / "img.png").read_bytes()
    assert "--feather-px" not in cli("composite", "--help").stdout
