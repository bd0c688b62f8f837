"""Contact sheet of a `faceanon run` output: original | anonymized (| frontal render), one row per face.

Usage:
    python bench/contact_sheet.py OUT [OUT ...] --out sheet.png [--originals IN] [--cell 256] [--cols 2]
                                  [--no-render] [--stems a,b]

For every face of every image of each OUT (found the way `faceanon audit` finds them: report.json and
the per-face records of face3d/, so OUT must come from `faceanon run --outputs all` or `--audit`), a crop around the face (its box grown by 60 %) is taken from the original
photo and from the anonymized photo at the same place and scaled to --cell px; the frontal render is
added on a grey background unless --no-render. Faces are labelled with the stem, face index and yaw.
With several OUT folders (e.g. two option sets), each face gets one anonymized cell per OUT, so the
variants can be compared side by side. Several face rows are packed per sheet row (--cols).

The sheet is for looking at: seams, smudged holes, leftover eyes, faces that do not look like faces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GREY = 128


def face_box(rec: dict, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Square crop (x0, y0, x1, y1) around the face, clipped to the image."""
    h, w = shape
    boxes = []
    if rec.get("box") is not None:
        boxes.append(np.asarray(rec["box"], np.float64))
    if rec.get("landmarks68") is not None:
        lm = np.asarray(rec["landmarks68"], np.float64)
        boxes.append(np.concatenate([lm.min(0), lm.max(0)]))
    b = np.array([min(x[0] for x in boxes), min(x[1] for x in boxes), max(x[2] for x in boxes), max(x[3] for x in boxes)])
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    side = 1.6 * max(b[2] - b[0], b[3] - b[1])
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def cell(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = size / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    out = np.full((size, size, 3), GREY, np.uint8)
    y0, x0 = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    out[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return out


def label(img: np.ndarray, text: str) -> np.ndarray:
    # White text on a black strip: an outlined label (black stroke 3 px under white 1 px) was
    # unreadable on light backgrounds at this font size.
    out = img.copy()
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    out[: h + base + 6, : w + 8] = 0
    cv2.putText(out, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def face_rows(outs: list[Path], originals: Path | None, size: int, with_render: bool, stems: set[str] | None):
    from faceanon.audit import layout
    from faceanon.audit.core import load_render_rgb, load_rgb, read_face_npz

    first, *others = outs
    other_images = [{im.stem: im for im in layout.discover(o, originals)} for o in others]
    for img in layout.discover(first, originals):
        if stems and img.stem not in stems:
            continue
        if img.original is None or img.anonymized is None:
            continue
        original = load_rgb(img.original)
        anons = [load_rgb(img.anonymized)]
        for table in other_images:
            o = table.get(img.stem)
            anons.append(load_rgb(o.anonymized) if o is not None and o.anonymized is not None else None)
        for f in img.faces:
            if f.npz is None:
                continue
            rec = read_face_npz(f.npz)
            x0, y0, x1, y1 = face_box(rec, original.shape[:2])
            yaw = rec["pose"][0] if rec.get("pose") is not None else float("nan")
            cells = [label(cell(original[y0:y1, x0:x1], size), f"{img.stem} f{f.k} yaw {yaw:+.0f}")]
            for a in anons:
                cells.append(cell(a[y0:y1, x0:x1], size) if a is not None and a.shape == original.shape
                             else np.full((size, size, 3), GREY, np.uint8))
            if with_render:
                cells.append(cell(load_render_rgb(f.render), size) if f.render is not None
                             else np.full((size, size, 3), GREY, np.uint8))
            yield np.concatenate(cells, axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the sheet PNG to write")
    ap.add_argument("--originals", type=Path, default=None)
    ap.add_argument("--cell", type=int, default=256)
    ap.add_argument("--cols", type=int, default=2)
    ap.add_argument("--no-render", action="store_true")
    ap.add_argument("--stems", default="", help="comma-separated stems to include (default: all)")
    a = ap.parse_args(argv)
    stems = {s for s in a.stems.split(",") if s} or None
    rows = list(face_rows(a.outs, a.originals, a.cell, not a.no_render, stems))
    if not rows:
        print("no faces found", file=sys.stderr)
        return 1
    pad = 6
    row_w = rows[0].shape[1]
    grid = []
    for i in range(0, len(rows), a.cols):
        chunk = rows[i:i + a.cols]
        chunk += [np.full_like(rows[0], 255)] * (a.cols - len(chunk))
        sep = np.full((a.cell, pad, 3), 255, np.uint8)
        line = chunk[0]
        for r in chunk[1:]:
            line = np.concatenate([line, sep, r], axis=1)
        grid.append(line)
        grid.append(np.full((pad, line.shape[1], 3), 255, np.uint8))
    sheet = np.concatenate(grid, axis=0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"{len(rows)} faces -> {a.out} ({sheet.shape[1]}x{sheet.shape[0]}, row width {row_w})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
