"""The faces of audited `faceanon run` outputs, for the bench scripts that attack them again
(bench_what_matches.py, bench_gallery.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import numpy as np


def audited_faces(out: Path, originals: Optional[Path] = None) -> Iterator[Tuple[object, object, dict, str, Callable]]:
    """Every face with landmarks of the run output ``out``, which must have been audited (its
    ``audit.json`` gives each face's pose bucket), as ``(image, face, record, bucket, photos)``:
    the audit layout's ImageFiles and FaceFiles, the face's record (``read_face_npz``), its bucket
    ("" when unknown) and ``photos()`` -> (original, anonymized) (H, W, 3) uint8 RGB, decoded once per
    image and only when asked. Images without an original or an anonymized photo are left out."""
    from faceanon.audit import layout as audit_layout
    from faceanon.audit.core import load_rgb, read_face_npz

    audit = json.loads((Path(out) / "audit.json").read_text(encoding="utf-8"))
    bucket_of = {(r["stem"], r["face"]): r.get("pose_bucket") or "" for r in audit["rows"]}
    for img in audit_layout.discover(Path(out), originals):
        if img.original is None or img.anonymized is None:
            continue
        loaded: list = []

        def photos(img=img, loaded=loaded) -> Tuple[np.ndarray, np.ndarray]:
            if not loaded:
                loaded.extend((load_rgb(img.original), load_rgb(img.anonymized)))
            return loaded[0], loaded[1]

        for f in img.faces:
            rec = read_face_npz(f.npz) if f.npz is not None else None
            if rec is None or rec["landmarks68"] is None:
                continue
            yield img, f, rec, bucket_of.get((img.stem, f.k), ""), photos
