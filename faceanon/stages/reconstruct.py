"""Reconstruct stage: every face of an image -> FaceFit records, and the seed's file contract.

Pure functions, no Typer/Rich. The files of one image (names: :mod:`faceanon.io.layout`, frames:
:mod:`faceanon.io.facefiles`), in its reconstruct folder:

* per face, the mesh in a y-up frame aligned with the photo (x, H - y, z in image px), its UVs and
  the texture extracted from the photo at ``tex_size``;
* per face, the projections record (:mod:`faceanon.io.records`): the seed keys (``trans_params``,
  ``img_size``, ``seg_visible_labels_full``, ``v2d_full``) plus landmarks, pose, box, score,
  backend, face index and face count;
* with ``vis=True``, an overlay of the part labels, boxes and landmarks.

Face names (:func:`faceanon.io.layout.face_name`): the image's for the main face (highest detector
score), with ``_face<k>`` for the k-th other face (k = 1, 2, ... in descending score order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceanon.errors import NoFaceError
from faceanon.io.layout import face_name
from faceanon.models.base import FaceDetector, ReconstructionBackend
from faceanon.options import RECON_TEX_SIZE
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


def fit_faces(image: ImageRecord, detector: FaceDetector, backend: ReconstructionBackend, *,
              max_faces: int | None = None) -> list[FaceFit]:
    """Detect every face and fit each one; raises NoFaceError when there is none."""
    detections, too_small = detector.detect_with_rejected(image.rgb)
    if max_faces is not None and max_faces > 0:
        detections = detections[:max_faces]
    if not detections:
        raise no_face_error(too_small, detector.min_face_size)
    return [backend.fit(image.rgb, det) for det in detections]


def extract_face_texture(rgb: np.ndarray, fit: FaceFit, tex_size: int) -> np.ndarray:
    """(T, T, 3) uint8 the face's texture sampled from the photo ``rgb`` (H, W, 3) uint8."""
    from faceanon.stages.texture import bake_texture

    return bake_texture(rgb, fit.vertices, fit.triangles, fit.uv, tex_size)[0]


def reconstruct_image(
    image: ImageRecord,
    stem: str,
    detector: FaceDetector,
    backend: ReconstructionBackend,
    *,
    tex_size: int = RECON_TEX_SIZE.default,
    max_faces: int | None = None,
    extract_texture: bool = True,
) -> ImageResult:
    """Fit every face of ``image`` and compute its visible label map and (``extract_texture``) the
    texture extracted from the photo."""
    fits = fit_faces(image, detector, backend, max_faces=max_faces)
    result = ImageResult(image=image, stem=stem)
    for k, fit in enumerate(fits):
        labels = backend.visible_labels(fit, image.height, image.width)
        tex = extract_face_texture(image.rgb, fit, tex_size) if extract_texture else None
        result.faces.append(FaceResult(fit=fit, labels=labels, texture=tex, name=face_name(stem, k)))
    return result


def reconstruction_outputs(result: ImageResult, folder: Path, *, vis: bool = False) -> list:
    """The writes (:class:`faceanon.io.facefiles.Output`) of one image's reconstruct files into its
    reconstruct ``folder``: each face's mesh (when its texture was extracted) and projections
    record, and the overlay with ``vis``. The folder is created by the atomic writers."""
    from faceanon.io.facefiles import Output, write_recon_mesh
    from faceanon.io.images import save_image_atomic
    from faceanon.io.layout import overlay_file, recon_files
    from faceanon.io.records import save_projections

    img = result.image
    n = len(result.faces)
    outputs = []
    for k, face in enumerate(result.faces):
        files = recon_files(folder, face.name or face_name(result.stem, k))
        if face.texture is not None:
            outputs.append(Output(files.mesh, write_recon_mesh, (files, face.fit.vertices, face.fit.uv,
                                                                 face.fit.triangles, face.texture, img.height)))
        outputs.append(Output((files.npz,), save_projections, (files.npz, face.fit, (img.width, img.height),
                                                                face.labels), dict(face_index=k, face_count=n)))
    if vis:
        ov = overlay_file(folder, result.stem)
        outputs.append(Output((ov,), save_image_atomic, (ov, overlay(img.rgb, result.faces))))
    return outputs


def write_reconstruction(result: ImageResult, folder: Path, *, vis: bool = False) -> list[Path]:
    """Write the reconstruct files of one image into ``folder`` now; returns their paths."""
    paths: list[Path] = []
    for o in reconstruction_outputs(result, folder, vis=vis):
        paths += o.paths
        o.run()
    return paths


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
