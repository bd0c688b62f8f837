"""Find the pieces of a ``faceanon run IN OUT`` output folder that the audit compares.

The run's layout is :mod:`faceanon.io.layout`: the audit reads each face's projections record
(face3d), each face's frontal render (render), the anonymized photo (anonymized) and the report
(``{"images": [{"input", "stem", "faces", "status"}, ...]}``).

Originals come from ``--originals IN`` (``IN/<stem>.*``; a collision stem such as ``a_jpg`` also tries
``IN/a.jpg``) and otherwise, or when not found there, from report.json's ``input`` path.
Pure file-system code: no dlib, no image decoding.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from faceanon.errors import FaceanonError, UsageError
from faceanon.io import layout


@dataclass
class FaceFiles:
    """One face of one image: its index k (0 = main face, k = the ``_face<k>`` files) and its files."""

    k: int
    npz: Optional[Path]
    render: Optional[Path]


@dataclass
class ImageFiles:
    """Everything the audit needs for one image of the run."""

    stem: str
    original: Optional[Path]
    original_note: str
    anonymized: Optional[Path]
    faces: List[FaceFiles]
    run_status: str = "unknown"  # report.json's status: "ok", "failed" or "unknown" (no entry)
    run_faces: Optional[int] = None  # report.json's face count
    run_error: str = ""
    report: Dict = field(default_factory=dict)


def read_report(run_out: Path) -> Optional[dict]:
    """The run's report as a dict, None when absent; a FaceanonError when unreadable."""
    p = Path(run_out) / layout.REPORT
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FaceanonError(f"cannot read {p}: {exc}", "rerun `faceanon run` to rewrite it") from None
    if not isinstance(data, dict) or not isinstance(data.get("images", []), list):
        raise FaceanonError(f"{p} has no \"images\" list", "is this the report of `faceanon run`?")
    return data


def _report_stem(entry: dict) -> Optional[str]:
    stem = entry.get("stem")
    if isinstance(stem, str) and stem:
        return stem
    inp = entry.get("input")
    if isinstance(inp, str) and inp:
        return Path(inp).stem
    return None


def face_files(run_out: Path, stem: str) -> List[FaceFiles]:
    """The faces of ``stem`` in the run's reconstruct folder, ordered main first, then _face1, _face2...
    (:func:`faceanon.io.layout.recon_faces`)."""
    found = layout.recon_faces(Path(run_out) / layout.FACE3D, stem)
    return [FaceFiles(k=k, npz=npz, render=render_path(run_out, stem, k)) for k, npz in found.items()]


def render_path(run_out: Path, stem: str, k: int) -> Optional[Path]:
    p = layout.render_file(Path(run_out) / layout.RENDER, stem, layout.face_name(stem, k))
    return p if p.is_file() else None


def anonymized_path(run_out: Path, stem: str, prefer_ext: Optional[str] = None) -> Optional[Path]:
    cands = layout.find_images(Path(run_out) / layout.ANONYMIZED, stem)
    if prefer_ext:
        same = [p for p in cands if p.suffix.lower() == prefer_ext.lower()]
        if same:
            return same[0]
    return cands[0] if cands else None


def find_original(stem: str, originals: Optional[Path], report_input: Optional[str]) -> tuple[Optional[Path], str]:
    """(path, note) of the original of ``stem``; path None (and the note says why) when not found."""
    rep = Path(report_input) if report_input else None
    if originals is not None:
        from faceanon.io.images import photo_for_stem

        hit = photo_for_stem(originals, stem)  # the same naming rules the run used
        if hit is not None:
            return hit, ""
    if rep is not None:
        if rep.is_file():
            return rep, ""
        return None, f"original not found: {rep} (from {layout.REPORT})" + (f" nor {originals}/{stem}.*" if originals else "")
    if originals is not None:
        return None, f"original not found: no {originals}/{stem}.* and no {layout.REPORT} entry"
    return None, f"original unknown: no {layout.REPORT} entry (hint: pass --originals IN)"


def discover(run_out: Path, originals: Optional[Path] = None) -> List[ImageFiles]:
    """Every image of a run output, in the report's order, then the remaining reconstruct folders by name."""
    run_out = Path(run_out)
    if not run_out.is_dir():
        raise UsageError(f"RUN_OUT {run_out} is not a folder", "pass the OUT folder of `faceanon run IN OUT`")
    if originals is not None and not Path(originals).is_dir():
        raise UsageError(f"--originals {originals} is not a folder", "pass the IN folder of `faceanon run IN OUT`")
    report = read_report(run_out)
    face3d = run_out / layout.FACE3D
    if report is None and not face3d.is_dir():
        raise FaceanonError(f"{run_out} is not a faceanon run output (no {layout.REPORT}, no {layout.FACE3D}/)",
                            "run `faceanon run IN OUT` first, then `faceanon audit OUT`")
    options = (report or {}).get("options")
    written = options.get("outputs") if isinstance(options, dict) else None
    if isinstance(written, list) and layout.FACE3D not in written and not face3d.is_dir():
        # `run` writes face3d/ (the run's landmarks and part labels, which the audit compares) only on request
        raise FaceanonError(f"{run_out} has no {layout.FACE3D}/: the run did not write it, and the audit needs its landmarks",
                            "rerun with `faceanon run IN OUT --audit`, or with --outputs all, then `faceanon audit OUT`")
    images: List[ImageFiles] = []
    seen = set()
    for entry in (report or {}).get("images", []):
        if not isinstance(entry, dict):
            continue
        stem = _report_stem(entry)
        if stem is None or stem in seen:
            continue
        seen.add(stem)
        inp = entry.get("input") if isinstance(entry.get("input"), str) else None
        original, note = find_original(stem, originals, inp)
        faces = entry.get("faces")
        run_faces = faces if isinstance(faces, int) else (len(faces) if isinstance(faces, list) else None)
        status = entry.get("status") if isinstance(entry.get("status"), str) else "unknown"
        err = entry.get("error") or entry.get("message") or ""
        images.append(ImageFiles(
            stem=stem, original=original, original_note=note,
            anonymized=anonymized_path(run_out, stem, original.suffix if original else None),
            faces=face_files(run_out, stem), run_status=status, run_faces=run_faces,
            run_error=str(err) if err else "", report=entry,
        ))
    if face3d.is_dir():
        # no report entry: every folder under face3d/ whose relative path is a stem with faces
        for root, dirs, _files in sorted(os.walk(face3d)):
            dirs.sort()
            rel = Path(root).relative_to(face3d).as_posix()
            if rel == "." or rel in seen:
                continue
            faces = face_files(run_out, rel)
            if not faces:
                continue
            seen.add(rel)
            original, note = find_original(rel, originals, None)
            images.append(ImageFiles(
                stem=rel, original=original, original_note=note,
                anonymized=anonymized_path(run_out, rel, original.suffix if original else None), faces=faces,
            ))
    return images
