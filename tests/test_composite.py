"""composite stage: synthetic meshes rendered into a real photo, depth order, pose recovery, writer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.ExifTags import IFD

from faceanon.stages.composite import (
    CompositeFace,
    composite_extension,
    composite_image,
    posed_image_vertices,
    write_composite,
)
from faceanon.types import ImageRecord

CELL = 32  # texture checkerboard cell (texels)
T = 256


def grid(x0, y0, x1, y1, n=16, z=0.0):
    """A flat quad grid covering [x0, x1] x [y0, y1] (image px), UVs spanning [0, 1]², front-facing."""
    xs = np.linspace(x0, x1, n + 1)
    ys = np.linspace(y0, y1, n + 1)
    X, Y = np.meshgrid(xs, ys)
    v = np.stack([X.ravel(), Y.ravel(), np.full(X.size, z)], 1).astype(np.float32)
    uv = np.stack([(X.ravel() - x0) / (x1 - x0), 1.0 - (Y.ravel() - y0) / (y1 - y0)], 1).astype(np.float32)
    tris = []
    for i in range(n):
        for j in range(n):
            a = i * (n + 1) + j
            b, c = a + 1, a + n + 1
            tris += [[a, c, b], [b, c, c + 1]]
    return v, np.array(tris, np.int32), uv


def checker(c0=(255, 0, 0), c1=(0, 0, 255)) -> np.ndarray:
    cb = ((np.indices((T, T)) // CELL).sum(0) % 2).astype(bool)
    tex = np.empty((T, T, 3), np.uint8)
    tex[~cb] = c0
    tex[cb] = c1
    return tex


def solid(colour) -> np.ndarray:
    return np.tile(np.array(colour, np.uint8), (T, T, 1))


@pytest.fixture(scope="module")
def photo(reference_dir) -> np.ndarray:
    from faceanon.io.images import load_image

    return load_image(reference_dir / "sis.jpg").rgb


BOX = (200.0, 350.0, 540.0, 750.0)


def _box_mask(shape, box, grow):
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    x0, y0, x1, y1 = box
    return (xx >= x0 - grow) & (xx <= x1 + grow) & (yy >= y0 - grow) & (yy <= y1 + grow)


def test_outside_the_dilated_box_is_exactly_the_base(photo):
    v, t, uv = grid(*BOX)
    base = photo.copy()
    out = composite_image(photo, [CompositeFace(v, t, uv, checker())])
    assert (photo == base).all()  # input untouched
    assert out.shape == photo.shape and out.dtype == np.uint8
    outside = ~_box_mask(photo.shape, BOX, 3)
    assert (out[outside] == photo[outside]).all()
    assert (out != photo).any(axis=2)[_box_mask(photo.shape, BOX, -20)].mean() > 0.95


def test_inside_is_the_texture_and_the_border_is_blended(photo):
    x0, y0, x1, y1 = BOX
    v, t, uv = grid(*BOX)
    tex = checker()
    feather = 8.0
    out = composite_image(photo, [CompositeFace(v, t, uv, tex)], blend_px=feather)
    # interior cell centres: the texture colour exactly (texture row 0 = v 1 = top of the quad)
    sx, sy = (x1 - x0) / (T - 1), (y1 - y0) / (T - 1)
    for ci in range(1, T // CELL - 1):
        for cj in range(1, T // CELL - 1):
            tx, ty = cj * CELL + CELL // 2, ci * CELL + CELL // 2
            px, py = int(round(x0 + tx * sx)), int(round(y0 + ty * sy))
            assert tuple(out[py, px]) == tuple(tex[ty, tx]), (px, py)
    # top-left cell is c0 (red): row 0 of the texture is at the top, not mirrored
    assert tuple(out[int(y0 + 40), int(x0 + 40)]) == (255, 0, 0)
    # the border band is a blend: strictly between the base and the render for most pixels
    row = int((y0 + y1) / 2) + 3
    band = slice(int(x0), int(x0 + feather))
    solid_tex = solid((0, 255, 0))
    out2 = composite_image(photo, [CompositeFace(v, t, uv, solid_tex)], blend_px=feather)
    g = out2[row, band, 1].astype(int)
    base_g = photo[row, band, 1].astype(int)
    assert (g > base_g).all() and (g[:-1] < 255).any()
    assert (np.diff(g - base_g) >= -1).all()  # weight ramps up inward
    # the ramp starts near 0 at the outermost covered pixel: no visible step at the face border
    assert g[0] - base_g[0] < 0.1 * (255 - base_g[0])
    # far inside: fully the texture
    assert (out2[int(y0 + 30):int(y1 - 30), int(x0 + 30):int(x1 - 30)] == (0, 255, 0)).all()


def test_feather_zero_is_a_hard_edge(photo):
    v, t, uv = grid(*BOX)
    out = composite_image(photo, [CompositeFace(v, t, uv, solid((0, 255, 0)))], blend_px=0)
    changed = (out != photo).any(axis=2)
    inside = _box_mask(photo.shape, BOX, 0)
    assert (out[changed] == (0, 255, 0)).all()
    assert not changed[~inside].any()


def test_default_feather_scales_with_the_face(photo):
    big_box = (100.0, 200.0, 640.0, 1000.0)
    small_box = (300.0, 500.0, 400.0, 620.0)

    def band_width(box):
        v, t, uv = grid(*box)
        out = composite_image(photo, [CompositeFace(v, t, uv, solid((0, 255, 0)))])
        row = int((box[1] + box[3]) / 2)
        full = np.nonzero((out[row] == (0, 255, 0)).all(axis=1))[0]
        return full[0] - box[0]

    assert band_width(big_box) > 1.5 * band_width(small_box) > 0


def test_nearer_faces_win_whatever_the_order(photo):
    va, ta, uva = grid(150, 300, 450, 650)
    vb, tb, uvb = grid(300, 450, 600, 800)
    red = CompositeFace(va, ta, uva, solid((255, 0, 0)), depth=1.0)
    blue = CompositeFace(vb, tb, uvb, solid((0, 0, 255)), depth=2.0)
    out1 = composite_image(photo, [red, blue], blend_px=0)
    out2 = composite_image(photo, [blue, red], blend_px=0)
    assert (out1 == out2).all()
    assert tuple(out1[550, 375]) == (0, 0, 255)  # overlap: the nearer (blue) face
    red.depth, blue.depth = 3.0, 2.0
    assert tuple(composite_image(photo, [red, blue], blend_px=0)[550, 375]) == (255, 0, 0)
    # default order: the larger (apparently nearer) face is drawn last
    small = CompositeFace(*grid(350, 500, 420, 580), solid((255, 0, 0)))
    large = CompositeFace(vb, tb, uvb, solid((0, 0, 255)))
    assert tuple(composite_image(photo, [large, small], blend_px=0)[540, 385]) == (0, 0, 255)


def test_removed_pixels_never_keep_the_base(photo):
    """With the ORIGINAL photo as base, removed pixels the face does not cover are re-inpainted and
    covered ones get the render at full weight (no feather mixing of the original there)."""
    h, w = photo.shape[:2]
    base = photo.copy()
    removed = np.zeros((h, w), bool)
    removed[330:380, 250:300] = True  # straddles the top border of the quad (y0 = 350)
    base[removed] = (0, 255, 0)
    v, t, uv = grid(*BOX)
    out = composite_image(base, [CompositeFace(v, t, uv, solid((200, 100, 50)))], blend_px=10, removed=removed)
    fill = out[removed].astype(int)
    assert ((fill[:, 1] - np.maximum(fill[:, 0], fill[:, 2])) > 40).sum() == 0
    assert (out[352:380, 250:300] == (200, 100, 50)).all()  # covered + removed: full weight
    outside = ~_box_mask(photo.shape, BOX, 3) & ~removed
    assert (out[outside] == base[outside]).all()


def test_faces_off_the_image_or_empty_list(photo):
    assert (composite_image(photo, []) == photo).all()
    v, t, uv = grid(-500, -500, -100, -100)
    assert (composite_image(photo, [CompositeFace(v, t, uv, checker())]) == photo).all()
    # partly outside: clipped, no error
    v, t, uv = grid(-100, -100, 200, 200)
    out = composite_image(photo, [CompositeFace(v, t, uv, solid((0, 255, 0)))])
    assert (out[50, 50] == (0, 255, 0)).all()


def test_backfacing_mesh_is_still_drawn(photo):
    """A mirrored winding must not make the face disappear (the original would survive)."""
    v, t, uv = grid(*BOX)
    out = composite_image(photo, [CompositeFace(v, t[:, ::-1].copy(), uv, solid((0, 255, 0)))])
    assert (out[550, 370] == (0, 255, 0)).all()


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("vertices", np.zeros((4, 2), np.float32), "vertices"),
        ("vertices", np.full((4, 3), np.nan, np.float32), "NaN"),
        ("triangles", np.array([[0, 1, 9]], np.int32), "triangles"),
        ("uv", np.zeros((3, 2), np.float32), "uv"),
        ("texture", np.zeros((8, 8), np.uint8), "texture"),
    ],
)
def test_bad_faces_are_named(field, value, match):
    base = np.zeros((20, 20, 3), np.uint8)
    kw = dict(vertices=np.array([[1, 1, 0], [10, 1, 0], [1, 10, 0], [10, 10, 0]], np.float32),
              triangles=np.array([[0, 2, 1]], np.int32), uv=np.zeros((4, 2), np.float32),
              texture=np.zeros((8, 8, 3), np.uint8))
    kw[field] = value
    with pytest.raises(ValueError, match=match):
        composite_image(base, [CompositeFace(**kw)])
    with pytest.raises(ValueError, match="base_rgb"):
        composite_image(np.zeros((20, 20), np.uint8), [])
    with pytest.raises(ValueError, match="removed"):
        composite_image(base, [CompositeFace(**kw)] if field != "vertices" else [], removed=np.zeros((5, 5), bool))


# ------------------------------------------------------------------------------------------------
# pose recovery from files
# ------------------------------------------------------------------------------------------------

def _face_like(n=500, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3)) * [60.0, 80.0, 30.0]
    return p


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_posed_vertices_match_the_anonymize_stage(alpha):
    from faceanon.stages.geometry import rotation_matrix, umeyama

    H = 1000
    X = _face_like() + [400.0, 500.0, 100.0]  # obj frame: x, H - y, z
    rng = np.random.default_rng(1)
    U = (_face_like(seed=2) * 0.3 + X * 0.7 - X.mean(0)) @ rotation_matrix(20, -10, 5).T * 1e3 + rng.normal(size=3)
    sim = umeyama(X, U)
    B = (1 - alpha) * sim.apply(X) + alpha * U  # canonical anonymize output
    expected = sim.inverse_apply(B)  # keep-pose / posed vertices in the obj frame
    exp_img = np.column_stack([expected[:, 0], H - expected[:, 1], expected[:, 2]])
    got = posed_image_vertices(B, X, H)
    assert np.abs(got - exp_img).max() < 1e-3
    # a keep-pose OBJ gives the same result (the fit is the identity)
    got_keep = posed_image_vertices(expected, X, H)
    assert np.abs(got_keep - exp_img).max() < 1e-3
    # and v2d that agrees with the obj frame changes nothing
    v2d = np.column_stack([X[:, 0], H - X[:, 1]])
    assert np.abs(posed_image_vertices(B, X, H, v2d) - exp_img).max() < 1e-3


def test_posed_vertices_from_a_world_frame_obj_use_v2d():
    """The seed's OBJ is in the model's world frame: x, y come from an affine fit to v2d_full."""
    H = 800
    W_ = _face_like(seed=3) / 100.0  # world units, y up, z toward the camera
    A = np.array([[120.0, 0.0], [0.0, -120.0], [0.0, 0.0]])  # world -> image: x right, y down
    v2d = W_ @ A + [350.0, 420.0]
    got = posed_image_vertices(W_, W_, H, v2d)  # alpha = 0: the face itself
    assert np.abs(got[:, :2] - v2d).max() < 1e-3
    # larger world z (toward the camera) must be larger (nearer) image z
    assert np.corrcoef(got[:, 2], W_[:, 2])[0, 1] > 0.999


# ------------------------------------------------------------------------------------------------
# writer
# ------------------------------------------------------------------------------------------------

def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _jpeg_with_gps(path, rgb, quality=90, orientation=None):
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x927C] = b"maker-notes"  # MakerNote
    if orientation:
        exif[0x0112] = orientation
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[1] = "N"
    gps[2] = (45.0, 30.0, 0.0)
    gps[3] = "E"
    gps[4] = (9.0, 10.0, 0.0)
    im.save(path, quality=quality, exif=exif, icc_profile=_srgb_icc())
    check = Image.open(path)
    assert check.getexif().get_ifd(IFD.GPSInfo) and check.info.get("icc_profile")


def test_jpeg_output_keeps_icc_and_drops_exif_gps(tmp_path, photo):
    from faceanon.io.images import estimate_jpeg_quality, load_image

    src = tmp_path / "in" / "p.jpg"
    src.parent.mkdir()
    _jpeg_with_gps(src, photo[:400, :300], quality=90)
    rec = load_image(src)
    assert rec.icc and rec.jpeg_quality == 90
    target = write_composite(tmp_path / "anonymized" / "p.jpg", rec.rgb, original=rec)
    assert target == tmp_path / "anonymized" / "p.jpg"
    out = Image.open(target)
    assert out.format == "JPEG"
    assert out.info.get("icc_profile") == rec.icc
    assert "exif" not in out.info and len(out.getexif()) == 0
    assert not out.getexif().get_ifd(IFD.GPSInfo)
    assert b"maker-notes" not in target.read_bytes() and b"TestCam" not in target.read_bytes()
    assert estimate_jpeg_quality(out.quantization) == 95
    # a higher input quality is kept
    _jpeg_with_gps(src, photo[:400, :300], quality=98)
    rec = load_image(src)
    write_composite(tmp_path / "anonymized" / "p.jpg", rec.rgb, original=rec)
    assert estimate_jpeg_quality(Image.open(target).quantization) == 98


def test_orientation_is_baked_and_not_written(tmp_path, photo):
    from faceanon.io.images import load_image

    src = tmp_path / "rot.jpg"
    _jpeg_with_gps(src, photo[:300, :200], orientation=6)  # stored rotated: displayed 300 wide
    rec = load_image(src)
    assert rec.rgb.shape[:2] == (200, 300)
    target = write_composite(tmp_path / "out" / "rot", rec.rgb, original=rec)  # extension appended
    assert target.name == "rot.jpg"
    out = Image.open(target)
    assert out.size == (300, 200) and 0x0112 not in out.getexif()


@pytest.mark.parametrize(
    "name,fmt,ext",
    [("a.png", "PNG", ".png"), ("a.webp", "WEBP", ".webp"), ("a.TIF", "TIFF", ".tif"),
     ("a.bmp", "BMP", ".bmp"), ("a.JPEG", "JPEG", ".jpeg"), ("a.gif", "GIF", ".png"), ("noext", "PNG", ".png")],
)
def test_output_format_follows_the_input(tmp_path, name, fmt, ext):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    rec = ImageRecord(path=tmp_path / name, rgb=rgb, icc=None, fmt=fmt)
    assert composite_extension(rec) == ext
    target = write_composite(tmp_path / "anonymized" / "a", rgb, original=rec)
    assert target.name == "a" + ext
    back = np.array(Image.open(target).convert("RGB"))
    if ext in (".png", ".tif", ".bmp"):
        assert (back == rgb).all()
    assert Image.open(target).format == {".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF",
                                         ".bmp": "BMP"}[ext]


def test_png_keeps_icc(tmp_path):
    rgb = np.zeros((20, 20, 3), np.uint8)
    icc = _srgb_icc()
    rec = ImageRecord(path=tmp_path / "x.png", rgb=rgb, icc=icc, fmt="PNG")
    target = write_composite(tmp_path / "x.png", rgb, original=rec)
    assert Image.open(io.BytesIO(target.read_bytes())).info.get("icc_profile") == icc
