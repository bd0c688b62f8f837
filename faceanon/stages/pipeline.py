"""The stage chain of ``faceanon run``: one image through reconstruct -> segment -> anonymize ->
render -> composite, in memory (nothing written is read back).

:func:`_process` is the whole chain for one image. It writes only the outputs named in
``RunOptions.outputs`` (nothing is computed for an output that is not written), each queued on a
background writer, under OUT:

    anonymized/<stem>.<ext>                                   "anonymized" (default)
    anon/<name>/<name>.obj/.mtl, <name>_texture.png           "anon"       (default)
    render/<name>_front.png                                   "render"     (default)
    face3d/<stem>/<name>_extractTex.obj/.mtl/.png,            "face3d"     (debugging: the ORIGINAL
        <name>_projections.npz                                              face texture, landmarks)
    seg/<stem>_masked.png                                     "seg"        (debugging: the photo with
                                                                            only eyes/mouth removed)

``<name>`` is ``<stem>`` for the main face and ``<stem>_face<k>`` for the others. Everything around
the chain - resume and crash markers, the lock, failure isolation, report.json, the atomic commit of
an image's files, local processes and the Dask cluster - is :mod:`faceanon.runner`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceanon import __version__
from faceanon.errors import UsageError

LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")

#: Every output folder ``run`` can write, in display order.
OUTPUT_KINDS = ("anonymized", "anon", "render", "face3d", "seg")
#: What ``run`` writes by default: the folders that are meant to leave the machine (see README,
#: "What is safe to share"). face3d/ holds the original face texture and seg/ the photo with only
#: the eyes and mouth cut out: written only on request, for debugging.
SAFE_OUTPUTS = ("anonymized", "anon", "render")


def parse_outputs(value: str | tuple | list | None) -> tuple[str, ...]:
    """``"all"``, a comma list (``"anonymized,face3d"``) or a sequence of output kinds -> the kinds in
    :data:`OUTPUT_KINDS` order; ``None`` -> :data:`SAFE_OUTPUTS`. Raises UsageError naming a bad one."""
    if value is None:
        return SAFE_OUTPUTS
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = [n for n in names if n]
    if names == ["all"]:
        return OUTPUT_KINDS
    bad = [n for n in names if n not in OUTPUT_KINDS]
    if bad or not names:
        raise UsageError(f"--outputs: unknown output {bad[0]!r}" if bad else "--outputs: no output named",
                         f"use all, or a comma list of {', '.join(OUTPUT_KINDS)}")
    return tuple(k for k in OUTPUT_KINDS if k in names)


@dataclass
class RunOptions:
    model: str = "lite"
    recon_tex_size: int = 1024
    tex_size: int = 2048
    alpha: float = 1.0
    keep_pose: bool = False
    keep_mouth: bool = False
    fill: str = "features"  # features | inpaint (faceanon.cli.options.Fill)
    privacy: str = "standard"  # faceanon.stages.privacy.PRIVACY_LEVELS; margin and brows are resolved from it
    brows: bool = True  # remove the eyebrows and paint the mean face's (False: --keep-brows)
    margin: float = 0.25  # = faceanon.stages.segment.DEFAULT_MARGIN
    feather_px: float = 3.0
    img_size: int = 1024
    render_margin: float = 0.95
    background: str = "transparent"
    max_pixels: int = 60_000_000
    min_face_size: int = 40
    max_faces: int = 0
    threshold: float | None = None  # None: the model's own default
    vis: bool = False
    lossless: bool = False  # write the anonymized photo of a lossy input (jpg, webp) as PNG
    strict: bool = False  # refuse DICOM inputs whose Burned In Annotation is not NO
    outputs: tuple = SAFE_OUTPUTS  # the OUT folders written (see OUTPUT_KINDS); () = none (the Python API)

    def __post_init__(self) -> None:
        # None: the default set; an empty sequence: nothing; else "all", a comma list or a sequence
        empty = self.outputs is not None and not isinstance(self.outputs, str) and not len(self.outputs)
        self.outputs = () if empty else parse_outputs(self.outputs)

    def check(self) -> "RunOptions":
        """Raise UsageError (naming the command-line option) for a value ``run`` would refuse."""
        from faceanon.models.loader import MODELS
        from faceanon.stages.anonymize import check_alpha

        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        check_alpha(self.alpha)
        if self.fill not in ("features", "inpaint"):
            raise UsageError(f"--fill must be features or inpaint, got {self.fill!r}")
        from faceanon.stages.privacy import PRIVACY_LEVELS

        if self.privacy not in PRIVACY_LEVELS:
            raise UsageError(f"--privacy must be one of {', '.join(PRIVACY_LEVELS)}, got {self.privacy!r}")
        if self.background not in ("transparent", "white"):
            raise UsageError(f"--background must be transparent or white, got {self.background!r}")
        for name, lo, hi in (("tex_size", 64, 8192), ("recon_tex_size", 64, 8192), ("img_size", 16, 8192)):
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise UsageError(f"--{name.replace('_', '-')} must be an integer in [{lo}, {hi}], got {v!r}")
        for name, lo, hi in (("margin", 0.0, 2.0), ("feather_px", 0.0, float("inf")), ("render_margin", 0.01, 1.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise UsageError(f"--{name.replace('_', '-')} must be a number in [{lo}, {hi}], got {v!r}")
        if self.vis and "face3d" not in self.outputs:
            raise UsageError("--vis writes its overlays into face3d/, which is not among the outputs",
                             "add face3d to --outputs (e.g. --outputs all)")
        return self

    def fingerprint(self) -> str:
        """Options (and the faceanon version) that made the outputs: a marker written by another
        version or with other options is not 'complete', so an upgrade redoes the images."""
        d = {**asdict(self), "faceanon_version": __version__}
        d["outputs"] = list(self.outputs)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Models:
    detector: object
    backend: object


@dataclass
class ImageReport:
    input: str
    stem: str
    status: str = "ok"  # ok | failed | skipped
    faces: int = 0
    poses: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    error: str | None = None
    outputs: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # "HEIC input written as JPEG", "warning: ..." (faceanon.io.formats)


def _extract_and_write(rgb: np.ndarray, fit, height: int, size: int, png: Path, obj: Path, secs: dict) -> None:
    """Writer-thread task: bake the texture extracted from the photo and write it with its mesh."""
    from faceanon.io.images import save_image_atomic
    from faceanon.io.mesh import write_obj
    from faceanon.stages.reconstruct import obj_vertices
    from faceanon.stages.texture import bake_texture

    t = time.perf_counter()
    texture, _ = bake_texture(rgb, fit.vertices, fit.triangles, fit.uv, size)
    secs["extract_texture"] = secs.get("extract_texture", 0.0) + time.perf_counter() - t
    save_image_atomic(png, texture)
    write_obj(obj, obj_vertices(fit, height), fit.uv, fit.triangles, texture_png_name=png.name)


def _render_and_write(vertices, triangles, uv, texture, opts: "RunOptions", path: Path, secs: dict) -> None:
    """Writer-thread task: the frontal render of one anonymized face, written as PNG."""
    from faceanon.io.images import save_image_atomic
    from faceanon.stages.render import render_front

    t = time.perf_counter()
    img = render_front(vertices, triangles, uv, texture, img_size=opts.img_size, margin=opts.render_margin,
                       background=opts.background)
    secs["render"] = secs.get("render", 0.0) + time.perf_counter() - t
    save_image_atomic(path, img)


@dataclass
class Processed:
    """What :func:`_process` computed for one image, in memory.

    image:     the decoded input (:class:`~faceanon.types.ImageRecord`, rgb (H, W, 3) uint8 upright)
    composite: (H, W, 3) uint8 the anonymized photo (equal to ``image.rgb`` away from the faces)
    faces:     [(FaceResult, AnonymizedFace)] per face, main face first
    """

    image: object
    composite: np.ndarray
    faces: list


def output_extension(image, opts: RunOptions) -> str:
    """Extension of the anonymized photo: the input's own (see ``composite_extension``), PNG for a
    lossy input with ``--lossless``."""
    from faceanon.stages.composite import composite_extension

    ext = composite_extension(image)
    if opts.lossless and ext in LOSSY_EXTENSIONS:
        ext = ".png"
    return ext


def _out_op(path: Path, op) -> None:
    """``op(path)`` on an output path (unlink, mkdir); an OSError becomes the one-line OutputError."""
    from faceanon.io.atomic import output_error

    try:
        op(path)
    except OSError as exc:
        raise output_error(path, exc) from exc


def _process(source, stem, out, models, opts, on_stage, report, written, writer) -> Processed:
    """Every stage of one image. ``source``: the input file (Path) or an already decoded ImageRecord.

    Writes (queued on ``writer``, every path appended to ``written`` BEFORE its write is queued) only
    the folders in ``opts.outputs`` under ``out``; fills ``report`` (faces, poses, seconds, outputs).
    Raises on failure; the caller removes what was written.
    """
    from faceanon.io.formats import output_plan
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.io.mesh import write_obj
    from faceanon.stages.anonymize import FeatureSpec, anonymize_face
    from faceanon.stages.composite import CompositeFace, FaceFeatures, composite_image, write_composite
    from faceanon.stages.features import brow_colour, skin_chroma
    from faceanon.stages.reconstruct import obj_vertices, reconstruct_image, write_reconstruction
    from faceanon.stages.segment import FaceMesh, SegmentFace, segment_image

    secs = report.seconds

    def stage(name: str):
        if on_stage:
            on_stage(name)
        return time.perf_counter()

    want = opts.outputs
    t = stage("load")
    image = source if not isinstance(source, (str, Path)) else load_image(source, max_pixels=opts.max_pixels)
    plan = output_plan(image, out, lossless=opts.lossless, strict=opts.strict)  # DICOM out, format notes
    report.notes += plan.notes
    secs["load"] = time.perf_counter() - t

    t = stage("reconstruct")
    # The extracted texture is only written, never used by the later stages: it is baked on the
    # writer thread (as is the frontal render below), which balances the work over the 2 cores.
    recon = reconstruct_image(image, stem, models.detector, models.backend, tex_size=opts.recon_tex_size,
                              max_faces=opts.max_faces or None, extract_texture=False)
    if "face3d" in want:
        recon_dir = out / "face3d" / stem
        write_reconstruction(recon, recon_dir, vis=opts.vis, submit=writer.submit, paths=written)
        for f in recon.faces:
            png = recon_dir / f"{f.name}_extractTex.png"
            obj = recon_dir / f"{f.name}_extractTex.obj"
            written += [png, obj, obj.with_suffix(".mtl")]
            writer.submit(_extract_and_write, image.rgb, f.fit, image.height, opts.recon_tex_size, png, obj, secs)
    secs["reconstruct"] = time.perf_counter() - t
    report.faces = len(recon.faces)
    report.poses = [[round(float(a), 2) for a in f.fit.pose] for f in recon.faces]

    t = stage("segment")
    features_on = opts.fill == "features"
    # --fill features: pose-aware removal from the 3D face; --fill inpaint: the label-map removal of
    # faceanon 0.1 (the seed's look), i.e. no mesh and no box
    seg_faces = [SegmentFace(labels=f.labels, inter_ocular=f.fit.inter_ocular,
                             box=f.fit.detection.box if features_on else None,
                             mesh=FaceMesh(f.fit.vertices, f.fit.triangles, f.fit.vertex_labels) if features_on else None)
                 for f in recon.faces]
    brows = opts.brows and features_on  # brows are only removed where they are redrawn
    rgba, removed = segment_image(image.rgb, seg_faces, keep_mouth=opts.keep_mouth, brows=brows,
                                  grain=features_on, margin=opts.margin, feather_px=opts.feather_px)
    if "seg" in want:
        seg_path = out / "seg" / f"{stem}_masked.png"
        written.append(seg_path)  # listed before it is written: a failure half-way removes it too
        writer.submit(save_image_atomic, seg_path, rgba)
    secs["segment"] = time.perf_counter() - t

    # The texture is baked from the segmented RGB: the removed eyes/mouth are already inpainted there,
    # so sampling it everywhere gives a continuous skin texture with no original eye pixels.
    seg_rgb = np.ascontiguousarray(rgba[:, :, :3])
    anon_faces = []
    t = stage("anonymize")
    for f in recon.faces:
        fit = f.fit
        features = None
        if features_on and fit.landmark_ids is not None:
            features = FeatureSpec(fit.landmark_ids, keep_mouth=opts.keep_mouth, brows=brows,
                                   brow_rgb=brow_colour(image.rgb, f.labels) if brows else None,
                                   vertex_labels=fit.vertex_labels, chroma=skin_chroma(image.rgb, f.labels))
        a = anonymize_face(obj_vertices(fit, image.height), fit.triangles, fit.uv, fit.v2d, seg_rgb, fit.mean_vertices,
                           alpha=opts.alpha, keep_pose=opts.keep_pose, tex_size=opts.tex_size, features=features)
        if "anon" in want:
            d = out / "anon" / Path(stem).parent / f.name
            _out_op(d, lambda p: p.mkdir(parents=True, exist_ok=True))
            tex_path = d / f"{f.name}_texture.png"
            obj_path = d / f"{f.name}.obj"
            written += [tex_path, obj_path, obj_path.with_suffix(".mtl")]
            writer.submit(save_image_atomic, tex_path, a.texture)
            writer.submit(write_obj, obj_path, a.vertices, fit.uv, fit.triangles, texture_png_name=tex_path.name)
        anon_faces.append((f, a))
    secs["anonymize"] = time.perf_counter() - t

    if "render" in want:
        for f, a in anon_faces:  # rendered and written on the writer thread (see above)
            rp = out / "render" / Path(stem).parent / f"{f.name}_front.png"
            written.append(rp)
            writer.submit(_render_and_write, a.vertices, f.fit.triangles, f.fit.uv, a.texture, opts, rp, secs)

    t = stage("composite")
    # in place: the segmented photo is warped to the morphed shape and the identity-free eyes, lips and
    # brows are drawn on it through the morphed mesh; the texture shows only where the morphed face
    # shows what the photo hid
    comp_faces = [CompositeFace(vertices=a.posed_image_vertices, triangles=f.fit.triangles, uv=f.fit.uv,
                                texture=a.texture, source_vertices=f.fit.vertices,
                                features=None if a.feature_layers is None else
                                FaceFeatures(a.feature_layers, keep_mouth=opts.keep_mouth, brow_rgb=a.brow_rgb,
                                             chroma=skin_chroma(image.rgb, f.labels)))
                  for f, a in anon_faces]
    composite = composite_image(seg_rgb, comp_faces)
    if "anonymized" in want:
        ext, write = plan.output(output_extension(image, opts), write_composite)  # e.g. .dcm for DICOM
        cp = out / "anonymized" / f"{stem}{ext}"
        written.append(cp)
        writer.submit(write, cp, composite, original=image)
    secs["composite"] = time.perf_counter() - t

    report.outputs = [p.relative_to(out).as_posix() for p in written]
    # report.seconds is completed by the writer tasks and finalized with the completion marker
    return Processed(image=image, composite=composite, faces=anon_faces)


