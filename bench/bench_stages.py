"""Benchmark of the anonymize texture re-bake and the frontal render.

Usage:  python bench/bench_stages.py [--runs 15] [--tex-size 2048] [--img-size 1024] [--photo PATH]

Input: the real 38,365-vertex lite BFM mean face (from the asset mirror: $FACEANON_ASSETS_MIRROR,
else the test data's mirror next to the repo) posed at yaw 20 / pitch -5 into a photo frame, with
``--photo`` (default: the fixture photo alison1.jpg, resized to 400 x 440) as the texture
source. A real fit is not needed for timing: the work depends on the mesh, the photo size and the
texture / render sizes only.

Rows (median and min wall time over --runs calls, after one warm-up call, which also fills the UV
layout cache as in a batch):

* ``anonymize_face`` at --tex-size: Umeyama + morph + visibility-aware bake (the whole stage);
* ``bake_texture`` at --tex-size: the bake alone, adaptive (the default: baked at the size the
  face's photo resolution needs, then resampled) and at full size (``adaptive=False``, what a
  face large in its photo costs);
* ``render_front`` at --img-size (supersample 2, transparent): the frontal render of a new
  geometry (raster cache emptied) and of a geometry seen before (every render of an --alpha 1
  batch after the first).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def _mirror() -> Path:
    env = os.environ.get("FACEANON_ASSETS_MIRROR")
    if env and Path(env).is_dir():
        return Path(env)
    return REPO.parent / "shared" / "assets"


def _time(fn, runs: int) -> tuple[float, float]:
    fn()  # warm-up
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tex-size", type=int, default=2048)
    ap.add_argument("--img-size", type=int, default=1024)
    ap.add_argument("--photo", type=Path, default=REPO.parent / "shared" / "fixtures" / "photos" / "alison1.jpg")
    args = ap.parse_args(argv)

    import tempfile

    import cv2

    from faceanon.io.facefiles import anonymized_obj_vertices
    from faceanon.models.bfm import BFMSources, load_bfm
    from faceanon.stages.anonymize import anonymize_face
    from faceanon.stages.geometry import rotation_matrix
    from faceanon.stages.render import render_front
    from faceanon.stages.texture import bake_texture

    mirror = _mirror()
    if not (mirror / "bfm" / "u_shp.npy").is_file():
        print(f"asset mirror not found at {mirror} (set FACEANON_ASSETS_MIRROR)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as cache:
        bfm = load_bfm(BFMSources.from_root(mirror), cache)
    mean, tri, uv = bfm.mean_vertices, bfm.triangles, bfm.uv

    W, H = 400, 440
    if args.photo.is_file():
        from faceanon.io.images import load_image

        photo = cv2.resize(load_image(args.photo).rgb, (W, H), interpolation=cv2.INTER_AREA)
    else:
        photo = np.full((H, W, 3), (190, 140, 115), np.uint8)
    R = rotation_matrix(20, -5, 0)
    m = mean.astype(np.float64)
    s = 260.0 / float(np.ptp(m[:, 0]))
    posed = s * m @ R.T
    lo, hi = posed.min(0), posed.max(0)
    obj = (posed + [W / 2 - (lo[0] + hi[0]) / 2, H / 2 - (lo[1] + hi[1]) / 2, -lo[2]]).astype(np.float32)
    img_v = obj.copy()
    img_v[:, 1] = H - obj[:, 1]

    rows = []
    t = args.tex_size
    a = anonymize_face(img_v, tri, uv, photo, mean, tex_size=t)
    rows.append((f"anonymize_face (tex {t}²)", *_time(
        lambda: anonymize_face(img_v, tri, uv, photo, mean, tex_size=t), args.runs)))
    obj_v = anonymized_obj_vertices(a, keep_pose=False)
    from faceanon.stages.texture import working_size

    work = working_size(img_v, tri, uv, t)
    rows.append((f"bake_texture (tex {t}², adaptive: baked at {work}² and resampled)",
                 *_time(lambda: bake_texture(photo, img_v, tri, uv, t), args.runs)))
    rows.append((f"bake_texture (tex {t}², adaptive=False: baked at {t}²)",
                 *_time(lambda: bake_texture(photo, img_v, tri, uv, t, adaptive=False), args.runs)))
    S = args.img_size
    from faceanon.stages import render as render_mod

    def render_uncached():
        render_mod._COVERAGE_CACHE.clear()
        return render_front(obj_v, tri, uv, a.texture, img_size=S)

    rows.append((f"render_front ({S}², supersample 2), new geometry", *_time(render_uncached, args.runs)))
    rows.append((f"render_front ({S}², supersample 2), geometry seen before (--alpha 1 batch)", *_time(
        lambda: render_front(obj_v, tri, uv, a.texture, img_size=S), args.runs)))

    print(f"mesh: lite BFM mean, {len(mean):,} vertices / {len(tri):,} triangles; photo {W}x{H}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpu(s); runs {args.runs}")
    print()
    print("| step | median s | min s |")
    print("|---|---:|---:|")
    for name, med, mn in rows:
        print(f"| {name} | {med:.3f} | {mn:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
