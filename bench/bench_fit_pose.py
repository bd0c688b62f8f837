"""Fit accuracy by head pose on the dev set: landmark NME and pose error against ground truth.

    python bench/bench_fit_pose.py [--devset DIR] [--model lite] [--csv rows.csv]

For every dev-set photo with ground truth (AFLW2000-3D / 300W-LP ``.mat``: ``pt3d_68`` or ``pt2d``
(68 points) and ``Pose_Para`` = pitch, yaw, roll in radians; menpo ``.pts``), the face whose box
holds the ground-truth landmarks is fitted with ``faceanon``'s detector and backend, and:

* NME: mean point-to-point error of the 68 landmarks divided by sqrt(w h) of the ground-truth
  landmarks' bounding box (the AFLW2000-3D protocol of 3DDFA), in %;
* yaw / pitch / roll error in degrees where the pose is known.

Rows are grouped by |yaw| (below 30, 30-60, above 60 degrees) as in the AFLW2000-3D tables. The
ground-truth yaw sign (negative: the face turns toward the viewer's right) is the same as
faceanon's (yaw > 0: nose toward image left).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def read_truth(image: Path):
    """(landmarks (68, 2) image px or None, pose degrees (yaw, pitch, roll) or None)."""
    mat = image.with_suffix(".mat")
    pts = image.with_suffix(".pts")
    if mat.is_file():
        import scipy.io as sio

        d = sio.loadmat(str(mat))
        lm = None
        if "pt3d_68" in d:
            lm = np.asarray(d["pt3d_68"], np.float64)[:2].T
        elif "pt2d" in d and np.shape(d["pt2d"]) == (2, 68):
            lm = np.asarray(d["pt2d"], np.float64).T
        pose = None
        if "Pose_Para" in d:
            pitch, yaw, roll = np.degrees(np.asarray(d["Pose_Para"], np.float64).reshape(-1)[:3])
            pose = (yaw, pitch, roll)
        return lm, pose
    if pts.is_file():
        rows = [ln.split() for ln in pts.read_text().splitlines()]
        xy = [(float(a), float(b)) for a, b, *_ in (r for r in rows if len(r) >= 2) if _isnum(a) and _isnum(b)]
        return np.asarray(xy[:68], np.float64) - 1.0, None  # .pts are 1-based
    return None, None


def _isnum(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def bucket(yaw: float) -> str:
    a = abs(yaw)
    return "below 30°" if a < 30 else ("30-60°" if a <= 60 else "above 60°")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devset", type=Path, default=SHARED / "devset")
    ap.add_argument("--model", default="lite")
    ap.add_argument("--csv", type=Path, default=None)
    a = ap.parse_args(argv)

    from faceanon.assets.store import get_store
    from faceanon.io.images import load_image
    from faceanon.models.loader import get_backend, get_detector

    store = get_store()
    det = get_detector(store, a.model)
    backend = get_backend(store, a.model)
    rows = []
    for img in sorted(p for p in a.devset.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".ppm")):
        gt, pose = read_truth(img)
        if gt is None or gt.shape != (68, 2):
            continue
        try:
            rgb = load_image(img).rgb
        except Exception as exc:  # noqa: BLE001 - a photo faceanon cannot read is listed, not fatal
            print(f"skipped {img.name}: {exc}", file=sys.stderr)
            continue
        dets = det.detect(rgb)
        x0, y0 = gt.min(0)
        x1, y1 = gt.max(0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        hit = [d for d in dets if d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3]]
        name = img.relative_to(a.devset).as_posix()
        if not hit:
            rows.append((name, pose, float("nan"), None))
            continue
        fit = backend.fit(rgb, hit[0])
        norm = math.sqrt((x1 - x0) * (y1 - y0))
        nme = float(np.linalg.norm(fit.landmarks68 - gt, axis=1).mean() / norm)
        rows.append((name, pose, nme, np.asarray(fit.pose, np.float64)))

    print("| photo | GT yaw | fit yaw | yaw err | pitch err | roll err | NME |")
    print("|---|---|---|---|---|---|---|")
    groups: dict = {}
    for name, pose, nme, fp in rows:
        yaw_gt = pose[0] if pose else float("nan")
        errs = [abs(fp[i] - pose[i]) if (pose and fp is not None) else float("nan") for i in range(3)]
        fy = fp[0] if fp is not None else float("nan")
        print(f"| {name} | {yaw_gt:+.1f} | {fy:+.1f} | {errs[0]:.1f} | {errs[1]:.1f} | {errs[2]:.1f} | "
              f"{100 * nme:.2f} % |")
        b = bucket(yaw_gt if pose else (fy if fp is not None else 0.0))
        groups.setdefault(b, []).append((nme, errs[0]))
    print()
    print("| |yaw| | faces | NME mean | NME max | yaw error mean |")
    print("|---|---|---|---|---|")
    for b in ("below 30°", "30-60°", "above 60°"):
        g = groups.get(b, [])
        n = np.array([x[0] for x in g], np.float64)
        e = np.array([x[1] for x in g], np.float64)
        if not g:
            continue
        print(f"| {b} | {len(g)} | {100 * np.nanmean(n):.2f} % | {100 * np.nanmax(n):.2f} % | "
              f"{np.nanmean(e) if np.isfinite(e).any() else float('nan'):.1f}° |")
    if a.csv:
        with open(a.csv, "w") as fh:
            fh.write("photo,gt_yaw,fit_yaw,nme\n")
            for name, pose, nme, fp in rows:
                fh.write(f"{name},{pose[0] if pose else ''},{fp[0] if fp is not None else ''},{nme}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
