"""`faceanon run` writes only what is safe to share unless asked: anonymized/, anon/, render/ and
report.json by default; `--outputs all` (or a list) adds the debugging folders face3d/ and seg/.
Nothing is computed for an output that is not written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from tests.support.lite_home import copy_photos, lite_home, offline_home  # noqa: F401 (fixture)

pytestmark = pytest.mark.assets

FAST = ["--tex-size", "256", "--img-size", "128"]
NAMES = ("kim3.jpg", "eos_image_0010.png")


@pytest.fixture(scope="module")
def inputs(lite_home, photos_dir, tmp_path_factory):
    with offline_home(lite_home):
        yield copy_photos(photos_dir, tmp_path_factory.mktemp("in"), NAMES)


def _run(*args):
    return CliRunner().invoke(app, ["run", *[str(a) for a in args]])


def _tree(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".done" not in p.parts
                  and p.name != ".faceanon.lock")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_default_run_writes_only_the_safe_folders(inputs, tmp_path):
    out = tmp_path / "out"
    r = _run(inputs, out, *FAST)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["anon", "anonymized", "render", "report.json"]
    expected = ["report.json"]
    for stem, ext in (("eos_image_0010", ".png"), ("kim3", ".jpg")):
        expected += [f"anon/{stem}/{stem}.mtl", f"anon/{stem}/{stem}.obj", f"anon/{stem}/{stem}_texture.png",
                     f"anonymized/{stem}{ext}", f"render/{stem}_front.png"]
    assert _tree(out) == sorted(expected)
    report = _report(out)
    assert report["options"]["outputs"] == ["anonymized", "anon", "render"]
    for e in report["images"]:  # no time spent on the extracted texture of face3d/
        assert "extract_texture" not in e["seconds"] and e["seconds"]["render"] >= 0


def test_outputs_all_writes_the_seed_layout_and_the_same_photos(inputs, tmp_path):
    default, full = tmp_path / "default", tmp_path / "all"
    assert _run(inputs, default, *FAST).exit_code == 0
    r = _run(inputs, full, *FAST, "--outputs", "all")
    assert r.exit_code == 0, r.output
    tree = _tree(full)
    for stem in ("eos_image_0010", "kim3"):
        for rel in (f"face3d/{stem}/{stem}_extractTex.obj", f"face3d/{stem}/{stem}_extractTex.mtl",
                    f"face3d/{stem}/{stem}_extractTex.png", f"face3d/{stem}/{stem}_projections.npz",
                    f"seg/{stem}_masked.png"):
            assert rel in tree, rel
    assert set(_tree(default)) < set(tree)
    for rel in _tree(default):  # the extra folders change nothing else
        if rel != "report.json":
            assert (full / rel).read_bytes() == (default / rel).read_bytes(), rel


def test_a_list_writes_exactly_those_folders_and_computes_nothing_else(inputs, tmp_path):
    out = tmp_path / "out"
    r = _run(inputs, out, *FAST, "--outputs", "face3d, anonymized")
    assert r.exit_code == 0, r.output
    assert sorted({rel.split("/")[0] for rel in _tree(out)}) == ["anonymized", "face3d", "report.json"]
    for e in _report(out)["images"]:
        assert "render" not in e["seconds"] and e["seconds"]["extract_texture"] > 0


def test_a_default_rerun_removes_the_debugging_folders_of_an_all_run(inputs, tmp_path):
    """Other outputs = other options: the images are redone, and face3d/ and seg/ files go."""
    out = tmp_path / "out"
    assert _run(inputs, out, *FAST, "--outputs", "all").exit_code == 0
    assert (out / "face3d" / "kim3" / "kim3_extractTex.png").is_file()
    r = _run(inputs, out, *FAST)
    assert r.exit_code == 0, r.output
    assert {e["status"] for e in _report(out)["images"]} == {"ok"}
    assert not [rel for rel in _tree(out) if rel.startswith(("face3d/", "seg/"))]


@pytest.mark.parametrize("args, message", [
    (["--outputs", "anonymized,faces"], "--outputs: unknown output 'faces'"),
    (["--outputs", ","], "--outputs: no output named"),
    (["--vis"], "--vis writes its overlays into face3d/"),
])
def test_bad_outputs_are_usage_errors(inputs, tmp_path, args, message):
    r = _run(inputs, tmp_path / "out", *args)
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_audit_of_a_default_run_says_it_needs_face3d(inputs, tmp_path):
    pytest.importorskip("dlib", reason="the audit extra is not installed: pip install 'faceanon[audit]'")
    out = tmp_path / "out"
    assert _run(inputs, out, *FAST).exit_code == 0
    r = CliRunner().invoke(app, ["audit", str(out)])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "has no face3d/" in lines[0] and "--audit" in lines[0], r.stderr
