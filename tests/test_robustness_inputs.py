"""Bad inputs: every file of a batch gets one clear answer, the rest of the batch completes.

One ``faceanon run`` subprocess over the whole corpus of :mod:`tests.support.badinputs` (broken files,
odd layouts, EXIF orientations, awkward names, faces the detector cannot or may not use); the tests
below check what it printed, wrote and left untouched. A smaller ``--jobs 2`` run checks the
worker-process path prints the same lines.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.badinputs import (
    EITHER, FAIL, OK, ORIENTED, SAME_STEM, UNICODE_NAMES, UPRIGHT, Case, build_corpus, check_tree_intact, png_bomb,
    snapshot,
)
from tests.support.lite_home import cli_env, faceanon_command, lite_home  # noqa: F401 (fixture)

pytestmark = [pytest.mark.assets, pytest.mark.slow]

# every output folder: the tests check the whole seed layout (face3d/, seg/ included)
FAST = ["--tex-size", "256", "--img-size", "128", "--outputs", "all"]


@dataclass
class Run:
    inp: Path
    out: Path
    cases: list[Case]
    rc: int
    stdout: str
    stderr: str
    report: dict
    before: dict
    after: dict
    seconds: float

    def case(self, kind: str) -> Case:
        (c,) = [c for c in self.cases if c.kind == kind]
        return c

    def entry(self, case: Case) -> dict:
        path = str((self.inp / case.name).resolve())
        found = [e for e in self.report["images"] if e["input"] == path]
        assert len(found) == 1, f"{case.name}: {len(found)} report entries"
        return found[0]

    def lines_naming(self, case: Case) -> list[str]:
        return [line for line in self.stderr.splitlines() if str(self.inp / case.name) in line]


def run_cli(args: list[str], home: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # a wide terminal: a reason repeated elsewhere (a summary table...) would show up on one line
    return subprocess.run([*faceanon_command(), *args], env=cli_env(home, COLUMNS="250"), cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout)


def do_run(root: Path, inp: Path, cases: list[Case], home: Path, extra: list[str] = ()) -> Run:
    out = root / "out"
    before = snapshot(inp)
    t0 = time.perf_counter()
    proc = run_cli(["run", str(inp), str(out), *FAST, *extra], home, root)
    seconds = time.perf_counter() - t0
    after = snapshot(inp)
    report_path = out / "report.json"
    assert report_path.is_file(), f"no report.json; rc={proc.returncode}\n{proc.stderr}"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return Run(inp, out, cases, proc.returncode, proc.stdout, proc.stderr, report, before, after, seconds)


@pytest.fixture(scope="module")
def corpus_run(lite_home, photos_dir, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("corpus")
    inp = root / "in"
    cases = build_corpus(inp, photos_dir)
    return do_run(root, inp, cases, lite_home)


FAIL_KINDS = ["zero_bytes", "truncated_jpeg", "text_as_jpg", "one_pixel", "huge_header", "no_face",
              "face_below_min_size"]
OK_KINDS = ["png_16bit", "cmyk_jpeg", "grayscale", "rgba", "palette", "upright", "exif_orientation_3",
            "exif_orientation_6", "exif_orientation_8", "name_spaces_accents", "name_cjk", "same_stem_jpg",
            "same_stem_png"]
EITHER_KINDS = ["face_cut_by_border"]


def test_the_corpus_covers_every_kind(corpus_run):
    kinds = {c.kind: c.expect for c in corpus_run.cases}
    assert kinds == {**{k: FAIL for k in FAIL_KINDS}, **{k: OK for k in OK_KINDS}, **{k: EITHER for k in EITHER_KINDS}}


def test_the_corpus_files_are_what_they_claim(photos_dir, tmp_path):
    """Checked with Pillow alone (no faceanon): a corpus that lost its defect would test nothing."""
    folder = tmp_path / "c"
    build_corpus(folder, photos_dir)

    def mode(name):
        with Image.open(folder / name) as im:
            return im.mode

    assert (folder / "empty.jpg").stat().st_size == 0
    with pytest.raises(OSError):
        with Image.open(folder / "truncated.jpg") as im:
            im.load()
    assert (folder / "notes.jpg").read_bytes().isascii()
    with Image.open(folder / "one_pixel.png") as im:
        assert im.size == (1, 1)
    head = (folder / "huge.png").read_bytes()[:26]
    assert struct.unpack(">II", head[16:24]) == (30000, 30000)
    assert head[24:26] == bytes([1, 0])  # 1-bit grey: small on disk, 900 MP decoded
    assert (folder / "deep16.png").read_bytes()[24:26] == bytes([16, 2])  # 16-bit RGB
    assert mode("cmyk.jpg") == "CMYK" and mode("grey_face.jpg") == "L"
    assert mode("rgba.png") == "RGBA" and mode("palette.png") == "P"
    for o, name in ORIENTED.items():
        with Image.open(folder / name) as im:
            assert im.getexif().get(0x0112) == o
    assert {p.name for p in folder.iterdir()} >= {*UNICODE_NAMES, *SAME_STEM}


def test_exit_code_1_and_no_traceback(corpus_run):
    r = corpus_run
    assert r.rc == 1, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "internal error" not in r.stderr, r.stderr


def test_report_summary_counts_every_file(corpus_run):
    r = corpus_run
    s = r.report["summary"]
    n_fail = sum(e["status"] == "failed" for e in r.report["images"])
    assert s["images"] == len(r.cases) == len(r.report["images"])
    assert s["failed"] == n_fail and s["ok"] == len(r.cases) - n_fail and s["skipped"] == 0
    assert re.search(rf"run: {s['ok']} ok, 0 skipped, {n_fail} failed", r.stderr)


def _reason_of(line: str, path: Path) -> str:
    prefix = f"failed {path}: "
    assert line.startswith(prefix), line
    return line[len(prefix):]


@pytest.mark.parametrize("kind", FAIL_KINDS)
def test_bad_file_gets_one_line_with_its_reason(corpus_run, kind):
    r = corpus_run
    case = r.case(kind)
    path = r.inp / case.name
    lines = r.lines_naming(case)
    assert len(lines) == 1, f"{case.name}: expected one line naming the file, got {lines}"
    reason = _reason_of(lines[0], path)
    assert case.matches(reason), f"{case.name}: {reason!r} does not match {case.reason!r}"
    assert not reason.startswith(str(path)), f"the path is repeated: {lines[0]!r}"
    # the reason is said once: not repeated elsewhere (a summary table, a second message...); other
    # files may fail for the very same reason, each on its own line
    repeated = [line for line in r.stderr.splitlines() if reason in line and not line.startswith("failed ")]
    assert repeated == [], r.stderr
    entry = r.entry(case)
    assert entry["status"] == "failed" and entry["error"] == reason and entry["outputs"] == []


@pytest.mark.parametrize("kind", FAIL_KINDS + EITHER_KINDS)
def test_a_failed_file_leaves_no_output(corpus_run, kind):
    r = corpus_run
    case = r.case(kind)
    entry = r.entry(case)
    if entry["status"] != "failed":
        pytest.skip(f"{case.name} succeeded")
    stem = entry["stem"]
    left = [p for p in r.out.rglob("*") if p.is_file() and (p.name.startswith(stem) or p.parent.name == stem)]
    assert left == [], left


@pytest.mark.parametrize("kind", EITHER_KINDS)
def test_face_cut_by_the_border_succeeds_or_fails_clearly(corpus_run, kind):
    r = corpus_run
    case = r.case(kind)
    entry = r.entry(case)
    lines = r.lines_naming(case)
    if entry["status"] == "ok":
        assert lines == [] and entry["faces"] >= 1
        assert all((r.out / o).is_file() for o in entry["outputs"])
    else:
        assert len(lines) == 1
        reason = _reason_of(lines[0], r.inp / case.name)
        assert case.matches(reason) and "internal error" not in reason, reason
        assert entry["error"] == reason


@pytest.mark.parametrize("kind", OK_KINDS)
def test_odd_but_valid_file_is_processed(corpus_run, kind):
    r = corpus_run
    case = r.case(kind)
    entry = r.entry(case)
    assert entry["status"] == "ok", entry
    assert entry["faces"] == 1 and entry["error"] is None
    assert r.lines_naming(case) == []
    outs = [r.out / o for o in entry["outputs"]]
    assert outs and all(p.is_file() for p in outs)
    stem = entry["stem"]
    for rel in (f"face3d/{stem}/{stem}_projections.npz", f"seg/{stem}_masked.png", f"render/{stem}_front.png",
                f"anon/{stem}/{stem}.obj", f".done/{stem}.json"):
        assert (r.out / rel).is_file(), rel
    assert (r.out / "anonymized" / f"{stem}{Path(case.name).suffix.lower()}").is_file()


def test_every_output_is_complete(corpus_run):
    counts = check_tree_intact(corpus_run.out)
    n_ok = corpus_run.report["summary"]["ok"]
    assert counts["npz"] == n_ok and counts["obj"] == 2 * n_ok  # face3d + anon meshes


def test_inputs_are_never_modified(corpus_run):
    r = corpus_run
    assert set(r.after) == set(r.before), "files appeared in or vanished from IN"
    changed = [name for name in r.before if r.before[name] != r.after[name]]
    assert changed == [], changed


# ------------------------------------------------------------------------------------ orientation

def _projections(r: Run, stem: str) -> dict:
    from faceanon.io.records import load_projections

    return load_projections(r.out / "face3d" / stem / f"{stem}_projections.npz")


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_oriented_copy_gives_the_upright_result(corpus_run, orientation):
    r = corpus_run
    stem = Path(ORIENTED[orientation]).stem
    ref_stem = Path(UPRIGHT).stem
    with Image.open(r.inp / UPRIGHT) as im:
        w, h = im.size
    with Image.open(r.inp / ORIENTED[orientation]) as im:
        stored = im.size
    if orientation in (6, 8):
        assert stored == (h, w)  # the file really holds the rotated pixels
    ref, got = _projections(r, ref_stem), _projections(r, stem)
    assert tuple(got["img_size"]) == tuple(ref["img_size"]) == (w, h)
    assert got["seg_visible_labels_full"].shape == (h, w)
    err = np.linalg.norm(got["landmarks68"] - ref["landmarks68"], axis=1)
    assert err.max() < 3.0, f"landmarks of orientation {orientation} differ from the upright ones by {err.max():.2f} px"
    for folder, s_ref, s_got in (("anonymized", f"{ref_stem}.jpg", f"{stem}.jpg"),
                                 ("seg", f"{ref_stem}_masked.png", f"{stem}_masked.png")):
        a = np.asarray(Image.open(r.out / folder / s_ref).convert("RGB"), np.float32)
        b = np.asarray(Image.open(r.out / folder / s_got).convert("RGB"), np.float32)
        assert a.shape == b.shape == (h, w, 3), folder
        assert np.abs(a - b).mean() < 6.0, f"{folder}/{s_got} is not upright"
    with Image.open(r.out / "anonymized" / f"{stem}.jpg") as im:
        assert im.getexif().get(0x0112) in (None, 1)  # no orientation tag left to rotate it again


# ------------------------------------------------------------------------------------ names

def test_two_inputs_with_one_stem_both_get_distinct_outputs(corpus_run):
    r = corpus_run
    jpg, png = (r.entry(r.case(k)) for k in ("same_stem_jpg", "same_stem_png"))
    base = Path(SAME_STEM[0]).stem
    assert (jpg["stem"], png["stem"]) == (f"{base}_jpg", f"{base}_png")
    assert jpg["status"] == png["status"] == "ok"
    assert not set(jpg["outputs"]) & set(png["outputs"])
    a = np.asarray(Image.open(r.out / "anonymized" / f"{base}_jpg.jpg"))
    b = np.asarray(Image.open(r.out / "anonymized" / f"{base}_png.png"))
    assert a.shape != b.shape or np.abs(a.astype(int) - b.astype(int)).mean() > 10  # two different photos
    assert not (r.out / "anonymized" / f"{base}.jpg").exists()


def test_same_stem_rule_is_documented():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`a.jpg` and `a.png`" in readme and "`a_jpg` and `a_png`" in readme


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_names_with_spaces_and_non_ascii(corpus_run, name):
    r = corpus_run
    stem = Path(name).stem
    assert (r.out / "anonymized" / name).is_file()
    assert (r.out / "face3d" / stem / f"{stem}_projections.npz").is_file()
    assert (r.out / "render" / f"{stem}_front.png").is_file()
    assert [e["stem"] for e in r.report["images"] if e["input"].endswith(name)] == [stem]
    assert name in r.stderr  # the summary table shows the name as it is


# ------------------------------------------------------------------------------------ causes

def test_the_small_face_is_rejected_by_the_size_filter_not_missed(corpus_run, lite_home):
    """Without the size filter the detector does find the face: the failure really is --min-face-size."""
    from faceanon.assets import get_store
    from faceanon.io.images import load_image
    from faceanon.models.loader import get_detector

    case = corpus_run.case("face_below_min_size")
    det = get_detector(get_store(mirror="", offline=True, data_dir=lite_home), min_face_size=0)
    faces = det.detect(load_image(corpus_run.inp / case.name).rgb)
    assert len(faces) == 1 and faces[0].size < 40


def test_the_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile

    from faceanon.errors import ImageError
    from faceanon.io.images import load_image

    path = tmp_path / "huge.png"
    data = png_bomb()
    path.write_bytes(data)
    assert data[12:16] == b"IHDR" and struct.unpack(">II", data[16:24]) == (30000, 30000)

    def no_decode(self, *a, **k):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(ImageError, match=r"30000×30000 \(900 MP\), above --max-pixels 60000000"):
        load_image(path)


# ------------------------------------------------------------------------------------ --jobs 2

JOBS_NAMES = ["empty.jpg", "notes.jpg", "flat_grey.png", "huge.png", UPRIGHT, ORIENTED[6]]


def test_worker_processes_report_failures_the_same_way(corpus_run, lite_home, tmp_path):
    root = tmp_path
    inp = root / "in"
    inp.mkdir()
    for name in JOBS_NAMES:
        (inp / name).write_bytes((corpus_run.inp / name).read_bytes())
    cases = [c for c in corpus_run.cases if c.name in JOBS_NAMES]
    r = do_run(root, inp, cases, lite_home, ["--jobs", "2"])
    assert r.rc == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for case in cases:
        lines = r.lines_naming(case)
        entry = r.entry(case)
        if case.expect == FAIL:
            assert len(lines) == 1, lines
            reason = _reason_of(lines[0], inp / case.name)
            assert case.matches(reason) and entry["error"] == reason
        else:
            assert lines == [] and entry["status"] == "ok"
    assert [Path(e["input"]).name for e in r.report["images"]] == sorted(JOBS_NAMES, key=str.casefold)
    assert r.before == r.after
    check_tree_intact(r.out)
