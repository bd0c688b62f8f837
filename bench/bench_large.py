"""Benchmark of `faceanon run` on one large portrait (a camera-sized photo, the face filling it).

Usage (real model files through the mirror):

    FACEANON_ASSETS_MIRROR=<asset mirror folder> python bench/bench_large.py [--megapixels 24] [--runs 3]

The fixture ``alison1.jpg`` is upscaled (bicubic) to ``--megapixels`` and saved as a JPEG (quality
92); every step whose cost grows with the face's size in pixels is exercised: detection on the
downscaled copy, the full-size texture bake (the face has more than 2048² worth of pixels), the
inpainting of a ~1000 px-IOD face, the feathered composite at native resolution. Models are loaded
once; after one warm-up image the image is processed ``--runs`` times exactly as `faceanon run`
does (image i's files are written in the background while the next one starts). Prints a markdown
table of the median seconds per stage, the wall clock per image and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))
PHOTO = HERE.parent.parent / "shared" / "fixtures" / "photos" / "alison1.jpg"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--outputs", default=None, help="output folders as `run --outputs` (default: anonymized,anon,render)")
    args = ap.parse_args()

    import cv2

    from faceanon.assets import get_store
    from faceanon.runner.models import load_models
    from faceanon.runner.commit import start_image
    from faceanon.stages.pipeline import RunOptions

    src = cv2.imread(str(args.photo))
    if src is None:
        print(f"cannot read {args.photo}", file=sys.stderr)
        return 1
    h, w = src.shape[:2]
    f = (args.megapixels * 1e6 / (h * w)) ** 0.5
    big = cv2.resize(src, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    opts = RunOptions(outputs=args.outputs)
    models = load_models(get_store(), opts)
    rows: dict[str, list[float]] = {}
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "large.jpg"
        cv2.imwrite(str(photo), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        for i in range(args.runs + 1):
            out = Path(tmp) / f"out{i}"
            t = time.perf_counter()
            report = start_image(photo, "large", out, models, opts).result()
            wall = time.perf_counter() - t
            if report.status != "ok":
                print(f"failed: {report.error}", file=sys.stderr)
                return 1
            if i == 0:
                continue  # warm-up: detector network for this size, UV layouts
            walls.append(wall)
            for k, v in report.seconds.items():
                rows.setdefault(k, []).append(v)
    print(f"## faceanon run on one {big.shape[1]}x{big.shape[0]} photo ({big.shape[0] * big.shape[1] / 1e6:.1f} MP), "
          f"{report.faces} face(s), median of {args.runs}")
    print()
    print("| stage | median s |")
    print("|---|---:|")
    for k, v in rows.items():
        if k != "total":
            print(f"| {k} | {statistics.median(v):.3f} |")
    print(f"| **wall clock per image, files written** | **{statistics.median(walls):.3f}** |")
    print()
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
