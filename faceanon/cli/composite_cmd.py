"""``faceanon composite RECON ANON OUT --seg SEG [--images DIR]``: paint the anonymized faces back.

Inputs per image ``<stem>`` (face names: ``<stem>`` for the main face, ``<stem>_face<k>`` others):

* RECON (``faceanon reconstruct`` output): ``RECON/<stem>/<name>_projections.npz`` (which faces
  exist, ``v2d_full``, image size) and ``RECON/<stem>/<name>_extractTex.obj`` (the fit the
  anonymization started from);
* ANON (``faceanon anonymize`` output): ``ANON/<name>/<name>.obj`` and its texture (``map_Kd`` of the
  MTL, else ``<name>_texture.png``) - with or without ``--keep-pose``: the original pose is
  recovered from the reconstruct OBJ either way (see
  :func:`faceanon.stages.composite.posed_image_vertices`);
* SEG (``faceanon segment`` output): ``SEG/<stem>_masked.png`` - its RGB is the base image (eyes
  and mouth already inpainted), its alpha-0 pixels must not survive;
* the original photo (``--images DIR``, else the path recorded in the npz): size check, ICC
  profile, output format and JPEG quality.

Writes ``OUT/<stem>.<input extension>`` (webp/tif/bmp/png/jpg kept, anything else -> png), with no
EXIF/GPS/maker notes/thumbnail, the ICC profile kept, JPEG quality max(95, the input's).
``faceanon run`` does not use this module: it calls the stage functions in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.cli.segment_cmd import (
    check_same_size,
    discover_recon,
    find_original,
    item_path,
    load_face_record,
)
from faceanon.errors import FaceanonError, ImageError, UsageError


def load_masked_png(path: Path) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a ``<stem>_masked.png`` (alpha kept, unlike ``load_image``)."""
    from faceanon.io.images import load_rgba

    if not path.is_file():
        raise ImageError(f"segmented image not found: {path}",
                         "run `faceanon segment` first and pass its output folder as --seg")
    return load_rgba(path)


def load_anonymized_face(anon: Path, stem: str, name: str, recon_dir: Path, height: int,
                         v2d: np.ndarray):
    """Build a :class:`CompositeFace` for face ``name`` of ``stem`` from the files."""
    from faceanon.io.images import load_image
    from faceanon.io.mesh import read_obj
    from faceanon.stages.composite import CompositeFace, posed_image_vertices

    base = Path(name).name
    face_dir = anon / Path(stem).parent / base
    obj = face_dir / f"{base}.obj"
    if not obj.is_file():
        raise FaceanonError(f"anonymized mesh not found: {obj}",
                            "run `faceanon anonymize` first and pass its output folder as ANON")
    verts, uv, tris, tex_path = read_obj(obj)
    if uv is None:
        raise FaceanonError(f"{obj}: the mesh has no UV coordinates (vt)")
    if tex_path is None:
        tex_path = face_dir / f"{base}_texture.png"
    if not Path(tex_path).is_file():
        raise FaceanonError(f"texture of {obj.name} not found: {tex_path}")
    texture = load_image(tex_path, max_pixels=None).rgb
    recon_obj = recon_dir / f"{base}_extractTex.obj"
    if not recon_obj.is_file():
        raise FaceanonError(f"reconstructed mesh not found: {recon_obj}",
                            "the composite needs the reconstruct outputs the anonymization started from")
    rverts, _, rtris, _ = read_obj(recon_obj)
    if rverts.shape != verts.shape or rtris.shape != tris.shape:
        raise FaceanonError(f"{obj} ({len(verts)} vertices) does not match {recon_obj} ({len(rverts)} vertices)",
                            "ANON and RECON must come from the same reconstruction")
    v2d = v2d if v2d.shape == (len(verts), 2) else None
    posed = posed_image_vertices(verts, rverts, height, v2d)
    # faceanon's reconstruct mesh is photo-aligned (x, H - y, z): the photo is then warped in place;
    # the seed's (world frame) mesh is pasted over the photo as before
    source = np.column_stack([rverts[:, 0], height - rverts[:, 1], rverts[:, 2]]).astype(np.float32)
    aligned = v2d is not None and float(np.median(np.linalg.norm(source[:, :2] - v2d, axis=1))) <= 1.0
    return CompositeFace(vertices=posed, triangles=tris, uv=uv, texture=texture,
                         source_vertices=source if aligned else None)


@app.command(
    "composite",
    epilog=(
        "Examples:\n\n"
        "  faceanon composite face3d/ anon/ final/ --seg seg/ --images photos/\n\n"
        "  faceanon composite face3d/ anon/ final/ --seg seg/ -i photos/ --feather-px 6"
    ),
)
def composite(
    recon: Path = typer.Argument(..., metavar="RECON", help="Output folder of `faceanon reconstruct`."),
    anon: Path = typer.Argument(..., metavar="ANON", help="Output folder of `faceanon anonymize` (<name>/<name>.obj + texture)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder for the anonymized photos <stem>.<ext>."),
    seg: Path = typer.Option(..., "--seg", "-s", help="Output folder of `faceanon segment` (<stem>_masked.png)."),
    images: Path = opt.PHOTOS,
    feather_px: Optional[float] = typer.Option(None, "--feather-px", min=0.0, max=500.0, help="Blend width at the face border in px (default: 2% of the face size); only for meshes pasted over the photo (the seed's reconstructions)."),
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Put every anonymized face back into its photo at the original pose.

    Writes OUT/<stem>.<ext> (same format as the input; EXIF/GPS dropped, ICC kept). With faceanon's
    reconstructions the segmented photo is WARPED in place so that each face takes the anonymized
    shape (silhouette included) with its own skin pixels, and identity-free eyes, lips and brows
    are drawn on it for the parts the segmented image removed (from the model's mean face, like
    `faceanon anonymize`: the model files are needed); pixels farther than the warp's fade radius
    from every face are the segmented image's, bit for bit. The seed's reconstructions (world-frame
    meshes) are rendered and pasted over the photo instead.
    """
    from faceanon.io.images import load_image
    from faceanon.stages.composite import FaceFeatures, composite_extension, composite_image, write_composite
    from faceanon.stages.features import feature_layers, skin_chroma
    from faceanon.stages.segment import removed_parts
    from faceanon.types import BROW_LABELS, LIP_LABELS

    groups = discover_recon(recon)
    if not anon.is_dir():
        raise UsageError(f"ANON folder not found: {anon}", "pass the output folder of `faceanon anonymize`")
    if not seg.is_dir():
        raise UsageError(f"--seg folder not found: {seg}", "pass the output folder of `faceanon segment`")
    if not images.is_dir():
        raise UsageError(f"--images folder not found: {images}")
    check_out_not_in(images, out)  # OUT/<stem>.jpg must never overwrite a photo
    by_stem = {g.stem: g for g in groups}
    store = None
    means: dict = {}

    def mean_face(backend: str):
        nonlocal store
        if backend not in means:
            from faceanon.models.loader import get_mean_face

            store = store or opt.store_from(mirror, offline)
            means[backend] = get_mean_face(store, backend)
        return means[backend]

    def features_of(face, rec: dict, alpha: np.ndarray, photo: np.ndarray):
        """The identity-free features for the parts the segmented image removed (None: nothing to draw)."""
        vlab, ids = rec.get("vertex_labels"), rec.get("landmark_ids")
        if face.source_vertices is None or vlab is None or ids is None:
            return None
        labels = rec["seg_visible_labels_full"]
        gone = set(removed_parts(alpha, labels))
        mean_v, _tri, _uv = mean_face(str(rec.get("backend") or "lite"))
        layers = feature_layers(mean_v, face.triangles, face.uv, ids, face.texture.shape[0], vlab)
        brow_rgb = None
        if gone & set(BROW_LABELS):  # the colour `faceanon anonymize` drew the brows in, read back
            y0, y1, x0, x1 = layers.window
            drawn = layers.brows > 0.7
            if drawn.any():
                brow_rgb = face.texture[y0:y1, x0:x1][drawn].reshape(-1, 3).mean(axis=0)
        return FaceFeatures(layers, keep_mouth=not gone & set(LIP_LABELS), brow_rgb=brow_rgb,
                            chroma=skin_chroma(photo, labels))

    def process(path: Path, stem: str) -> dict:
        g = by_stem[stem]
        records = [load_face_record(f.npz) for f in g.faces]
        src = find_original(stem, images)
        img = load_image(src, max_pixels=max_pixels)
        h = img.height
        for f, rec in zip(g.faces, records):
            check_same_size(img.rgb.shape, rec["seg_visible_labels_full"], src, f.npz)
        seg_path = seg / f"{stem}_masked.png"
        rgba = load_masked_png(seg_path)
        if rgba.shape[:2] != img.rgb.shape[:2]:
            raise ImageError(f"{seg_path}: {rgba.shape[1]}×{rgba.shape[0]} px but the photo {src.name} is "
                             f"{img.width}×{img.height} px", "segment and composite the same photos")
        base = np.ascontiguousarray(rgba[:, :, :3])
        removed = rgba[:, :, 3] == 0
        faces = []
        for f, rec in zip(g.faces, records):
            face = load_anonymized_face(anon, stem, f.name, g.folder, h, np.asarray(rec["v2d_full"]))
            if face.source_vertices is None:  # pasted: the removed pixels it does not cover are re-filled
                face.removed = removed
            face.features = features_of(face, rec, rgba[:, :, 3], base)
            faces.append(face)
        result = composite_image(base, faces, feather_px=feather_px)
        target = write_composite(out / f"{stem}{composite_extension(img)}", result, original=img)
        return {"faces": len(faces), "output": str(target)}

    items = [(item_path(g), g.stem) for g in groups]
    outcomes = run_batch(items, process, label="composite")
    raise typer.Exit(finish(outcomes, "composite"))
