"""``faceanon reconstruct IN OUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, collect_inputs, finish, run_batch
from faceanon.io.layout import PATTERNS


@app.command(
    "reconstruct",
    cls=opt.renamed(**{"--tex-size": "--recon-tex-size"}),
    epilog=(
        "Examples:\n\n"
        "  faceanon reconstruct photos/ out/\n\n"
        "  faceanon reconstruct portrait.jpg out/ --vis --recon-tex-size 2048\n\n"
        "  faceanon reconstruct archive/ out/ --recursive --min-face-size 80"
    ),
)
def reconstruct(
    inp: Path = typer.Argument(..., metavar="IN", help="An image or a folder of images (png/jpg/jpeg/bmp/tif/webp)."),
    out: Path = typer.Argument(..., metavar="OUT", help=f"Output folder: {PATTERNS['recon']} per face."),
    model: opt.Model = opt.MODEL,
    recon_tex_size: int = opt.RECON_TEX_SIZE,
    recursive: bool = opt.RECURSIVE,
    vis: bool = opt.VIS,
    min_face_size: int = opt.MIN_FACE,
    max_faces: int = opt.MAX_FACES,
    threshold: Optional[float] = opt.THRESHOLD,
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Detect every face, fit a 3D face to each, write mesh + texture + projections.

    Writes one folder per image into OUT: per face its mesh (OBJ/MTL), the texture extracted from
    the photo (PNG) and its projections record (npz), for the main face (highest score), then the
    others (<name> = <stem>_face1, <stem>_face2, ...); with --vis an overlay of the labels, boxes
    and landmarks.
    """
    from faceanon.cli.formats_cli import print_run_notes
    from faceanon.io.images import load_image
    from faceanon.io.layout import recon_folder
    from faceanon.options import ReconstructOptions
    from faceanon.runner.models import load_models
    from faceanon.stages.reconstruct import reconstruct_image, write_reconstruction

    o = ReconstructOptions(model=model.value, recon_tex_size=recon_tex_size, vis=vis, min_face_size=min_face_size,
                           max_faces=max_faces, threshold=threshold, max_pixels=max_pixels).check()
    check_out_not_in(inp, out)
    items = collect_inputs(inp, recursive)
    models = load_models(opt.store_from(mirror, offline), o)

    def process(path: Path, stem: str) -> None:
        image = load_image(path, max_pixels=o.max_pixels)
        result = reconstruct_image(image, stem, models.detector, models.backend, tex_size=o.recon_tex_size,
                                   max_faces=o.max_faces or None)
        write_reconstruction(result, recon_folder(out, stem), vis=o.vis)

    outcomes = run_batch(items, process, label="reconstruct")
    print_run_notes([], inp, recursive)  # files of IN that are not images (faceanon.cli.formats_cli)
    raise typer.Exit(finish(outcomes, "reconstruct"))
