"""``faceanon segment RECON OUT``: remove eyes (and lips) of every face, write the segmented photos.

RECON is found by :func:`faceanon.io.layout.discover_recon` (faceanon's reconstruct output, the
seed's, a flat folder of projections files or one such file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.errors import UsageError
from faceanon.io.layout import PATTERNS


def face_inter_ocular(rec: dict) -> float:
    """IOD of a face record: landmarks68 when present (faceanon npz), else estimated from the labels."""
    from faceanon.stages.segment import estimate_inter_ocular

    lm = rec.get("landmarks68")
    return estimate_inter_ocular(rec["seg_visible_labels_full"], None if lm is None else np.asarray(lm))


def face_mesh(files, rec: dict, height: int):
    """The 3D face of a reconstruct record (:class:`faceanon.stages.segment.FaceMesh`) from its
    reconstruct OBJ, or None (seed files: no vertex labels, or a mesh that is not in the
    photo-aligned frame) - the removal then falls back to the label map."""
    from faceanon.io.facefiles import read_recon_mesh
    from faceanon.stages.segment import FaceMesh

    labels = rec.get("vertex_labels")
    if labels is None or not files.obj.is_file():
        return None
    mesh = read_recon_mesh(files.obj, height, rec["v2d_full"])
    if mesh.image_vertices is None or len(mesh.vertices) != len(labels):
        return None
    return FaceMesh(mesh.image_vertices, mesh.triangles, labels)


@app.command(
    "segment",
    epilog=(
        "Examples:\n\n"
        "  faceanon segment out/face3d out/seg --images photos/\n\n"
        "  faceanon segment face3d/ seg/ -i photos/ --keep-mouth --margin 0.25\n\n"
        "  faceanon segment face3d/ seg/ -i photos/ --privacy low        (keep the eyebrows)\n\n"
        "  faceanon segment face3d/ seg/ -i photos/ --fill inpaint       (faceanon 0.1's removal)\n\n"
        "  faceanon segment face3d/ seg/ --images photos/ --feather-px 0"
    ),
)
def segment(
    recon: Path = typer.Argument(..., metavar="RECON", help=f"Output folder of `faceanon reconstruct` ({PATTERNS['recon']})."),
    out: Path = typer.Argument(..., metavar="OUT", help=f"Output folder for {PATTERNS['segmented']} (RGBA)."),
    images: Path = opt.PHOTOS,
    keep_mouth: bool = opt.KEEP_MOUTH,
    fill: opt.Fill = opt.FILL,
    privacy: opt.Privacy = opt.PRIVACY,
    margin: Optional[float] = opt.MARGIN,
    keep_brows: bool = opt.KEEP_BROWS,
    feather_px: float = opt.FEATHER_PX,
    max_pixels: int = opt.MAX_PIXELS,
) -> None:
    """Remove the eyes, lips and (at --privacy standard/high) eyebrows of every face: alpha 0 there, RGB filled.

    Writes one RGBA PNG per image into OUT: alpha 0 on the removed pixels and a smooth ramp to 255
    over --feather-px outside them; RGB is filled on the removed pixels and the original photo
    everywhere else. With --fill features (default) the removal is sized and placed from the 3D face
    (the reconstruct mesh next to each projections file) and the fill carries skin grain; the eyes,
    lips and brows are redrawn later by `faceanon anonymize`. --fill inpaint is the label-map
    removal and plain inpainting of faceanon 0.1. A failing image gets one error line; the others
    complete (exit 1 if any failed).
    """
    from faceanon.io.facefiles import check_labels_match
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.io.layout import discover_recon, segmented_file, original_photo
    from faceanon.io.records import load_projections
    from faceanon.options import SegmentOptions
    from faceanon.stages.segment import SegmentFace, segment_image

    o = SegmentOptions(privacy=privacy.value, margin=margin, keep_brows=keep_brows, keep_mouth=keep_mouth,
                       fill=fill.value, feather_px=feather_px).check()
    groups = discover_recon(recon)
    if not images.is_dir():
        raise UsageError(f"--images folder not found: {images}")
    check_out_not_in(images, out)
    by_stem = {g.stem: g for g in groups}

    def process(path: Path, stem: str) -> None:
        g = by_stem[stem]
        records = [load_projections(f.npz) for f in g.faces]
        src = original_photo(images, stem)
        img = load_image(src, max_pixels=max_pixels)
        faces = []
        for f, rec in zip(g.faces, records):
            labels = rec["seg_visible_labels_full"]
            check_labels_match(img.rgb.shape, labels, src, f.npz)
            if o.features:
                faces.append(SegmentFace(labels=labels, inter_ocular=face_inter_ocular(rec), box=rec.get("box"),
                                         mesh=face_mesh(f.files, rec, img.height)))
            else:
                faces.append(SegmentFace(labels=labels, inter_ocular=face_inter_ocular(rec)))
        rgba, _removed = segment_image(img.rgb, faces, keep_mouth=o.keep_mouth, margin=o.removal_margin,
                                       feather_px=o.feather_px, brows=o.remove_brows, grain=o.features)
        save_image_atomic(segmented_file(out, stem), rgba)

    outcomes = run_batch([(g.item, g.stem) for g in groups], process, label="segment")
    raise typer.Exit(finish(outcomes, "segment"))
