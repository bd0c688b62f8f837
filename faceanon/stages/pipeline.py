"""``faceanon run``: reconstruct -> segment -> anonymize -> render -> composite, in one pass.

Each image flows through the stages in memory (nothing written is read back). Outputs, all written
atomically (temp file + rename), under OUT:

    face3d/<stem>/<name>_extractTex.obj/.mtl/.png, <name>_projections.npz
    seg/<stem>_masked.png
    anon/<name>/<name>.obj/.mtl, <name>_texture.png
    render/<name>_front.png
    anonymized/<stem>.<ext>
    report.json
    .done/<stem>.json          completion marker (written last), used by --resume

``<name>`` is ``<stem>`` for the main face and ``<stem>_face<k>`` for the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from faceanon import __version__
from faceanon.errors import FaceanonError

DONE_DIR = ".done"
LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")


@dataclass
class RunOptions:
    model: str = "lite"
    recon_tex_size: int = 1024
    tex_size: int = 2048
    alpha: float = 1.0
    keep_pose: bool = False
    keep_mouth: bool = False
    fill: str = "features"  # faceanon.stages.features.FILL_MODES
    privacy: str = "standard"  # faceanon.stages.privacy.PRIVACY_LEVELS; margin and brows are resolved from it
    brows: bool = True  # remove the eyebrows and paint the mean face's (False: --keep-brows)
    margin: float = 0.20  # = faceanon.stages.segment.DEFAULT_MARGIN
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

    def fingerprint(self) -> str:
        """Options (and the faceanon version) that made the outputs: a marker written by another
        version or with other options is not 'complete', so an upgrade redoes the images."""
        d = {**asdict(self), "faceanon_version": __version__}
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


def input_signature(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def marker_path(out: Path, stem: str) -> Path:
    return out / DONE_DIR / f"{stem}.json"


def in_progress_path(out: Path, stem: str) -> Path:
    """``OUT/.done/<stem>.inprogress``: present while an image is processed. Found by a later run
    with no completion marker, it means the process died on that image (a crash in native code,
    or a kill): the later run then processes it in a separate process, so it cannot take the
    whole run down twice."""
    return out / DONE_DIR / f"{stem}.inprogress"


def mark_in_progress(out: Path, stem: str, path: Path) -> None:
    """Create :func:`in_progress_path` (no fsync: only its existence matters, and after a power
    loss it may just be missing, which costs nothing)."""
    target = in_progress_path(out, stem)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"input": str(path), "pid": os.getpid()}) + "\n")
    except OSError as exc:
        from faceanon.io.atomic import output_error

        raise output_error(target, exc) from exc


def clear_in_progress(out: Path, stem: str) -> None:
    try:
        in_progress_path(out, stem).unlink(missing_ok=True)
    except OSError:
        pass


def died_on(out: Path, stem: str) -> bool:
    """True when an earlier run died while processing ``stem`` (see :func:`in_progress_path`)."""
    return in_progress_path(out, stem).is_file()


def is_complete(out: Path, path: Path, stem: str, opts: RunOptions) -> dict | None:
    """The previous report entry if ``stem`` was completed for this input with these options."""
    mp = marker_path(out, stem)
    try:
        data = json.loads(mp.read_text())
    except (OSError, ValueError):
        return None
    if data.get("input_signature") != input_signature(path) or data.get("options") != opts.fingerprint():
        return None
    report = data.get("report")
    if not isinstance(report, dict) or set(report) != {f.name for f in fields(ImageReport)}:
        return None  # another marker schema: redo rather than trust it
    outputs = report.get("outputs") or []
    if not all((out / str(o)).is_file() for o in outputs) or not outputs:
        return None
    return report


def process_image(
    path: Path,
    stem: str,
    out: Path,
    models: Models,
    opts: RunOptions,
    on_stage: Callable[[str], None] | None = None,
) -> ImageReport:
    """Run every stage for one image and wait for its files; raises on failure after removing what
    it had written."""
    return start_image(path, stem, out, models, opts, on_stage).result()


@dataclass
class PendingImage:
    """An image whose stages have run and whose files are being written in the background.

    ``result()`` waits until every file and then the completion marker are on disk and returns the
    report; if a write failed, it removes the image's outputs and raises the write error.
    """

    report: ImageReport
    commit: object  # Future of the marker write, queued after every output write of the image
    cleanup: Callable[[], None]

    def result(self) -> ImageReport:
        try:
            self.commit.result()
        except BaseException:
            self.cleanup()
            raise
        return self.report


def start_image(
    path: Path,
    stem: str,
    out: Path,
    models: Models,
    opts: RunOptions,
    on_stage: Callable[[str], None] | None = None,
) -> PendingImage:
    """Run every stage of one image now; queue its file writes and, last, its completion marker on
    the background writer, and return without waiting for them.

    The caller may start the next image while this one's files are written (encoding overlaps
    computing) and must call ``result()`` before reporting the image. A failure while computing
    removes what was written so far and raises.
    """
    report = ImageReport(input=str(path.resolve()), stem=stem)
    written: list[Path] = []
    previous = previous_outputs(out, stem)  # an earlier run's set is obsolete once we start over
    signature = input_signature(path)  # before reading: an input changed during the run is redone next time
    writer = BackgroundWriter()

    def cleanup() -> None:
        writer.drain()  # no write of this image may land after the cleanup
        remove_outputs(out, stem, written + previous)

    try:
        _out_op(marker_path(out, stem), lambda p: p.unlink(missing_ok=True))
        _process(path, stem, out, models, opts, on_stage, report, written, writer)
    except BaseException:
        cleanup()
        raise
    keep = set(written)
    stale = [p for p in previous if p not in keep]  # e.g. faces or formats the new outputs no longer have
    commit = writer.submit(_write_marker, writer.pending(), out, stem, signature, opts, report, stale)
    return PendingImage(report=report, commit=commit, cleanup=cleanup)


def _write_marker(prior: list, out: Path, stem: str, signature: dict, opts: RunOptions, report: ImageReport,
                  stale: list[Path]) -> None:
    """On the writer thread, after every output write of the image: the earlier run's outputs that
    the new set does not have are removed, then the completion marker is written - only if every
    write succeeded (the writer runs tasks in order, so they are all done here)."""
    from faceanon.io.atomic import atomic_write

    for fut in prior:
        exc = fut.exception()
        if exc is not None:
            raise exc
    for p in stale:
        _out_op(p, lambda q: q.unlink(missing_ok=True))
    secs = {k: v for k, v in report.seconds.items() if k != "total"}  # every stage has run by now
    report.seconds = {**{k: round(v, 4) for k, v in secs.items()}, "total": round(sum(secs.values()), 4)}
    marker = {
        "version": __version__,
        "input_signature": signature,
        "options": opts.fingerprint(),
        "report": asdict(report),
    }
    mp = marker_path(out, stem)
    _out_op(mp.parent, lambda p: p.mkdir(parents=True, exist_ok=True))
    with atomic_write(mp, "w") as fh:
        json.dump(marker, fh, indent=1)


class BackgroundWriter:
    """Runs output writes on one background thread, in submission order.

    PNG/JPEG encoding, zlib and file I/O release the GIL, so an image's files are written while the
    next stage computes. Errors surface through the futures (the completion marker task checks
    them); ``drain()`` only waits, so that no write lands after a cleanup.
    """

    _pool = None

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if BackgroundWriter._pool is None:
            BackgroundWriter._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceanon-writer")
        self._futures: list = []

    def submit(self, fn, *args, **kwargs):
        fut = self._pool.submit(fn, *args, **kwargs)
        self._futures.append(fut)
        return fut

    def pending(self) -> list:
        """The futures of the writes submitted so far."""
        return list(self._futures)

    def drain(self) -> None:
        for fut in self._futures:
            fut.exception()  # waits; the error itself is reported by the marker task
        self._futures.clear()


def previous_outputs(out: Path, stem: str) -> list[Path]:
    """The outputs listed by ``stem``'s completion marker, if any (only paths inside ``out``)."""
    try:
        rels = json.loads(marker_path(out, stem).read_text())["report"]["outputs"]
        root = out.resolve()
        paths = [out / str(rel) for rel in rels]
        return [p for p in paths if root in p.resolve().parents]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _out_op(path: Path, op: Callable[[Path], object]) -> None:
    """``op(path)`` on an output path (unlink, mkdir); an OSError becomes the one-line OutputError."""
    from faceanon.io.atomic import output_error

    try:
        op(path)
    except OSError as exc:
        raise output_error(path, exc) from exc


def remove_outputs(out: Path, stem: str, written: list[Path]) -> None:
    """Remove what a failed image wrote, so that no half set of outputs is left for a rerun to trust.

    Only this image's own files: ``written`` (every path is listed *before* it is written) and the
    files directly in its ``face3d/<stem>/`` folder (the reconstruct stage writes several there); then
    those folders when left empty. Never a whole folder: ``face3d/<stem>/<sub>/`` belongs to the
    input ``<stem>/<sub>.jpg`` of a recursive run, and ``anon/<stem>_face…/`` may be another input's.
    """
    recon_dir = out / "face3d" / stem
    paths = list(written)
    try:
        paths += [p for p in recon_dir.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        pass
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
    anon = out / "anon"
    for d in {recon_dir, *(p.parent for p in written if anon in p.parents)}:
        try:
            d.rmdir()  # only when empty
        except OSError:
            pass


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


def _process(path, stem, out, models, opts, on_stage, report, written, writer):
    from faceanon.io.formats import output_plan
    from faceanon.io.images import load_image, save_image_atomic
    from faceanon.io.mesh import write_obj
    from faceanon.stages.anonymize import anonymize_face
    from faceanon.stages.composite import (CompositeFace, FaceFeatures, composite_extension, composite_image,
                                           write_composite)
    from faceanon.stages.reconstruct import obj_vertices, reconstruct_image, write_reconstruction
    from faceanon.stages.anonymize import FeatureSpec
    from faceanon.stages.features import brow_colour, skin_chroma
    from faceanon.stages.segment import FaceMesh, SegmentFace, segment_image

    secs = report.seconds

    def stage(name: str):
        if on_stage:
            on_stage(name)
        return time.perf_counter()

    t = stage("load")
    image = load_image(path, max_pixels=opts.max_pixels)
    plan = output_plan(image, out, lossless=opts.lossless, strict=opts.strict)  # DICOM out, format notes
    report.notes += plan.notes
    secs["load"] = time.perf_counter() - t

    t = stage("reconstruct")
    # The extracted texture is only written, never used by the later stages: it is baked on the
    # writer thread (as is the frontal render below), which balances the work over the 2 cores.
    recon = reconstruct_image(image, stem, models.detector, models.backend, tex_size=opts.recon_tex_size,
                              max_faces=opts.max_faces or None, extract_texture=False)
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
                                  grain=features_on, margin=opts.margin,
                                   feather_px=opts.feather_px)
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
        d = out / "anon" / Path(stem).parent / f.name
        _out_op(d, lambda p: p.mkdir(parents=True, exist_ok=True))
        tex_path = d / f"{f.name}_texture.png"
        obj_path = d / f"{f.name}.obj"
        written += [tex_path, obj_path, obj_path.with_suffix(".mtl")]
        writer.submit(save_image_atomic, tex_path, a.texture)
        writer.submit(write_obj, obj_path, a.vertices, fit.uv, fit.triangles, texture_png_name=tex_path.name)
        anon_faces.append((f, a))
    secs["anonymize"] = time.perf_counter() - t

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
    ext = composite_extension(image)
    if opts.lossless and ext in LOSSY_EXTENSIONS:
        ext = ".png"
    ext, write = plan.output(ext, write_composite)
    cp = out / "anonymized" / f"{stem}{ext}"
    written.append(cp)
    writer.submit(write, cp, composite, original=image)
    secs["composite"] = time.perf_counter() - t

    report.outputs = [str(p.relative_to(out)) for p in written]
    return report  # report.seconds is completed by the writer tasks and finalized in _write_marker


def write_report(out: Path, reports: list[ImageReport], opts: RunOptions, started: float) -> Path:
    from faceanon.io.atomic import atomic_write

    ok = sum(r.status == "ok" for r in reports)
    skipped = sum(r.status == "skipped" for r in reports)
    failed = sum(r.status == "failed" for r in reports)
    data = {
        "faceanon_version": __version__,
        "options": asdict(opts),
        "summary": {"images": len(reports), "ok": ok, "skipped": skipped, "failed": failed,
                    "seconds": round(time.time() - started, 3)},
        "images": [asdict(r) for r in reports],
    }
    path = out / "report.json"
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=1)
    return path


def failure_reason(path: Path, exc: BaseException) -> str:
    """One line saying why ``path`` failed, without repeating the path (the caller names the file)."""
    if isinstance(exc, FaceanonError):
        text = exc.one_line()
    else:
        text = " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
    for prefix in (f"{path}: ", f"{Path(path).resolve()}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def failure_report(path: Path, stem: str, exc: BaseException) -> ImageReport:
    return ImageReport(input=str(path.resolve()), stem=stem, status="failed", error=failure_reason(path, exc))
