"""Find the pieces of a ``faceanon run IN OUT`` output folder that the audit compares.

Layout (fixed by the pipeline)::

    OUT/face3d/<stem>/<stem>_projections.npz          main face; others <stem>_face1_projections.npz ...
    OUT/render/<stem>_front.png                        frontal render; others <stem>_face1_front.png ...
    OUT/anonymized/<stem>.<ext>                        the anonymized photo, same size as the original
    OUT/report.json                                    {"images": [{"input", "stem", "faces", "status"}, ...]}

Originals come from ``--originals IN`` (``IN/<stem>.*``; a collision stem such as ``a_jpg`` also tries
``IN/a.jpg``) and otherwise, or when not found there, from report.json's ``input`` path.
Pure file-system code: no dlib, no image decoding.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional

from faceanon.errors import FaceanonError, UsageError

from faceanon.io.images import IMAGE_EXTENSIONS as IMAGE_EXTS  # noqa: E402 (one list of formats)


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
    """report.json as a dict, None when absent; a FaceanonError when unreadable."""
    p = Path(run_out) / "report.json"
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
    """The faces of ``stem`` found under face3d/<stem>/, ordered main first, then _face1, _face2...

    A nested stem (``2024/p1/a``, from ``run --recursive``) names its files with the full stem, so
    they may sit in ``face3d/2024/p1/a/2024/p1/``; both places are searched.
    """
    d = Path(run_out) / "face3d" / stem
    base = PurePosixPath(stem).name
    rx = re.compile(r"^" + re.escape(base) + r"(?:_face(\d+))?_projections\.npz$")
    found: Dict[int, Path] = {}
    for folder in dict.fromkeys([d, d / PurePosixPath(stem).parent]):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = rx.match(p.name)
            if m and p.is_file():
                found.setdefault(int(m.group(1)) if m.group(1) else 0, p)
    return [FaceFiles(k=k, npz=found[k], render=render_path(run_out, stem, k)) for k in sorted(found)]


def render_path(run_out: Path, stem: str, k: int) -> Optional[Path]:
    name = f"{stem}_front.png" if k == 0 else f"{stem}_face{k}_front.png"
    p = Path(run_out) / "render" / name
    return p if p.is_file() else None


def _images_with_stem(folder: Path, stem: str) -> List[Path]:
    """Images ``folder/<stem>.<ext>`` (a nested stem ``sub/a`` looks in ``folder/sub``)."""
    ps = PurePosixPath(stem)
    folder = Path(folder) / ps.parent
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.stem == ps.name and p.suffix.lower() in IMAGE_EXTS)


def anonymized_path(run_out: Path, stem: str, prefer_ext: Optional[str] = None) -> Optional[Path]:
    cands = _images_with_stem(Path(run_out) / "anonymized", stem)
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
        return None, f"original not found: {rep} (from report.json)" + (f" nor {originals}/{stem}.*" if originals else "")
    if originals is not None:
        return None, f"original not found: no {originals}/{stem}.* and no report.json entry"
    return None, "original unknown: no report.json entry (hint: pass --originals IN)"


def discover(run_out: Path, originals: Optional[Path] = None) -> List[ImageFiles]:
    """Every image of a run output, in report.json order then the remaining face3d/ folders by name."""
    run_out = Path(run_out)
    if not run_out.is_dir():
        raise UsageError(f"RUN_OUT {run_out} is not a folder", "pass the OUT folder of `faceanon run IN OUT`")
    if originals is not None and not Path(originals).is_dir():
        raise UsageError(f"--originals {originals} is not a folder", "pass the IN folder of `faceanon run IN OUT`")
    report = read_report(run_out)
    face3d = run_out / "face3d"
    if report is None and not face3d.is_dir():
        raise FaceanonError(f"{run_out} is not a faceanon run output (no report.json, no face3d/)",
                            "run `faceanon run IN OUT` first, then `faceanon audit OUT`")
    options = (report or {}).get("options")
    written = options.get("outputs") if isinstance(options, dict) else None
    if isinstance(written, list) and "face3d" not in written and not face3d.is_dir():
        # `run` writes face3d/ (the run's landmarks and part labels, which the audit compares) only on request
        raise FaceanonError(f"{run_out} has no face3d/: the run did not write it, and the audit needs its landmarks",
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
