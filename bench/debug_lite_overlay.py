"""Debug overlay of the lite backend: visible part labels + 68 landmarks (+ ground truth if a
``.pts`` file sits beside the image) drawn over each photo, written as PNGs.

    python bench/debug_lite_overlay.py [IMAGE ...] [--out /tmp/lite_debug] [--mirror DIR]

Colours: 1 right eye (image left) red, 2 left eye blue, 3/4 brows orange/cyan, 5 nose yellow,
6 upper lip magenta, 7 lower lip purple, 8 skin green (faint). Landmarks: white dots, 36 and 45
(outer eye corners) larger; ground truth: black crosses. Not part of the test suite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from faceanon.models.bfm import BFMSources
from faceanon.models.centerface import CenterFace
from faceanon.models.labels import visible_label_map
from faceanon.models.lite import LiteBackend

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COLOURS = {1: (255, 0, 0), 2: (0, 80, 255), 3: (255, 150, 0), 4: (0, 220, 220), 5: (255, 255, 0),
           6: (255, 0, 255), 7: (140, 0, 200), 8: (0, 200, 0)}


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().split("{")[1].split("}")[0].split()
    return np.asarray(lines, np.float64).reshape(-1, 2) - 1.0  # 1-based -> pixel-centre 0-based


def overlay(rgb: np.ndarray, fits, gt: np.ndarray | None) -> np.ndarray:
    out = rgb.astype(np.float32).copy()
    for fit in fits:
        lab = visible_label_map(fit, *rgb.shape[:2])
        for k, col in COLOURS.items():
            m = lab == k
            a = 0.25 if k == 8 else 0.55
            out[m] = (1 - a) * out[m] + a * np.asarray(col, np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    scale = max(1, int(round(max(rgb.shape[:2]) / 600)))
    for fit in fits:
        for i, (x, y) in enumerate(fit.landmarks68):
            r = 3 * scale if i in (36, 45) else 2 * scale
            cv2.circle(out, (int(round(x)), int(round(y))), r, (255, 255, 255), -1, cv2.LINE_AA)
        b = fit.detection.box
        cv2.rectangle(out, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 255, 255), scale)
    if gt is not None:
        for x, y in gt:
            p = (int(round(x)), int(round(y)))
            cv2.drawMarker(out, p, (0, 0, 0), cv2.MARKER_CROSS, 6 * scale, scale)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/lite_debug"))
    ap.add_argument("--mirror", type=Path, default=SHARED / "assets")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lite_debug/cache"))
    args = ap.parse_args()
    photos = SHARED / "fixtures" / "photos"
    images = args.images or [photos / "alison1.jpg", photos / "eos_image_0010.png"]
    m = args.mirror
    det = CenterFace(m / "detectors/centerface.onnx")
    be = LiteBackend.from_files(m / "3ddfa_v2/mb05_120x120.pth", m / "3ddfa_v2/param_mean_std_62d_120x120.pkl",
                                BFMSources.from_root(m), args.cache)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in images:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        fits = [be.fit(rgb, d) for d in det.detect(rgb)]
        pts = path.with_suffix(".pts")
        img = overlay(rgb, fits, read_pts(pts) if pts.is_file() else None)
        dst = args.out / f"{path.stem}_lite.png"
        cv2.imwrite(str(dst), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        print(dst, [np.round(f.pose, 1).tolist() for f in fits])


if __name__ == "__main__":
    main()
