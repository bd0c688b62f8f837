"""``faceanon render ANON OUT`` on small anonymize-like folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.io.images import save_image_atomic
from faceanon.io.mesh import write_obj
from test_anonymize_helpers import grid_mesh, merge


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write_anon(root: Path, name: str, *, obj_name: str | None = None) -> Path:
    """ANON/<name>/<obj_name>.obj + .mtl + <name>_texture.png: red quad at x < 0, blue quad at x > 0."""
    red = grid_mesh(-1.0, -1.0, -0.1, 1.0, 0.0, 2, (0.02, 0.02, 0.45, 0.98))
    blue = grid_mesh(0.1, -1.0, 1.0, 1.0, 0.0, 2, (0.55, 0.02, 0.98, 0.98))
    v, t, uv = merge(red, blue)
    tex = np.zeros((32, 32, 3), np.uint8)
    tex[:, :16] = (255, 0, 0)
    tex[:, 16:] = (0, 0, 255)
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    save_image_atomic(d / f"{name}_texture.png", tex)
    obj = d / f"{obj_name or name}.obj"
    write_obj(obj, v * 1e4, uv, t, texture_png_name=f"{name}_texture.png")
    return obj


def test_render_writes_front_png_per_mesh(tmp_path):
    anon = tmp_path / "anon"
    write_anon(anon, "a")
    write_anon(anon, "b_face1")
    out = tmp_path / "render"
    r = cli("render", anon, out, "--img-size", 64)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["a_front.png", "b_face1_front.png"]
    img = np.asarray(Image.open(out / "a_front.png"))
    assert img.shape == (64, 64, 4)
    assert img[0, 0, 3] == 0 and img[-1, -1, 3] == 0
    # red (model x < 0) on the left, blue on the right
    assert tuple(img[32, 16, :3]) == (255, 0, 0) and tuple(img[32, 48, :3]) == (0, 0, 255)


def test_render_white_background_and_size(tmp_path):
    anon = tmp_path / "anon"
    write_anon(anon, "a")
    r = cli("render", anon, tmp_path / "render", "--img-size", 48, "--background", "white", "--frame-fill", 0.5)
    assert r.exit_code == 0, r.output
    img = np.asarray(Image.open(tmp_path / "render" / "a_front.png"))
    assert img.shape == (48, 48, 3)
    assert tuple(img[0, 0]) == (255, 255, 255)


def test_render_keeps_subfolders(tmp_path):
    anon = tmp_path / "anon"
    write_anon(anon / "2024", "x")
    r = cli("render", anon, tmp_path / "render", "--img-size", 32)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "render" / "2024" / "x_front.png").is_file()


def test_render_reports_a_folder_without_its_named_obj(tmp_path):
    anon = tmp_path / "anon"
    write_anon(anon, "good")
    write_anon(anon, "odd", obj_name="other")
    r = cli("render", anon, tmp_path / "render", "--img-size", 32)
    assert r.exit_code == 1
    failed = [line for line in r.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "no odd.obj" in failed[0] and "other.obj" in failed[0]
    assert (tmp_path / "render" / "good_front.png").is_file()


def test_render_missing_texture_fails_that_mesh_only(tmp_path):
    anon = tmp_path / "anon"
    write_anon(anon, "a")
    write_anon(anon, "b")
    (anon / "b" / "b_texture.png").unlink()
    r = cli("render", anon, tmp_path / "render", "--img-size", 32)
    assert r.exit_code == 1
    assert "no texture" in r.stderr and (tmp_path / "render" / "a_front.png").is_file()


def test_render_usage_errors(tmp_path):
    r = cli("render", tmp_path / "nope", tmp_path / "render")
    assert r.exit_code == 2 and "ANON folder not found" in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("render", tmp_path / "empty", tmp_path / "render")
    assert r.exit_code == 2 and "no <name>/<name>.obj" in r.stderr
    write_anon(tmp_path / "anon", "a")
    r = cli("render", tmp_path / "anon", tmp_path / "render", "--background", "black")
    assert r.exit_code == 2
    r = cli("render", tmp_path / "anon", tmp_path / "render", "--frame-fill", "1.5")
    assert r.exit_code == 2
    r = cli("render", tmp_path / "anon", tmp_path / "render", "--img-size", "8192", "--supersample", "4")
    assert r.exit_code == 2 and "--supersample" in r.stderr
    assert not (tmp_path / "render").exists()


def test_render_pytorch3d_missing_is_one_line(tmp_path):
    try:
        import pytorch3d  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("pytorch3d is installed")
    write_anon(tmp_path / "anon", "a")
    r = cli("render", tmp_path / "anon", tmp_path / "render", "--renderer", "pytorch3d")
    assert r.exit_code == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "PyTorch3D" in lines[0]
    assert not (tmp_path / "render").exists()


def test_render_pytorch3d_cli_matches_builtin(tmp_path):
    pytest.importorskip("pytorch3d")
    write_anon(tmp_path / "anon", "a")
    assert cli("render", tmp_path / "anon", tmp_path / "r1", "--img-size", 64).exit_code == 0
    assert cli("render", tmp_path / "anon", tmp_path / "r2", "--img-size", 64, "--renderer", "pytorch3d").exit_code == 0
    a = np.asarray(Image.open(tmp_path / "r1" / "a_front.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "r2" / "a_front.png")).astype(int)
    assert np.abs(a - b).mean() < 2


def test_help_states_what_the_pytorch3d_cpu_path_costs():
    r = CliRunner().invoke(app, ["render", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    assert "~54 s per mesh at --img-size 256" in text and "~14 min at the default 1024" in text


def test_old_margin_spelling_is_frame_fill_with_a_warning(tmp_path):
    """render --margin (the frame fill, renamed --frame-fill: --margin is the removal margin of
    segment and run) still works for one release: the same files, byte for byte, and one warning."""
    from tests.support.renamed import assert_no_warning, assert_one_warning, assert_same_files

    write_anon(tmp_path / "anon", "a")
    new = cli("render", tmp_path / "anon", tmp_path / "new", "--img-size", 48, "--frame-fill", 0.6)
    old = cli("render", tmp_path / "anon", tmp_path / "old", "--img-size", 48, "--margin", 0.6)
    eq = cli("render", tmp_path / "anon", tmp_path / "eq", "--img-size", 48, "--margin=0.6")
    default = cli("render", tmp_path / "anon", tmp_path / "default", "--img-size", 48)
    assert_no_warning(new)
    assert_one_warning(old, "--margin", "--frame-fill")
    assert_one_warning(eq, "--margin", "--frame-fill")
    assert_same_files(tmp_path / "new", tmp_path / "old")
    assert_same_files(tmp_path / "new", tmp_path / "eq")
    assert (tmp_path / "new" / "a_front.png").read_bytes() != (tmp_path / "default" / "a_front.png").read_bytes()
    assert "--margin" not in cli("render", "--help").stdout  # hidden
