"""``faceanon anonymize`` on small reconstruct-like folders (mean face patched in, or the real BFM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.images import save_image_atomic
from faceanon.stages.geometry import rotation_matrix
from faceanon.stages.texture import uv_layout
from test_anonymize_helpers import bfm, draw_photo, grid_mesh, posed_face, to_image, write_recon  # noqa: F401

H, W = 120, 100


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def small_face():
    """A bumped 12x12 grid 'face' (canonical, model units ~1e4) and a posed, slightly different copy."""
    v, t, uv = grid_mesh(-1, -1, 1, 1, 0.0, 12, (0.05, 0.05, 0.95, 0.95))
    v[:, 2] = 0.4 * (1 - v[:, 0] ** 2) * (1 - v[:, 1] ** 2)
    mean = (v * 1e4).astype(np.float32)
    R0 = rotation_matrix(10, 0, 5)
    obj = (3e-3 * mean.astype(np.float64) @ R0.T + [50, 60, 10]).astype(np.float32)
    obj[:, 0] *= 1.05  # not exactly a similarity of the mean
    return mean, t, uv, obj


@pytest.fixture
def patched_mean(monkeypatch, tmp_path):
    """get_mean_face -> the small synthetic mean (whatever the store holds)."""
    import faceanon.models.loader as loader

    mean, t, uv, _ = small_face()
    calls = []

    def fake(store, model="lite"):
        calls.append(model)
        if model != "lite":
            raise AssertionError("unexpected backend")
        return mean, t, uv

    def no_basis(store, model="lite"):
        calls.append(f"basis {model}")
        return None

    monkeypatch.setattr(loader, "get_mean_face", fake)
    monkeypatch.setattr(loader, "get_shape_basis", no_basis)
    monkeypatch.setenv("FACEANON_HOME", str(tmp_path / "home"))
    return calls


def make_layout(root: Path, stems=("face",), *, masked=True, eye_box=True):
    """RECON/<stem>/... for every stem and SEG/<stem>_masked.png (RGBA; an 'eye' box black, alpha 0)."""
    mean, t, uv, obj = small_face()
    recon, seg = root / "recon", root / "seg"
    seg.mkdir(parents=True, exist_ok=True)
    img_v = to_image(obj, H)
    for stem in stems:
        write_recon(recon, stem, obj, t, uv, img_v, np.full(len(obj), 8, np.uint8), W, H)
        photo = draw_photo(img_v, t, np.tile([200, 150, 120], (len(obj), 1)), H, W, background=(200, 150, 120))
        alpha = np.full((H, W), 255, np.uint8)
        if eye_box:
            photo[50:60, 40:60] = 0  # the original "eye": black
        if masked:  # like `faceanon segment`: the eye inpainted (skin) in RGB, alpha 0 there
            seg_rgb = photo.copy()
            if eye_box:
                seg_rgb[48:62, 38:62] = (200, 150, 120)
                alpha[48:62, 38:62] = 0
            save_image_atomic(seg / f"{stem}_masked.png", np.dstack([seg_rgb, alpha]))
        else:
            save_image_atomic(seg / f"{stem}.png", photo)
    return recon, seg, (mean, t, uv, obj)


def test_anonymize_writes_a_textured_obj(tmp_path, patched_mean):
    import trimesh

    recon, seg, (mean, t, uv, obj) = make_layout(tmp_path)
    out = tmp_path / "anon"
    r = cli("anonymize", recon, out, "--seg", seg, "--tex-size", 128)
    assert r.exit_code == 0, r.output
    d = out / "face"
    assert sorted(p.name for p in d.iterdir()) == ["face.mtl", "face.obj", "face_texture.png"]
    mtl = (d / "face.mtl").read_text()
    assert "map_Kd face_texture.png" in mtl
    assert not any(line.split()[:1] == ["Tr"] for line in mtl.splitlines()), "MTL must not declare Tr (seed bug S-26)"
    mesh = trimesh.load(d / "face.obj", force="mesh", process=False)
    assert mesh.visual.kind == "texture"
    assert mesh.visual.material.image is not None and mesh.visual.material.image.size == (128, 128)
    # canonical output at alpha 1: the mean face itself
    np.testing.assert_allclose(np.asarray(mesh.vertices), mean, atol=1e-3 * np.abs(mean).max())
    # the re-bake used the segmented (inpainted) RGB: no black original-eye texel on the islands
    from PIL import Image

    tex = np.asarray(Image.open(d / "face_texture.png").convert("RGB"))
    inside = uv_layout(uv, t, 128).inside
    assert tex[inside].sum(axis=1).min() > 0
    assert patched_mean == ["lite"]  # backend from the npz, mean face loaded once; no basis at alpha 1


def test_past_the_mean_uses_the_models_shape_basis(tmp_path, patched_mean, monkeypatch):
    """--alpha above 1 pushes the identity part of the deviation, by the model's bases: here a
    model whose bases say "all of it is expression" gives the mean face itself, while without bases the
    whole deviation is pushed past the mean."""
    import faceanon.models.loader as loader
    from faceanon.io.mesh import read_obj
    from faceanon.models.base import ShapeBasis

    recon, seg, (mean, _t, _uv, _obj) = make_layout(tmp_path, stems=("a", "b"))
    r = cli("anonymize", recon, tmp_path / "none", "--seg", seg, "--tex-size", 64, "--alpha", 1.5)
    assert r.exit_code == 0, r.output
    pushed, _, _, _ = read_obj(tmp_path / "none" / "a" / "a.obj")
    assert np.abs(pushed - mean).max() > 1e-2 * np.abs(mean).max()  # past the mean: not the mean
    assert patched_mean == ["lite", "basis lite", "basis lite"]  # the npz's backend, for each face

    n3 = 3 * len(mean)
    monkeypatch.setattr(loader, "get_shape_basis",
                        lambda store, model="lite": ShapeBasis(np.zeros((n3, 1)), np.eye(n3)))
    r = cli("anonymize", recon, tmp_path / "expr", "--seg", seg, "--tex-size", 64, "--alpha", 1.5)
    assert r.exit_code == 0, r.output
    for stem in ("a", "b"):
        v, _, _, _ = read_obj(tmp_path / "expr" / stem / f"{stem}.obj")
        np.testing.assert_allclose(v, mean, atol=1e-3 * np.abs(mean).max())


def test_keep_pose_alpha_zero_returns_the_input_shape(tmp_path, patched_mean):
    from faceanon.io.mesh import read_obj

    recon, seg, (_mean, _t, _uv, obj) = make_layout(tmp_path)
    out = tmp_path / "anon"
    r = cli("anonymize", recon, out, "--seg", seg, "--tex-size", 64, "--alpha", 0, "--keep-pose")
    assert r.exit_code == 0, r.output
    v, _, _, tex_path = read_obj(out / "face" / "face.obj")
    np.testing.assert_allclose(v, obj, atol=1e-3)
    assert tex_path == out / "face" / "face_texture.png"


@pytest.mark.parametrize("alpha", ["-0.1", "2.5"])
def test_alpha_outside_0_2_is_a_usage_error(tmp_path, patched_mean, alpha):
    recon, seg, _ = make_layout(tmp_path)
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--alpha", alpha)
    assert r.exit_code == 2
    assert "--alpha" in r.output
    assert not (tmp_path / "anon").exists()


def test_lookup_is_exact_not_by_prefix(tmp_path, patched_mean):
    """The seed matched images by prefix: stem 'edo' picked 'edoardo_masked.png' (seed bug S-22, docs/seed_compatibility.md). Here 'edo'
    fails with one clear line and 'edoardo' succeeds."""
    recon, seg, _ = make_layout(tmp_path, stems=("edo", "edoardo"))
    (seg / "edo_masked.png").unlink()
    out = tmp_path / "anon"
    r = cli("anonymize", recon, out, "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 1
    assert (out / "edoardo" / "edoardo.obj").is_file()
    assert not (out / "edo").exists()
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "edo_masked.png" in failed[0] and "edoardo" not in failed[0].split(":", 1)[1]


def test_ambiguous_lookup_is_reported_in_one_line(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path)
    src = seg / "face_masked.png"
    data = src.read_bytes()
    src.unlink()
    (seg / "Face_masked.png").write_bytes(data)
    (seg / "FACE_MASKED.png").write_bytes(data)
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 1
    failed = [line for line in r.stderr.splitlines() if "ambiguous" in line]
    assert len(failed) == 1 and "Face_masked.png" in failed[0] and "FACE_MASKED.png" in failed[0]


def test_a_unique_case_variant_is_accepted(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path)
    (seg / "face_masked.png").rename(seg / "FACE_masked.PNG")
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 0, r.output


def test_original_photos_are_refused(tmp_path, patched_mean):
    """--seg must be the segment output: texturing from the originals would put the eyes back."""
    recon, seg, _ = make_layout(tmp_path, masked=False)
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 2, r.output
    assert "faceanon segment" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "anon").exists() or not any((tmp_path / "anon").rglob("*.png"))


def test_missing_masked_file_among_masked_ones_is_an_error_not_a_fallback(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path, stems=("a", "b"))
    (seg / "b_masked.png").unlink()
    save_image_atomic(seg / "b.png", np.zeros((H, W, 3), np.uint8))  # an original photo must not be used
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 1
    assert "b_masked.png" in r.stderr and "faceanon segment" in r.stderr
    assert (tmp_path / "anon" / "a" / "a.obj").is_file() and not (tmp_path / "anon" / "b").exists()


def test_failures_are_isolated_per_face(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path, stems=("a", "b", "c"))
    (recon / "b" / "b_projections.npz").write_bytes(b"not an npz")
    save_image_atomic(seg / "c_masked.png", np.zeros((H + 4, W, 4), np.uint8))  # wrong size
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 64)
    assert r.exit_code == 1
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 2
    assert any("b_projections.npz" in line for line in failed)
    assert any("c_masked.png" in line and "fitted on" in line for line in failed)
    assert (tmp_path / "anon" / "a" / "a.obj").is_file()
    assert "1 ok, 2 failed" in r.stderr


def test_model_mismatch_is_reported(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path)
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--model", "3ddfa-v3")
    assert r.exit_code == 1
    assert "fitted with the lite model but --model is 3ddfa-v3" in r.stderr


def test_missing_images_folder_and_out_inside_in(tmp_path, patched_mean):
    recon, seg, _ = make_layout(tmp_path)
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", tmp_path / "nope")
    assert r.exit_code == 2 and "--seg folder not found" in r.stderr
    r = cli("anonymize", recon, recon / "anon", "--seg", seg)
    assert r.exit_code == 2 and "inside IN" in r.stderr


def test_real_bfm_anonymize_then_render(tmp_path, monkeypatch, bfm):
    """The real lite mean face: a posed 'fit' -> anonymize (canonical) -> render; the render is upright
    and not mirrored (the red-painted subject's right eye region lands on the image left)."""
    import faceanon.models.loader as loader
    from PIL import Image

    monkeypatch.setattr(loader, "get_mean_face", lambda store, model="lite": (bfm.mean_vertices, bfm.triangles, bfm.uv))
    monkeypatch.setattr(loader, "get_shape_basis", lambda store, model="lite": bfm.shape_basis)
    monkeypatch.setenv("FACEANON_HOME", str(tmp_path / "home"))
    mean, tri, uv, labels = bfm.mean_vertices, bfm.triangles, bfm.uv, bfm.labels
    obj, img_v, _ = posed_face(mean, yaw=-15, roll=5)
    h, w = 440, 400
    colours = np.tile([200.0, 150.0, 120.0], (len(mean), 1))
    colours[labels == 1] = (255, 0, 0)  # subject's right eye painted red in the "photo"
    photo = draw_photo(img_v, tri, colours, h, w)
    recon, seg = tmp_path / "recon", tmp_path / "seg"
    write_recon(recon, "p", obj, tri, uv, img_v, labels, w, h)
    seg.mkdir()
    save_image_atomic(seg / "p_masked.png", np.dstack([photo, np.full((h, w), 255, np.uint8)]))
    r = cli("anonymize", recon, tmp_path / "anon", "--seg", seg, "--tex-size", 512)
    assert r.exit_code == 0, r.output
    r = cli("render", tmp_path / "anon", tmp_path / "render", "--img-size", 256)
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(tmp_path / "render" / "p_front.png"))
    assert img.shape == (256, 256, 4)
    red = (img[..., 3] == 255) & (img[..., 0] > 200) & (img[..., 1] < 90)
    assert red.sum() > 30
    xs = np.nonzero(red)[1]
    assert xs.mean() < 128 * 0.85


@pytest.mark.parametrize("old", ["--images", "-i"])
def test_old_images_spelling_is_seg_with_a_warning(tmp_path, patched_mean, old):
    """anonymize --images / -i (the segment output, renamed --seg as in composite: --images is the
    original photos everywhere else) still works for one release: the same files, byte for byte."""
    from tests.support.renamed import assert_no_warning, assert_one_warning, assert_same_files

    recon, seg, _ = make_layout(tmp_path)
    new = cli("anonymize", recon, tmp_path / "new", "--seg", seg, "--tex-size", 64)
    was = cli("anonymize", recon, tmp_path / "old", old, seg, "--tex-size", 64)
    assert_no_warning(new)
    assert_one_warning(was, old, "--seg")
    assert_same_files(tmp_path / "new", tmp_path / "old")
    assert "--images" not in cli("anonymize", "--help").stdout
