"""The physical unit of each face model's canonical frame, and the millimetre frame of the OBJ files.

The two models keep their own units internally (the fit, the morph and the texture bake work in
them), but an anonymized OBJ in the canonical frame is written in MILLIMETRES, centred on the
model's mean face, so that every viewer (Blender, MeshLab, PyTorch3D with its default clipping
planes) opens it at a human size whichever backend made it. How the factors were measured:
docs/conventions.md, "Units".

* ``lite`` (3DDFA_V2's no-neck Basel Face Model): micrometres. The mean face's eye centres are
  62,134 units apart (adult interpupillary distance: about 62-64 mm), its mouth corners 50,374
  units, nasion to chin 113,709 units.
* ``3ddfa-v3`` (the Deep3DFaceRecon BFM front face): 100 mm. Its 5-point alignment template
  (``similarity_Lm3D_all.mat``) is the BFM landmarks divided by 1e5 (outer eye corners 0.8627 vs
  86,262 in the lite BFM: ratio 99,988), and the alignment scales that template to 102 crop px per
  unit, the px per model unit of the camera (focal 1015 at distance 10).
"""

from __future__ import annotations

import numpy as np

__all__ = ["mm_per_unit", "to_mm_frame"]


def mm_per_unit(mean_vertices: np.ndarray) -> float | None:
    """Millimetres per unit of the model whose mean face is ``mean_vertices`` (N, 3), recognised by
    its vertex count (:attr:`faceanon.models.registry.ModelSpec.vertex_count`); None for a mesh of
    another model (its units are unknown)."""
    from faceanon.models.registry import model_of_mesh

    spec = model_of_mesh(mean_vertices)
    return None if spec is None else spec.mm_per_unit


def to_mm_frame(vertices: np.ndarray, mean_vertices: np.ndarray) -> np.ndarray:
    """``vertices`` (N, 3) in the canonical frame of the model of ``mean_vertices`` -> (N, 3) float64
    millimetres, origin at the centre of the mean face's bounding box (axes unchanged: x right,
    y up, z toward the viewer). A mesh of an unknown model is returned unchanged (as float64)."""
    v = np.asarray(vertices, np.float64)
    k = mm_per_unit(mean_vertices)
    if k is None:
        return v.copy()
    u = np.asarray(mean_vertices, np.float64)
    centre = (u.min(axis=0) + u.max(axis=0)) / 2.0
    return (v - centre) * k
