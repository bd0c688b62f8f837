"""The 3DDFA-V3 face model (``face_model.npy``) and its assembly (docs/ddfa_v3.md, sections 6-7).

Frames (model side; converted to the project convention only in :mod:`ddfa_v3.model`):

* canonical / world frame: x right, y up, z toward the viewer (the camera sits at z = 10);
* camera: ``z_c = 10 - z_world``; pinhole with focal 1015 and centre (112, 112) in the 224 crop;
* ``v2d``: (1015 x / z_c + 112, 1015 y / z_c + 112) - **y-up** crop coordinates.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .errors import AssetError

__all__ = ["FaceModel", "rotation_matrix", "sh_basis", "FOCAL", "CENTER", "CAMERA_DISTANCE", "REQUIRED_KEYS"]

FOCAL = 1015.0
CENTER = 112.0
CAMERA_DISTANCE = 10.0
INIT_LIT = 0.8
REQUIRED_KEYS = ("u", "id", "exp", "u_alb", "alb", "point_buf", "tri", "uv_coords", "ldm68", "ldm106",
                 "ldm134", "annotation", "annotation_tri", "parallel")
PART_NAMES = ("right_eye", "left_eye", "right_eyebrow", "left_eyebrow", "nose", "up_lip", "down_lip", "skin")


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """angles (B, 3) = (x: pitch, y: yaw, z: roll) radians -> R (B, 3, 3) = Rz @ Ry @ Rx.

    world = R @ p (the seed stores rot = R^T and uses row vectors p_row @ rot).
    """
    a = angles.to(torch.float32)
    cx, cy, cz = torch.cos(a[:, 0]), torch.cos(a[:, 1]), torch.cos(a[:, 2])
    sx, sy, sz = torch.sin(a[:, 0]), torch.sin(a[:, 1]), torch.sin(a[:, 2])
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def sh_basis(n: torch.Tensor) -> torch.Tensor:
    """Second-order SH basis (B, N, 9) for unit normals n (B, N, 3), with the seed's constants."""
    a0, a1, a2 = math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0)
    c0, c1, c2 = 1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi), 3 * math.sqrt(5.0) / math.sqrt(12 * math.pi)
    nx, ny, nz = n[..., 0], n[..., 1], n[..., 2]
    ones = torch.ones_like(nx)
    return torch.stack([
        a0 * c0 * ones,
        -a1 * c1 * ny,
        a1 * c1 * nz,
        -a1 * c1 * nx,
        a2 * c2 * nx * ny,
        -a2 * c2 * ny * nz,
        0.5 * a2 * c2 / math.sqrt(3.0) * (3 * nz ** 2 - 1),
        -a2 * c2 * nx * nz,
        0.5 * a2 * c2 * (nx ** 2 - ny ** 2),
    ], dim=-1)


def _as_index_list(obj, name: str, path) -> list[np.ndarray]:
    try:
        return [np.asarray(x, dtype=np.int64).reshape(-1) if np.asarray(x).ndim <= 1
                else np.asarray(x, dtype=np.int64) for x in obj]
    except Exception as exc:
        raise AssetError(f"face model {path}: '{name}' is not a list of index arrays ({exc})") from None


class FaceModel:
    """Face model arrays as torch tensors plus the forward assembly.

    ``FaceModel(path_or_dict)``; attributes ``n_vertices`` (N), ``n_triangles`` (M), ``tri`` (M,3)
    int64 as stored (seed winding), ``uv`` (N,2) float32, ``ldm68/106/134`` int64,
    ``annotation`` (8 arrays of vertex ids), ``annotation_tri``, ``parallel``.
    """

    def __init__(self, source: str | Path | dict) -> None:
        if isinstance(source, dict):
            d, path = source, "<dict>"
        else:
            path = Path(source)
            if not path.is_file():
                raise AssetError(f"face model {path} not found", "run `faceanon assets download --model 3ddfa-v3`")
            try:
                # a pickled dict inside a 0-d object array: unpickled with a numpy-only unpickler,
                # never np.load(allow_pickle=True) - the file is downloaded and could run code
                from faceanon.io.safe_pickle import safe_load_npy_object

                d = safe_load_npy_object(path)
            except Exception as exc:
                raise AssetError(f"cannot read face model {path}: {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:200]}",
                                 "the file is truncated or not face_model.npy: delete it and download it again") from None
        if not isinstance(d, dict):
            raise AssetError(f"face model {path}: expected a dict, got {type(d).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise AssetError(f"face model {path} lacks key(s) {missing}")
        self.path = path

        def f32(k: str) -> torch.Tensor:  # (rows, cols) float32 tensor
            a = np.ascontiguousarray(np.asarray(d[k], np.float32))
            return torch.from_numpy(a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1))

        self.u, self.id_base, self.exp_base = f32("u").reshape(-1), f32("id"), f32("exp")
        self.u_alb, self.alb_base = f32("u_alb").reshape(-1), f32("alb")
        n3 = self.u.numel()
        if n3 % 3:
            raise AssetError(f"face model {path}: 'u' has {n3} values, not a multiple of 3")
        n = n3 // 3
        for k, t in (("id", self.id_base), ("exp", self.exp_base), ("alb", self.alb_base)):
            if t.shape[0] != n3:
                raise AssetError(f"face model {path}: '{k}' has {t.shape[0]} rows, expected {n3}")
        if self.u_alb.numel() != n3:
            raise AssetError(f"face model {path}: 'u_alb' has {self.u_alb.numel()} values, expected {n3}")
        tri = np.asarray(d["tri"], np.int64)
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n:
            raise AssetError(f"face model {path}: 'tri' must be (M, 3) 0-based vertex ids < {n}")
        m = tri.shape[0]
        pb = np.asarray(d["point_buf"], np.int64)
        if pb.ndim != 2 or pb.shape[0] != n or pb.min() < 0 or pb.max() > m:
            raise AssetError(f"face model {path}: 'point_buf' must be (N, k) 0-based triangle ids in [0, {m}]")
        uv = np.asarray(d["uv_coords"], np.float32)
        if uv.ndim != 2 or uv.shape[0] != n or uv.shape[1] < 2:
            raise AssetError(f"face model {path}: 'uv_coords' must be (N, 2), got {uv.shape}")
        self.n_vertices, self.n_triangles = n, m
        self.tri = torch.from_numpy(tri)
        self.point_buf = torch.from_numpy(pb)
        self.uv = np.ascontiguousarray(uv[:, :2])
        self.ldm68 = np.asarray(d["ldm68"], np.int64).reshape(-1)
        self.ldm106 = np.asarray(d["ldm106"], np.int64).reshape(-1)
        self.ldm134 = np.asarray(d["ldm134"], np.int64).reshape(-1)
        for k, v, size in (("ldm68", self.ldm68, 68), ("ldm106", self.ldm106, 106), ("ldm134", self.ldm134, 134)):
            if v.shape != (size,) or v.min() < 0 or v.max() >= n:
                raise AssetError(f"face model {path}: '{k}' must be {size} vertex ids < {n}")
        self.annotation = _as_index_list(d["annotation"], "annotation", path)
        self.annotation_tri = _as_index_list(d["annotation_tri"], "annotation_tri", path)
        self.parallel = _as_index_list(d["parallel"], "parallel", path)
        if len(self.annotation) != 8 or len(self.annotation_tri) != 8:
            raise AssetError(f"face model {path}: 'annotation' and 'annotation_tri' must hold 8 parts")
        for a in self.annotation:
            if a.size and (a.min() < 0 or a.max() >= n):
                raise AssetError(f"face model {path}: 'annotation' holds vertex ids outside [0, {n})")

    # --- assembly ---------------------------------------------------------------------------------
    def shape(self, id_coeff: torch.Tensor, exp_coeff: torch.Tensor) -> torch.Tensor:
        """S = u + id @ a_id + exp @ a_exp -> (B, N, 3)."""
        s = self.u[None] + id_coeff @ self.id_base.T + exp_coeff @ self.exp_base.T
        return s.view(s.shape[0], -1, 3)

    def albedo(self, alb_coeff: torch.Tensor) -> torch.Tensor:
        """(u_alb + alb @ a_alb) / 255 -> (B, N, 3) RGB."""
        a = (self.u_alb[None] + alb_coeff @ self.alb_base.T) / 255.0
        return a.view(a.shape[0], -1, 3)

    def mean_shape(self) -> np.ndarray:
        return self.u.view(-1, 3).numpy().copy()

    def normals(self, verts: torch.Tensor) -> torch.Tensor:
        """Per-vertex unit normals (B, N, 3): face normal cross(v1 - v2, v2 - v3), summed over point_buf."""
        v1, v2, v3 = verts[:, self.tri[:, 0]], verts[:, self.tri[:, 1]], verts[:, self.tri[:, 2]]
        fn = torch.nn.functional.normalize(torch.cross(v1 - v2, v2 - v3, dim=-1), dim=-1)
        fn = torch.cat([fn, torch.zeros_like(fn[:, :1])], dim=1)
        vn = fn[:, self.point_buf].sum(dim=2)
        return torch.nn.functional.normalize(vn, dim=-1)

    @staticmethod
    def transform(verts: torch.Tensor, rot_r: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
        """world = R p + t, i.e. p_row @ R^T + t."""
        return verts @ rot_r.transpose(1, 2) + trans[:, None, :]

    @staticmethod
    def to_camera(world: torch.Tensor) -> torch.Tensor:
        """(x, y, z) -> (x, y, 10 - z)."""
        out = world.clone()
        out[..., 2] = CAMERA_DISTANCE - out[..., 2]
        return out

    @staticmethod
    def project(cam: torch.Tensor) -> torch.Tensor:
        """Camera points -> v2d (B, N, 2) in the 224 crop, y-up."""
        z = cam[..., 2:3]
        return FOCAL * cam[..., :2] / z + CENTER

    @staticmethod
    def illuminate(albedo: torch.Tensor, normals_rot: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """SH lighting: gamma (B, 27) channel-major (R 9, G 9, B 9), +0.8 on coefficient 0."""
        g = gamma.view(-1, 3, 9).clone()
        g[:, :, 0] += INIT_LIT
        y = sh_basis(normals_rot)  # (B, N, 9)
        return albedo * torch.einsum("bnj,bkj->bnk", y, g)

    @torch.no_grad()
    def compute(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        """coeffs (B, 257) -> shape, albedo, normals, R, world, normals_rot, v3d (camera), v2d, face_texture."""
        from .recon_net import split_coeffs

        c = split_coeffs(coeffs.to(torch.float32))
        shape = self.shape(c["id"], c["exp"])
        albedo = self.albedo(c["alb"])
        normals = self.normals(shape)
        r = rotation_matrix(c["angle"])
        world = self.transform(shape, r, c["trans"])
        normals_rot = normals @ r.transpose(1, 2)
        v3d = self.to_camera(world)
        v2d = self.project(v3d)
        tex = self.illuminate(albedo, normals_rot, c["gamma"])
        return {"shape": shape, "albedo": albedo, "normals": normals, "R": r, "angle": c["angle"],
                "trans": c["trans"], "world": world, "normals_rot": normals_rot, "v3d": v3d, "v2d": v2d,
                "face_texture": tex}
