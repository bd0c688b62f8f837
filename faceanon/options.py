"""The options of the stages: one record per stage, each default and bound written once.

Every option is a :class:`Spec` (its command-line name, default, bounds or choices, and help);
the records below are made of them:

* :class:`ReconstructOptions` (with :class:`DetectOptions`), :class:`SegmentOptions`,
  :class:`AnonymizeOptions`, :class:`RenderOptions`, :class:`CompositeOptions`: one per stage;
* :class:`RunOptions`: every stage's record at once (``faceanon run``, :class:`faceanon.Anonymizer`,
  :class:`faceanon.runner.Runner`), plus the run's own options.

``faceanon run`` and the stage commands build their options from the same specs
(:mod:`faceanon.cli.options`), the stage functions take their keyword defaults from them, and
:meth:`Options.check` applies the same bounds to values given through the Python API. One name per
meaning:

==================  =======================================================  ======================
option              meaning                                                  commands
==================  =======================================================  ======================
``--margin``        removal margin, fraction of the 3D inter-ocular distance  segment, run
``--feather-px``    width of the removal mask's outward alpha ramp (px)      segment, run
``--blend-px``      blend width at the border of a PASTED face (px)           composite
``--frame-fill``    fraction of the render frame the face fills               render, run
``--tex-size``      side of the anonymized UV texture                         anonymize, run
``--recon-tex-size`` side of the texture extracted from the photo             reconstruct, run
``--seg``           the output folder of ``faceanon segment``                 anonymize, composite
``--images``        the original photos                                       segment, composite
==================  =======================================================  ======================

The spellings they replace (render ``--margin``, composite ``--feather-px``, reconstruct
``--tex-size``, anonymize ``--images``) still work for one release, with a warning
(:mod:`faceanon.cli.options`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from faceanon.checks import DEFAULT_MAX_PIXELS
from faceanon.errors import UsageError
from faceanon.io.layout import FACE3D, OUTPUT_KINDS
from faceanon.models.registry import DEFAULT_MODEL, MODEL_NAMES, MODELS
from faceanon.stages.privacy import DEFAULT_PRIVACY, PRIVACY_LEVELS

__all__ = [
    "Spec", "Options", "DetectOptions", "ReconstructOptions", "SegmentOptions", "AnonymizeOptions",
    "RenderOptions", "CompositeOptions", "RunOptions", "SAFE_OUTPUTS", "parse_outputs",
]


@dataclass(frozen=True)
class Spec:
    """One option: ``flag`` (its command-line name; the field name is the flag without dashes,
    ``-`` -> ``_``), ``default``, inclusive bounds ``min``/``max`` or ``choices``, and ``help``."""

    flag: str
    default: Any
    help: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[tuple[str, ...]] = None

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def field(self):
        """The dataclass field of a record holding this option."""
        return field(default=self.default, metadata={"spec": self})

    def check(self, value: Any) -> None:
        """Raise UsageError naming the flag when ``value`` is outside the option's type or bounds."""
        d = self.default
        if value is None and d is None:
            return
        if self.choices is not None:
            if value not in self.choices:
                raise UsageError(f"{self.flag} must be {self.one_of()}, got {value!r}")
        elif isinstance(d, bool):
            if not isinstance(value, bool):
                raise UsageError(f"{self.flag} must be true or false, got {value!r}")
        elif isinstance(d, int):
            if isinstance(value, bool) or not isinstance(value, int) or not self._inside(value):
                raise UsageError(f"{self.flag} must be an integer in {self._range()}, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not self._inside(value):
            raise UsageError(f"{self.flag} must be in {self._range()}, got {value!r}")

    def one_of(self) -> str:
        """The choices as words: ``a or b``, ``one of a, b, c``."""
        c = self.choices or ()
        return " or ".join(c) if len(c) <= 2 else f"one of {', '.join(c)}"

    def _inside(self, v: float) -> bool:
        return (self.min is None or v >= self.min) and (self.max is None or v <= self.max)

    def _range(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"[{lo}, {hi}]"


def _texture_help(what: str) -> str:
    return (f"{what} (px); a face small in its photo is sampled at the resolution it has (>= 2 texels per "
            "photo pixel) and resampled to this size.")


# ------------------------------------------------------------------------------------ the options

MODEL = Spec("--model", DEFAULT_MODEL, "Reconstruction model: " + " or ".join(s.summary for s in MODELS.values()) + ".",
             choices=MODEL_NAMES)
RECON_TEX_SIZE = Spec("--recon-tex-size", 1024, _texture_help("Side of the texture extracted from the photo"),
                      min=64, max=8192)
MIN_FACE_SIZE = Spec("--min-face-size", 40, "Ignore faces whose box is smaller than this (px).", min=0)
MAX_FACES = Spec("--max-faces", 0, "Keep at most this many faces per image (0 = all).", min=0)
THRESHOLD = Spec("--threshold", None, "Face detector score threshold (default: "
                 + ", ".join(f"{s.threshold:g} {s.name}" for s in MODELS.values()) + ").", min=0.0, max=0.99)
MAX_PIXELS = Spec("--max-pixels", DEFAULT_MAX_PIXELS, "Refuse images larger than this many pixels (checked before decoding).",
                  min=1)
VIS = Spec("--vis", False, "Also write reconstruction overlays (part labels, box, landmarks).")

def _level(lv) -> str:
    what = "eyes, lips and eyebrows" if lv.brows else "eyes and lips (the person's eyebrows kept)"
    return f"{lv.name} = {what}, margin {lv.margin:g}"


PRIVACY = Spec(
    "--privacy", DEFAULT_PRIVACY,
    "How much is removed and redrawn: " + "; ".join(_level(lv) for lv in PRIVACY_LEVELS.values())
    + " (margins: fractions of the inter-ocular distance). Measured trade-off in bench/privacy.md.",
    choices=tuple(PRIVACY_LEVELS))
MARGIN = Spec(
    "--margin", None,
    "Removal margin around the removed parts, as a fraction of the face's inter-ocular distance measured in 3D "
    "(default: from --privacy). Smaller keeps more skin but leaves faces easier to re-identify (see "
    "`faceanon audit`).", min=0.0, max=2.0)
KEEP_BROWS = Spec("--keep-brows", False, "Keep the person's eyebrows (only moved with the face's new shape).")
KEEP_MOUTH = Spec("--keep-mouth", False, "Keep the lips (only the eyes are removed and redrawn).")
FILL = Spec(
    "--fill", "features",
    "What replaces the removed eyes and lips: 'features' draws closed eyes with a lash line and lips from the "
    "mean face, coloured from the person's skin (identity-free, reads as a face); 'inpaint' leaves the "
    "skin-coloured fill of the segment stage (the seed's look).",
    choices=("features", "inpaint"))
FEATHER_PX = Spec("--feather-px", 3.0, "Width (px) of the removal mask's alpha ramp OUTSIDE the removed area; alpha "
                  "is exactly 0 inside.", min=0.0, max=200.0)

ALPHA = Spec("--alpha", 1.0, "Morph strength: 0 = the person's own shape, 1 = the mean face's shape, above 1 = "
             "past the mean, away from the person's own shape (identity only; 2 = as far beyond the mean as the "
             "person is from it). Above 1 the anonymized mesh and photo carry the person's shape mirrored "
             "through the mean, which whoever knows --alpha can undo (docs/anonymization.md).", min=0.0, max=2.0)
KEEP_POSE = Spec("--keep-pose", False, "Write the anonymized mesh at the original pose, position and head scale "
                 "(photo frame) instead of the canonical frontal pose.")
TEX_SIZE = Spec("--tex-size", 2048, _texture_help("Side of the anonymized UV texture"), min=64, max=8192)

IMG_SIZE = Spec("--img-size", 1024, "Side of the square frontal render (px).", min=16, max=8192)
FRAME_FILL = Spec("--frame-fill", 0.95, "Fraction of the render frame filled by the larger extent of the face.",
                  min=0.05, max=1.0)
BACKGROUND = Spec("--background", "transparent", "Render background: transparent (RGBA, anti-aliased alpha) or "
                  "white (RGB).", choices=("transparent", "white"))
SUPERSAMPLE = Spec("--supersample", 2, "Anti-aliasing of the render: render at N x the size, then average.",
                   min=1, max=4)
RENDERER = Spec(
    "--renderer", "builtin",
    "builtin (default, well under 1 s per mesh) or pytorch3d (needs PyTorch3D; same camera and image). "
    "PyTorch3D on a CPU is slow: ~54 s per mesh at --img-size 256, ~14 min at the default 1024; on a CUDA GPU "
    "it uses its binned rasterizer.",
    choices=("builtin", "pytorch3d"))

BLEND_PX = Spec("--blend-px", None, "Blend width at the face border in px (default: 2% of the face size); only for "
                "meshes pasted over the photo (the seed's reconstructions).", min=0.0, max=500.0)


# ------------------------------------------------------------------------------------ the records


@dataclass
class Options:
    """Base of the option records: :meth:`check` applies every field's :class:`Spec`."""

    def check(self):
        """Raise UsageError (naming the command-line option) for a value the command line refuses;
        returns ``self``."""
        for f in fields(self):
            spec = f.metadata.get("spec")
            if spec is not None:
                spec.check(getattr(self, f.name))
        return self


@dataclass
class DetectOptions(Options):
    """Which model, and which faces of an image it keeps."""

    model: str = MODEL.field()
    min_face_size: int = MIN_FACE_SIZE.field()
    max_faces: int = MAX_FACES.field()
    threshold: Optional[float] = THRESHOLD.field()  # None: the model's own default
    max_pixels: int = MAX_PIXELS.field()


@dataclass
class ReconstructOptions(DetectOptions):
    recon_tex_size: int = RECON_TEX_SIZE.field()
    vis: bool = VIS.field()


@dataclass
class SegmentOptions(Options):
    privacy: str = PRIVACY.field()
    margin: Optional[float] = MARGIN.field()  # None: the privacy level's
    keep_brows: bool = KEEP_BROWS.field()
    keep_mouth: bool = KEEP_MOUTH.field()
    fill: str = FILL.field()
    feather_px: float = FEATHER_PX.field()

    @property
    def features(self) -> bool:
        """``--fill features``: the pose-aware removal from the 3D face, and redrawn features."""
        return self.fill == "features"

    @property
    def removal_margin(self) -> float:
        """The margin (fraction of the 3D inter-ocular distance): ``margin``, else the level's."""
        return PRIVACY_LEVELS[self.privacy].margin if self.margin is None else float(self.margin)

    @property
    def remove_brows(self) -> bool:
        """Remove (and redraw) the eyebrows: the level's choice unless ``keep_brows``; only where
        they are redrawn (``--fill features``)."""
        return PRIVACY_LEVELS[self.privacy].brows and not self.keep_brows and self.features


@dataclass
class AnonymizeOptions(Options):
    alpha: float = ALPHA.field()
    keep_pose: bool = KEEP_POSE.field()
    tex_size: int = TEX_SIZE.field()
    fill: str = FILL.field()
    keep_mouth: bool = KEEP_MOUTH.field()


@dataclass
class RenderOptions(Options):
    img_size: int = IMG_SIZE.field()
    frame_fill: float = FRAME_FILL.field()
    background: str = BACKGROUND.field()
    supersample: int = SUPERSAMPLE.field()
    renderer: str = RENDERER.field()

    def check(self):
        super().check()
        from faceanon.stages.render import MAX_INTERNAL_SIZE

        if self.img_size * self.supersample > MAX_INTERNAL_SIZE:
            raise UsageError(f"--img-size x --supersample = {self.img_size * self.supersample} px is above "
                             f"{MAX_INTERNAL_SIZE}", "lower --img-size or --supersample")
        return self


@dataclass
class CompositeOptions(Options):
    blend_px: Optional[float] = BLEND_PX.field()  # None: 2 % of each face's size


#: What ``run`` writes by default: the folders that are meant to leave the machine (see README,
#: "What is safe to share"). face3d/ holds the original face texture and seg/ the photo with only
#: the eyes and mouth cut out: written only on request, for debugging.
SAFE_OUTPUTS = OUTPUT_KINDS[:3]


def parse_outputs(value: str | tuple | list | None) -> tuple[str, ...]:
    """``"all"``, a comma list (``"anonymized,face3d"``) or a sequence of output kinds -> the kinds in
    :data:`~faceanon.io.layout.OUTPUT_KINDS` order; ``None`` -> :data:`SAFE_OUTPUTS`. Raises
    UsageError naming a bad one."""
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
class RunOptions(CompositeOptions, RenderOptions, AnonymizeOptions, SegmentOptions, ReconstructOptions):
    """Every option of ``faceanon run``: each stage's record, plus

    lossless: write the anonymized photo of a lossy input (jpg, webp) as PNG
    strict:   refuse DICOM inputs whose Burned In Annotation is not NO
    outputs:  the OUT folders written (:data:`~faceanon.io.layout.OUTPUT_KINDS`): ``"all"``, a comma
              list or a sequence; None = :data:`SAFE_OUTPUTS`; ``()`` = none (the Python API)
    """

    lossless: bool = False
    strict: bool = False
    outputs: tuple = SAFE_OUTPUTS

    def __post_init__(self) -> None:
        empty = self.outputs is not None and not isinstance(self.outputs, str) and not len(self.outputs)
        self.outputs = () if empty else parse_outputs(self.outputs)

    def check(self) -> "RunOptions":
        super().check()
        if self.vis and FACE3D not in self.outputs:
            raise UsageError(f"--vis writes its overlays into {FACE3D}/, which is not among the outputs",
                             f"add {FACE3D} to --outputs (e.g. --outputs all)")
        return self

    def fingerprint(self) -> str:
        """Options (and the faceanon version) that made the outputs: a marker written by another
        version or with other options is not 'complete', so an upgrade redoes the images."""
        from faceanon import __version__

        d = {**asdict(self), "faceanon_version": __version__}
        d["outputs"] = list(self.outputs)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: Keywords of earlier releases of :class:`RunOptions` / :class:`faceanon.Anonymizer`, accepted for
#: one release with a DeprecationWarning: old name -> (new name, value mapping).
DEPRECATED_KEYWORDS = {
    "render_margin": ("frame_fill", lambda v: v),
    "brows": ("keep_brows", lambda v: not v),
}
