"""Builders shared by the anonymize/render tests (no tests here; imported as ``test_anonymize_helpers``).

* synthetic meshes: a subdivided quad (grid), two overlapping planes;
* the real lite BFM mean face (from the asset mirror; the fixture skips without it);
* posing a canonical face into a photo frame, drawing a synthetic "photo" of a coloured mesh,
  painting a UV texture from per-vertex colours;
* writing a reconstruct-like folder (``<stem>/<stem>_extractTex.obj`` + ``_projections.npz``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceanon.raster import interpolate, rasterize


def grid_mesh(x0, y0, x1, y1, z, n, uv_box, *, flip_winding=False):
    """An n x n-quad grid in a y-up frame at depth z, outward CCW (toward +z), UVs in uv_box.

    Returns (vertices (V,3) f32, triangles (M,3) i32, uv (V,2) f32).
    """
    xs = np.linspace(x0, x1, n + 1)
    ys = np.linspace(y0, y1, n + 1)
    gx, gy = np.meshgrid(xs, ys)
    v = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1).astype(np.float32)
    u0, v0, u1, v1 = uv_box
    uu = u0 + (gx.ravel() - x0) / (x1 - x0) * (u1 - u0)
    vv = v0 + (gy.ravel() - y0) / (y1 - y0) * (v1 - v0)
    uv = np.stack([uu, vv], axis=1).astype(np.float32)
    tris = []
    for j in range(n):
        for i in range(n):
            a = j * (n + 1) + i
            b, c, d = a + 1, a + n + 2, a + n + 1
            tris += [[a, b, c], [a, c, d]]  # CCW seen from +z in a y-up frame
    t = np.asarray(tris, np.int32)
    if flip_winding:
        t = t[:, ::-1].copy()
    return v, t, uv


def merge(*meshes):
    """Concatenate (vertices, triangles, uv) meshes."""
    vs, ts, uvs, off = [], [], [], 0
    for v, t, uv in meshes:
        vs.append(v)
        ts.append(t + off)
        uvs.append(uv)
        off += len(v)
    return np.concatenate(vs), np.concatenate(ts).astype(np.int32), np.concatenate(uvs)


def to_image(obj_vertices: np.ndarray, height: int) -> np.ndarray:
    """y-up photo frame (x, H - y, z) <-> image px (x right, y down); the map is its own inverse."""
    v = np.array(obj_vertices, np.float32, copy=True)
    v[:, 1] = height - v[:, 1]
    return v


def draw_photo(image_vertices, triangles, vertex_colours, height, width, background=(90, 90, 90)):
    """A synthetic photo: the mesh drawn with interpolated per-vertex colours over ``background``."""
    r = rasterize(np.ascontiguousarray(image_vertices, np.float32), triangles, height, width)
    col = interpolate(r, np.asarray(vertex_colours, np.float64))
    img = np.empty((height, width, 3), np.uint8)
    img[:] = background
    img[r.mask] = np.clip(np.rint(col[r.mask]), 0, 255).astype(np.uint8)
    return img


def paint_texture(uv, triangles, vertex_colours, size):
    """A UV texture whose texels take the interpolated per-vertex colours (grey outside islands)."""
    from faceanon.stages.texture import uv_to_pixels

    r = rasterize(uv_to_pixels(np.asarray(uv, np.float32), size), triangles, size, size)
    col = interpolate(r, np.asarray(vertex_colours, np.float64))
    tex = np.full((size, size, 3), 128, np.uint8)
    tex[r.mask] = np.clip(np.rint(col[r.mask]), 0, 255).astype(np.uint8)
    return tex


def pose(model_vertices, R, s, t):
    """Apply ``s R x + t`` to every row -> float64."""
    return s * (np.asarray(model_vertices, np.float64) @ np.asarray(R).T) + np.asarray(t, np.float64)


def posed_face(mean, yaw=0.0, pitch=0.0, roll=0.0, *, width=400, height=440, face_px=260.0):
    """The canonical ``mean`` posed into a photo's y-up frame, centred, ``face_px`` wide.

    Returns (obj_vertices (N,3) f32, image_vertices (N,3) f32, (s, R, t)).
    """
    from faceanon.stages.geometry import rotation_matrix

    R = rotation_matrix(yaw, pitch, roll)
    m = np.asarray(mean, np.float64)
    s = face_px / float(np.ptp(m[:, 0]))
    rotated = s * (m @ R.T)
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    t = np.array([width / 2.0, height / 2.0, 0.0]) - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    obj = (rotated + t).astype(np.float32)
    return obj, to_image(obj, height), (s, R, t)


LABEL_COLOURS = {1: (255, 0, 0), 2: (0, 0, 255), 6: (0, 200, 0), 7: (0, 200, 0)}


def label_colours(labels, default=(150, 150, 150)):
    """(N, 3) float per-vertex colours: 1 red, 2 blue, lips green, everything else grey."""
    col = np.tile(np.asarray(default, np.float64), (len(labels), 1))
    for lab, c in LABEL_COLOURS.items():
        col[labels == lab] = c
    return col


@pytest.fixture(scope="session")
def bfm(mirror_dir: Path, tmp_path_factory):
    """The real lite BFM (mean face, project triangles, UVs, labels) built from the asset mirror."""
    from faceanon.models.bfm import BFMSources, load_bfm

    sources = BFMSources.from_root(mirror_dir)
    missing = [str(p) for _, p in sources.items() if not Path(p).is_file()]
    if missing:
        pytest.skip(f"lite BFM source files missing from the mirror: {missing[:2]}")
    return load_bfm(sources, tmp_path_factory.mktemp("anon_bfm_cache"))


def write_recon(root: Path, stem: str, obj_vertices, triangles, uv, image_vertices, labels, width, height, *,
                backend: str = "lite", name: str | None = None, face_index: int = 0, face_count: int = 1):
    """A reconstruct-like output for one face: RECON/<stem>/<name>_extractTex.obj/.mtl/.png + npz."""
    from faceanon.io.images import save_image_atomic
    from faceanon.io.mesh import write_obj
    from faceanon.io.records import save_projections
    from faceanon.types import Detection, FaceFit

    name = name or stem
    d = root / stem
    d.mkdir(parents=True, exist_ok=True)
    n = len(obj_vertices)
    png = d / f"{name}_extractTex.png"
    save_image_atomic(png, np.full((32, 32, 3), 200, np.uint8))
    write_obj(d / f"{name}_extractTex.obj", obj_vertices, uv, triangles, texture_png_name=png.name)
    xy = np.asarray(image_vertices, np.float32)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    det = Detection(box=np.array([lo[0], lo[1], hi[0], hi[1]], np.float32), score=0.99,
                    landmarks5=np.tile(((lo + hi) / 2).astype(np.float32), (5, 1)))
    fit = FaceFit(
        vertices=np.asarray(image_vertices, np.float32), triangles=np.asarray(triangles, np.int32),
        uv=np.asarray(uv, np.float32), vertex_labels=np.asarray(labels, np.uint8),
        landmarks68=np.tile(((lo + hi) / 2).astype(np.float32), (68, 1)), pose=np.zeros(3, np.float32),
        model_vertices=np.asarray(obj_vertices, np.float32), mean_vertices=np.asarray(obj_vertices, np.float32),
        trans_params=np.array([width, height, 1.0, width / 2, height / 2], np.float32), detection=det,
        backend=backend,
    )
    seg = np.zeros((height, width), np.uint8)
    save_projections(d / f"{name}_projections.npz", fit, (width, height), seg, face_index=face_index,
                     face_count=face_count)
    return d
