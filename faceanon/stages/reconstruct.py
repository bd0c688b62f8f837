"""Reconstruct stage: every face of an image -> FaceFit records, and the seed's file contract.

Pure functions, no Typer/Rich. Files written per image in ``out_dir`` (= ``OUT/<stem>/``):

* ``<name>_extractTex.obj/.mtl/.png`` - mesh in a y-up frame aligned with the photo
  (x, H - y, z in image px), UVs, and the texture extracted from the photo at ``tex_size``;
* ``<name>_projections.npz`` - the seed keys (``trans_params``, ``img_size``,
  ``seg_visible_labels_full``, ``v2d_full``) plus landmarks, pose, box, score, backend, face index
  and face count;
* ``<name>_overlay.png`` with ``vis=True``.

``<name>`` is ``<stem>`` for the main face (highest detector score) and ``<stem>_face<k>`` for the
k-th other face (k = 1, 2, ... in descending score order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceanon.errors import NoFaceError
from faceanon.types import FaceFit, ImageRecord

# colours (RGB) of the part labels in overlays
LABEL_COLOURS = np.array(
    [
        [0, 0, 0],
        [255, 40, 40],  # 1 right eye (image left)
        [40, 120, 255],  # 2 left eye
        [255, 160, 0],  # 3 right brow
        [0, 200, 200],  # 4 left brow
        [200, 0, 255],  # 5 nose
        [255, 0, 140],  # 6 upper lip
        [140, 255, 0],  # 7 lower lip
        [250, 230, 180],  # 8 skin
    ],
    np.uint8,
)


def face_name(stem: str, index: int) -> str:
    """Output name of face ``index`` of an image (0 = main face)."""
    return stem if index == 0 else f"{stem}_face{index}"


@dataclass
class FaceResult:
    """A fitted face plus what the reconstruct stage derives from it."""

    fit: FaceFit
    labels: np.ndarray  # (H, W) uint8 visible part labels, this face only
    texture: np.ndarray | None = None  # (T, T, 3) uint8 extracted texture
    name: str = ""


@dataclass
class ImageResult:
    image: ImageRecord
    stem: str
    faces: list[FaceResult] = field(default_factory=list)


def no_face_error(too_small: list, min_face_size: float) -> NoFaceError:
    """The one-line "no face found" error, saying when faces were seen but were below the size filter."""
    if too_small:
        largest = max(d.size for d in too_small)
        n = len(too_small)
        return NoFaceError(
            f"no face found: {n} face{'s' if n > 1 else ''} smaller than --min-face-size {min_face_size:g} px "
            f"ignored (largest {largest:.0f} px)",
            f"to process {'them' if n > 1 else 'it'}, lower the limit, e.g. --min-face-size {max(0, int(largest) - 1)} "
            "(tiny faces fit less accurately)",
        )
    return NoFaceError("no face found", "the detector found no face; try a lower --threshold")


def fit_faces(image: ImageRecord, detector, backend, *, max_faces: int | None = None) -> list[FaceFit]:
    """Detect every face and fit each one; raises NoFaceError when there is none."""
    if hasattr(detector, "detect_with_rejected"):
        detections, too_small = detector.detect_with_rejected(image.rgb)
    else:  # any object with a detect() method
        detections, too_small = detector.detect(image.rgb), []
    if max_faces is not None and max_faces > 0:
        detections = detections[:max_faces]
    if not detections:
        raise no_face_error(too_small, getattr(detector, "min_face_size", 0.0))
    return [backend.fit(image.rgb, det) for det in detections]


def reconstruct_image(
    image: ImageRecord,
    stem: str,
    detector,
    backend,
    *,
    tex_size: int = 1024,
    max_faces: int | None = None,
    extract_texture: bool = True,
) -> ImageResult:
    """Fit every face of ``image`` and compute its visible label map and extracted texture."""
    from faceanon.models.labels import visible_label_map
    from faceanon.stages.texture import bake_texture

    fits = fit_faces(image, detector, backend, max_faces=max_faces)
    result = ImageResult(image=image, stem=stem)
    for k, fit in enumerate(fits):
        # a backend may compute its own map (3DDFA-V3 keeps the seed's 224-crop semantics)
        labels = fit.extras.get("seg_visible_labels_full")
        if labels is None:
            labels = visible_label_map(fit, image.height, image.width)
        tex = None
        if extract_texture:
            tex, _ = bake_texture(image.rgb, fit.vertices, fit.triangles, fit.uv, tex_size)
        result.faces.append(FaceResult(fit=fit, labels=labels, texture=tex, name=face_name(Path(stem).name, k)))
    return result


def obj_vertices(fit: FaceFit, height: int) -> np.ndarray:
    """Image-space vertices -> the y-up OBJ frame aligned with the photo: (x, H - y, z)."""
    v = fit.vertices.astype(np.float32, copy=True)
    v[:, 1] = height - v[:, 1]
    return v


def write_reconstruction(result: ImageResult, out_dir: Path, *, vis: bool = False, submit=None,
                         paths: list[Path] | None = None) -> list[Path]:
    """Write the reconstruct outputs of one image into ``out_dir``; returns the written paths.

    submit: optional ``submit(fn, *args, **kwargs)`` that runs a write (e.g. on a background writer
    thread); default: write now. paths: optional list that every path is appended to BEFORE its
    write starts, so that a caller cleaning up after a failure knows about half-written files.
    """
    from faceanon.io.images import save_image_atomic
    from faceanon.io.mesh import write_obj
    from faceanon.io.records import save_projections

    def run(fn, *args, **kwargs):
        return fn(*args, **kwargs)

    submit = submit or run
    written: list[Path] = [] if paths is None else paths
    img = result.image  # out_dir is created by the atomic writers (an OSError becomes one OutputError line)
    n = len(result.faces)
    for k, face in enumerate(result.faces):
        name = face.name or face_name(Path(result.stem).name, k)
        if face.texture is not None:
            png = out_dir / f"{name}_extractTex.png"
            obj = out_dir / f"{name}_extractTex.obj"
            written += [png, obj, obj.with_suffix(".mtl")]
            submit(save_image_atomic, png, face.texture)
            submit(write_obj, obj, obj_vertices(face.fit, img.height), face.fit.uv, face.fit.triangles,
                   texture_png_name=png.name)
        npz = out_dir / f"{name}_projections.npz"
        written.append(npz)
        submit(save_projections, npz, face.fit, (img.width, img.height), face.labels, face_index=k, face_count=n)
    if vis:
        ov = out_dir / f"{Path(result.stem).name}_overlay.png"
        written.append(ov)
        submit(save_image_atomic, ov, overlay(img.rgb, result.faces))
    return written


def overlay(rgb: np.ndarray, faces: list[FaceResult], alpha: float = 0.45) -> np.ndarray:
    """Part labels blended over the photo, plus boxes and 68 landmarks (for --vis)."""
    out = rgb.astype(np.float32)
    for face in faces:
        m = face.labels > 0
        out[m] = (1 - alpha) * out[m] + alpha * LABEL_COLOURS[face.labels[m]]
    out = np.clip(out, 0, 255).astype(np.uint8)
    scale = max(1, int(round(max(rgb.shape[:2]) / 600)))
    for face in faces:
        x1, y1, x2, y2 = (int(round(float(c))) for c in face.fit.detection.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), scale)
        for x, y in face.fit.landmarks68:
            cv2.circle(out, (int(round(float(x))), int(round(float(y)))), scale + 1, (255, 255, 0), -1)
        yaw, pitch, roll = (float(a) for a in face.fit.pose)
        cv2.putText(out, f"yaw {yaw:.0f} pitch {pitch:.0f} roll {roll:.0f}", (x1, max(12, y1 - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (0, 255, 0), scale)
    return out
