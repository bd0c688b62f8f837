"""``faceanon reconstruct IN OUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, collect_inputs, finish, run_batch


@app.command(
    "reconstruct",
    epilog=(
        "Examples:\n\n"
        "  faceanon reconstruct photos/ out/\n\n"
        "  faceanon reconstruct portrait.jpg out/ --vis --tex-size 2048\n\n"
        "  faceanon reconstruct archive/ out/ --recursive --min-face-size 80"
    ),
)
def reconstruct(
    inp: Path = typer.Argument(..., metavar="IN", help="An image or a folder of images (png/jpg/jpeg/bmp/tif/webp)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder; one subfolder per image."),
    model: opt.Model = opt.MODEL,
    tex_size: int = opt.tex_size(1024, "Size of the extracted UV texture"),
    recursive: bool = opt.RECURSIVE,
    vis: bool = typer.Option(False, "--vis", help="Also write <stem>_overlay.png (labels, box, landmarks)."),
    min_face_size: int = opt.MIN_FACE,
    max_faces: int = opt.MAX_FACES,
    threshold: Optional[float] = opt.THRESHOLD,
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Detect every face, fit a 3D face to each, write mesh + texture + projections.

    Writes OUT/<stem>/<stem>_extractTex.obj/.mtl/.png and <stem>_projections.npz for the main face
    (highest score) and <stem>_face1_..., <stem>_face2_... for the others.
    """
    from faceanon.cli.formats_cli import print_run_notes
    from faceanon.io.images import load_image
    from faceanon.stages.reconstruct import reconstruct_image, write_reconstruction

    check_out_not_in(inp, out)
    items = collect_inputs(inp, recursive)
    store = opt.store_from(mirror, offline)
    detector, backend = opt.load_models(store, model, min_face_size=min_face_size, max_faces=max_faces,
                                        threshold=threshold)

    def process(path: Path, stem: str) -> dict:
        image = load_image(path, max_pixels=max_pixels)
        result = reconstruct_image(image, stem, detector, backend, tex_size=tex_size,
                                   max_faces=max_faces or None)
        write_reconstruction(result, out / stem, vis=vis)
        return {"faces": len(result.faces)}

    outcomes = run_batch(items, process, label="reconstruct")
    print_run_notes([], inp, recursive)  # files of IN that are not images (faceanon.cli.formats_cli)
    raise typer.Exit(finish(outcomes, "reconstruct"))
