"""Benchmark of faceanon.raster.rasterize on a face-sized mesh.

Usage:  python bench/bench_raster.py [--runs 30] [--size 1024] [--threads auto,1]

Meshes:
* ``bfm-noneck``: the real 38,365-vertex / 76,073-triangle 3DDFA_V2 no-neck BFM mean face, when the
  asset mirror is found ($FACEANON_ASSETS_MIRROR, else the test data's mirror next to the repo);
* ``hemisphere``: a synthetic stand-in built here: a dense triangulated grid (196 x 196 vertices,
  76,050 triangles) bent onto a hemisphere whose disc covers ~40% of the target;
* ``sphere``: the same number of triangles on a whole sphere, both windings drawn, so half of
  them are hidden behind the other half (exercises the depth test).

Prints one markdown table row per (mesh, size, threads): median and min wall time over --runs
calls of rasterize() (argument checks and output allocation included), after one warm-up call.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceanon.raster import rasterize  # noqa: E402


def _fit_to_target(xyz: np.ndarray, size: int, fill: float) -> np.ndarray:
    """Orthographic projection of a y-up model into a y-down size x size target, fill = bbox side ratio."""
    xy = xyz[:, :2].astype(np.float64)
    lo, hi = xy.min(0), xy.max(0)
    scale = fill * size / (hi - lo).max()
    centre = (lo + hi) / 2
    out = np.empty_like(xyz, dtype=np.float32)
    out[:, 0] = (xy[:, 0] - centre[0]) * scale + (size - 1) / 2
    out[:, 1] = -(xy[:, 1] - centre[1]) * scale + (size - 1) / 2  # y up -> y down
    out[:, 2] = xyz[:, 2] * scale  # z toward the viewer = nearer = larger
    return out


def bfm_mesh(size: int):
    mirror = os.environ.get("FACEANON_ASSETS_MIRROR")
    root = Path(mirror) if mirror and Path(mirror).is_dir() else REPO.parent / "shared" / "assets"
    try:
        shp = np.load(root / "bfm" / "u_shp.npy").reshape(-1, 3)
        exp = np.load(root / "bfm" / "u_exp.npy").reshape(-1, 3)
        idx = np.load(root / "3ddfa_v2" / "indices.npy")
        with open(root / "3ddfa_v2" / "tri.pkl", "rb") as f:
            tri = np.asarray(pickle.load(f))
    except (OSError, ValueError, pickle.UnpicklingError):
        return None
    verts = (shp + exp)[idx]
    tri = np.asarray(tri.T if tri.shape[0] == 3 else tri)
    # tri.pkl winds CW seen from the front in its y-up frame; reverse it to the project convention
    # (front-facing = negative image-space area, see faceanon/types.py) so that cull="back" keeps the face.
    tri = np.ascontiguousarray(tri[:, ::-1], dtype=np.int32)
    return _fit_to_target(verts, size, fill=0.8), tri


def _grid_triangles(n: int) -> np.ndarray:
    ids = np.arange(n * n).reshape(n, n)
    a, b, c, d = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel(), ids[1:, :-1].ravel(), ids[1:, 1:].ravel()
    return np.ascontiguousarray(np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]), dtype=np.int32)


def hemisphere_mesh(size: int, n: int = 196, coverage: float = 0.4):
    """n x n grid bent onto a hemisphere; its image is a disc covering `coverage` of the target."""
    u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    # Square -> disc (elliptical grid mapping), then lift onto the unit hemisphere facing +z.
    x = u * np.sqrt(1 - v**2 / 2)
    y = v * np.sqrt(1 - u**2 / 2)
    z = np.sqrt(np.clip(1 - x**2 - y**2, 0, None))
    radius = size * np.sqrt(coverage / np.pi)
    verts = np.stack([x.ravel() * radius + (size - 1) / 2, y.ravel() * radius + (size - 1) / 2, z.ravel() * radius], 1)
    return verts.astype(np.float32), _grid_triangles(n)


def sphere_mesh(size: int, n: int = 196, coverage: float = 0.4):
    """Front and back hemispheres (each (n/sqrt2)^2-ish grid), same triangle budget as hemisphere."""
    m = int(round(n / np.sqrt(2)))
    front, tri = hemisphere_mesh(size, m, coverage)
    back = front.copy()
    back[:, 2] *= -1
    verts = np.concatenate([front, back])
    tris = np.concatenate([tri, tri[:, ::-1] + len(front)])
    return verts, np.ascontiguousarray(tris, dtype=np.int32)


def time_it(verts, tris, size, runs, threads):
    rasterize(verts, tris, size, size, threads=threads)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = rasterize(verts, tris, size, size, threads=threads)
        times.append(time.perf_counter() - t0)
    return times, float(r.mask.mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--size", type=int, nargs="+", default=[1024])
    ap.add_argument("--threads", default="auto,1", help="comma list of thread counts, 'auto' = automatic")
    args = ap.parse_args(argv)
    thread_opts = [None if t.strip() == "auto" else int(t) for t in args.threads.split(",")]

    print(f"<!-- {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, numpy {np.__version__} -->")
    print("| mesh | vertices | triangles | target | coverage | threads | median s | min s |")
    print("|---|---:|---:|---|---:|---|---:|---:|")
    for size in args.size:
        meshes = []
        bfm = bfm_mesh(size)
        if bfm is not None:
            meshes.append(("bfm-noneck", *bfm))
        meshes.append(("hemisphere", *hemisphere_mesh(size)))
        meshes.append(("sphere", *sphere_mesh(size)))
        for name, verts, tris in meshes:
            for threads in thread_opts:
                times, coverage = time_it(verts, tris, size, args.runs, threads)
                label = "auto" if threads is None else str(threads)
                print(f"| {name} | {len(verts):,} | {len(tris):,} | {size}×{size} | {coverage:.0%} | {label} "
                      f"| {statistics.median(times):.4f} | {min(times):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
