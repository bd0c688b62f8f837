"""The stage chain of ``faceanon run``: one image through reconstruct -> segment -> anonymize ->
render -> composite, in memory (nothing written is read back).

:func:`image_chain` is the whole chain for one image. It computes only the outputs named in
``RunOptions.outputs`` (the kinds of :data:`faceanon.io.layout.OUTPUT_KINDS`, under OUT; names in
:mod:`faceanon.io.layout`) and yields each as an :class:`~faceanon.io.facefiles.Output` (the paths
it creates and the call that writes them) as soon as it is computed, so that the caller writes it
in the background while the next stage computes; it returns the :class:`Processed` image.
Everything around the chain - resume and crash markers, the lock, failure isolation, report.json,
the atomic commit of an image's files, local processes and the Dask cluster - is
:mod:`faceanon.runner`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, Optional

import numpy as np

from faceanon.io.facefiles import Output
from faceanon.io.layout import ANON, ANONYMIZED, FACE3D, OUTPUT_KINDS, RENDER, SEG  # noqa: F401 (OUTPUT_KINDS re-exported)
from faceanon.models.base import FaceDetector, ReconstructionBackend
from faceanon.options import SAFE_OUTPUTS, RunOptions, parse_outputs  # noqa: F401 (re-exported)

LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")


@dataclass
class Models:
    """The loaded models of a run (:mod:`faceanon.models.loader`)."""

    detector: FaceDetector
    backend: ReconstructionBackend


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


def _extract_and_write(rgb: np.ndarray, fit, height: int, size: int, files, secs: dict) -> None:
    """Writer-thread task: extract the face's texture from the photo and write it with its mesh."""
    from faceanon.io.facefiles import write_recon_mesh
    from faceanon.stages.reconstruct import extract_face_texture

    t = time.perf_counter()
    texture = extract_face_texture(rgb, fit, size)
    secs["extract_texture"] = secs.get("extract_texture", 0.0) + time.perf_counter() - t
    write_recon_mesh(files, fit.vertices, fit.uv, fit.triangles, texture, height)


def _render_and_write(vertices, triangles, uv, texture, opts: RunOptions, path: Path, secs: dict) -> None:
    """Writer-thread task: the frontal render of one anonymized OBJ, written as PNG."""
    from faceanon.io.images import save_image_atomic
    from faceanon.stages.render import render_front

    t = time.perf_counter()
    img = render_front(vertices, triangles, uv, texture, img_size=opts.img_size, frame_fill=opts.frame_fill,
                       background=opts.background, supersample=opts.supersample, renderer=opts.renderer)
    secs["render"] = secs.get("render", 0.0) + time.perf_counter() - t
    save_image_atomic(path, img)


@dataclass
class Processed:
    """What :func:`image_chain` computed for one image, in memory.

    image:     the decoded input (:class:`~faceanon.types.ImageRecord`, rgb (H, W, 3) uint8 upright)
    composite: (H, W, 3) uint8 the anonymized photo (equal to ``image.rgb`` away from the faces)
    faces:     [(FaceResult, AnonymizedFace)] per face, main face first
    seconds:   compute seconds per stage (the background writes add theirs to it)
    notes:     format notes of the input (:func:`faceanon.io.formats.output_plan`)
    """

    image: object
    composite: np.ndarray
    faces: list
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def fill(self, report: "ImageReport", outputs: list[str]) -> "ImageReport":
        """``report`` with this image's faces, poses, seconds, notes and ``outputs`` (paths relative
        to OUT)."""
        report.faces = len(self.faces)
        report.poses = [[round(float(a), 2) for a in f.fit.pose] for f, _ in self.faces]
        report.seconds = self.seconds  # the same dict: the writer tasks complete it
        report.notes += self.notes
        report.outputs = outputs
        return report


def output_extension(image, opts: RunOptions) -> str:
    """Extension of the anonymized photo: the input's own (see ``composite_extension``), PNG for a
    lossy input with ``--lossless``."""
    from faceanon.stages.composite import composite_extension

    ext = composite_extension(image)
    if opts.lossless and ext in LOSSY_EXTENSIONS:
        ext = ".png"
    return ext


def image_chain(source, stem: str, out: Optional[Path], models: Models, opts: RunOptions,
                on_stage: Optional[Callable[[str], None]] = None) -> Generator[Output, None, Processed]:
    """Every stage of one image. ``source``: the input file (Path) or an already decoded ImageRecord;
    ``out``: the run's OUT (None: nothing is written, ``opts.outputs`` must be empty).

    Yields the writes of the folders in ``opts.outputs`` as they are computed; returns the
    :class:`Processed` image. Raises on failure (the caller removes what it had written).
    """
    from faceanon.io import layout
    from faceanon.io.facefiles import anonymized_obj_vertices, write_anon_face
    from faceanon.io.formats import output_plan
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.stages.anonymize import FeatureSpec, anonymize_face
    from faceanon.stages.composite import CompositeFace, FaceFeatures, composite_image, write_composite
    from faceanon.stages.features import brow_colour, skin_chroma
    from faceanon.stages.reconstruct import reconstruct_image, reconstruction_outputs
    from faceanon.stages.segment import FaceMesh, SegmentFace, overhang_mask, segment_image

    secs: dict = {}

    def stage(name: str):
        if on_stage:
            on_stage(name)
        return time.perf_counter()

    want = opts.outputs
    t = stage("load")
    image = source if not isinstance(source, (str, Path)) else load_image(source, max_pixels=opts.max_pixels)
    plan = output_plan(image, out, lossless=opts.lossless, strict=opts.strict)  # DICOM out, format notes
    secs["load"] = time.perf_counter() - t

    t = stage("reconstruct")
    # The extracted texture is only written, never used by the later stages: it is extracted on the
    # writer thread (as is the frontal render below), which balances the work over the 2 cores.
    recon = reconstruct_image(image, stem, models.detector, models.backend, tex_size=opts.recon_tex_size,
                              max_faces=opts.max_faces or None, extract_texture=False)
    if FACE3D in want:
        folder = layout.recon_folder(out / FACE3D, stem)
        yield from reconstruction_outputs(recon, folder, vis=opts.vis)
        for f in recon.faces:
            files = layout.recon_files(folder, f.name)
            yield Output(files.mesh, _extract_and_write,
                         (image.rgb, f.fit, image.height, opts.recon_tex_size, files, secs))
    secs["reconstruct"] = time.perf_counter() - t

    t = stage("segment")
    features_on = opts.features
    # --fill features: pose-aware removal from the 3D face; --fill inpaint: the label-map removal of
    # faceanon 0.1 (the seed's look), i.e. no mesh and no box
    seg_faces = [SegmentFace(labels=f.labels, inter_ocular=f.fit.inter_ocular,
                             box=f.fit.detection.box if features_on else None,
                             mesh=FaceMesh(f.fit.vertices, f.fit.triangles, f.fit.vertex_labels) if features_on else None)
                 for f in recon.faces]
    brows = opts.remove_brows  # brows are only removed where they are redrawn
    rgba, _removed = segment_image(image.rgb, seg_faces, keep_mouth=opts.keep_mouth, brows=brows,
                                   grain=features_on, margin=opts.removal_margin, feather_px=opts.feather_px)
    if SEG in want:
        seg_path = layout.segmented_file(out / SEG, stem)
        yield Output((seg_path,), save_image_atomic, (seg_path, rgba))
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
        # background and hair the fit overhangs are no texture source (filled like hidden texels)
        a = anonymize_face(fit.vertices, fit.triangles, fit.uv, seg_rgb, fit.mean_vertices,
                           alpha=opts.alpha, tex_size=opts.tex_size, features=features,
                           valid=~overhang_mask(seg_rgb, f.labels),
                           basis=models.backend.shape_basis() if opts.alpha > 1 else None)
        obj_v = anonymized_obj_vertices(a, opts.keep_pose) if ANON in want or RENDER in want else None
        if ANON in want:
            files = layout.anon_files(out / ANON, stem, f.name)
            yield Output(files.mesh, write_anon_face, (files, obj_v, fit.uv, fit.triangles, a.texture))
        anon_faces.append((f, a, obj_v))
    secs["anonymize"] = time.perf_counter() - t

    if RENDER in want:
        for f, a, obj_v in anon_faces:  # rendered and written on the writer thread (see above)
            rp = layout.render_file(out / RENDER, stem, f.name)
            yield Output((rp,), _render_and_write, (obj_v, f.fit.triangles, f.fit.uv, a.texture, opts, rp, secs))

    t = stage("composite")
    # in place: the segmented photo is warped to the morphed shape and the identity-free eyes, lips and
    # brows are drawn on it through the morphed mesh; the texture shows only where the morphed face
    # shows what the photo hid
    comp_faces = [CompositeFace(vertices=a.posed_image_vertices, triangles=f.fit.triangles, uv=f.fit.uv,
                                texture=a.texture, source_vertices=f.fit.vertices,
                                features=None if a.feature_layers is None else
                                FaceFeatures(a.feature_layers, keep_mouth=opts.keep_mouth, brow_rgb=a.brow_rgb,
                                             chroma=skin_chroma(image.rgb, f.labels)))
                  for f, a, _ in anon_faces]
    composite = composite_image(seg_rgb, comp_faces, blend_px=opts.blend_px)
    if ANONYMIZED in want:
        ext, write = plan.output(output_extension(image, opts), write_composite)  # e.g. .dcm for DICOM
        cp = layout.anonymized_file(out / ANONYMIZED, stem, ext)
        yield Output((cp,), write, (cp, composite), {"original": image})
    secs["composite"] = time.perf_counter() - t
    return Processed(image=image, composite=composite, faces=[(f, a) for f, a, _ in anon_faces], seconds=secs,
                     notes=list(plan.notes))


def run_chain(chain: Generator[Output, None, Processed], put: Callable[[Output], None] = Output.run) -> Processed:
    """Drive an :func:`image_chain`: hand every write it yields to ``put`` (default: write it now);
    returns the :class:`Processed` image."""
    while True:
        try:
            out = next(chain)
        except StopIteration as stop:
            return stop.value
        put(out)
