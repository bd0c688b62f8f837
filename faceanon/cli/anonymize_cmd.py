"""``faceanon anonymize RECON OUT --images SEG``: morph every face toward the mean, re-bake its texture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.errors import FaceanonError, ImageError, UsageError

OBJ_SUFFIX = "_extractTex.obj"
MASKED_SUFFIX = "_masked.png"


@dataclass
class _Face:
    stem: str  # image stem (may contain "/")
    name: str  # face output name (<stem> or <stem>_face<k>)
    obj: Path
    npz: Path


def find_masked(stem: str, seg: Path) -> Optional[Path]:
    """``SEG/<stem>_masked.png``: the exact name, else a unique case-insensitive match; None if absent.

    Never a prefix match (the seed's ``edo`` would pick ``edoardo_masked.png``, seed bug S-22 in docs/seed_compatibility.md). Two
    case-variants of the name raise a one-line :class:`ImageError` naming both.
    """
    rel = Path(stem)
    folder = seg / rel.parent
    want = f"{rel.name}{MASKED_SUFFIX}"
    exact = folder / want
    if exact.is_file():
        return exact
    try:
        hits = sorted(p for p in folder.iterdir() if p.is_file() and p.name.casefold() == want.casefold())
    except OSError:
        return None
    if len(hits) > 1:
        raise ImageError(f"segmented image of {stem} is ambiguous: {', '.join(p.name for p in hits)} in {folder}",
                         "keep one <stem>_masked.png per image")
    return hits[0] if hits else None


def _has_masked(seg: Path) -> bool:
    return any(p.name.casefold().endswith(MASKED_SUFFIX) for p in seg.rglob("*") if p.is_file())


def _collect(recon: Path) -> list[_Face]:
    from faceanon.cli.segment_cmd import discover_recon

    faces = []
    for g in discover_recon(recon):
        for f in g.faces:
            faces.append(_Face(stem=g.stem, name=f.name, obj=g.folder / f"{f.name}{OBJ_SUFFIX}", npz=f.npz))
    return faces


@app.command(
    "anonymize",
    epilog=(
        "Examples:\n\n"
        "  faceanon anonymize out/face3d out/anon --images out/seg\n\n"
        "  faceanon anonymize out/face3d out/anon --images out/seg --alpha 0.7 --keep-pose\n\n"
        "  faceanon anonymize out/face3d out/anon --images out/seg --tex-size 1024"
    ),
)
def anonymize(
    recon: Path = typer.Argument(..., metavar="RECON", help="Output folder of `faceanon reconstruct` (<stem>/<name>_extractTex.obj + <name>_projections.npz)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder: OUT/<name>/<name>.obj, .mtl, <name>_texture.png."),
    images: Path = typer.Option(..., "--images", "-i", help="Folder of `faceanon segment` outputs (<stem>_masked.png); the original photos are refused (they would put the eyes back)."),
    alpha: float = typer.Option(1.0, "--alpha", min=0.0, max=1.0, help="Morph strength toward the mean face: 0 = original shape, 1 = the mean shape."),
    keep_pose: bool = typer.Option(False, "--keep-pose", help="Write the mesh at the original pose, position and head scale (photo frame) instead of the canonical frontal pose."),
    tex_size: int = opt.tex_size(2048, "Side of the re-baked UV texture"),
    fill: opt.Fill = opt.FILL,
    model: Optional[opt.Model] = typer.Option(None, "--model", "-m", help="Face model of the mean face. Default: the backend recorded in each projections file (lite)."),
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Replace each face's shape by (a blend toward) the population mean and re-bake its texture.

    By default the output mesh is the morphed face in a canonical frontal pose (the face model's
    frame and units: y up, z toward the viewer); --keep-pose keeps the original pose, position and
    head scale instead. The texture is re-baked from the segmented photo's RGB (eyes/mouth removed
    and inpainted) with image-space visibility, so occluded parts never take the occluder's colour.
    With --fill features (default) the parts the segmented image removed get identity-free
    replacements drawn from the mean face (closed eyes, lips, eyebrows), coloured from the skin. A
    failing face gets one error line; the others complete (exit 1 if any failed).
    """
    from faceanon.io.images import load_rgba, save_image_atomic
    from faceanon.io.mesh import read_obj, write_obj
    from faceanon.io.records import load_projections
    from faceanon.stages.anonymize import FeatureSpec, anonymize_face
    from faceanon.stages.features import skin_chroma
    from faceanon.stages.segment import removed_parts
    from faceanon.types import BROW_LABELS, LIP_LABELS

    if not images.is_dir():
        raise UsageError(f"--images folder not found: {images}", "pass the output folder of `faceanon segment`")
    check_out_not_in(recon, out)
    check_out_not_in(images, out)
    faces = _collect(recon)
    by_key = {f"{f.stem}//{f.name}": f for f in faces}
    if not _has_masked(images):
        # Texturing from the original photos would put the real eyes and mouth back on the face.
        raise UsageError(
            f"no *{MASKED_SUFFIX} in {images}: --images must be the output folder of `faceanon segment`",
            "run `faceanon segment RECON SEG --images PHOTOS` first, then `faceanon anonymize RECON OUT --images SEG`",
        )
    store = opt.store_from(mirror, offline)
    means: dict[str, object] = {}

    def mean_face(backend: str):
        if backend not in means:
            from faceanon.models.loader import get_mean_face

            try:
                means[backend] = get_mean_face(store, backend)
            except Exception as exc:  # remembered: later faces fail with the same line, no reload
                means[backend] = exc
        got = means[backend]
        if isinstance(got, Exception):
            raise got
        return got

    images_cache: dict[str, tuple] = {}

    def source_image(stem: str, npz: Path):
        if stem in images_cache:
            return images_cache[stem]
        path = find_masked(stem, images)
        if path is None:
            raise ImageError(f"no {Path(stem).name}{MASKED_SUFFIX} for {stem} in {images}",
                             "run `faceanon segment` for this image, or pass its output folder as --images")
        # the segmented RGB is the texture source everywhere: the removed eyes/mouth (alpha 0) are
        # already inpainted there, so no original eye pixel can reach the texture and the removed
        # parts get a continuous skin texture (the same as `faceanon run`)
        rgba = load_rgba(path, max_pixels)
        rgb = np.ascontiguousarray(rgba[:, :, :3])
        images_cache.clear()  # faces of one image are consecutive: keep only the current image
        images_cache[stem] = (path, rgb, np.ascontiguousarray(rgba[:, :, 3]))
        return images_cache[stem]

    def process(path: Path, key: str) -> dict:
        f = by_key[key]
        if not f.obj.is_file():
            raise FaceanonError(f"{f.obj}: mesh not found (next to {f.npz.name})", "rerun `faceanon reconstruct`")
        rec = load_projections(f.npz)
        src, rgb, seg_alpha = source_image(f.stem, f.npz)
        h, w = rgb.shape[:2]
        iw, ih = (int(x) for x in rec["img_size"])
        if (w, h) != (iw, ih):
            raise ImageError(f"{src}: image is {w}×{h} px but {f.npz.name} was fitted on {iw}×{ih} px",
                             "--images must hold the segmented versions of the photos given to `faceanon reconstruct`")
        backend = str(rec.get("backend") or "lite")
        if model is not None and model.value != backend:
            raise UsageError(f"{f.npz.name} was fitted with the {backend} model but --model is {model.value}",
                             f"drop --model or use --model {backend}")
        mean_vertices, _tri, _uv = mean_face(backend)
        vertices, uv, triangles, _tex = read_obj(f.obj)
        if uv is None:
            raise FaceanonError(f"{f.obj}: the mesh has no texture coordinates (vt)", "rerun `faceanon reconstruct`")
        n = vertices.shape[0]
        if rec["v2d_full"].shape[0] != n or np.shape(mean_vertices)[0] != n:
            raise FaceanonError(
                f"{f.obj}: {n} vertices, but {f.npz.name} has {rec['v2d_full'].shape[0]} and the {backend} mean "
                f"face {np.shape(mean_vertices)[0]}",
                "the mesh, the projections and --model must come from the same reconstruction",
            )
        features = None
        if fill.value == "features" and rec.get("landmark_ids") is not None and rec.get("vertex_labels") is not None:
            # what to redraw is read back from the segmented image: the parts it removed
            gone = removed_parts(seg_alpha, rec["seg_visible_labels_full"])
            features = FeatureSpec(rec["landmark_ids"], keep_mouth=not set(LIP_LABELS) & set(gone),
                                   brows=bool(set(BROW_LABELS) & set(gone)), vertex_labels=rec["vertex_labels"],
                                   chroma=skin_chroma(rgb, rec["seg_visible_labels_full"]))
        a = anonymize_face(vertices, triangles, uv, rec["v2d_full"], rgb, mean_vertices, alpha=alpha,
                           keep_pose=keep_pose, tex_size=tex_size, features=features)
        d = out / Path(f.stem).parent / f.name  # created by the atomic writers (an OSError is one line)
        tex_path = d / f"{f.name}_texture.png"
        save_image_atomic(tex_path, a.texture)
        write_obj(d / f"{f.name}.obj", a.vertices, uv, triangles, texture_png_name=tex_path.name)
        return {"scale": a.similarity.s}

    items = [(f.obj, f"{f.stem}//{f.name}") for f in faces]
    outcomes = run_batch(items, process, label="anonymize")
    raise SystemExit(finish(outcomes, "anonymize"))
