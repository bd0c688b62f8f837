"""The Runner's bookkeeping without models: report.json of a growing run is not rewritten after
every image (a 100k-image archive would write terabytes), yet holds every image at the end."""

from __future__ import annotations

import json
from pathlib import Path

from faceanon.runner import core
from faceanon.runner.core import Batch, RunEvents
from faceanon.stages.pipeline import ImageReport, RunOptions


class Recorder(RunEvents):
    def __init__(self) -> None:
        self.done, self.failed = [], []

    def image_done(self, report) -> None:
        self.done.append(report.stem)

    def image_failed(self, path, reason, exc) -> None:
        self.failed.append((path.name, reason))


def test_the_report_is_saved_at_once_then_at_intervals_and_whole_at_the_end(tmp_path, monkeypatch):
    sizes = []
    real = core.write_report

    def counting(out, reports, opts, started):
        sizes.append(len(reports))
        return real(out, reports, opts, started)

    monkeypatch.setattr(core, "write_report", counting)
    events = Recorder()
    batch = Batch(tmp_path, RunOptions(), events)
    for i in range(300):
        path = tmp_path / f"p{i}.jpg"
        batch.done(path, ImageReport(input=str(path), stem=f"p{i}"))
    batch.failed(tmp_path / "bad.jpg", "bad", ValueError("boom"))
    assert sizes[0] == 1  # the first finished image is on disk at once
    assert len(sizes) < 30, sizes  # not 301 rewrites of a growing file
    assert len(events.done) == 301 and events.failed == [("bad.jpg", "internal error: ValueError: boom")]
    batch.save()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"] == {**report["summary"], "images": 301, "ok": 300, "failed": 1}
    assert report["images"][-1]["error"] == "internal error: ValueError: boom"


def test_a_run_result_counts_and_exit_code():
    ok = ImageReport(input="/a.jpg", stem="a")
    bad = ImageReport(input="/b.jpg", stem="b", status="failed", error="no face found")
    assert core.RunResult(out=Path("/o"), reports=[ok]).exit_code == 0
    result = core.RunResult(out=Path("/o"), reports=[ok, bad, ImageReport(input="/c.jpg", stem="c", status="skipped")])
    assert (result.count("ok"), result.count("failed"), result.count("skipped"), result.exit_code) == (1, 1, 1, 1)


def test_run_options_outputs():
    from faceanon.errors import UsageError
    import pytest

    assert RunOptions().outputs == RunOptions(outputs=None).outputs == ("anonymized", "anon", "render")
    assert RunOptions(outputs=()).outputs == ()  # the Python API's in-memory calls: nothing written
    assert RunOptions(outputs="all").outputs == ("anonymized", "anon", "render", "face3d", "seg")
    assert RunOptions(outputs=" seg, anonymized ").outputs == ("anonymized", "seg")  # always in one order
    assert RunOptions(outputs="seg,anonymized").fingerprint() == RunOptions(outputs=["anonymized", "seg"]).fingerprint()
    assert RunOptions(outputs="all").fingerprint() != RunOptions().fingerprint()  # other outputs: redone
    for bad in ("", "anonymized,faces", "all,seg"):
        with pytest.raises(UsageError):
            RunOptions(outputs=bad)
