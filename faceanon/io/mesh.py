"""Wavefront OBJ/MTL: textured triangle meshes with one UV per vertex.

Layout written by :func:`write_obj` (the seed's OBJ layout, docs/seed_compatibility.md, section 1.2)::

    mtllib <mtl>
    usemtl material_0
    v x y z          (N lines)
    vt u v           (N lines; vt index == v index)
    f a/a b/b c/c    (M lines, 1-based)

and the MTL: ``newmtl material_0``, ``Ka 1 1 1``, ``Kd 1 1 1``, ``Ks 0 0 0``, ``d 1``,
``illum 1``, ``map_Kd <png>`` (never the seed's ``Tr 1.000``, which many viewers read as fully
transparent). UVs follow the OBJ convention: u right, v up; the texture PNG row 0 is v = 1.

:func:`read_obj` reads the seed's files, ours, and OBJ files from other tools.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from faceanon.cache import BoundedCache, content_digest
from faceanon.errors import FaceanonError
from faceanon.io.atomic import atomic_write
from faceanon.raster import format_rows

__all__ = ["write_obj", "write_mtl", "read_obj", "MATERIAL_NAME"]

MATERIAL_NAME = "material_0"


def _check_name(name: str, what: str) -> str:
    name = str(name)
    if not name or name != name.strip() or any(c in name for c in "\n\r\x00"):
        raise ValueError(f"write_obj: {what} {name!r} must be a non-empty single-line file name "
                         "without leading/trailing spaces")
    return name


def write_mtl(mtl_path: Path | str, texture_png_name: Optional[str]) -> None:
    """Write the single-material MTL (atomically). ``texture_png_name`` is relative to the MTL."""
    lines = [f"newmtl {MATERIAL_NAME}", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "d 1", "illum 1"]
    if texture_png_name:
        lines.append(f"map_Kd {_check_name(texture_png_name, 'texture_png_name')}")
    with atomic_write(mtl_path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


_TOPOLOGY_CACHE: BoundedCache[tuple[str, str]] = BoundedCache(4)


def _topology_text(uv: np.ndarray, triangles: np.ndarray, precision: int) -> tuple[str, str]:
    """The ``vt`` and ``f`` lines. Every face of one model shares its UVs and triangles, so the text
    is cached per (uv, triangles, precision): a batch formats it once instead of once per mesh."""
    uv64 = np.ascontiguousarray(uv, np.float64)
    tri64 = np.ascontiguousarray(triangles, np.int64)

    def build() -> tuple[str, str]:
        m = tri64.shape[0]
        vt_text = format_rows(uv64, precision, "vt")
        f_text = ("f %d/%d %d/%d %d/%d\n" * m) % tuple(np.repeat(tri64 + 1, 2, axis=1).ravel().tolist())
        return vt_text, f_text

    return _TOPOLOGY_CACHE.get_or_build((precision, content_digest(uv64, tri64)), build)


_VERTEX_CACHE: BoundedCache[str] = BoundedCache(2)


def _vertex_text(vertices: np.ndarray, precision: int) -> str:
    """The ``v`` lines, cached by content: at ``--alpha 1`` every anonymized face is exactly the
    mean face, so a batch formats its vertices once."""
    v64 = np.ascontiguousarray(vertices, np.float64)
    return _VERTEX_CACHE.get_or_build((precision, content_digest(v64)), lambda: format_rows(v64, precision, "v"))


def write_obj(obj_path: Path | str, vertices: np.ndarray, uv: np.ndarray, triangles: np.ndarray, *,
              texture_png_name: Optional[str], mtl_name: Optional[str] = None, precision: int = 6) -> Path:
    """Write a textured mesh as OBJ + MTL, both atomically (MTL first, so the OBJ never points at
    a missing MTL).

    Args:
        obj_path: the ``.obj`` file.
        vertices: (N, 3) float, finite.
        uv: (N, 2) float, one UV per vertex (u right, v up), finite.
        triangles: (M, 3) integer, 0-based indices in [0, N).
        texture_png_name: the texture file name written as ``map_Kd``, relative to the MTL (usually
            a PNG next to it); ``None`` writes a material without texture.
        mtl_name: the MTL file name, next to the OBJ; default ``<obj stem>.mtl``.
        precision: decimals for ``v`` and ``vt`` numbers.

    Returns the MTL path. Raises ``ValueError`` for bad arrays, :class:`OutputError` when a file
    cannot be written. Numbers are formatted in C++ (:func:`faceanon.raster.format_rows`, the digits
    of Python's ``%.{precision}f``): ~0.01 s for the 38k-vertex BFM.
    """
    obj_path = Path(obj_path)
    v = np.asarray(vertices)
    t = np.asarray(uv)
    f = np.asarray(triangles)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        raise ValueError(f"write_obj: vertices must be (N, 3) with N > 0, got {v.shape}")
    n = v.shape[0]
    if t.shape != (n, 2):
        raise ValueError(f"write_obj: uv must be (N, 2) = ({n}, 2), got {t.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"write_obj: triangles must be (M, 3), got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"write_obj: triangles must be integers, got {f.dtype}")
    if f.size and (f.min() < 0 or f.max() >= n):
        raise ValueError(f"write_obj: triangle indices must be in [0, {n}), got {f.min()}..{f.max()}")
    if not np.all(np.isfinite(v)):
        raise ValueError("write_obj: vertices contain NaN or infinity")
    if not np.all(np.isfinite(t)):
        raise ValueError("write_obj: uv contain NaN or infinity")
    precision = int(precision)
    if not 0 <= precision <= 17:
        raise ValueError(f"write_obj: precision must be in 0..17, got {precision}")

    mtl_name = _check_name(mtl_name if mtl_name is not None else obj_path.stem + ".mtl", "mtl_name")
    head = f"mtllib {mtl_name}\nusemtl {MATERIAL_NAME}\n"
    v_text = _vertex_text(v, precision)
    vt_text, f_text = _topology_text(t, f, precision)
    mtl_path = obj_path.with_name(mtl_name)
    write_mtl(mtl_path, texture_png_name)
    with atomic_write(obj_path, "w") as fh:
        fh.write(head)
        fh.write(v_text)
        fh.write(vt_text)
        fh.write(f_text)
    return mtl_path


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------

def _err(path: Path, msg: str, line: Optional[int] = None) -> FaceanonError:
    where = f"{path}" if line is None else f"{path} line {line}"
    return FaceanonError(f"cannot read mesh {where}: {msg}")


class _Lines:
    """Line numbers of the n-th statement of a kind, computed only when an error is reported."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def number(self, kind: str, k: int) -> Optional[int]:
        seen = -1
        for i, line in enumerate(self.lines):
            tok = line.split(None, 1)
            if tok and tok[0] == kind:
                seen += 1
                if seen == k:
                    return i + 1
        return None


def _parse_numbers(rows: list[str], width: int, kind: str, path: Path, where: _Lines,
                   pad: Optional[str] = None) -> np.ndarray:
    """``kind x y z ...`` lines -> (len(rows), width) float64; extra numbers are ignored, ``pad``
    fills a missing last one (``vt u`` -> v = 0)."""
    tokens = " ".join(rows).split()
    if len(tokens) == (width + 1) * len(rows):  # fast path: every line has exactly `width` numbers
        try:
            arr = np.array(tokens, dtype=object).reshape(len(rows), width + 1)
            if np.all(arr[:, 0] == kind):
                return arr[:, 1:].astype(np.float64)
        except (ValueError, TypeError):
            pass
    out = np.empty((len(rows), width), dtype=np.float64)
    for k, row in enumerate(rows):
        tok = row.split()[1:width + 1]
        if len(tok) == width - 1 and pad is not None:
            tok.append(pad)
        if len(tok) != width:
            raise _err(path, f"'{kind}' needs {width} numbers: {row.strip()!r}", where.number(kind, k))
        try:
            out[k] = [float(x) for x in tok]
        except ValueError:
            raise _err(path, f"bad number in {row.strip()!r}", where.number(kind, k)) from None
    return out


def _parse_index(tokens: list[str], what: str, path: Path, where: _Lines,
                 corner_face: np.ndarray) -> np.ndarray:
    try:
        return np.array(tokens, dtype=object).astype(np.int64) if tokens else np.zeros(0, np.int64)
    except (ValueError, TypeError, OverflowError):
        for k, s in enumerate(tokens):
            try:
                int(s)
            except (ValueError, OverflowError):
                raise _err(path, f"bad {what} index {s!r} in a face",
                           where.number("f", int(corner_face[k]))) from None
        raise  # pragma: no cover


def _resolve(idx: np.ndarray, count_at: np.ndarray, total: int, path: Path, what: str,
             corner_face: np.ndarray, where: _Lines) -> np.ndarray:
    """OBJ indices -> 0-based: positive k is the k-th element (1-based); negative -k is the k-th
    element counting back from the last one defined *before that face line*; 0 is invalid."""
    out = np.where(idx > 0, idx - 1, count_at + idx)
    bad = (idx == 0) | (out < 0) | (out >= total)
    if bad.any():
        i = int(np.argmax(bad))
        if idx[i] == 0:
            raise _err(path, f"{what} index 0 is invalid (OBJ indices start at 1)",
                       where.number("f", int(corner_face[i])))
        raise _err(path, f"{what} index {int(idx[i])} is out of range "
                         f"({int(count_at[i])} defined before this face, {total} in the file)",
                   where.number("f", int(corner_face[i])))
    return out


def _split_corners(corners: list[str]) -> tuple[list[str], list[str]]:
    """Corner strings (``v``, ``v/vt``, ``v//vn``, ``v/vt/vn``) -> (v tokens, vt tokens or '')."""
    nc = len(corners)
    text = " ".join(corners)
    slashes = text.count("/")
    if slashes == 0:
        return corners, [""] * nc
    doubles = text.count("//")
    if doubles == nc and slashes == 2 * nc:  # all v//vn
        return text.replace("//", " ").split()[0::2], [""] * nc
    if doubles == 0 and slashes == nc:  # all v/vt
        tok = text.replace("/", " ").split()
        if len(tok) == 2 * nc:
            return tok[0::2], tok[1::2]
    if doubles == 0 and slashes == 2 * nc:  # all v/vt/vn
        tok = text.replace("/", " ").split()
        if len(tok) == 3 * nc:
            return tok[0::3], tok[1::3]
    vs, ts = [], []
    for c in corners:  # mixed layouts
        parts = c.split("/")
        vs.append(parts[0])
        ts.append(parts[1] if len(parts) > 1 else "")
    return vs, ts


def _mtl_options_stripped(tokens: list[str]) -> str:
    """``map_Kd [-options...] file name`` -> ``file name`` (options may take 1-3 arguments)."""
    i = 0
    while i < len(tokens) and tokens[i].startswith("-") and len(tokens[i]) > 1 and not _is_number(tokens[i]):
        opt = tokens[i].lower()
        i += 1
        if opt in ("-blendu", "-blendv", "-cc", "-clamp", "-imfchan", "-type", "-texres", "-bm", "-boost"):
            i += 1
        else:  # -mm (2), -o/-s/-t (1..3): consume the following numbers
            while i < len(tokens) - 1 and _is_number(tokens[i]):
                i += 1
    return " ".join(tokens[i:])


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _texture_from_mtl(obj_path: Path, mtllib: Optional[str], material: Optional[str]) -> Optional[Path]:
    if not mtllib:
        return None
    mtl_path = obj_path.parent / mtllib.replace("\\", "/")
    try:
        text = mtl_path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    maps: dict[str, str] = {}
    first: Optional[str] = None
    current = ""
    for line in text.splitlines():
        tok = line.split()
        if not tok:
            continue
        key = tok[0].lower()
        if key == "newmtl":
            current = " ".join(tok[1:])
        elif key == "map_kd" and len(tok) > 1:
            name = _mtl_options_stripped(tok[1:])
            if name:
                maps.setdefault(current, name)
                first = first or name
    name = maps.get(material or "", None) if material is not None else None
    name = name or first
    if not name:
        return None
    for candidate in (name, name.replace("\\", "/")):
        p = mtl_path.parent / candidate
        if p.is_file():
            return p
    return None


def read_obj(path: Path | str) -> tuple[np.ndarray, Optional[np.ndarray], np.ndarray, Optional[Path]]:
    """Read a polygon mesh from an OBJ file.

    Accepts ``v`` (extra w or colour values ignored), ``vt`` (u [v [w]]), and ``f`` corners written
    ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn``; positive (1-based) and negative (relative: -1 is the
    last vertex defined *before* the face line) indices; faces with more than 3 corners are
    fan-triangulated (0, i, i+1); ``\\`` line continuations. Other statements are ignored.

    Returns ``(vertices, uv_per_vertex, triangles, texture_path)``:
        vertices (N, 3) float32; triangles (M, 3) int32, 0-based;
        uv_per_vertex (N, 2) float32, or None when the faces have no ``vt``. When the ``vt`` index
        differs from the ``v`` index the UVs are gathered per vertex; a vertex used with two
        different UVs (a UV seam) raises :class:`FaceanonError`. Vertices used by no face get
        UV (0, 0);
        texture_path: the ``map_Kd`` image of the material used (first ``usemtl``), resolved
        relative to the MTL file, when the MTL and the image exist; else None.

    Raises :class:`FaceanonError` naming the file (and line) for unreadable or malformed files.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(path, exc.strerror or str(exc)) from None
    text = data.decode("utf-8", errors="replace")
    if "\\\n" in text or "\\\r\n" in text:
        text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    lines = text.splitlines()
    where = _Lines(lines)

    # 1. classify the statements (a cheap pass; the numbers are parsed in bulk below)
    v_rows: list[str] = []
    vt_rows: list[str] = []
    f_rows: list[str] = []
    f_nv: list[int] = []
    f_nvt: list[int] = []
    mtllib: Optional[str] = None
    material: Optional[str] = None
    for line in lines:
        if not line:
            continue
        if line[0] in " \t":
            line = line.lstrip()
            if not line:
                continue
        c0 = line[0]
        if c0 == "v":
            c1 = line[1:2]
            if c1 == " " or c1 == "\t":
                v_rows.append(line)
            elif c1 == "t" and line[2:3] in (" ", "\t"):
                vt_rows.append(line)
        elif c0 == "f":
            if line[1:2] in (" ", "\t"):
                f_rows.append(line)
                f_nv.append(len(v_rows))
                f_nvt.append(len(vt_rows))
        elif c0 == "m" and mtllib is None and line.startswith(("mtllib ", "mtllib\t")):
            mtllib = line[6:].strip() or None
        elif c0 == "u" and material is None and line.startswith(("usemtl ", "usemtl\t")):
            material = line[6:].strip() or None

    if not v_rows:
        raise _err(path, "no vertices ('v' lines)")
    if not f_rows:
        raise _err(path, "no faces ('f' lines)")
    vertices = _parse_numbers(v_rows, 3, "v", path, where)
    n = len(vertices)

    # 2. faces: the 'f' tokens delimit the faces in one flat token list
    tokens = " ".join(f_rows).split()
    nf = len(f_rows)
    if len(tokens) == 4 * nf and tokens[0::4].count("f") == nf:  # fast path: all triangles
        sizes = np.full(nf, 3, dtype=np.int64)
        del tokens[0::4]
        corners = tokens
    else:
        is_f = np.fromiter((t == "f" for t in tokens), dtype=bool, count=len(tokens))
        starts = np.flatnonzero(is_f)
        sizes = np.diff(np.append(starts, len(tokens))) - 1
        if sizes.min() < 3:
            k = int(np.argmax(sizes < 3))
            raise _err(path, f"a face needs at least 3 corners, got {int(sizes[k])}", where.number("f", k))
        corners = [t for t, f in zip(tokens, is_f) if not f]
    corner_face = np.repeat(np.arange(len(f_rows)), sizes)
    v_tok, t_tok = _split_corners(corners)
    vi = _parse_index(v_tok, "vertex", path, where, corner_face)
    vi = _resolve(vi, np.asarray(f_nv, dtype=np.int64)[corner_face], n, path, "vertex", corner_face, where)

    n_missing = t_tok.count("")
    ti = None
    if n_missing == 0:
        if not vt_rows:
            raise _err(path, "faces use texture coordinates but the file has no 'vt' lines")
        ti = _parse_index(t_tok, "texture", path, where, corner_face)
        ti = _resolve(ti, np.asarray(f_nvt, dtype=np.int64)[corner_face], len(vt_rows), path, "texture",
                      corner_face, where)
    elif n_missing != len(t_tok):
        k = int(corner_face[t_tok.index("")])
        raise _err(path, "some face corners have a texture index and others do not", where.number("f", k))

    # 3. fan triangulation: corners (0, j, j+1) of every face, j = 1..k-2
    if np.all(sizes == 3):
        corner_tris = np.arange(len(vi), dtype=np.int64).reshape(-1, 3)
    else:
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        ntri = sizes - 2
        face_of_tri = np.repeat(np.arange(len(sizes)), ntri)
        j = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri) + 1
        base = first[face_of_tri]
        corner_tris = np.stack([base, base + j, base + j + 1], axis=1)
    triangles = vi[corner_tris].astype(np.int32)

    # 4. one UV per vertex
    uv = None
    if ti is not None:
        vt = _parse_numbers(vt_rows, 2, "vt", path, where, pad="0")
        if len(vt) == n and np.array_equal(ti, vi):
            uv = vt
        else:
            uv = np.zeros((n, 2), dtype=np.float64)
            uv[vi] = vt[ti]
            mismatch = np.any(np.abs(uv[vi] - vt[ti]) > 1e-6, axis=1)
            if mismatch.any():
                k = int(np.argmax(mismatch))
                raise _err(path, f"vertex {int(vi[k]) + 1} has two different texture coordinates "
                                 "(a UV seam); faceanon needs exactly one UV per vertex",
                           where.number("f", int(corner_face[k])))
        uv = uv.astype(np.float32)

    texture = _texture_from_mtl(path, mtllib, material)
    return vertices.astype(np.float32), uv, triangles, texture
