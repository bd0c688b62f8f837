"""faceanon.io.mesh: OBJ/MTL writing (seed layout), tolerant reading, trimesh interoperability."""

from __future__ import annotations

import time

import numpy as np
import pytest
import trimesh
from PIL import Image

from faceanon.errors import FaceanonError
from faceanon.io.mesh import read_obj, write_obj


def grid_mesh(nx: int = 6, ny: int = 5):
    """A small open grid: vertices (N, 3), uv (N, 2), triangles (M, 3)."""
    xs, ys = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny))
    v = np.stack([xs.ravel() * 100 + 0.123456, ys.ravel() * 80 - 7.5, np.sin(xs.ravel() * 3)], axis=1)
    uv = np.stack([xs.ravel(), ys.ravel()], axis=1)
    tris = []
    for r in range(ny - 1):
        for c in range(nx - 1):
            i = r * nx + c
            tris += [[i, i + 1, i + nx + 1], [i, i + nx + 1, i + nx]]
    return v.astype(np.float32), uv.astype(np.float32), np.array(tris, np.int32)


def write_texture(path, size=8):
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[: size // 2] = (255, 0, 0)
    Image.fromarray(rgb).save(path)


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------

def test_write_layout_matches_seed(tmp_path):
    v, uv, f = grid_mesh(3, 2)
    obj = tmp_path / "face.obj"
    mtl = write_obj(obj, v, uv, f, texture_png_name="face_texture.png")
    assert mtl == tmp_path / "face.mtl"
    lines = obj.read_text().splitlines()
    assert lines[0] == "mtllib face.mtl" and lines[1] == "usemtl material_0"
    n, m = len(v), len(f)
    v_lines, vt_lines, f_lines = lines[2:2 + n], lines[2 + n:2 + 2 * n], lines[2 + 2 * n:]
    assert len(f_lines) == m
    assert v_lines[0] == f"v {v[0, 0]:.6f} {v[0, 1]:.6f} {v[0, 2]:.6f}"
    assert vt_lines[-1] == f"vt {uv[-1, 0]:.6f} {uv[-1, 1]:.6f}"
    a, b, c = f[0] + 1
    assert f_lines[0] == f"f {a}/{a} {b}/{b} {c}/{c}"
    assert mtl.read_text() == ("newmtl material_0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
                               "map_Kd face_texture.png\n")
    assert "Tr" not in mtl.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.mtl", "face.obj"]  # no temp files


def test_write_precision_and_custom_mtl_name(tmp_path):
    v, uv, f = grid_mesh(3, 2)
    obj = tmp_path / "m.obj"
    write_obj(obj, v, uv, f, texture_png_name=None, mtl_name="shared.mtl", precision=2)
    text = obj.read_text()
    assert text.startswith("mtllib shared.mtl\n")
    assert f"v {v[0, 0]:.2f} {v[0, 1]:.2f} {v[0, 2]:.2f}\n" in text
    assert "map_Kd" not in (tmp_path / "shared.mtl").read_text()


@pytest.mark.parametrize("bad", ["nan_v", "nan_uv", "index_high", "index_neg", "float_idx", "uv_shape"])
def test_write_validates_inputs(tmp_path, bad):
    v, uv, f = grid_mesh(3, 2)
    if bad == "nan_v":
        v[1, 2] = np.nan
    elif bad == "nan_uv":
        uv[0, 0] = np.inf
    elif bad == "index_high":
        f[0, 0] = len(v)
    elif bad == "index_neg":
        f[0, 0] = -1
    elif bad == "float_idx":
        f = f.astype(np.float32)
    elif bad == "uv_shape":
        uv = uv[:-1]
    with pytest.raises(ValueError):
        write_obj(tmp_path / "x.obj", v, uv, f, texture_png_name="t.png")
    assert list(tmp_path.iterdir()) == []


def test_write_is_fast_for_a_bfm_sized_mesh(tmp_path):
    rng = np.random.default_rng(0)
    n, m = 38365, 76073
    v = rng.random((n, 3)).astype(np.float32) * 1000
    uv = rng.random((n, 2)).astype(np.float32)
    f = rng.integers(0, n, (m, 3)).astype(np.int32)
    t0 = time.perf_counter()
    write_obj(tmp_path / "big.obj", v, uv, f, texture_png_name="big.png")
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"write_obj took {elapsed:.2f}s"  # ~0.15 s on a laptop core
    t0 = time.perf_counter()
    v2, uv2, f2, _ = read_obj(tmp_path / "big.obj")
    assert time.perf_counter() - t0 < 5.0
    assert np.allclose(v2, v, atol=1e-3) and np.allclose(uv2, uv, atol=1e-6) and np.array_equal(f2, f)


# ----------------------------------------------------------------------------------------------
# round trip and trimesh
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stem", ["face", "my face é 顔"])
def test_roundtrip_and_trimesh_loads_texture(tmp_path, stem):
    v, uv, f = grid_mesh()
    png = tmp_path / f"{stem}_texture.png"
    write_texture(png)
    obj = tmp_path / f"{stem}.obj"
    write_obj(obj, v, uv, f, texture_png_name=png.name)

    v2, uv2, f2, tex = read_obj(obj)
    assert v2.dtype == np.float32 and uv2.dtype == np.float32 and f2.dtype == np.int32
    assert np.allclose(v2, v, atol=1e-5) and np.allclose(uv2, uv, atol=1e-6) and np.array_equal(f2, f)
    assert tex == png

    mesh = trimesh.load(obj, force="mesh", process=False)
    assert isinstance(mesh.visual, trimesh.visual.texture.TextureVisuals)
    image = mesh.visual.material.image
    assert image is not None and image.size == (8, 8)
    assert len(mesh.faces) == len(f)
    assert np.allclose(np.asarray(mesh.visual.uv), uv, atol=1e-6)


def test_texture_none_when_missing(tmp_path):
    v, uv, f = grid_mesh(3, 2)
    write_obj(tmp_path / "a.obj", v, uv, f, texture_png_name="absent.png")
    assert read_obj(tmp_path / "a.obj")[3] is None
    (tmp_path / "a.mtl").unlink()
    assert read_obj(tmp_path / "a.obj")[3] is None


# ----------------------------------------------------------------------------------------------
# reading other producers' files
# ----------------------------------------------------------------------------------------------

def test_read_seed_style_files(tmp_path):
    """The seed: str(float32) numbers, Tr/Ns in the MTL, usemtl after the vt block (anonymization.py)."""
    v, uv, f = grid_mesh(3, 2)
    lines = ["mtllib seed.mtl"]
    lines += [f"v {np.float32(x)} {np.float32(y)} {np.float32(z)}" for x, y, z in v]
    lines += [f"vt {np.float32(a)} {np.float32(b)}" for a, b in uv]
    lines += ["usemtl material_0"]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in f + 1]
    (tmp_path / "seed.obj").write_text("\n".join(lines) + "\n")
    (tmp_path / "seed.mtl").write_text("newmtl material_0\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\n"
                                       "Ks 0.000 0.000 0.000\nTr 1.000\nillum 1\nNs 0.000\nmap_Kd seed.png\n")
    write_texture(tmp_path / "seed.png")
    v2, uv2, f2, tex = read_obj(tmp_path / "seed.obj")
    assert np.array_equal(v2, v) and np.array_equal(uv2, uv) and np.array_equal(f2, f)
    assert tex == tmp_path / "seed.png"


def test_negative_indices_are_relative_to_the_face_line(tmp_path):
    text = """
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
f -4 -3 -2
v 5 5 5
v 6 5 5
f -3 -2 -1
f 1 -1 -2
"""
    (tmp_path / "neg.obj").write_text(text)
    v, uv, f, _ = read_obj(tmp_path / "neg.obj")
    assert uv is None and len(v) == 6
    # -4..-2 before the 5th vertex = vertices 1..3; then -3..-1 = vertices 4..6 (the seed kept
    # Python-negative indices and would have used the last three vertices of the whole file)
    assert f.tolist() == [[0, 1, 2], [3, 4, 5], [0, 5, 4]]


def test_quads_and_polygons_fan_triangulated(tmp_path):
    text = """v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
v 2 1 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vt 0.5 0
vt 0.5 1
f 1/1 2/2 3/3 4/4
f 2/2 5/5 6/6 3/3
f -6/-6 -5/-5 -4/-4 -3/-3 -2/-2
"""
    (tmp_path / "quad.obj").write_text(text)
    v, uv, f, _ = read_obj(tmp_path / "quad.obj")
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2], [0, 1, 2], [0, 2, 3], [0, 3, 4]]
    assert np.allclose(uv[4], [0.5, 0]) and np.allclose(uv[5], [0.5, 1])


@pytest.mark.parametrize("corner", ["{i}", "{i}//{i}", "{i}/{t}/{i}", "{i}/{t}"])
def test_corner_layouts(tmp_path, corner):
    v, uv, f = grid_mesh(3, 3)
    order = np.random.default_rng(0).permutation(len(v))  # vt listed in another order than v
    vt_of_v = np.empty(len(v), int)
    vt_of_v[order] = np.arange(len(v))
    lines = [f"v {x} {y} {z}" for x, y, z in v.astype(float)]
    lines += [f"vt {a} {b}" for a, b in uv[order].astype(float)]
    lines += [f"vn 0 0 1"]
    for tri in f:
        lines.append("f " + " ".join(corner.format(i=i + 1, t=vt_of_v[i] + 1) for i in tri))
    (tmp_path / "c.obj").write_text("\n".join(lines))
    v2, uv2, f2, _ = read_obj(tmp_path / "c.obj")
    assert np.array_equal(f2, f) and np.allclose(v2, v)
    if "{t}" in corner:
        assert np.allclose(uv2, uv)
    else:
        assert uv2 is None


def test_vt_index_differs_but_consistent(tmp_path):
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 9 9\nvt 0.1 0.2\nvt 0.3 0.4\nvt 0.5 0.6\nvt 0.1 0.2\n" \
           "f 1/2 2/3 3/4\nf 1/5 3/4 2/3\n"
    (tmp_path / "k.obj").write_text(text)
    _, uv, _, _ = read_obj(tmp_path / "k.obj")
    assert np.allclose(uv, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])


def test_map_kd_with_options_and_spaces(tmp_path):
    (tmp_path / "m.obj").write_text("mtllib my mat.mtl\nusemtl skin\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                                    "vt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    (tmp_path / "my mat.mtl").write_text("newmtl other\nmap_Kd other.png\n"
                                         "newmtl skin\nmap_Kd -s 1 1 1 -o 0 0 skin tex.png\n")
    write_texture(tmp_path / "skin tex.png")
    write_texture(tmp_path / "other.png")
    assert read_obj(tmp_path / "m.obj")[3] == tmp_path / "skin tex.png"


@pytest.mark.parametrize("text,match", [
    ("", "no vertices"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", "line 4: vertex index 0 is invalid"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "line 4: vertex index 4 is out of range"),
    ("v 0 0 0\nv 1 0 0\nf -3 -2 -1\nv 0 1 0\n", "line 3: vertex index -3 is out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "line 4: a face needs at least 3 corners"),
    ("v 0 0 0\nv 1 x 0\nv 0 1 0\nf 1 2 3\n", "line 2: bad number"),
    ("v 0 0 0\nv 1 0\nv 0 1 0\nf 1 2 3\n", "line 2: 'v' needs 3 numbers"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 a\n", "line 4: bad vertex index 'a'"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3\n", "line 5: some face corners have a texture index"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1 2/1 3/1\n", "no 'vt' lines"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 1\nf 1/1 2/1 3/1\nf 1/2 2/1 3/1\n", "line 6: vertex 1 has two"),
])
def test_malformed_files_raise_faceanon_error(tmp_path, text, match):
    p = tmp_path / "bad.obj"
    p.write_text(text)
    with pytest.raises(FaceanonError) as ei:
        read_obj(p)
    assert "bad.obj" in ei.value.message
    assert match in ei.value.message, ei.value.message


def test_missing_file(tmp_path):
    with pytest.raises(FaceanonError, match="missing.obj"):
        read_obj(tmp_path / "missing.obj")


def test_continuation_lines_crlf_and_comments(tmp_path):
    text = "# comment\r\nv 0 0 0\r\nv 1 \\\r\n 0 0\r\n  v 0 1 0\r\no thing\r\ng grp\r\ns off\r\nf 1 2 3\r\nl 1 2\r\n"
    (tmp_path / "w.obj").write_bytes(text.encode())
    v, uv, f, _ = read_obj(tmp_path / "w.obj")
    assert v.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]] and f.tolist() == [[0, 1, 2]]
