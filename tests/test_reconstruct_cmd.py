"""`faceanon reconstruct IN OUT` as a user runs it: every face, the seed's file contract, bad files isolated."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from faceanon.cli import app
from tests.support.lite_home import copy_photos, lite_env, lite_home  # noqa: F401 (fixture)

N_LITE = 38365


@pytest.fixture(scope="module")
def recon(lite_env, photos_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("recon")
    inp = copy_photos(photos_dir, root / "in", ("alison1.jpg", "kim3.jpg"), {"kim3.jpg": "KIM3.JPEG"})  # any case, .jpeg
    a = cv2.imread(str(photos_dir / "alison1.jpg"))
    b = cv2.imread(str(photos_dir / "barry12.jpg"))
    h = min(a.shape[0], b.shape[0])
    cv2.imwrite(str(inp / "pair.png"), np.hstack([a[:h], b[:h]]))  # two people side by side
    cv2.imwrite(str(inp / "grey.png"), np.full((300, 400, 3), 128, np.uint8))  # no face
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inp.iterdir()}
    out = root / "out"
    result = CliRunner().invoke(app, ["reconstruct", str(inp), str(out), "--vis", "--recon-tex-size", "256"])
    return inp, out, result, hashes


def test_grey_image_fails_alone_and_the_batch_completes(recon):
    inp, out, result, hashes = recon
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "grey.png" in failed[0] and "no face found" in failed[0]
    assert "Traceback" not in result.output
    for stem in ("alison1", "KIM3", "pair"):
        assert (out / stem / f"{stem}_projections.npz").is_file(), stem
    assert not (out / "grey").exists() or not any((out / "grey").iterdir())
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inp.iterdir()} == hashes


def test_two_faces_get_their_own_outputs(recon):
    _, out, _, _ = recon
    main = np.load(out / "pair" / "pair_projections.npz")
    other = np.load(out / "pair" / "pair_face1_projections.npz")
    assert int(main["face_count"]) == int(other["face_count"]) == 2
    assert {int(main["face_index"]), int(other["face_index"])} == {0, 1}
    # one face on each half of the pasted image
    xs = sorted(float(np.mean(r["landmarks68"][:, 0])) for r in (main, other))
    w = int(main["img_size"][0])
    assert xs[0] < w / 2 < xs[1]
    for name in ("pair", "pair_face1"):
        for suffix in ("_extractTex.obj", "_extractTex.mtl", "_extractTex.png"):
            assert (out / "pair" / f"{name}{suffix}").is_file()
    # each face's label map covers its own half only
    assert (main["seg_visible_labels_full"] > 0).any() and (other["seg_visible_labels_full"] > 0).any()


@pytest.mark.parametrize("stem", ["alison1", "KIM3"])
def test_npz_matches_the_seed_contract(recon, stem):
    inp, out, _, _ = recon
    z = np.load(out / stem / f"{stem}_projections.npz", allow_pickle=False)
    img = cv2.imread(str(next(p for p in inp.iterdir() if p.stem == stem)))
    h, w = img.shape[:2]
    assert z["trans_params"].dtype == np.float32 and z["trans_params"].shape == (5,)
    assert z["img_size"].dtype == np.int32 and z["img_size"].tolist() == [w, h]
    seg = z["seg_visible_labels_full"]
    assert seg.dtype == np.uint8 and seg.shape == (h, w) and seg.max() <= 8
    assert set(np.unique(seg)) >= {0, 1, 2, 5, 8}
    assert z["v2d_full"].dtype == np.float32 and z["v2d_full"].shape == (N_LITE, 2)
    for key, shape in (("landmarks68", (68, 2)), ("pose", (3,)), ("box", (4,))):
        assert z[key].shape == shape, key
    assert str(z["backend"]) == "lite"
    # labels 1 (subject's right eye) sit left of labels 2 in the image
    ys1, xs1 = np.nonzero(seg == 1)
    ys2, xs2 = np.nonzero(seg == 2)
    assert xs1.mean() < xs2.mean()


def test_obj_loads_textured_in_trimesh(recon):
    _, out, _, _ = recon
    mesh = trimesh.load(out / "alison1" / "alison1_extractTex.obj", force="mesh")
    assert mesh.vertices.shape == (N_LITE, 3)
    assert mesh.visual.kind == "texture"
    image = mesh.visual.material.image
    assert image is not None and image.size == (256, 256)
    tex = np.asarray(image.convert("RGB"))
    assert (tex.reshape(-1, 3).sum(axis=1) == 0).mean() < 0.001  # no black atlas background (gutter filled)


def test_overlay_written_with_vis(recon):
    inp, out, _, _ = recon
    ov = cv2.imread(str(out / "alison1" / "alison1_overlay.png"))
    src = cv2.imread(str(inp / "alison1.jpg"))
    assert ov.shape == src.shape and not np.array_equal(ov, src)


def test_old_tex_size_spelling_is_recon_tex_size_with_a_warning(recon, tmp_path):
    """reconstruct --tex-size (the extracted texture, renamed --recon-tex-size: --tex-size is the
    anonymized texture of anonymize and run) still works for one release: the same files."""
    from tests.support.renamed import assert_one_warning, assert_same_files

    inp, out, _result, _hashes = recon
    one = tmp_path / "in"
    one.mkdir()
    shutil.copy(inp / "alison1.jpg", one / "alison1.jpg")
    r = CliRunner().invoke(app, ["reconstruct", str(one), str(tmp_path / "old"), "--vis", "--tex-size", "256"])
    assert_one_warning(r, "--tex-size", "--recon-tex-size")
    assert_same_files(out / "alison1", tmp_path / "old" / "alison1")
    assert "--tex-size " not in CliRunner().invoke(app, ["reconstruct", "--help"]).stdout

