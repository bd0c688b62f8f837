"""``faceanon composite RECON ANON OUT --seg SEG --images DIR``: paint the anonymized faces back.

Inputs per image (file names: :mod:`faceanon.io.layout`):

* RECON (``faceanon reconstruct`` output): each face's projections record (which faces exist,
  ``v2d_full``, image size) and reconstruct mesh (the fit the anonymization started from);
* ANON (``faceanon anonymize`` output): each face's OBJ and its texture (``map_Kd`` of the MTL, else
  the texture file named by the layout) - with or without ``--keep-pose``: the original pose is
  recovered from the reconstruct mesh either way (see
  :func:`faceanon.stages.composite.posed_image_vertices`);
* SEG (``faceanon segment`` output): the segmented photo - its RGB is the base image (eyes and
  mouth already inpainted), its alpha-0 pixels must not survive;
* the original photo (``--images DIR``): size check, ICC profile, output format and JPEG quality.

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
from faceanon.errors import FaceanonError, ImageError, UsageError
from faceanon.io.layout import PATTERNS


def load_segmented(seg: Path, stem: str) -> tuple[Path, np.ndarray]:
    """(path, (H, W, 4) uint8 RGBA) of the segmented photo of ``stem`` (alpha kept, unlike ``load_image``)."""
    from faceanon.io.images import load_rgba
    from faceanon.io.layout import segmented_file

    path = segmented_file(seg, stem)
    if not path.is_file():
        raise ImageError(f"segmented image not found: {path}",
                         "run `faceanon segment` first and pass its output folder as --seg")
    return path, load_rgba(path)


def load_anonymized_face(anon: Path, stem: str, recon, height: int, v2d: np.ndarray):
    """Build a :class:`CompositeFace` for the reconstructed face ``recon`` (a
    :class:`faceanon.io.layout.ReconFace`) of ``stem`` from the files."""
    from faceanon.io.facefiles import read_recon_mesh, require_file
    from faceanon.io.images import load_image
    from faceanon.io.layout import anon_files
    from faceanon.io.mesh import read_obj
    from faceanon.stages.composite import CompositeFace, posed_image_vertices

    files = anon_files(anon, stem, recon.name)
    require_file(files.obj, "anonymized mesh", "run `faceanon anonymize` first and pass its output folder as ANON")
    verts, uv, tris, tex_path = read_obj(files.obj)
    if uv is None:
        raise FaceanonError(f"{files.obj}: the mesh has no UV coordinates (vt)")
    tex_path = require_file(tex_path or files.texture, f"texture of {files.obj.name}")
    texture = load_image(tex_path, max_pixels=None).rgb
    rfile = require_file(recon.files.obj, "reconstructed mesh",
                         "the composite needs the reconstruct outputs the anonymization started from")
    v2d = v2d if v2d.shape == (len(verts), 2) else None
    rmesh = read_recon_mesh(rfile, height, v2d)
    if rmesh.vertices.shape != verts.shape or rmesh.triangles.shape != tris.shape:
        raise FaceanonError(f"{files.obj} ({len(verts)} vertices) does not match {rfile} ({len(rmesh.vertices)} vertices)",
                            "ANON and RECON must come from the same reconstruction")
    posed = posed_image_vertices(verts, rmesh.vertices, height, v2d)
    # faceanon's reconstruct mesh is photo-aligned (x, H - y, z): the photo is then warped in place;
    # the seed's (world frame) mesh is pasted over the photo as before
    return CompositeFace(vertices=posed, triangles=tris, uv=uv, texture=texture, source_vertices=rmesh.image_vertices)


@app.command(
    "composite",
    cls=opt.renamed(**{"--feather-px": "--blend-px"}),
    epilog=(
        "Examples:\n\n"
        "  faceanon composite face3d/ anon/ final/ --seg seg/ --images photos/\n\n"
        "  faceanon composite face3d/ anon/ final/ --seg seg/ -i photos/ --blend-px 6"
    ),
)
def composite(
    recon: Path = typer.Argument(..., metavar="RECON", help="Output folder of `faceanon reconstruct`."),
    anon: Path = typer.Argument(..., metavar="ANON", help=f"Output folder of `faceanon anonymize` ({PATTERNS['anon']})."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder for the anonymized photos <stem>.<ext>."),
    seg: Path = opt.SEG,
    images: Path = opt.PHOTOS,
    blend_px: Optional[float] = opt.BLEND_PX,
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
    from faceanon.io.facefiles import check_labels_match
    from faceanon.io.images import load_image
    from faceanon.io.layout import anonymized_file, discover_recon, original_photo
    from faceanon.io.records import load_projections
    from faceanon.options import CompositeOptions
    from faceanon.stages.composite import FaceFeatures, composite_extension, composite_image, write_composite
    from faceanon.stages.features import feature_layers, skin_chroma
    from faceanon.stages.segment import removed_parts
    from faceanon.types import BROW_LABELS, LIP_LABELS

    o = CompositeOptions(blend_px=blend_px).check()
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
        mean_v, _tri, _uv = mean_face(str(rec.get("backend") or opt.o.MODEL.default))
        layers = feature_layers(mean_v, face.triangles, face.uv, ids, face.texture.shape[0], vlab)
        brow_rgb = None
        if gone & set(BROW_LABELS):  # the colour `faceanon anonymize` drew the brows in, read back
            y0, y1, x0, x1 = layers.window
            drawn = layers.brows > 0.7
            if drawn.any():
                brow_rgb = face.texture[y0:y1, x0:x1][drawn].reshape(-1, 3).mean(axis=0)
        return FaceFeatures(layers, keep_mouth=not gone & set(LIP_LABELS), brow_rgb=brow_rgb,
                            chroma=skin_chroma(photo, labels))

    def process(path: Path, stem: str) -> None:
        g = by_stem[stem]
        records = [load_projections(f.npz) for f in g.faces]
        src = original_photo(images, stem)
        img = load_image(src, max_pixels=max_pixels)
        h = img.height
        for f, rec in zip(g.faces, records):
            check_labels_match(img.rgb.shape, rec["seg_visible_labels_full"], src, f.npz)
        seg_path, rgba = load_segmented(seg, stem)
        if rgba.shape[:2] != img.rgb.shape[:2]:
            raise ImageError(f"{seg_path}: {rgba.shape[1]}×{rgba.shape[0]} px but the photo {src.name} is "
                             f"{img.width}×{img.height} px", "segment and composite the same photos")
        base = np.ascontiguousarray(rgba[:, :, :3])
        faces = []
        for f, rec in zip(g.faces, records):
            face = load_anonymized_face(anon, stem, f, h, np.asarray(rec["v2d_full"]))
            face.features = features_of(face, rec, rgba[:, :, 3], base)
            faces.append(face)
        # the removed pixels must not survive a pasted face (a face warped in place never shows them)
        result = composite_image(base, faces, blend_px=o.blend_px, removed=rgba[:, :, 3] == 0)
        write_composite(anonymized_file(out, stem, composite_extension(img)), result, original=img)

    outcomes = run_batch([(g.item, g.stem) for g in groups], process, label="composite")
    raise typer.Exit(finish(outcomes, "composite"))
