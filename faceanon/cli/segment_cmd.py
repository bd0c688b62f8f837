"""``faceanon segment RECON OUT``: remove eyes (and lips) of every face, write ``<stem>_masked.png``.

Also home of the helpers that find the reconstruct outputs and the original photos; the composite
command uses them too.

Layouts accepted for RECON (searched recursively, hidden folders skipped):

* ``faceanon reconstruct`` output: ``RECON/<stem>/<stem>_projections.npz`` (main face) and
  ``RECON/<stem>/<stem>_face<k>_projections.npz`` (other faces); stems with sub-folders
  (``--recursive``) are ``RECON/<sub>/<stem>/...``;
* the seed's layout (``out/face3d/<stem>/<stem>_projections.npz``), the same shape;
* a flat folder of ``<stem>_projections.npz`` files (e.g. the 3DDFA-V3 reference fixtures), or a
  single ``<stem>_projections.npz`` file: the stem comes from the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import check_out_not_in, finish, run_batch
from faceanon.errors import ImageError, UsageError

NPZ_SUFFIX = "_projections.npz"
_FACE_RE = re.compile(r"^(?P<base>.+)_face(?P<k>[0-9]+)$")


@dataclass
class FaceFiles:
    """One face of a reconstructed image: its output name, face index and npz path."""

    name: str
    index: int
    npz: Path


@dataclass
class ReconImage:
    """The reconstruct outputs of one image: ``stem`` (may contain ``/``), folder, faces by index."""

    stem: str
    folder: Path
    faces: list[FaceFiles] = field(default_factory=list)


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def discover_recon(recon: Path) -> list[ReconImage]:
    """Group the ``*_projections.npz`` files under ``recon`` by image stem (sorted by stem).

    Raises :class:`UsageError` when ``recon`` does not exist or holds no npz file, or when two
    folders claim the same stem.
    """
    if not recon.exists():
        raise UsageError(f"RECON not found: {recon}", "pass the output folder of `faceanon reconstruct`")
    if recon.is_file():
        if not recon.name.endswith(NPZ_SUFFIX):
            raise UsageError(f"{recon} is not a <stem>{NPZ_SUFFIX} file",
                             "pass the output folder of `faceanon reconstruct`")
        files = [recon]
        root = recon.parent
    else:
        root = recon
        files = sorted(p for p in recon.rglob(f"*{NPZ_SUFFIX}")
                       if p.is_file() and not _is_hidden(p.relative_to(recon)))
    if not files:
        raise UsageError(f"no *{NPZ_SUFFIX} file in {recon}",
                         "RECON must be the output folder of `faceanon reconstruct` (or the seed's face3d/)")
    groups: dict[str, ReconImage] = {}
    for npz in files:
        name = npz.name[: -len(NPZ_SUFFIX)]
        if not name:
            continue
        folder = npz.parent
        rel = folder.relative_to(root)
        m = _FACE_RE.match(name)
        if rel != Path(".") and folder.name == name:  # RECON/<stem>/<stem>_projections.npz
            stem, index = rel.as_posix(), 0
        elif rel != Path(".") and m and folder.name == m.group("base"):  # RECON/<stem>/<stem>_face<k>_...
            stem, index = rel.as_posix(), int(m.group("k"))
        elif m and (folder / f"{m.group('base')}{NPZ_SUFFIX}").is_file():  # flat, with its main face
            stem, index = (rel / m.group("base")).as_posix(), int(m.group("k"))
        else:  # flat layout, or a folder named differently from its npz (seed: stem from the file)
            stem, index = (rel / name).as_posix(), 0
        g = groups.get(stem)
        if g is None:
            g = groups[stem] = ReconImage(stem=stem, folder=folder)
        elif g.folder != folder:
            raise UsageError(f"stem {stem!r} found in two places: {g.folder} and {folder}",
                             "keep one reconstruction per image in RECON")
        g.faces.append(FaceFiles(name=name, index=index, npz=npz))
    out = []
    for stem in sorted(groups, key=lambda s: (s.casefold(), s)):
        g = groups[stem]
        g.faces.sort(key=lambda f: (f.index, f.name))
        out.append(g)
    return out


def load_face_record(npz: Path) -> dict:
    """Read one projections npz (validated by ``faceanon.io.records.load_projections``: labels are
    uint8 (H, W) in 0..8 matching ``img_size``); every failure is a one-line error naming the file."""
    from faceanon.io.records import load_projections

    return load_projections(npz)


def find_original(stem: str, images: Path) -> Path:
    """The original photo of output stem ``stem`` in ``images`` (see
    :func:`faceanon.io.images.photo_for_stem`); a one-line :class:`ImageError` when there is none."""
    from faceanon.io.images import photo_for_stem

    hit = photo_for_stem(images, stem)
    if hit is None:
        raise ImageError(f"original photo of {stem} not found in {images}",
                         "--images must be the folder of the photos given to `faceanon reconstruct`")
    return hit


def item_path(g: ReconImage) -> Path:
    """The path named in progress and error lines: the stem's folder, or its npz in a flat layout."""
    return g.folder if g.folder.name == Path(g.stem).name else g.faces[0].npz


def face_inter_ocular(rec: dict) -> float:
    """IOD of a face record: landmarks68 when present (faceanon npz), else estimated from the labels."""
    from faceanon.stages.segment import estimate_inter_ocular

    lm = rec.get("landmarks68")
    return estimate_inter_ocular(rec["seg_visible_labels_full"], None if lm is None else np.asarray(lm))


def face_mesh(npz: Path, rec: dict, height: int):
    """The 3D face of a reconstruct record (:class:`faceanon.stages.segment.FaceMesh`) from the
    ``<name>_extractTex.obj`` next to its npz, or None (seed files: no vertex labels, or a mesh that
    is not in the photo-aligned frame) - the removal then falls back to the label map."""
    from faceanon.io.mesh import read_obj
    from faceanon.stages.segment import FaceMesh

    labels = rec.get("vertex_labels")
    obj = npz.with_name(npz.name[: -len(NPZ_SUFFIX)] + "_extractTex.obj")
    if labels is None or not obj.is_file():
        return None
    verts, _uv, tris, _tex = read_obj(obj)
    v2d = np.asarray(rec["v2d_full"], np.float64)
    if verts.shape[0] != len(labels) or v2d.shape != (len(labels), 2):
        return None
    img = np.column_stack([verts[:, 0], height - verts[:, 1], verts[:, 2]]).astype(np.float32)
    if float(np.median(np.linalg.norm(img[:, :2] - v2d, axis=1))) > 1.0:
        return None  # not faceanon's photo-aligned frame (x, H - y, z)
    return FaceMesh(img, tris, labels)


def check_same_size(rgb_shape: tuple, labels: np.ndarray, image_path: Path, npz: Path) -> None:
    """One clear error when the photo and a label map differ in size."""
    h, w = rgb_shape[:2]
    lh, lw = labels.shape
    if (h, w) != (lh, lw):
        raise ImageError(
            f"{image_path}: image is {w}×{h} px but the label map of {npz.name} is {lw}×{lh} px",
            "--images must hold the exact photos given to `faceanon reconstruct` (same size, same orientation)")


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
    recon: Path = typer.Argument(..., metavar="RECON", help="Output folder of `faceanon reconstruct` (<stem>/<stem>_projections.npz)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder for <stem>_masked.png (RGBA)."),
    images: Path = opt.PHOTOS,
    keep_mouth: bool = typer.Option(False, "--keep-mouth", help="Keep the lips (only the eyes are removed)."),
    fill: opt.Fill = opt.FILL,
    privacy: opt.Privacy = opt.PRIVACY,
    margin: Optional[float] = opt.MARGIN,
    keep_brows: bool = opt.KEEP_BROWS,
    feather_px: float = typer.Option(3.0, "--feather-px", min=0.0, max=200.0, help="Width (px) of the alpha ramp OUTSIDE the removed area; alpha is exactly 0 inside."),
    max_pixels: int = opt.MAX_PIXELS,
) -> None:
    """Remove the eyes, lips and (at --privacy standard/high) eyebrows of every face: alpha 0 there, RGB filled.

    Writes OUT/<stem>_masked.png (RGBA): alpha 0 on the removed pixels and a smooth ramp to 255 over
    --feather-px outside them; RGB is filled on the removed pixels and the original photo everywhere
    else. With --fill features (default) the removal is sized and placed from the 3D face (the
    <name>_extractTex.obj next to each npz) and the fill carries skin grain; the eyes, lips and brows
    are redrawn later by `faceanon anonymize`. --fill inpaint is the label-map removal and plain
    inpainting of faceanon 0.1. A failing image gets one error line; the others complete (exit 1 if
    any failed).
    """
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.stages.privacy import resolve_privacy
    from faceanon.stages.segment import SegmentFace, segment_image

    margin, brows = resolve_privacy(privacy.value, margin=margin, keep_brows=keep_brows)
    features_on = fill.value == "features"

    groups = discover_recon(recon)
    if not images.is_dir():
        raise UsageError(f"--images folder not found: {images}")
    check_out_not_in(images, out)
    by_stem = {g.stem: g for g in groups}

    def process(path: Path, stem: str) -> dict:
        g = by_stem[stem]
        records = [load_face_record(f.npz) for f in g.faces]
        src = find_original(stem, images)
        img = load_image(src, max_pixels=max_pixels)
        faces = []
        for f, rec in zip(g.faces, records):
            labels = rec["seg_visible_labels_full"]
            check_same_size(img.rgb.shape, labels, src, f.npz)
            if features_on:
                faces.append(SegmentFace(labels=labels, inter_ocular=face_inter_ocular(rec), box=rec.get("box"),
                                         mesh=face_mesh(f.npz, rec, img.height)))
            else:
                faces.append(SegmentFace(labels=labels, inter_ocular=face_inter_ocular(rec)))
        rgba, removed = segment_image(img.rgb, faces, keep_mouth=keep_mouth, margin=margin, feather_px=feather_px,
                                      brows=brows and features_on, grain=features_on)
        target = out / f"{stem}_masked.png"
        save_image_atomic(target, rgba)
        return {"removed": float(removed.mean()), "faces": len(faces)}

    items = [(item_path(g), g.stem) for g in groups]
    outcomes = run_batch(items, process, label="segment")
    raise typer.Exit(finish(outcomes, "segment"))
