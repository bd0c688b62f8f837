"""``faceanon segment``: layouts, image lookup, per-file isolation and exit codes (CliRunner)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.layout import discover_recon

REMOVED = (1, 2, 6, 7)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _labels(reference_dir: Path, stem: str) -> np.ndarray:
    return np.load(reference_dir / f"{stem}_projections.npz")["seg_visible_labels_full"]


@pytest.fixture()
def layout(tmp_path, reference_dir):
    """RECON/<stem>/<stem>_projections.npz for edo and sis, and a photos folder."""
    recon = tmp_path / "recon"
    photos = tmp_path / "photos"
    photos.mkdir()
    for stem in ("edo", "sis"):
        (recon / stem).mkdir(parents=True)
        shutil.copy(reference_dir / f"{stem}_projections.npz", recon / stem / f"{stem}_projections.npz")
    shutil.copy(reference_dir / "edo.jpg", photos / "edo.jpg")
    shutil.copy(reference_dir / "sis.jpg", photos / "sis.JPEG")  # any image extension, any case
    return recon, photos, tmp_path / "out"


def _check_masked(png: Path, original: Path, labels: np.ndarray, *, keep_mouth: bool = False, brows: bool = True,
                  margin: float = 0.25):
    im = Image.open(png)
    assert im.format == "PNG" and im.mode == "RGBA"
    rgba = np.array(im)
    rgb = np.array(Image.open(original).convert("RGB"))
    assert rgba.shape[:2] == labels.shape
    alpha = rgba[..., 3]
    eyes = np.isin(labels, (1, 2))
    lips = np.isin(labels, (6, 7))
    assert (alpha[eyes] == 0).all()
    if keep_mouth:
        assert (alpha[lips] == 255).all()
    else:
        assert (alpha[lips] == 0).all()
    parts = ((1, 2) if keep_mouth else REMOVED) + ((3, 4) if brows else ())
    core = np.isin(labels, parts)
    if brows:  # the default privacy level removes the eyebrows too (redrawn by `faceanon anonymize`)
        assert (alpha[np.isin(labels, (3, 4))] == 0).all()
    d = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    iod_upper = 1.2 * np.ptp(np.nonzero(eyes.any(axis=0))[0])
    far = d > margin * iod_upper + 3 + 2
    assert (alpha[far] == 255).all()
    assert (rgba[..., :3][far] == rgb[far]).all()
    assert np.abs(rgba[..., :3][core].astype(int) - rgb[core].astype(int)).mean() > 5


def test_segment_reconstruct_layout(layout, reference_dir):
    recon, photos, out = layout
    result = cli("segment", recon, out, "--images", photos)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["edo_masked.png", "sis_masked.png"]
    _check_masked(out / "edo_masked.png", photos / "edo.jpg", _labels(reference_dir, "edo"))
    _check_masked(out / "sis_masked.png", photos / "sis.JPEG", _labels(reference_dir, "sis"))
    assert "2 ok, 0 failed" in result.stderr


def test_segment_keep_mouth_and_options(layout, reference_dir):
    recon, photos, out = layout
    result = cli("segment", recon, out, "--images", photos, "--keep-mouth", "--margin", "0.15", "--feather-px", "3",
                 "--keep-brows")
    assert result.exit_code == 0, result.output
    _check_masked(out / "edo_masked.png", photos / "edo.jpg", _labels(reference_dir, "edo"), keep_mouth=True,
                  brows=False, margin=0.15)


def test_fill_inpaint_is_the_segment_stage_of_faceanon_0_1(layout, reference_dir):
    """--fill inpaint: the label-map removal (eyes and lips grown by the margin x the projected IOD) and
    the plain inpainting, exactly - the file equals segment_image with the 0.1 inputs (labels and
    inter-ocular distance only; no mesh, no brows, no grain), whose behaviour tests/test_segment.py
    pins - while the default --fill features removes more (brows) and adds grain."""
    from faceanon.io.images import load_image
    from faceanon.stages.segment import SegmentFace, estimate_inter_ocular, segment_image

    recon, photos, out = layout
    result = cli("segment", recon, out, "--images", photos, "--fill", "inpaint", "--margin", "0.15")
    assert result.exit_code == 0, result.output
    labels = _labels(reference_dir, "edo")
    rgb = load_image(photos / "edo.jpg").rgb
    want, _ = segment_image(rgb, [SegmentFace(labels, estimate_inter_ocular(labels))], margin=0.15)
    got = np.array(Image.open(out / "edo_masked.png"))
    assert np.array_equal(got, want)
    feat = tmp = out.parent / "feat"
    assert cli("segment", recon, feat, "--images", photos, "--margin", "0.15").exit_code == 0
    other = np.array(Image.open(tmp / "edo_masked.png"))
    assert (other[..., 3] == 0).sum() > (got[..., 3] == 0).sum()  # the brows too
    assert not np.array_equal(other, got)


def test_size_mismatch_fails_that_file_only(layout, reference_dir):
    recon, photos, out = layout
    (photos / "sis.JPEG").unlink()
    Image.open(reference_dir / "sis.jpg").resize((370, 554)).save(photos / "sis.png")
    result = cli("segment", recon, out, "--images", photos)
    assert result.exit_code == 1, result.output
    assert (out / "edo_masked.png").is_file()
    assert not (out / "sis_masked.png").exists()
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 1
    assert "sis" in failed[0] and "370×554" in failed[0] and "740×1109" in failed[0]
    assert "1 ok, 1 failed" in result.stderr


def test_flat_seed_layout_and_npz_file(tmp_path, reference_dir):
    """The fixtures folder itself: flat <stem>_projections.npz next to the photos."""
    flat = tmp_path / "flat"
    shutil.copytree(reference_dir, flat)
    out = tmp_path / "out"
    result = cli("segment", flat, out, "--images", flat)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["edo_masked.png", "sis_masked.png"]
    # a single npz file as RECON
    out2 = tmp_path / "out2"
    result = cli("segment", flat / "sis_projections.npz", out2, "--images", flat)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out2.iterdir()] == ["sis_masked.png"]
    _check_masked(out2 / "sis_masked.png", flat / "sis.jpg", _labels(reference_dir, "sis"))


def test_images_is_required(tmp_path, reference_dir):
    """No hidden default: the photos' folder is always named (the npz records no source path)."""
    recon = tmp_path / "recon" / "edo"
    recon.mkdir(parents=True)
    shutil.copy(reference_dir / "edo_projections.npz", recon / "edo_projections.npz")
    result = cli("segment", tmp_path / "recon", tmp_path / "out")
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_photos_are_found_by_the_stems_reconstruct_gave_them(tmp_path, reference_dir):
    """a.jpg + a.png were reconstructed as a_jpg / a_png: segment finds each one's own photo."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(reference_dir / "edo.jpg", photos / "a.jpg")
    from PIL import Image

    Image.open(reference_dir / "edo.jpg").save(photos / "a.png")
    recon = tmp_path / "recon"
    for stem in ("a_jpg", "a_png"):
        (recon / stem).mkdir(parents=True)
        shutil.copy(reference_dir / "edo_projections.npz", recon / stem / f"{stem}_projections.npz")
    out = tmp_path / "out"
    result = cli("segment", recon, out, "--images", photos)
    assert result.exit_code == 0, result.output
    assert (out / "a_jpg_masked.png").is_file() and (out / "a_png_masked.png").is_file()


def test_missing_photo_gives_one_line_with_a_hint(layout):
    recon, photos, out = layout
    (photos / "sis.JPEG").unlink()
    result = cli("segment", recon, out, "--images", photos)
    assert result.exit_code == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("failed")]
    assert "sis" in line and "not found" in line


def test_every_face_of_an_image_is_removed(tmp_path, reference_dir):
    """RECON/<stem>/<stem>_face1_projections.npz belongs to <stem>: one masked PNG, both faces."""
    recon = tmp_path / "recon" / "edo"
    recon.mkdir(parents=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(reference_dir / "edo.jpg", photos / "edo.jpg")
    with np.load(reference_dir / "edo_projections.npz") as z:
        arrays = {k: z[k] for k in z.files}
    labels = arrays["seg_visible_labels_full"]
    h, w = labels.shape
    second = np.zeros_like(labels)
    second[: h // 2, : w // 2] = cv2.resize(labels, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    np.savez(recon / "edo_projections.npz", **arrays)
    np.savez(recon / "edo_face1_projections.npz", **{**arrays, "seg_visible_labels_full": second})
    groups = discover_recon(tmp_path / "recon")
    assert [(g.stem, [f.index for f in g.faces]) for g in groups] == [("edo", [0, 1])]
    out = tmp_path / "out"
    result = cli("segment", tmp_path / "recon", out, "--images", photos)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["edo_masked.png"]
    alpha = np.array(Image.open(out / "edo_masked.png"))[..., 3]
    assert (alpha[np.isin(labels, REMOVED)] == 0).all()
    assert (alpha[np.isin(second, REMOVED)] == 0).all()


def test_usage_errors(tmp_path, layout):
    recon, photos, out = layout
    result = cli("segment", tmp_path / "nope", out, "--images", photos)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: RECON not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("segment", empty, out, "--images", photos)
    assert result.exit_code == 2 and "projections.npz" in result.stderr
    # OUT inside the photos folder is refused
    result = cli("segment", recon, photos / "masked", "--images", photos)
    assert result.exit_code == 2 and "inside" in result.stderr


def test_corrupt_npz_is_isolated(layout):
    recon, photos, out = layout
    (recon / "sis" / "sis_projections.npz").write_bytes(b"not a zip")
    result = cli("segment", recon, out, "--images", photos)
    assert result.exit_code == 1
    assert (out / "edo_masked.png").is_file()
    [line] = [x for x in result.stderr.splitlines() if x.startswith("failed")]
    assert "sis_projections.npz" in line


def test_documented_example_short_options(layout, reference_dir):
    """`faceanon segment face3d/ seg/ -i photos/ ...` and `--feather-px 0` (hard alpha edge)."""
    recon, photos, out = layout
    result = cli("segment", recon, out, "-i", photos, "--feather-px", "0")
    assert result.exit_code == 0, result.output
    alpha = np.array(Image.open(out / "sis_masked.png"))[..., 3]
    assert set(np.unique(alpha).tolist()) == {0, 255}
    assert (alpha[np.isin(_labels(reference_dir, "sis"), REMOVED)] == 0).all()
