"""`faceanon run` and the stage commands are one pipeline: the same option names mean the same
thing, and the files they share come out byte for byte the same (one fixture photo, non-default
values for every option both take).

What cannot be equal, and why: the anonymized texture (and so the render and the photo) of
`faceanon anonymize` is coloured from the segmented photo, where `run` has the original photo in
memory; the render of `faceanon render` reads the OBJ's 6-decimal vertices, and so do the similarity
of `--alpha` < 1 and `--keep-pose` (kim3: the keep-pose vertices differ by at most 1.0e-6 px) and the
morph past the mean face (`--alpha` 1.5: the OBJ within 1e-5 mm on kim3; `faceanon composite` then
places the face within 0.1-0.4 px of `run`, see `composite.posed_image_vertices`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from tests.support.lite_home import copy_photos, lite_home, offline_home  # noqa: F401 (fixture)
from tests.support.renamed import assert_same_files

pytestmark = pytest.mark.assets

SEGMENT = ["--privacy", "low", "--margin", "0.25", "--feather-px", "4", "--fill", "features"]
ANONYMIZE = ["--tex-size", "256"]  # alpha 1, canonical: the OBJ is the model's mean face in mm


def cli(*args) -> None:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    assert "deprecated" not in r.stderr


@pytest.fixture(scope="module")
def both(lite_home, photos_dir, tmp_path_factory):
    with offline_home(lite_home):
        root = tmp_path_factory.mktemp("chain")
        inp = copy_photos(photos_dir, root / "in", ["kim3.jpg"])
        run, st = root / "run", root / "stages"
        cli("run", inp, run, "--outputs", "all", "--recon-tex-size", "256", *SEGMENT, *ANONYMIZE,
            "--img-size", "96", "--frame-fill", "0.7", "--background", "white")
        cli("reconstruct", inp, st / "face3d", "--recon-tex-size", "256")
        cli("segment", st / "face3d", st / "seg", "--images", inp, *SEGMENT)
        cli("anonymize", st / "face3d", st / "anon", "--seg", st / "seg", *ANONYMIZE)
        # past the mean face: the identity part of the fit, by the model's bases
        cli("run", inp, root / "run_past", "--outputs", "anon", *SEGMENT, "--tex-size", "256", "--alpha", "1.5")
        cli("anonymize", st / "face3d", st / "anon_past", "--seg", st / "seg", "--tex-size", "256", "--alpha", "1.5")
        yield run, st


def test_reconstruct_is_runs_face3d(both):
    run, st = both
    assert_same_files(run / "face3d", st / "face3d")


def test_segment_is_runs_seg(both):
    run, st = both
    assert_same_files(run / "seg", st / "seg")


def test_anonymize_writes_runs_mesh(both):
    run, st = both
    for name in ("kim3.obj", "kim3.mtl"):
        assert (run / "anon" / "kim3" / name).read_bytes() == (st / "anon" / "kim3" / name).read_bytes(), name


def test_anonymize_past_the_mean_is_runs_mesh(both):
    import numpy as np

    from faceanon.io.mesh import read_obj

    run, st = both
    v_run, _, _, _ = read_obj(run.parent / "run_past" / "anon" / "kim3" / "kim3.obj")
    v_st, _, _, _ = read_obj(st / "anon_past" / "kim3" / "kim3.obj")
    v_mean, _, _, _ = read_obj(run / "anon" / "kim3" / "kim3.obj")
    np.testing.assert_allclose(v_st, v_run, rtol=0, atol=1e-5)
    assert np.abs(v_run - v_mean).max() > 0.3  # past the mean: away from the mean face (0.7 mm on kim3)
