"""``faceanon render ANON OUT``: a frontal PNG of every anonymized mesh."""

from __future__ import annotations

from pathlib import Path

import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.errors import FaceanonError
from faceanon.io.layout import PATTERNS


@app.command(
    "render",
    cls=opt.renamed(**{"--margin": "--frame-fill"}),
    epilog=(
        "Examples:\n\n"
        "  faceanon render out/anon out/render\n\n"
        "  faceanon render out/anon out/render --img-size 2048 --background white\n\n"
        "  faceanon render out/anon out/render --renderer pytorch3d   (needs PyTorch3D)"
    ),
)
def render(
    anon: Path = typer.Argument(..., metavar="ANON", help=f"Output folder of `faceanon anonymize` ({PATTERNS['anon']})."),
    out: Path = typer.Argument(..., metavar="OUT", help=f"Output folder for {PATTERNS['render']}."),
    img_size: int = opt.IMG_SIZE,
    frame_fill: float = opt.FRAME_FILL,
    background: opt.Background = opt.BACKGROUND,
    renderer: opt.Renderer = opt.RENDERER,
    supersample: int = opt.SUPERSAMPLE,
) -> None:
    """Render every anonymized mesh from a camera in front of it (orthographic, texture colours).

    The subject's right eye appears on the image left, as in a photo; the face is centred on its
    bounding box. A --keep-pose mesh is rendered as stored, i.e. from the photo's viewpoint.
    Writes one PNG per face into OUT (sub-folders kept). A failing mesh gets one error line; the
    others complete (exit 1 if any failed).
    """
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.io.layout import ambiguous_meshes, find_meshes, mesh_file, render_file
    from faceanon.io.mesh import read_obj
    from faceanon.options import RenderOptions
    from faceanon.stages.render import check_pytorch3d, render_front

    o = RenderOptions(img_size=img_size, frame_fill=frame_fill, background=background.value,
                      supersample=supersample, renderer=renderer.value).check()
    if o.renderer == "pytorch3d":
        check_pytorch3d()
    check_out_not_in(anon, out)
    items = find_meshes(anon)

    def process(path: Path, name: str) -> None:
        if path.is_dir():
            raise FaceanonError(f"{path}: no {mesh_file(path)}; ambiguous: {ambiguous_meshes(path)}",
                                f"name the mesh {mesh_file(path)} (faceanon anonymize does)")
        vertices, uv, triangles, tex_path = read_obj(path)
        if uv is None:
            raise FaceanonError(f"{path}: the mesh has no texture coordinates (vt)")
        if tex_path is None:
            raise FaceanonError(f"{path}: no texture found (map_Kd in its .mtl, next to the .obj)")
        texture = load_image(tex_path, max_pixels=None).rgb
        img = render_front(vertices, triangles, uv, texture, img_size=o.img_size, frame_fill=o.frame_fill,
                           background=o.background, supersample=o.supersample, renderer=o.renderer)
        save_image_atomic(render_file(out, name, Path(name).name), img)

    outcomes = run_batch(items, process, label="render")
    raise SystemExit(finish(outcomes, "render"))
