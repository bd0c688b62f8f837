"""Reading and writing the per-face files of the stages, with every frame conversion they need.

The stages exchange records in image space (x right, y down, px; docs/conventions.md). The files
use other frames, and the conversions happen here only, at the edge:

* the reconstruct OBJ is photo-aligned y-up:
  ``(x, H - y, z)`` of the image frame (:func:`photo_frame`), so that it overlays the photo in a
  viewer;
* the anonymized OBJ is in millimetres in the model's canonical frame, or, with ``keep_pose``,
  photo-aligned y-up at the subject's pose (:func:`anonymized_obj_vertices`).

File names come from :mod:`faceanon.io.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from faceanon.errors import FaceanonError, ImageError
from faceanon.io.layout import AnonFiles, ReconFiles

__all__ = ["Output", "photo_frame", "image_frame", "ReconMesh", "read_recon_mesh", "write_recon_mesh",
           "write_anon_face", "anonymized_obj_vertices", "check_labels_match", "require_file"]


@dataclass(frozen=True)
class Output:
    """One planned write: the files it creates (``paths``, to be listed BEFORE the write starts, so
    that a cleanup after a failure knows about half-written files) and the call that writes them.
    The stage chain of ``faceanon run`` yields these; a stage command runs them at once."""

    paths: tuple[Path, ...]
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def run(self) -> None:
        self.fn(*self.args, **self.kwargs)

#: A reconstruct OBJ is taken as photo-aligned when its (x, H - y) lie within this many px (median)
#: of the record's ``v2d_full``; the seed's OBJ files are in the model's world frame instead.
ALIGNED_PX = 1.0


def photo_frame(vertices: np.ndarray, height: int) -> np.ndarray:
    """(N, 3) image-space vertices -> (N, 3) float32 in the photo-aligned y-up frame (x, H - y, z)."""
    v = np.array(vertices, dtype=np.float32, copy=True)
    v[:, 1] = height - v[:, 1]
    return v


def image_frame(vertices: np.ndarray, height: int) -> np.ndarray:
    """The inverse of :func:`photo_frame`: (N, 3) (x, H - y, z) -> (N, 3) float32 image space."""
    v = np.asarray(vertices)
    return np.column_stack([v[:, 0], height - v[:, 1], v[:, 2]]).astype(np.float32)


@dataclass
class ReconMesh:
    """A reconstruct OBJ read back.

    vertices:  (N, 3) float32 as stored (faceanon: photo-aligned y-up; the seed: its world frame)
    uv:        (N, 2) float32 or None
    triangles: (M, 3) int32
    image_vertices: (N, 3) float32 image space (x right, y down, z larger = nearer) when the file is
               photo-aligned (checked against ``v2d_full``), else None
    """

    vertices: np.ndarray
    uv: Optional[np.ndarray]
    triangles: np.ndarray
    image_vertices: Optional[np.ndarray]


def read_recon_mesh(path: Path, height: int, v2d: Optional[np.ndarray]) -> ReconMesh:
    """Read a reconstruct OBJ; ``v2d`` (N, 2) image px of its vertices (the npz ``v2d_full``)
    decides whether it is photo-aligned (faceanon's) or the seed's world-frame mesh."""
    from faceanon.io.mesh import read_obj

    verts, uv, tris, _tex = read_obj(path)
    img = None
    if v2d is not None and np.shape(v2d) == (len(verts), 2):
        cand = image_frame(verts, height)
        if float(np.median(np.linalg.norm(cand[:, :2] - np.asarray(v2d, np.float64), axis=1))) <= ALIGNED_PX:
            img = cand
    return ReconMesh(verts, uv, tris, img)


def write_recon_mesh(files: ReconFiles, vertices: np.ndarray, uv: np.ndarray, triangles: np.ndarray,
                     texture: np.ndarray, height: int) -> None:
    """Write a reconstruct mesh (image-space ``vertices`` (N, 3), converted to the photo-aligned
    frame) with its extracted ``texture`` (T, T, 3) uint8."""
    from faceanon.io.images import save_image_atomic
    from faceanon.io.mesh import write_obj

    save_image_atomic(files.texture, texture)
    write_obj(files.obj, photo_frame(vertices, height), uv, triangles, texture_png_name=files.texture.name)


def anonymized_obj_vertices(face, keep_pose: bool) -> np.ndarray:
    """The OBJ vertices (N, 3) float32 of an :class:`~faceanon.stages.anonymize.AnonymizedFace`:
    the morphed face in millimetres in the canonical frame (origin at the centre of the mean face's
    bounding box, :func:`faceanon.models.units.to_mm_frame`), or with ``keep_pose`` at the subject's
    pose, position and head scale in the photo-aligned y-up frame (x, H - y, z)."""
    from faceanon.models.units import to_mm_frame

    if keep_pose:
        return face.similarity.inverse_apply(face.canonical).astype(np.float32)
    return to_mm_frame(face.canonical, face.mean_vertices).astype(np.float32)


def write_anon_face(files: AnonFiles, vertices: np.ndarray, uv: np.ndarray, triangles: np.ndarray,
                    texture: np.ndarray) -> None:
    """Write an anonymized face: its ``texture``, then its OBJ/MTL with ``vertices`` (N, 3) in the
    OBJ's frame (:func:`anonymized_obj_vertices`)."""
    from faceanon.io.images import save_image_atomic
    from faceanon.io.mesh import write_obj

    save_image_atomic(files.texture, texture)
    write_obj(files.obj, vertices, uv, triangles, texture_png_name=files.texture.name)


def check_labels_match(rgb_shape: tuple, labels: np.ndarray, image_path: Path, npz: Path) -> None:
    """One clear error when a photo and a face's label map differ in size."""
    h, w = rgb_shape[:2]
    lh, lw = labels.shape
    if (h, w) != (lh, lw):
        raise ImageError(
            f"{image_path}: image is {w}×{h} px but the label map of {Path(npz).name} is {lw}×{lh} px",
            "--images must hold the exact photos given to `faceanon reconstruct` (same size, same orientation)")


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """``path`` when it is a file, else one FaceanonError line naming it (``what``: e.g. "anonymized mesh")."""
    if not Path(path).is_file():
        raise FaceanonError(f"{what} not found: {path}", hint)
    return Path(path)
