"""``faceanon render ANON OUT``: a frontal PNG of every anonymized mesh."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.errors import FaceanonError, UsageError


class Background(str, Enum):
    transparent = "transparent"
    white = "white"


class Renderer(str, Enum):
    builtin = "builtin"
    pytorch3d = "pytorch3d"


def find_meshes(anon: Path) -> list[tuple[Path, str]]:
    """Every ``<name>/<name>.obj`` below ``anon`` (recursively, hidden folders skipped), sorted.

    Returns (obj path, output name) pairs; the output name keeps sub-folders (``sub/a``) so the
    renders mirror the tree. A folder holding ``.obj`` files but none named after it is ambiguous
    (the seed picked the first one) and is reported as one failing item.
    """
    if not anon.is_dir():
        raise UsageError(f"ANON folder not found: {anon}", "pass the output folder of `faceanon anonymize`")
    found: list[tuple[Path, str]] = []
    for obj in sorted(anon.rglob("*.obj")):
        rel = obj.relative_to(anon)
        if any(part.startswith(".") for part in rel.parts) or not obj.is_file():
            continue
        if obj.stem == obj.parent.name and obj.parent != anon:
            found.append((obj, rel.parent.as_posix()))
    named = {p.parent for p, _ in found}
    for folder in sorted({o.parent for o in anon.rglob("*.obj")} - named - {anon}):
        rel = folder.relative_to(anon)
        if any(part.startswith(".") for part in rel.parts):
            continue
        found.append((folder, rel.as_posix()))  # reported as ambiguous by the command
    if not found:
        raise UsageError(f"no <name>/<name>.obj in {anon}", "pass the output folder of `faceanon anonymize`")
    return sorted(found, key=lambda x: (x[1].casefold(), x[1]))


@app.command(
    "render",
    epilog=(
        "Examples:\n\n"
        "  faceanon render out/anon out/render\n\n"
        "  faceanon render out/anon out/render --img-size 2048 --background white\n\n"
        "  faceanon render out/anon out/render --renderer pytorch3d   (needs PyTorch3D)"
    ),
)
def render(
    anon: Path = typer.Argument(..., metavar="ANON", help="Output folder of `faceanon anonymize` (<name>/<name>.obj)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder for <name>_front.png."),
    img_size: int = typer.Option(1024, "--img-size", min=16, max=8192, help="Side of the square render (px)."),
    margin: float = typer.Option(0.95, "--margin", min=0.05, max=1.0, help="Fraction of the frame filled by the larger extent of the face."),
    background: Background = typer.Option(Background.transparent, "--background", help="transparent (RGBA, anti-aliased alpha) or white (RGB)."),
    renderer: Renderer = typer.Option(
        Renderer.builtin, "--renderer",
        help="builtin (default, well under 1 s per mesh) or pytorch3d (needs PyTorch3D; same camera and image). "
             "PyTorch3D on a CPU is slow: ~54 s per mesh at --img-size 256, ~14 min at the default 1024; "
             "on a CUDA GPU it uses its binned rasterizer."),
    supersample: int = typer.Option(2, "--supersample", min=1, max=4, help="Anti-aliasing: render at N x the size, then average."),
) -> None:
    """Render every anonymized mesh from a camera in front of it (orthographic, texture colours).

    The subject's right eye appears on the image left, as in a photo; the face is centred on its
    bounding box. A --keep-pose mesh is rendered as stored, i.e. from the photo's viewpoint.
    Writes OUT/<name>_front.png. A failing mesh gets one error line; the others complete (exit 1 if
    any failed).
    """
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.io.mesh import read_obj
    from faceanon.stages.render import MAX_INTERNAL_SIZE, check_pytorch3d, render_front

    if img_size * supersample > MAX_INTERNAL_SIZE:
        raise UsageError(f"--img-size x --supersample = {img_size * supersample} px is above {MAX_INTERNAL_SIZE}",
                         "lower --img-size or --supersample")
    if renderer is Renderer.pytorch3d:
        check_pytorch3d()
    check_out_not_in(anon, out)
    items = find_meshes(anon)

    def process(path: Path, name: str) -> dict:
        if path.is_dir():
            objs = ", ".join(sorted(p.name for p in path.glob("*.obj")))
            raise FaceanonError(f"{path}: no {path.name}.obj; ambiguous: {objs}",
                                f"name the mesh {path.name}.obj (faceanon anonymize does)")
        vertices, uv, triangles, tex_path = read_obj(path)
        if uv is None:
            raise FaceanonError(f"{path}: the mesh has no texture coordinates (vt)")
        if tex_path is None:
            raise FaceanonError(f"{path}: no texture found (map_Kd in its .mtl, next to the .obj)")
        texture = load_image(tex_path, max_pixels=None).rgb
        img = render_front(vertices, triangles, uv, texture, img_size=img_size, margin=margin,
                           background=background.value, supersample=supersample, renderer=renderer.value)
        target = out / f"{name}_front.png"
        save_image_atomic(target, img)
        return {}

    outcomes = run_batch(items, process, label="render")
    raise SystemExit(finish(outcomes, "render"))
