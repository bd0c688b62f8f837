"""``faceanon anonymize RECON OUT --seg SEG``: morph every face toward the mean, re-bake its texture."""

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
from faceanon.io.layout import PATTERNS


@dataclass
class _Face:
    stem: str  # image stem (may contain "/")
    face: object  # faceanon.io.layout.ReconFace


def _image_vertices(mesh, v2d: np.ndarray, height: int) -> np.ndarray:
    """(N, 3) float32 image-space vertices of a reconstruct mesh: the record's ``v2d_full`` (full
    precision) and the depth of the photo-aligned OBJ; for the seed's world-frame OBJ, the depth of
    its weak-perspective fit to ``v2d_full``."""
    from faceanon.stages.composite import posed_image_vertices

    if mesh.image_vertices is not None:
        z = mesh.vertices[:, 2]
    else:
        z = posed_image_vertices(mesh.vertices, mesh.vertices, height, v2d)[:, 2]
    return np.column_stack([v2d, z]).astype(np.float32)


@app.command(
    "anonymize",
    cls=opt.renamed(**{"--images": "--seg", "-i": "--seg"}),
    epilog=(
        "Examples:\n\n"
        "  faceanon anonymize out/face3d out/anon --seg out/seg\n\n"
        "  faceanon anonymize out/face3d out/anon --seg out/seg --alpha 0.7 --keep-pose\n\n"
        "  faceanon anonymize out/face3d out/anon --seg out/seg --tex-size 1024"
    ),
)
def anonymize(
    recon: Path = typer.Argument(..., metavar="RECON", help=f"Output folder of `faceanon reconstruct` ({PATTERNS['recon']})."),
    out: Path = typer.Argument(..., metavar="OUT", help=f"Output folder: OUT/{PATTERNS['anon']}."),
    seg: Path = typer.Option(..., "--seg", "-s", help=f"Output folder of `faceanon segment` ({PATTERNS['segmented']}); the original photos are refused (they would put the eyes back)."),
    alpha: float = opt.ALPHA,
    keep_pose: bool = opt.KEEP_POSE,
    tex_size: int = opt.TEX_SIZE,
    fill: opt.Fill = opt.FILL,
    model: Optional[opt.Model] = opt.option(opt.o.MODEL, "-m", default=None, help="Face model of the mean face. Default: the backend recorded in each projections file."),
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Replace each face's shape by (a blend toward) the population mean and re-bake its texture.

    By default the output mesh is the morphed face in a canonical frontal pose (the face model's
    frame, in millimetres: y up, z toward the viewer); --keep-pose keeps the original pose, position
    and head scale instead. The texture is re-baked from the segmented photo's RGB (eyes/mouth
    removed and inpainted) with image-space visibility, so occluded parts never take the occluder's
    colour. With --fill features (default) the parts the segmented image removed get identity-free
    replacements drawn from the mean face (closed eyes, lips, eyebrows), coloured from the skin. A
    failing face gets one error line; the others complete (exit 1 if any failed).
    """
    from faceanon.io.facefiles import anonymized_obj_vertices, read_recon_mesh, write_anon_face
    from faceanon.io.images import load_rgba
    from faceanon.io.layout import anon_files, discover_recon, find_segmented, has_segmented, segmented_file
    from faceanon.io.records import load_projections
    from faceanon.models.loader import get_shape_basis
    from faceanon.options import AnonymizeOptions
    from faceanon.stages.anonymize import FeatureSpec, anonymize_face
    from faceanon.stages.features import skin_chroma
    from faceanon.stages.segment import overhang_mask, removed_parts
    from faceanon.types import BROW_LABELS, LIP_LABELS

    o = AnonymizeOptions(alpha=alpha, keep_pose=keep_pose, tex_size=tex_size, fill=fill.value).check()
    if not seg.is_dir():
        raise UsageError(f"--seg folder not found: {seg}", "pass the output folder of `faceanon segment`")
    check_out_not_in(recon, out)
    check_out_not_in(seg, out)
    faces = [_Face(stem=g.stem, face=f) for g in discover_recon(recon) for f in g.faces]
    by_key = {f"{f.stem}//{f.face.name}": f for f in faces}
    if not has_segmented(seg):
        # Texturing from the original photos would put the real eyes and mouth back on the face.
        raise UsageError(
            f"no segmented photo in {seg}: --seg must be the output folder of `faceanon segment`",
            "run `faceanon segment RECON SEG --images PHOTOS` first, then `faceanon anonymize RECON OUT --seg SEG`",
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

    def source_image(stem: str):
        if stem in images_cache:
            return images_cache[stem]
        path = find_segmented(seg, stem)
        if path is None:
            raise ImageError(f"segmented photo of {stem} not found: {segmented_file(seg, stem)}",
                             "run `faceanon segment` for this image, or pass its output folder as --seg")
        # the segmented RGB is the texture source everywhere: the removed eyes/mouth (alpha 0) are
        # already inpainted there, so no original eye pixel can reach the texture and the removed
        # parts get a continuous skin texture (the same as `faceanon run`)
        rgba = load_rgba(path, max_pixels)
        rgb = np.ascontiguousarray(rgba[:, :, :3])
        images_cache.clear()  # faces of one image are consecutive: keep only the current image
        images_cache[stem] = (path, rgb, np.ascontiguousarray(rgba[:, :, 3]))
        return images_cache[stem]

    def process(path: Path, key: str) -> None:
        f = by_key[key]
        files = f.face.files
        if not files.obj.is_file():
            raise FaceanonError(f"{files.obj}: mesh not found (next to {files.npz.name})", "rerun `faceanon reconstruct`")
        rec = load_projections(files.npz)
        src, rgb, seg_alpha = source_image(f.stem)
        h, w = rgb.shape[:2]
        iw, ih = (int(x) for x in rec["img_size"])
        if (w, h) != (iw, ih):
            raise ImageError(f"{src}: image is {w}×{h} px but {files.npz.name} was fitted on {iw}×{ih} px",
                             "--seg must hold the segmented versions of the photos given to `faceanon reconstruct`")
        backend = str(rec.get("backend") or opt.o.MODEL.default)
        if model is not None and model.value != backend:
            raise UsageError(f"{files.npz.name} was fitted with the {backend} model but --model is {model.value}",
                             f"drop --model or use --model {backend}")
        mean_vertices, _tri, _uv = mean_face(backend)
        v2d = rec["v2d_full"]
        mesh = read_recon_mesh(files.obj, h, v2d)
        if mesh.uv is None:
            raise FaceanonError(f"{files.obj}: the mesh has no texture coordinates (vt)", "rerun `faceanon reconstruct`")
        n = mesh.vertices.shape[0]
        if v2d.shape[0] != n or np.shape(mean_vertices)[0] != n:
            raise FaceanonError(
                f"{files.obj}: {n} vertices, but {files.npz.name} has {v2d.shape[0]} and the {backend} mean "
                f"face {np.shape(mean_vertices)[0]}",
                "the mesh, the projections and --model must come from the same reconstruction",
            )
        features = None
        if o.fill == "features" and rec.get("landmark_ids") is not None and rec.get("vertex_labels") is not None:
            # what to redraw is read back from the segmented image: the parts it removed
            gone = removed_parts(seg_alpha, rec["seg_visible_labels_full"])
            features = FeatureSpec(rec["landmark_ids"], keep_mouth=not set(LIP_LABELS) & set(gone),
                                   brows=bool(set(BROW_LABELS) & set(gone)), vertex_labels=rec["vertex_labels"],
                                   chroma=skin_chroma(rgb, rec["seg_visible_labels_full"]))
        a = anonymize_face(_image_vertices(mesh, v2d, h), mesh.triangles, mesh.uv, rgb, mean_vertices,
                           alpha=o.alpha, tex_size=o.tex_size, features=features,
                           valid=~overhang_mask(rgb, rec["seg_visible_labels_full"]),
                           basis=get_shape_basis(store, backend) if o.alpha > 1 else None)
        write_anon_face(anon_files(out, f.stem, f.face.name), anonymized_obj_vertices(a, o.keep_pose), mesh.uv,
                        mesh.triangles, a.texture)

    items = [(f.face.files.obj, key) for key, f in by_key.items()]
    outcomes = run_batch(items, process, label="anonymize")
    raise SystemExit(finish(outcomes, "anonymize"))
