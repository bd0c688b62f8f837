"""What a run keeps in OUT besides the outputs: completion and crash markers, report.json, and the
rules that decide whether an image is complete or must be redone.

    OUT/.done/<stem>.json        completion marker, written last (after every output of the image)
    OUT/.done/<stem>.inprogress  present while a process works on the image; left behind only when
                                 that process died on it (a crash in native code, a kill)
    OUT/report.json              every image of the run: status, faces, poses, seconds, error, outputs

An image is complete when its marker names the same input (size, mtime), the same options
fingerprint (which includes the faceanon version) and outputs that all exist.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path

from faceanon import __version__
from faceanon.errors import FaceanonError
from faceanon.io.atomic import output_op
from faceanon.io.layout import ANON, FACE3D, REPORT, recon_folder
from faceanon.stages.pipeline import ImageReport, RunOptions

DONE_DIR = ".done"


def input_signature(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def marker_path(out: Path, stem: str) -> Path:
    return out / DONE_DIR / f"{stem}.json"


def in_progress_path(out: Path, stem: str) -> Path:
    """``OUT/.done/<stem>.inprogress``: present while an image is processed. Found by a later run
    with no completion marker, it means the process died on that image (a crash in native code,
    or a kill): the later run then processes it in a separate process, so it cannot take the
    whole run down twice."""
    return out / DONE_DIR / f"{stem}.inprogress"


def mark_in_progress(out: Path, stem: str, path: Path) -> None:
    """Create :func:`in_progress_path` (no fsync: only its existence matters, and after a power
    loss it may just be missing, which costs nothing)."""
    target = in_progress_path(out, stem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"input": str(path), "pid": os.getpid()}) + "\n")
    except OSError as exc:
        from faceanon.io.atomic import output_error

        raise output_error(target, exc) from exc


def clear_in_progress(out: Path, stem: str) -> None:
    try:
        in_progress_path(out, stem).unlink(missing_ok=True)
    except OSError:
        pass


def died_on(out: Path, stem: str) -> bool:
    """True when an earlier run died while processing ``stem`` (see :func:`in_progress_path`)."""
    return in_progress_path(out, stem).is_file()


def is_complete(out: Path, path: Path, stem: str, opts: RunOptions) -> dict | None:
    """The previous report entry if ``stem`` was completed for this input with these options."""
    mp = marker_path(out, stem)
    try:
        data = json.loads(mp.read_text())
    except (OSError, ValueError):
        return None
    if data.get("input_signature") != input_signature(path) or data.get("options") != opts.fingerprint():
        return None
    report = data.get("report")
    if not isinstance(report, dict) or set(report) != {f.name for f in fields(ImageReport)}:
        return None  # another marker schema: redo rather than trust it
    outputs = report.get("outputs") or []
    if not all((out / str(o)).is_file() for o in outputs) or not outputs:
        return None
    return report


def previous_outputs(out: Path, stem: str) -> list[Path]:
    """The outputs listed by ``stem``'s completion marker, if any (only paths inside ``out``)."""
    try:
        rels = json.loads(marker_path(out, stem).read_text())["report"]["outputs"]
        root = out.resolve()
        paths = [out / str(rel) for rel in rels]
        return [p for p in paths if root in p.resolve().parents]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def remove_outputs(out: Path, stem: str, written: list[Path]) -> None:
    """Remove what a failed image wrote, so that no half set of outputs is left for a rerun to trust.

    Only this image's own files: ``written`` (every path is listed *before* it is written) and the
    files directly in its ``face3d/<stem>/`` folder (the reconstruct stage writes several there); then
    those folders when left empty. Never a whole folder: ``face3d/<stem>/<sub>/`` belongs to the
    input ``<stem>/<sub>.jpg`` of a recursive run, and ``anon/<stem>_face…/`` may be another input's.
    """
    recon_dir = recon_folder(out / FACE3D, stem)
    paths = list(written)
    try:
        paths += [p for p in recon_dir.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        pass
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
    anon = out / ANON
    for d in {recon_dir, *(p.parent for p in written if anon in p.parents)}:
        try:
            d.rmdir()  # only when empty
        except OSError:
            pass


def write_marker(out: Path, stem: str, signature: dict, opts: RunOptions, report: ImageReport) -> None:
    """The completion marker of ``stem`` (atomic); finalizes ``report.seconds`` (rounded, with a total)."""
    from faceanon.io.atomic import atomic_write

    secs = {k: v for k, v in report.seconds.items() if k != "total"}  # every stage has run by now
    report.seconds = {**{k: round(v, 4) for k, v in secs.items()}, "total": round(sum(secs.values()), 4)}
    marker = {
        "version": __version__,
        "input_signature": signature,
        "options": opts.fingerprint(),
        "report": asdict(report),
    }
    mp = marker_path(out, stem)
    output_op(mp.parent, lambda p: p.mkdir(parents=True, exist_ok=True))
    with atomic_write(mp, "w") as fh:
        json.dump(marker, fh, indent=1)


def write_report(out: Path, reports: list[ImageReport], opts: RunOptions, started: float) -> Path:
    from faceanon.io.atomic import atomic_write

    ok = sum(r.status == "ok" for r in reports)
    skipped = sum(r.status == "skipped" for r in reports)
    failed = sum(r.status == "failed" for r in reports)
    data = {
        "faceanon_version": __version__,
        "options": asdict(opts),
        "summary": {"images": len(reports), "ok": ok, "skipped": skipped, "failed": failed,
                    "seconds": round(time.time() - started, 3)},
        "images": [asdict(r) for r in reports],
    }
    path = out / REPORT
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=1)
    return path


def failure_reason(path: Path, exc: BaseException) -> str:
    """One line saying why ``path`` failed, without repeating the path (the caller names the file)."""
    if isinstance(exc, FaceanonError):
        text = exc.one_line()
    else:
        text = " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
    for prefix in (f"{path}: ", f"{Path(path).resolve()}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def failure_report(path: Path, stem: str, exc: BaseException) -> ImageReport:
    return ImageReport(input=str(path.resolve()), stem=stem, status="failed", error=failure_reason(path, exc))
