"""The Python API: :class:`Anonymizer` - the models loaded once, every ``faceanon run`` option as a keyword.

Example (the model files must be present: ``faceanon assets download --accept-license``)::

    from faceanon import Anonymizer

    anon = Anonymizer(model="lite", alpha=1.0, keep_mouth=False)
    result = anon.anonymize(rgb)              # (H, W, 3) uint8 RGB -> result.image (H, W, 3) uint8
    for face in result.faces:                 # main face first
        print(face.name, face.box, face.pose)
    anon.anonymize_file("in.jpg", "out.jpg")  # the file policy of `faceanon run`
    anon.run("photos/", "out/")               # a whole folder, exactly as `faceanon run photos/ out/`

Errors are the project's one family (:class:`faceanon.errors.FaceanonError`), with the one-line
messages ``faceanon run`` prints: :class:`~faceanon.errors.ImageError` for an unreadable file or a
bad array, :class:`~faceanon.errors.NoFaceError` when no face is found,
:class:`~faceanon.errors.AssetError` for a missing model file, :class:`~faceanon.errors.UsageError`
for a bad option.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from faceanon.errors import ImageError, UsageError
from faceanon.models.registry import DEFAULT_MODEL
from faceanon.stages.pipeline import Processed, RunOptions, image_chain, output_extension, run_chain


@dataclass
class FaceRecord:
    """One anonymized face.

    name:        output name (``image`` for the main face of an array, else the file stem; ``<name>_face<k>``
                 for the k-th other face)
    box:         (4,) float32 detector box [x1, y1, x2, y2] in image px (x right, y down)
    score:       detector score in [0, 1]
    landmarks68: (68, 2) float32 image px (iBUG order) of the ORIGINAL face
    pose:        (3,) float32 yaw, pitch, roll in degrees (see README, projections keys)
    fit:         the :class:`~faceanon.types.FaceFit` (vertices (N, 3) image px, triangles, uv, labels...)
    anonymized:  the :class:`~faceanon.stages.anonymize.AnonymizedFace` (the morphed face in the model's
                 canonical frame (N, 3), texture (T, T, 3) uint8, posed_image_vertices (N, 3) image px)
    """

    name: str
    box: np.ndarray
    score: float
    landmarks68: np.ndarray
    pose: np.ndarray
    fit: object = field(repr=False)
    anonymized: object = field(repr=False)


@dataclass
class AnonymizeResult:
    """image: (H, W, 3) uint8 RGB, the anonymized photo (equal to the input away from the faces);
    faces: one :class:`FaceRecord` per face, main face (highest detector score) first;
    seconds: compute seconds per stage."""

    image: np.ndarray
    faces: list[FaceRecord]
    seconds: dict = field(default_factory=dict)


_OPTION_NAMES = tuple(f.name for f in fields(RunOptions))


def _renamed(options: dict) -> dict:
    """``options`` with the keywords of the previous release renamed (one DeprecationWarning each)."""
    import warnings

    from faceanon.options import DEPRECATED_KEYWORDS

    out = dict(options)
    for old, (new, convert) in DEPRECATED_KEYWORDS.items():
        if old in out:
            warnings.warn(f"Anonymizer({old}=...) is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
            value = out.pop(old)
            if new in out:
                raise UsageError(f"Anonymizer: {old} and {new} name the same option", f"pass only {new}")
            out[new] = convert(value)
    return out


class Anonymizer:
    """Anonymizes photos in memory or on disk; the models are loaded once, at construction.

    model:   a model set of :mod:`faceanon.models.registry`: ``"lite"`` (default) or ``"3ddfa-v3"``
    options: any :class:`~faceanon.options.RunOptions` field as a keyword - ``alpha``,
             ``keep_pose``, ``keep_mouth``, ``privacy``, ``margin``, ``keep_brows``, ``feather_px``,
             ``tex_size``, ``img_size``, ``frame_fill``, ``background``, ``max_pixels``,
             ``min_face_size``, ``max_faces``, ``threshold``, ``lossless``, ``outputs`` (for
             :meth:`run`)... with the defaults and bounds of ``faceanon run`` (:mod:`faceanon.options`).
             The keywords of the previous release ``render_margin`` (now ``frame_fill``) and
             ``brows`` (now ``keep_brows``, inverted) still work, with a DeprecationWarning.
    mirror, offline: the asset store rules of ``--mirror`` / ``--offline`` (default: the environment)

    Raises UsageError for an unknown option or a bad value, AssetError when a model file is missing
    or corrupt (hint: ``faceanon assets download``).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, mirror: str | None = None, offline: bool = False, **options) -> None:
        from faceanon.runner.models import load_models, require_assets, store_for

        options = _renamed(options)
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise UsageError(f"Anonymizer: unknown option {unknown[0]!r}", f"known options: {', '.join(_OPTION_NAMES)}")
        self.options = RunOptions(model=model, **options).check()
        self._store_args = (mirror, bool(offline))
        store = store_for(self._store_args)
        require_assets(store, self.options.model)
        self.models = load_models(store, self.options)
        self._in_memory = replace(self.options, outputs=(), vis=False)  # anonymize(): nothing is written

    def anonymize(self, rgb: np.ndarray) -> AnonymizeResult:
        """Anonymize every face of an RGB image.

        rgb: (H, W, 3) uint8 RGB, upright (apply the EXIF orientation first), each side >= 16 px;
        never modified. Returns :class:`AnonymizeResult` (``image`` has the same shape and dtype).
        Raises ImageError for another shape/dtype or a too small image, NoFaceError when no face is found.
        """
        from faceanon.io.images import MIN_SIDE
        from faceanon.types import ImageRecord

        arr = np.asarray(rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageError(f"image array must be (H, W, 3) uint8 RGB, got {arr.dtype} {arr.shape}",
                             "convert it first, e.g. np.asarray(PIL.Image.open(path).convert('RGB'))")
        h, w = arr.shape[:2]
        if h < MIN_SIDE or w < MIN_SIDE:
            raise ImageError(f"image is {w}×{h} px, too small to hold a face (minimum {MIN_SIDE}×{MIN_SIDE})")
        image = ImageRecord(path=None, rgb=np.array(arr, dtype=np.uint8, order="C", copy=True))
        return self._result(*self._compute(image, "image"))

    def anonymize_file(self, src: Path | str, dst: Path | str) -> Path:
        """Anonymize the photo ``src`` into ``dst`` with the file policy of ``faceanon run``: EXIF
        orientation baked into the pixels, no EXIF/GPS/maker notes/thumbnail, the ICC profile kept,
        JPEG quality max(95, the input's), an atomic write; the bytes are those of
        ``OUT/anonymized/<stem>.<ext>`` of a run with the same options.

        dst: the output file (its extension picks the format), or an existing folder: then
        ``dst/<stem><ext>`` with the extension ``run`` would use. Returns the written path.
        Raises ImageError (unreadable input), NoFaceError, OutputError (cannot write), UsageError
        (``dst`` is ``src``).
        """
        from faceanon.io.formats import output_plan
        from faceanon.stages.composite import write_composite

        src, dst = Path(src), Path(dst)
        processed, _ = self._compute(src, src.stem)
        # a DICOM input is written as DICOM (its de-identification key next to the output), as `run` does
        plan = output_plan(processed.image, None, lossless=self.options.lossless, strict=self.options.strict)
        ext, write = plan.output(output_extension(processed.image, self.options), write_composite)
        if dst.is_dir():
            dst = dst / f"{src.stem}{ext}"
        if dst.exists() and src.exists() and dst.resolve() == src.resolve():
            raise UsageError(f"{dst}: the output would overwrite the input", "choose another output path")
        return write(dst, processed.composite, original=processed.image)

    def run(self, inp: Path | str, out: Path | str, *, recursive: bool = False, resume: bool = True,
            force: bool = False, jobs: int = 1, scheduler: str | None = None, events=None):
        """``faceanon run IN OUT`` with this Anonymizer's options: returns a
        :class:`~faceanon.runner.RunResult` (per-image reports, report.json path, exit code).
        ``jobs`` local worker processes, or ``scheduler`` a Dask scheduler address; ``events`` a
        :class:`~faceanon.runner.RunEvents` for progress."""
        from faceanon.runner import Runner

        mirror, offline = self._store_args
        runner = Runner(self.options, jobs=jobs, scheduler=scheduler, mirror=mirror, offline=offline, events=events)
        return runner.run(inp, out, recursive=recursive, resume=resume, force=force)

    def _compute(self, source, stem: str) -> tuple[Processed, dict]:
        """The stage chain on a file (Path) or a decoded ImageRecord, writing nothing."""
        processed = run_chain(image_chain(source, stem, None, self.models, self._in_memory))
        return processed, processed.seconds

    @staticmethod
    def _result(p: Processed, seconds: dict) -> AnonymizeResult:
        faces = [FaceRecord(name=f.name, box=np.asarray(f.fit.detection.box, np.float32),
                            score=float(f.fit.detection.score), landmarks68=f.fit.landmarks68, pose=f.fit.pose,
                            fit=f.fit, anonymized=a) for f, a in p.faces]
        return AnonymizeResult(image=p.composite, faces=faces, seconds={k: round(v, 4) for k, v in seconds.items()})
