"""Face model schema, assembly, camera, SH lighting and the pose / winding conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddfa_v3.face_model import REQUIRED_KEYS, FaceModel, rotation_matrix, sh_basis
from ddfa_v3.model import pose_from_angles, winding_is_ccw_yup
from ddfa_v3.testing import synthetic_face_model
from ddfa_v3.errors import AssetError


@pytest.fixture(scope="module")
def fm_dict():
    return synthetic_face_model()


@pytest.fixture(scope="module")
def fm_path(tmp_path_factory, fm_dict):
    p = tmp_path_factory.mktemp("fm") / "face_model.npy"
    arr = np.empty((), dtype=object)
    arr[()] = fm_dict
    np.save(p, arr, allow_pickle=True)
    return p


def test_synthetic_dict_follows_documented_schema(fm_dict):
    d = fm_dict
    assert set(REQUIRED_KEYS) <= set(d)
    n3 = d["u"].shape[0]
    n, m = n3 // 3, d["tri"].shape[0]
    assert d["u"].shape == (n3, 1) and d["u_alb"].shape == (n3, 1)
    assert d["id"].shape == (n3, 80) and d["exp"].shape == (n3, 64) and d["alb"].shape == (n3, 80)
    assert d["point_buf"].shape == (n, 8) and d["point_buf"].max() == m  # 0-based, padded with M
    assert d["tri"].min() == 0 and d["tri"].max() == n - 1
    assert d["uv_coords"].shape == (n, 2) and d["uv_coords"].min() >= 0 and d["uv_coords"].max() <= 1
    assert [d[k].shape for k in ("ldm68", "ldm106", "ldm134")] == [(68,), (106,), (134,)]
    assert len(d["annotation"]) == 8 and len(d["annotation_tri"]) == 8 and len(d["parallel"]) == 33
    assert all(t.ndim == 2 and t.shape[1] == 3 for t in d["annotation_tri"])


def test_load_from_npy_and_mean_face(fm_path, fm_dict):
    fm = FaceModel(fm_path)
    assert fm.n_vertices == fm_dict["u"].shape[0] // 3 and fm.n_triangles == fm_dict["tri"].shape[0]
    out = fm.compute(torch.zeros(1, 257))
    np.testing.assert_allclose(out["shape"][0].numpy(), fm_dict["u"].reshape(-1, 3), atol=1e-6)
    np.testing.assert_allclose(out["albedo"][0].numpy(), fm_dict["u_alb"].reshape(-1, 3) / 255.0, atol=1e-6)
    # zero pose and translation: world = shape, camera z = 10 - z, v2d = 1015 x / z_c + 112 (y-up)
    world = out["world"][0].numpy()
    cam = out["v3d"][0].numpy()
    np.testing.assert_allclose(cam[:, 2], 10.0 - world[:, 2], atol=1e-5)
    v2d = out["v2d"][0].numpy()
    np.testing.assert_allclose(v2d, 1015.0 * cam[:, :2] / cam[:, 2:3] + 112.0, rtol=1e-5)
    assert np.corrcoef(world[:, 1], v2d[:, 1])[0, 1] > 0.99  # y-up: higher vertices, larger v2d_y
    # normals point outward: at the nose tip (max z) toward +z
    nose = np.argmax(world[:, 2])
    assert out["normals"][0, nose, 2] > 0.9
    # SH with gamma = 0: colour = albedo * 0.8 * 0.886227 (init_lit on the constant term)
    np.testing.assert_allclose(out["face_texture"][0].numpy(), out["albedo"][0].numpy() * 0.8 * 0.886227,
                               rtol=1e-5)


def test_coefficients_act_on_the_right_slices(fm_path, fm_dict):
    fm = FaceModel(fm_path)
    c = torch.zeros(1, 257)
    c[0, 0] = 1.0  # first identity coefficient
    c[0, 80 + 3] = 2.0  # fourth expression coefficient
    c[0, 144 + 5] = -1.5  # albedo
    c[0, 254:257] = torch.tensor([0.1, -0.2, 0.3])
    out = fm.compute(c)
    s = fm_dict["u"][:, 0] + fm_dict["id"][:, 0] + 2.0 * fm_dict["exp"][:, 3]
    np.testing.assert_allclose(out["shape"][0].numpy().reshape(-1), s, atol=1e-5)
    np.testing.assert_allclose(out["world"][0].numpy(), s.reshape(-1, 3) + [0.1, -0.2, 0.3], atol=1e-5)
    a = (fm_dict["u_alb"][:, 0] - 1.5 * fm_dict["alb"][:, 5]) / 255.0
    np.testing.assert_allclose(out["albedo"][0].numpy().reshape(-1), a, atol=1e-5)


def test_rotation_is_rz_ry_rx():
    a = torch.tensor([[0.3, -0.5, 0.2]])
    r = rotation_matrix(a)[0].numpy().astype(np.float64)
    x, y, z = 0.3, -0.5, 0.2
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    np.testing.assert_allclose(r, rz @ ry @ rx, atol=1e-6)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)


def test_sh_constants():
    y = sh_basis(torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]))[0].numpy()
    np.testing.assert_allclose(y[0], [0.886227, 0, 1.772454, 0, 0, 0, 2 * 0.700624, 0, 0], atol=1e-5)
    np.testing.assert_allclose(y[1], [0.886227, 0, 0, -1.772454, 0, 0, -0.700624, 0, 1.213516], atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_pose_signs_match_project_convention(axis):
    """yaw > 0: nose toward image left; pitch > 0: looking down; roll > 0: counter-clockwise on screen."""
    ang = np.zeros(3)
    ang[axis] = 0.2
    r = rotation_matrix(torch.tensor(ang[None], dtype=torch.float32))[0].numpy()
    yaw, pitch, roll = pose_from_angles(ang)
    nose = r @ [0, 0, 1.0]  # model frame: x right, y up (image y = -model y), z toward the camera
    right = r @ [1.0, 0, 0]
    if axis == 1:
        assert yaw != 0 and np.sign(yaw) == np.sign(-nose[0]) and pitch == 0 and roll == 0
    elif axis == 0:
        assert pitch != 0 and np.sign(pitch) == np.sign(-nose[1]) and yaw == 0 and roll == 0
    else:
        # counter-clockwise on screen: the image-right axis turns upward (model +y)
        assert roll != 0 and np.sign(roll) == np.sign(right[1]) and yaw == 0 and pitch == 0
    assert abs(abs(pose_from_angles(ang)[[1, 0, 2].index(axis)]) - math.degrees(0.2)) < 1e-4


def test_winding_detection(fm_dict):
    v = fm_dict["u"].reshape(-1, 3)
    tri = fm_dict["tri"]
    assert winding_is_ccw_yup(v, tri)
    assert not winding_is_ccw_yup(v, tri[:, [0, 2, 1]])


def test_schema_errors(tmp_path, fm_dict):
    bad = dict(fm_dict)
    del bad["parallel"]
    with pytest.raises(AssetError, match="parallel"):
        FaceModel(bad)
    bad = dict(fm_dict)
    bad["tri"] = fm_dict["tri"] + 10**6
    with pytest.raises(AssetError, match="'tri'"):
        FaceModel(bad)
    bad = dict(fm_dict)
    bad["id"] = fm_dict["id"][:-3]
    with pytest.raises(AssetError, match="'id'"):
        FaceModel(bad)
    p = tmp_path / "face_model.npy"
    p.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(AssetError, match="cannot read face model"):
        FaceModel(p)
    with pytest.raises(AssetError, match="not found"):
        FaceModel(tmp_path / "absent.npy")
