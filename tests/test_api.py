"""The Python API: ``from faceanon import Anonymizer`` with the real lite model files.

* ``anonymize(rgb)`` keeps the shape, changes the face and leaves the rest of the photo bit-exact;
* ``anonymize_file`` writes the same bytes as ``faceanon run`` for that file;
* bad input raises the project's errors with the one-line messages ``faceanon run`` prints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.errors import AssetError, ImageError, NoFaceError, UsageError
from faceanon.io.images import load_image
from tests.support.badinputs import face_photo, jpeg_bytes, png_bytes
from tests.support.lite_home import copy_photos, lite_env, lite_home  # noqa: F401 (fixture)

pytestmark = pytest.mark.assets

FAST = {"tex_size": 512, "img_size": 256}
FAST_CLI = ["--tex-size", "512", "--img-size", "256"]
# the in-place warp moves the surroundings of a face within a fade radius: pixels farther than half a
# face size (sqrt of the box area) from every box are untouched
FAR_FRACTION = 0.5


@pytest.fixture(scope="module")
def anon(lite_env):
    from faceanon import Anonymizer

    return Anonymizer(model="lite", keep_mouth=False, **FAST)


def _outside(shape, box) -> np.ndarray:
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    dw = dh = FAR_FRACTION * float(np.sqrt((x2 - x1) * (y2 - y1)))
    mask = np.ones((h, w), bool)
    mask[int(max(0, y1 - dh)):int(min(h, np.ceil(y2 + dh))), int(max(0, x1 - dw)):int(min(w, np.ceil(x2 + dw)))] = False
    return mask


@pytest.mark.parametrize("name", ["kim3.jpg", "eos_image_0010.png"])
def test_anonymize_changes_the_face_and_nothing_else(anon, photos_dir, name):
    rgb = load_image(photos_dir / name).rgb
    before = rgb.copy()
    result = anon.anonymize(rgb)
    assert np.array_equal(rgb, before)  # the input array is never modified
    assert result.image.shape == rgb.shape and result.image.dtype == np.uint8
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.name == "image" and face.box.shape == (4,) and face.landmarks68.shape == (68, 2)
    assert face.pose.shape == (3,) and 0.5 <= face.score <= 1.0
    assert face.anonymized.texture.shape == (512, 512, 3)
    outside = _outside(rgb.shape, face.box)
    assert np.array_equal(result.image[outside], rgb[outside])  # bit-exact away from the face
    x1, y1, x2, y2 = (int(v) for v in face.box)
    diff = np.abs(result.image.astype(int) - rgb.astype(int)).max(axis=2)
    assert diff[y1:y2, x1:x2].mean() > 4, diff[y1:y2, x1:x2].mean()  # the face itself changed
    assert set(result.seconds) >= {"reconstruct", "segment", "anonymize", "composite"}
    assert "render" not in result.seconds and "extract_texture" not in result.seconds  # nothing unasked


@pytest.mark.parametrize("privacy", ["standard", "low"])
def test_a_greyscale_photo_stays_greyscale(lite_env, photos_dir, privacy):
    """Nothing drawn on a black-and-white photo is tinted: the eye shadows, lips and brows of a face
    whose skin has no colour are grey in the composite and in the anonymized texture (the warm tint of
    the eye shadows once turned them orange)."""
    from faceanon import Anonymizer

    rgb = load_image(photos_dir / "kim3.jpg").rgb
    grey = np.repeat(np.rint(rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).astype(np.uint8)[..., None],
                     3, axis=2)
    result = Anonymizer(model="lite", privacy=privacy, **FAST).anonymize(grey)
    assert len(result.faces) == 1
    for what, img in (("composite", result.image), ("texture", result.faces[0].anonymized.texture)):
        spread = img.max(axis=2).astype(int) - img.min(axis=2)
        assert spread.max() == 0, (what, int(spread.max()), int((spread > 0).sum()))
    diff = np.abs(result.image.astype(int) - grey.astype(int)).max(axis=2)
    x1, y1, x2, y2 = (int(v) for v in result.faces[0].box)
    assert diff[y1:y2, x1:x2].mean() > 4  # the face was anonymized


def test_anonymize_file_writes_the_bytes_of_faceanon_run(anon, photos_dir, tmp_path):
    inp = copy_photos(photos_dir, tmp_path / "in", ("kim3.jpg", "eos_image_0010.png"))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", str(inp), str(out), *FAST_CLI])
    assert r.exit_code == 0, r.output
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("kim3.jpg", "eos_image_0010.png"):
        written = anon.anonymize_file(inp / name, mine / name)
        assert written == mine / name
        assert written.read_bytes() == (out / "anonymized" / name).read_bytes(), name
    # a folder as dst: the name and extension `run` would use
    assert anon.anonymize_file(inp / "kim3.jpg", mine) == mine / "kim3.jpg"


def test_anonymize_file_follows_lossless_and_never_overwrites_its_input(lite_env, photos_dir, tmp_path):
    from faceanon import Anonymizer

    src = tmp_path / "kim3.jpg"
    shutil.copy(photos_dir / "kim3.jpg", src)
    lossless = Anonymizer(lossless=True, **FAST)
    written = lossless.anonymize_file(src, tmp_path)  # the input's own folder: kim3.png, not kim3.jpg
    assert written == tmp_path / "kim3.png"
    orig, comp = load_image(src).rgb, load_image(written).rgb
    outside = _outside(orig.shape, lossless.anonymize(orig).faces[0].box)
    assert np.array_equal(comp[outside], orig[outside])  # PNG: bit-exact away from the face
    before = src.read_bytes()
    with pytest.raises(UsageError, match="would overwrite the input"):
        lossless.anonymize_file(src, src)
    assert src.read_bytes() == before


def _cli_reason(inp_dir: Path, name: str, tmp_path: Path) -> str:
    """The reason `faceanon run` prints for a failing file: ``failed <path>: <reason>``."""
    r = CliRunner().invoke(app, ["run", str(inp_dir), str(tmp_path / "cli_out"), *FAST_CLI])
    assert r.exit_code == 1, r.output
    prefix = f"failed {inp_dir / name}: "
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith(prefix)]
    return line[len(prefix):]


@pytest.mark.parametrize("case", ["truncated", "no_face", "tiny"])
def test_a_bad_file_raises_the_error_run_prints(anon, photos_dir, tmp_path, case):
    inp = tmp_path / "in"
    inp.mkdir()
    rgb = face_photo(photos_dir, "kim3.jpg", 0.5)
    if case == "truncated":
        data, exc_type = jpeg_bytes(rgb)[:2000], ImageError
    elif case == "no_face":
        data, exc_type = jpeg_bytes(np.full((200, 200, 3), 128, np.uint8)), NoFaceError
    else:
        data, exc_type = png_bytes(np.zeros((8, 8, 3), np.uint8)), ImageError
    src = inp / ("x.png" if case == "tiny" else "x.jpg")
    src.write_bytes(data)
    with pytest.raises(exc_type) as info:
        anon.anonymize_file(src, tmp_path / "o.jpg")
    reason = _cli_reason(inp, src.name, tmp_path)
    assert info.value.one_line() in (reason, f"{src}: {reason}")
    assert not (tmp_path / "o.jpg").exists()


def test_bad_arrays_raise_image_errors(anon):
    with pytest.raises(ImageError, match=r"must be \(H, W, 3\) uint8 RGB, got float64 \(32, 32, 3\)"):
        anon.anonymize(np.zeros((32, 32, 3)))
    with pytest.raises(ImageError, match=r"got uint8 \(32, 32\)"):
        anon.anonymize(np.zeros((32, 32), np.uint8))
    with pytest.raises(ImageError, match="image is 10×8 px, too small to hold a face"):
        anon.anonymize(np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(NoFaceError, match="no face found"):
        anon.anonymize(np.full((120, 160, 3), 90, np.uint8))


def test_bad_options_and_missing_model_files(lite_env, tmp_path, monkeypatch):
    from faceanon import Anonymizer

    with pytest.raises(UsageError, match="unknown option 'alhpa'"):
        Anonymizer(alhpa=0.5)
    with pytest.raises(UsageError, match=r"alpha must be in \[0, 2\], got 2.5"):
        Anonymizer(alpha=2.5)
    with pytest.raises(UsageError, match="--background must be transparent or white"):
        Anonymizer(background="pink")
    with pytest.raises(UsageError, match="--outputs: unknown output 'faces'"):
        Anonymizer(outputs="anonymized,faces")
    monkeypatch.setenv("FACEANON_HOME", str(tmp_path / "empty"))
    with pytest.raises(AssetError, match="is missing") as info:
        Anonymizer()
    assert "faceanon assets download" in info.value.one_line()


def test_run_from_python_is_faceanon_run(anon, photos_dir, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos_dir / "kim3.jpg", inp / "kim3.jpg")
    (inp / "grey.jpg").write_bytes(jpeg_bytes(np.full((200, 200, 3), 128, np.uint8)))
    result = anon.run(inp, tmp_path / "out")
    assert [(r.stem, r.status) for r in result.reports] == [("grey", "failed"), ("kim3", "ok")]
    assert result.exit_code == 1 and result.report_path == tmp_path / "out" / "report.json"
    assert "no face found" in result.reports[0].error
    assert anon.anonymize_file(inp / "kim3.jpg", tmp_path / "k.jpg").read_bytes() == \
        (tmp_path / "out" / "anonymized" / "kim3.jpg").read_bytes()


def test_the_readme_example_runs(lite_env, photos_dir, tmp_path):
    """The README's "Python API" block, run as written (the fixture path made absolute)."""
    import subprocess
    import sys

    from tests.support.lite_home import cli_env

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"../shared/fixtures/photos/', f'"{photos_dir}/')
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(lite_env), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    h, w = load_image(photos_dir / "kim3.jpg").rgb.shape[:2]
    assert r.stdout.splitlines()[0] == f"({h}, {w}, 3) uint8"
    assert r.stdout.splitlines()[1].startswith("image [")
    assert load_image(tmp_path / "kim3_anon.png").rgb.shape == (h, w, 3)
    assert load_image(tmp_path / "kim3_anon.jpg").rgb.shape == (h, w, 3)


def test_keywords_of_the_previous_release_still_work(lite_env):
    """render_margin= and brows= (now frame_fill= and keep_brows=, inverted) for one release, with a warning."""
    from faceanon import Anonymizer

    with pytest.warns(DeprecationWarning) as caught:
        old = Anonymizer(render_margin=0.6, brows=False, **FAST)
    assert {str(w.message).split("(")[1].split("=")[0] for w in caught} == {"render_margin", "brows"}
    new = Anonymizer(frame_fill=0.6, keep_brows=True, **FAST)
    assert old.options == new.options and old.options.frame_fill == 0.6 and old.options.keep_brows
    assert old.options.fingerprint() == new.options.fingerprint()
    with pytest.raises(UsageError, match="render_margin and frame_fill name the same option"), \
            pytest.warns(DeprecationWarning):
        Anonymizer(render_margin=0.6, frame_fill=0.5, **FAST)


def test_privacy_sets_the_margin_and_the_brows_as_on_the_command_line(lite_env):
    from faceanon import Anonymizer
    from faceanon.stages.privacy import PRIVACY_LEVELS

    for name, level in PRIVACY_LEVELS.items():
        o = Anonymizer(privacy=name, **FAST).options
        assert (o.removal_margin, o.remove_brows) == (level.margin, level.brows)

