"""The audit itself: re-identification distances and pixel residuals for every face of a run output.

Two attackers hold the ORIGINAL photo and try to match it with the published outputs using dlib's
128-D ResNet face descriptor (Euclidean distance; same person below ~0.6):

* **strong** - knows where the face is: the original and the anonymized composite are both aligned with
  the run's own ``landmarks68`` (the composite shows the face at the same pose). The frontal render has
  no known landmarks, so it is aligned by a fresh dlib detection + 68-point shape predictor (NaN and a
  note when dlib finds no face in it).
* **weak** - an off-the-shelf pipeline: dlib's HOG detector + shape predictor on each image, the
  detection matched to the run's face by box overlap. "Not detected" counts as not re-identified and is
  reported. If dlib misses the face in the original, the weak attacker's gallery falls back to the
  landmark-aligned original (``weak_original_detected`` = False).

A face is **re-identified** (``reidentified``) when the strong attacker's distance to the composite or
to the render is below the threshold. Faces the weak attacker finds in an anonymized photo where the
run reconstructed none are reported as rows with status ``missed_face`` (re-identified when the weak
distance to the same place of the original is below the threshold).

The **eraser baseline** separates what the anonymizer leaks from what the rest of the photo gives away:
the same strong attacker against the ORIGINAL with the face box painted grey (``eraser_dist`` /
``eraser_reid``; face box: :mod:`faceanon.audit.metrics`). At full profile a recognizer matches hair,
ears and outline; a composite match that the eraser also gets is not the anonymizer's fault. A face is
**re-identified beyond the eraser baseline** (``reid_beyond_eraser``) when the strong attacker
re-identifies the frontal render (it shows no context), or re-identifies the composite while the eraser
image is NOT re-identified. A missed face is re-identified beyond the eraser when it is re-identified.

More than one recognizer ("attacker", :mod:`faceanon.audit.attackers`) can attack: the row's strong_*,
eraser_* and ``reid_beyond_eraser`` fields are dlib's (the primary attacker); every attacker, dlib
included, gets one :class:`AttackRow` per face (``AuditResult.attacks``, audit.json ``attacks`` and
audit_attacks.csv), and ``reid_beyond_eraser_by`` names the attackers that re-identify the face beyond
their eraser baseline.

Pose: ``pose_yaw`` is the ground-truth yaw when the original has an AFLW2000-3D / 300W-LP ``.mat`` next
to it, else the run's fitted yaw (``pose_source`` "gt" / "fit"); ``pose_bucket`` is "<30", "30-60" or
">60" of |yaw| in degrees (:mod:`faceanon.audit.pose`). :meth:`AuditResult.by_pose` tabulates the figures
per bucket.

Row statuses: ``ok``; ``error`` (this face could not be audited: the reason is in ``error``);
``run_failed`` (report.json says the run failed on the image: nothing to audit); ``missed_face``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from faceanon.audit import layout as _layout
from faceanon.audit import metrics as _m
from faceanon.audit import pose as _pose
from faceanon.audit.metrics import DEFAULT_TOLERANCE, face_region_stats
from faceanon.errors import FaceanonError, UsageError
from faceanon.io.atomic import atomic_write
from faceanon.io.records import read_npz

DEFAULT_THRESHOLD = 0.6
AUDIT_VERSION = 2  # 2: eraser baseline, attacks table, pose buckets, moved eye, skin mean colour, far pixels
NAN = float("nan")


@dataclass
class FaceAudit:
    """One row of the audit: one face of one image (flat, so that JSON and CSV hold the same rows).

    Distances are NaN and flags None where they could not be computed (``error`` / ``render_note`` say why).
    """

    stem: str
    face: int  # k of the run's files: 0 main face, k = _face<k>; -1 for a missed_face row
    status: str = "ok"
    error: str = ""
    original: str = ""
    anonymized: str = ""
    render: str = ""
    face_index: Optional[int] = None
    face_count: Optional[int] = None
    backend: str = ""
    score: float = NAN
    yaw: float = NAN  # the run's fitted pose, degrees
    pitch: float = NAN
    roll: float = NAN
    # pose used for the buckets: ground-truth yaw (sibling .mat) when there is one, else the fitted yaw
    gt_yaw: float = NAN
    pose_yaw: float = NAN
    pose_source: str = ""  # "gt", "fit" or "" (unknown)
    pose_bucket: str = ""  # "<30", "30-60", ">60" (|pose_yaw| in degrees) or "" (unknown)
    pose_note: str = ""
    face_size: float = NAN  # sqrt(area) of the face box (union of the run's box and the landmarks' box), px
    # strong attacker (run landmarks)
    strong_composite_dist: float = NAN
    strong_composite_reid: Optional[bool] = None
    strong_render_dist: float = NAN
    strong_render_reid: Optional[bool] = None
    render_note: str = ""
    # weak attacker (fresh dlib detection)
    weak_original_detected: Optional[bool] = None
    weak_composite_detected: Optional[bool] = None
    weak_composite_dist: float = NAN
    weak_composite_reid: Optional[bool] = None
    weak_render_detected: Optional[bool] = None
    weak_render_dist: float = NAN
    weak_render_reid: Optional[bool] = None
    reidentified: Optional[bool] = None
    # eraser baseline (strong attacker against the original with the face box painted grey)
    eraser_dist: float = NAN
    eraser_reid: Optional[bool] = None
    reid_beyond_eraser: Optional[bool] = None  # dlib: render re-identified, or composite but not the eraser
    reid_beyond_eraser_by: str = ""  # attackers (any recognizer) re-identifying beyond their eraser, "+"-joined
    # pixel residuals (ΔE00 original vs composite)
    eye_pixels: Optional[int] = None
    eye_residual: float = NAN
    eye_residual_moved: float = NAN  # at the best shift within 0.15 x face_size, each eye its own shift
    eye_residual_chance: float = NAN  # the same search over shifts just beyond that radius (coincidence level)
    eye_de_mean: float = NAN
    mouth_pixels: Optional[int] = None
    mouth_residual: float = NAN
    mouth_de_mean: float = NAN
    skin_pixels: Optional[int] = None
    skin_de_mean: float = NAN
    skin_de_median: float = NAN
    skin_mean_colour_de: float = NAN  # ΔE00 of the skin's mean Lab colour, original vs composite
    # per image (the same on every face row of the image): pixels farther than 0.5 x face size from every face
    far_pixels: Optional[int] = None
    far_changed: float = NAN  # share of them with ΔE00 >= tolerance


FIELD_NAMES = [f.name for f in fields(FaceAudit)]
_HINTS = typing.get_type_hints(FaceAudit)


def _base_type(name: str, hints=None):
    t = (hints or _HINTS)[name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def rows_equal(a: list, b: list) -> bool:
    """Row lists (FaceAudit or AttackRow) equal field by field (NaN equals NaN)."""
    return len(a) == len(b) and all(
        type(x) is type(y) and all(_same(getattr(x, f.name), getattr(y, f.name)) for f in fields(x))
        for x, y in zip(a, b))


@dataclass
class AttackRow:
    """One attacker against one face (the ``attacks`` table): the strong attacker's distances to the
    composite, the render and the eraser image, each with its re-identified flag (distance < threshold)."""

    stem: str
    face: int
    attacker: str
    threshold: float = NAN
    composite_dist: float = NAN
    composite_reid: Optional[bool] = None
    render_dist: float = NAN
    render_reid: Optional[bool] = None
    eraser_dist: float = NAN
    eraser_reid: Optional[bool] = None
    reidentified: Optional[bool] = None  # composite or render
    reid_beyond_eraser: Optional[bool] = None  # render, or composite without the eraser


ATTACK_FIELD_NAMES = [f.name for f in fields(AttackRow)]
_ATTACK_HINTS = typing.get_type_hints(AttackRow)


def beyond_eraser(composite_reid: Optional[bool], render_reid: Optional[bool],
                  eraser_reid: Optional[bool]) -> Optional[bool]:
    """Re-identified beyond the eraser baseline: the render is re-identified (it shows no context), or the
    composite is and the eraser image is not (an eraser that could not be computed excuses nothing).
    None when neither the composite nor the render was attacked."""
    if composite_reid is None and render_reid is None:
        return None
    return bool(render_reid) or (bool(composite_reid) and not bool(eraser_reid))


def _nanmean(vals) -> float:
    v = np.array([x for x in vals if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else NAN


def _count(rows, attr: str) -> int:
    return sum(bool(getattr(r, attr)) for r in rows)


def _nanmedian(vals) -> float:
    v = np.array([x for x in vals if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else NAN


def face_figures(rows: List[FaceAudit], attacks: List[AttackRow], attackers: List[str]) -> Dict[str, object]:
    """The pose table's figures over a set of audited faces (status ok) and their attack rows.

    faces; gt_pose (faces whose yaw is ground truth); per attacker ``<name>_reid`` (strong attacker
    re-identifies the composite or the render), ``<name>_eraser_reid``, ``<name>_reid_beyond_eraser``
    (counts); ``reid_beyond_eraser_any`` (faces some attacker re-identifies beyond its eraser);
    ``detected_original`` / ``detected_both`` / ``detection_kept`` (faces dlib's detector finds in the
    original; of those, also in the anonymized photo; their ratio); mean ``eye_residual`` /
    ``eye_residual_moved`` / ``eye_residual_chance`` / ``mouth_residual``; median ``skin_mean_colour_de``.
    """
    keys = {(r.stem, r.face) for r in rows}
    out: Dict[str, object] = {"faces": len(rows), "gt_pose": sum(r.pose_source == "gt" for r in rows)}
    for name in attackers:
        mine = [a for a in attacks if a.attacker == name and (a.stem, a.face) in keys]
        out[f"{name}_reid"] = _count(mine, "reidentified")
        out[f"{name}_eraser_reid"] = _count(mine, "eraser_reid")
        out[f"{name}_reid_beyond_eraser"] = _count(mine, "reid_beyond_eraser")
    out["reid_beyond_eraser_any"] = sum(bool(r.reid_beyond_eraser_by) for r in rows)
    det = [r for r in rows if r.weak_original_detected]
    both = [r for r in det if r.weak_composite_detected]
    out["detected_original"] = len(det)
    out["detected_both"] = len(both)
    out["detection_kept"] = len(both) / len(det) if det else NAN
    out["eye_residual"] = _nanmean(r.eye_residual for r in rows)
    out["eye_residual_moved"] = _nanmean(r.eye_residual_moved for r in rows)
    out["eye_residual_chance"] = _nanmean(r.eye_residual_chance for r in rows)
    out["mouth_residual"] = _nanmean(r.mouth_residual for r in rows)
    out["skin_mean_colour_de_median"] = _nanmedian(r.skin_mean_colour_de for r in rows)
    return out


@dataclass
class AuditResult:
    """All rows of an audit and the settings it ran with.

    rows: one :class:`FaceAudit` per face; attacks: one :class:`AttackRow` per (face, attacker);
    attackers: the attacker names, primary (dlib) first.
    """

    run_out: str
    threshold: float
    residual_tolerance: float
    rows: List[FaceAudit] = field(default_factory=list)
    json_path: Optional[str] = None
    csv_path: Optional[str] = None
    attacks: List[AttackRow] = field(default_factory=list)
    attackers: List[str] = field(default_factory=lambda: ["dlib"])
    attacks_csv_path: Optional[str] = None

    @property
    def face_rows(self) -> List[FaceAudit]:
        """Rows of faces the run reconstructed and the audit measured (status ok)."""
        return [r for r in self.rows if r.status == "ok"]

    @property
    def errors(self) -> List[FaceAudit]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def reidentified(self) -> List[FaceAudit]:
        """Rows flagged re-identified (strong attacker; weak for missed faces)."""
        return [r for r in self.rows if r.reidentified]

    @property
    def any_reidentified(self) -> bool:
        return bool(self.reidentified)

    @property
    def reidentified_any_attacker(self) -> List[FaceAudit]:
        """Rows re-identified by the raw strong attack of ANY attacker (or a missed face re-identified)."""
        hit = {(a.stem, a.face) for a in self.attacks if a.reidentified}
        return [r for r in self.rows if r.reidentified or (r.stem, r.face) in hit]

    @property
    def reidentified_beyond_eraser(self) -> List[FaceAudit]:
        """Rows some attacker re-identifies beyond its eraser baseline (missed faces: when re-identified)."""
        return [r for r in self.rows if r.reid_beyond_eraser or r.reid_beyond_eraser_by]

    def exit_code(self, fail_on_reid: bool = False, raw: bool = False) -> int:
        """3 when ``fail_on_reid`` and a face is re-identified - beyond the eraser baseline by any attacker
        (default), or with ``raw`` by any attacker's raw strong attack -; else 1 if a face could not be
        audited; else 0."""
        if fail_on_reid and (self.reidentified_any_attacker if raw else self.reidentified_beyond_eraser):
            return 3
        return 1 if self.errors else 0

    def by_pose(self) -> Dict[str, Dict[str, object]]:
        """:func:`face_figures` per pose bucket ("<30", "30-60", ">60", "" = unknown; present ones only,
        in that order) and "all"."""
        ok = self.face_rows
        out = {b: face_figures([r for r in ok if r.pose_bucket == b], self.attacks, self.attackers)
               for b in _pose.bucket_order([r.pose_bucket for r in ok])}
        out["all"] = face_figures(ok, self.attacks, self.attackers)
        return out

    def summary(self) -> Dict[str, object]:
        ok = self.face_rows

        def rate(attr: str) -> float:
            return float(np.mean([bool(getattr(r, attr)) for r in ok])) if ok else NAN

        far = {}
        for r in self.rows:  # one value per image
            if r.far_changed is not None and math.isfinite(r.far_changed):
                far.setdefault(r.stem, r.far_changed)
        figures = face_figures(ok, self.attacks, self.attackers)
        return {
            "images": len({r.stem for r in self.rows}),
            "faces": len(ok),
            "errors": len(self.errors),
            "run_failed": sum(r.status == "run_failed" for r in self.rows),
            "missed_faces": sum(r.status == "missed_face" for r in self.rows),
            "reidentified": len(self.reidentified),
            "reid_rate_strong_composite": rate("strong_composite_reid"),
            "reid_rate_strong_render": rate("strong_render_reid"),
            "reid_rate_strong": rate("reidentified"),
            "reid_rate_weak_composite": rate("weak_composite_reid"),
            "reid_rate_weak_render": rate("weak_render_reid"),
            "weak_detect_rate_composite": rate("weak_composite_detected"),
            "mean_strong_composite_dist": _nanmean(r.strong_composite_dist for r in ok),
            "mean_strong_render_dist": _nanmean(r.strong_render_dist for r in ok),
            "mean_weak_composite_dist": _nanmean(r.weak_composite_dist for r in ok),
            "mean_eye_residual": _nanmean(r.eye_residual for r in ok),
            "mean_mouth_residual": _nanmean(r.mouth_residual for r in ok),
            "mean_skin_de": _nanmean(r.skin_de_mean for r in ok),
            "median_skin_de": _nanmean(r.skin_de_median for r in ok),
            # version 2
            "attackers": list(self.attackers),
            "eraser_reidentified": _count(ok, "eraser_reid"),
            "reid_beyond_eraser": len(self.reidentified_beyond_eraser),
            "reid_beyond_eraser_dlib": _count(self.rows, "reid_beyond_eraser"),
            "detected_original": figures["detected_original"],
            "detection_kept": figures["detection_kept"],
            "mean_eye_residual_moved": figures["eye_residual_moved"],
            "mean_eye_residual_chance": figures["eye_residual_chance"],
            "median_skin_mean_colour_de": figures["skin_mean_colour_de_median"],
            "far_changed_max": max(far.values()) if far else NAN,
            "far_changed_mean": float(np.mean(list(far.values()))) if far else NAN,
            "by_pose": self.by_pose(),
        }

    # -- serialisation ---------------------------------------------------------------------------
    def to_json_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {
            "version": AUDIT_VERSION,
            "run_out": self.run_out,
            "threshold": self.threshold,
            "residual_tolerance": self.residual_tolerance,
            "attackers": list(self.attackers),
            "summary": {k: clean(v) for k, v in self.summary().items()},
            "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows],
            "attacks": [{k: clean(v) for k, v in asdict(a).items()} for a in self.attacks],
        }

    def write(self, json_path: Optional[Path] = None, csv_path: Optional[Path] = None) -> None:
        """Write audit.json, audit.csv and audit_attacks.csv (default: inside run_out; the attacks CSV sits
        next to the CSV as ``<csv stem>_attacks.csv``), each atomically."""
        jp = Path(json_path) if json_path else Path(self.run_out) / "audit.json"
        cp = Path(csv_path) if csv_path else Path(self.run_out) / "audit.csv"
        ap = attacks_csv_path(cp)
        atomic_write_text(jp, json.dumps(self.to_json_dict(), indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(cp, rows_to_csv(self.rows))
        atomic_write_text(ap, rows_to_csv(self.attacks, ATTACK_FIELD_NAMES))
        self.json_path, self.csv_path, self.attacks_csv_path = str(jp), str(cp), str(ap)


def attacks_csv_path(csv_path: Path) -> Path:
    """Where the attacks table goes for a given audit CSV path: ``<stem>_attacks.csv`` beside it."""
    csv_path = Path(csv_path)
    return csv_path.with_name(f"{csv_path.stem}_attacks.csv")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`faceanon.io.atomic.atomic_write`: temporary file
    in the same folder, fsync, rename; an OSError becomes a one-line OutputError naming the path)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def rows_to_csv(rows, names: Optional[List[str]] = None) -> str:
    """CSV text of FaceAudit rows (or AttackRow rows with ``names=ATTACK_FIELD_NAMES``)."""
    names = names or FIELD_NAMES
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for r in rows:
        w.writerow([_csv_cell(getattr(r, n)) for n in names])
    return buf.getvalue()


def _parse(name: str, value, hints=None):
    t = _base_type(name, hints)
    if t is str:
        return "" if value is None else str(value)
    if value is None or value == "":
        return NAN if t is float else None
    if t is bool:
        if isinstance(value, bool):
            return value
        return {"true": True, "false": False}[str(value).lower()]
    if t is int:
        return int(value)
    if t is float:
        return float(value)
    raise TypeError(name)  # pragma: no cover


def _row_from_mapping(m: dict) -> FaceAudit:
    return FaceAudit(**{n: _parse(n, m.get(n)) for n in FIELD_NAMES})


def _attack_from_mapping(m: dict) -> AttackRow:
    return AttackRow(**{n: _parse(n, m.get(n), _ATTACK_HINTS) for n in ATTACK_FIELD_NAMES})


def read_audit_json(path: Path) -> List[FaceAudit]:
    """The rows of an audit.json."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [_row_from_mapping(m) for m in data["rows"]]


def read_audit_csv(path: Path) -> List[FaceAudit]:
    """The rows of an audit.csv."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [_row_from_mapping(m) for m in csv.DictReader(fh)]


def read_attacks_json(path: Path) -> List[AttackRow]:
    """The attack rows of an audit.json (empty for a version-1 file)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [_attack_from_mapping(m) for m in data.get("attacks", [])]


def read_attacks_csv(path: Path) -> List[AttackRow]:
    """The rows of an audit_attacks.csv."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [_attack_from_mapping(m) for m in csv.DictReader(fh)]


def load_audit(path: Path) -> "AuditResult":
    """An :class:`AuditResult` rebuilt from an audit.json (rows, attacks, attackers, settings)."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    return AuditResult(run_out=str(data.get("run_out", path.parent)), threshold=float(data["threshold"]),
                       residual_tolerance=float(data["residual_tolerance"]),
                       rows=[_row_from_mapping(m) for m in data["rows"]],
                       attacks=[_attack_from_mapping(m) for m in data.get("attacks", [])],
                       attackers=list(data.get("attackers") or ["dlib"]), json_path=str(path))


# -- image and npz loading ------------------------------------------------------------------------
def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright: decoded by the pipeline's own loader (EXIF orientation and colour
    policy of :func:`faceanon.io.images.load_image`, no pixel limit), so that the pixels line up with the
    run's landmarks and label maps; plain Pillow + EXIF transpose when that loader is unavailable."""
    try:
        from faceanon.io.images import load_image  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the io package is part of faceanon
        load_image = None
    if load_image is not None:
        return np.ascontiguousarray(load_image(path, max_pixels=None).rgb)
    from PIL import Image, ImageOps  # noqa: PLC0415

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load_render_rgb(path: Path, background: int = 128) -> np.ndarray:
    """The frontal render (RGBA) composited over a neutral grey background, (H, W, 3) uint8."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
    a = rgba[:, :, 3:4] / 255.0
    return np.clip(np.rint(rgba[:, :, :3] * a + background * (1.0 - a)), 0, 255).astype(np.uint8)


def _npz_scalar(d, key, kind=float, default=None):
    if key not in d:
        return default
    v = np.asarray(d[key])
    try:
        return kind(v.reshape(-1)[0]) if v.size else default
    except (TypeError, ValueError):
        return default


def read_face_npz(path: Path) -> dict:
    """The keys of a projections record the audit uses (missing ones are None), read by
    :func:`faceanon.io.records.read_npz` (no pickle; a broken file is a one-line FaceanonError)."""
    d = read_npz(path)
    out = {
        "labels": np.asarray(d["seg_visible_labels_full"]).astype(np.uint8) if "seg_visible_labels_full" in d else None,
        "landmarks68": np.asarray(d["landmarks68"], dtype=np.float64) if "landmarks68" in d else None,
        "box": np.asarray(d["box"], dtype=np.float64).reshape(-1)[:4] if "box" in d else None,
        "score": _npz_scalar(d, "score", float, NAN),
        "pose": np.asarray(d["pose"], dtype=np.float64).reshape(-1)[:3] if "pose" in d else None,
        "backend": _npz_scalar(d, "backend", str, ""),
        "face_index": _npz_scalar(d, "face_index", int, None),
        "face_count": _npz_scalar(d, "face_count", int, None),
    }
    if out["landmarks68"] is not None and out["landmarks68"].shape != (68, 2):
        out["landmarks68"] = None
    return out


# -- the audit ------------------------------------------------------------------------------------
def _reid(dist: float, threshold: float) -> Optional[bool]:
    return None if math.isnan(dist) else bool(dist < threshold)


def _image_pose(img: _layout.ImageFiles) -> tuple[Optional[_pose.GroundTruthPose], str]:
    """(ground truth, note) for an image: the sibling .mat of its original, if any and readable."""
    gt_path = _pose.ground_truth_file(img.original)
    if gt_path is None:
        return None, ""
    try:
        return _pose.read_ground_truth(gt_path), ""
    except (OSError, ValueError) as exc:
        return None, f"ground truth {gt_path.name} not used: {exc}"


class _Attack:
    """One attacker's state for one image: the attacker, its threshold and its cached original embeddings."""

    def __init__(self, rec, threshold: float) -> None:
        self.rec = rec
        self.name = rec.name
        self.threshold = float(threshold)

    def dist(self, e1, e2) -> float:
        return float(self.rec.distance(e1, e2))


def _audit_image(img: _layout.ImageFiles, models, threshold: float, tolerance: float,
                 extra: Sequence = ()) -> tuple[List[FaceAudit], List[AttackRow]]:
    from faceanon.audit.recognizer import embedding_distance, match_fresh  # noqa: PLC0415

    base = dict(stem=img.stem, original=str(img.original or ""), anonymized=str(img.anonymized or ""))
    if img.run_status == "failed":
        return [FaceAudit(face=0, status="run_failed", error=img.run_error or "the run failed on this image", **base)], []
    rows: List[FaceAudit] = []
    attacks: List[AttackRow] = []
    faces = list(img.faces)
    if img.run_faces is not None and img.run_faces > len(faces):
        have = {f.k for f in faces}
        faces += [_layout.FaceFiles(k=k, npz=None, render=None) for k in range(img.run_faces) if k not in have][: img.run_faces - len(faces)]

    def err_rows(msg: str) -> tuple[List[FaceAudit], List[AttackRow]]:
        return [FaceAudit(face=f.k, status="error", error=msg, render=str(f.render or ""), **base)
                for f in (faces or [_layout.FaceFiles(0, None, None)])], []

    if img.original is None:
        return err_rows(img.original_note or "original not found")
    if img.anonymized is None:
        if not faces:
            return [], []  # the run found no face and wrote nothing: nothing to compare
        return err_rows(f"no anonymized/{img.stem}.* in the run output")
    try:
        original = load_rgb(img.original)
    except Exception as exc:  # noqa: BLE001 - reported per image
        return err_rows(f"cannot read the original {img.original}: {exc}")
    try:
        composite = load_rgb(img.anonymized)
    except Exception as exc:  # noqa: BLE001
        return err_rows(f"cannot read the anonymized photo {img.anonymized}: {exc}")
    if composite.shape != original.shape:
        return err_rows(f"size mismatch: original {original.shape[1]}x{original.shape[0]}, "
                        f"anonymized {composite.shape[1]}x{composite.shape[0]}")

    fresh_orig = models.detect(original)
    fresh_comp = models.detect(composite)
    used_comp = set()
    run_boxes: List[np.ndarray] = []  # where the run reconstructed faces (box and landmark bbox)
    face_boxes: List[np.ndarray] = []  # the audit's face box of every face (far pixels)
    attackers = [_Attack(models, threshold)] + [_Attack(r, r.threshold) for r in extra]

    # read every face record first: the ground truth pose goes to the face it describes
    recs: List[Optional[dict]] = []
    rec_errors: List[str] = []
    for f in faces:
        if f.npz is None:
            recs.append(None)
            rec_errors.append(f"report.json lists face {f.k} but its projections file is missing")
            continue
        try:
            recs.append(read_face_npz(f.npz))
            rec_errors.append("")
        except Exception as exc:  # noqa: BLE001
            recs.append(None)
            rec_errors.append(exc.message if isinstance(exc, FaceanonError) else f"cannot read {f.npz}: {exc}")
    gt, gt_note = _image_pose(img)
    gt_face = _pose.assign_ground_truth(gt, [r["landmarks68"] if r else None for r in recs]) if gt else None
    if gt is not None and gt_face is None:
        gt_note = f"ground truth {gt.path.name} matches no reconstructed face"

    for i, f in enumerate(faces):
        row = FaceAudit(face=f.k, render=str(f.render or ""), **base)
        rows.append(row)
        rec = recs[i]
        if rec is None:
            row.status, row.error = "error", rec_errors[i]
            continue
        row.face_index, row.face_count, row.backend, row.score = rec["face_index"], rec["face_count"], rec["backend"], rec["score"]
        if rec["pose"] is not None and rec["pose"].size == 3:
            row.yaw, row.pitch, row.roll = (float(x) for x in rec["pose"])
        if gt_face == i:
            row.gt_yaw = gt.yaw
        row.pose_yaw, row.pose_source = _pose.choose_yaw(row.yaw, row.gt_yaw if gt_face == i else None)
        row.pose_bucket = _pose.pose_bucket(row.pose_yaw)
        row.pose_note = gt_note if (gt_note and gt_face is None) else ""
        problems = []
        lm = rec["landmarks68"]
        if rec["box"] is not None and rec["box"].size == 4:
            run_boxes.append(rec["box"])
        if lm is not None:
            run_boxes.append(np.concatenate([lm.min(axis=0), lm.max(axis=0)]))
        fbox = _m.face_box(rec["box"], lm)
        if fbox is not None:
            face_boxes.append(fbox)
            row.face_size = _m.face_size(fbox)
        eraser = _m.erase_face(original, fbox) if fbox is not None else None
        # strong attacker(s): original, composite and eraser image aligned by the run's landmarks
        e_orig: Dict[str, np.ndarray] = {}
        rows_att: Dict[str, AttackRow] = {}
        for att in attackers:
            ar = AttackRow(stem=img.stem, face=f.k, attacker=att.name, threshold=att.threshold)
            rows_att[att.name] = ar
            attacks.append(ar)
            if lm is None:
                continue
            e_orig[att.name] = att.rec.embed(original, lm)
            ar.composite_dist = att.dist(e_orig[att.name], att.rec.embed(composite, lm))
            ar.composite_reid = _reid(ar.composite_dist, att.threshold)
            if eraser is not None:
                ar.eraser_dist = att.dist(e_orig[att.name], att.rec.embed(eraser, lm))
                ar.eraser_reid = _reid(ar.eraser_dist, att.threshold)
        if lm is None:
            problems.append("npz has no landmarks68 (strong attacker not run)")
        dl = rows_att[models.name]
        row.strong_composite_dist, row.strong_composite_reid = dl.composite_dist, dl.composite_reid
        row.eraser_dist, row.eraser_reid = dl.eraser_dist, dl.eraser_reid
        # weak attacker on the photos (dlib's detector)
        fo = match_fresh(fresh_orig, rec["box"], lm)
        fc = match_fresh(fresh_comp, rec["box"], lm)
        row.weak_original_detected = fo is not None
        row.weak_composite_detected = fc is not None
        e_weak_orig = models.embed(original, fo.landmarks68) if fo is not None else e_orig.get(models.name)
        if fc is not None:
            used_comp.add(id(fc))
            row.weak_composite_dist = embedding_distance(e_weak_orig, models.embed(composite, fc.landmarks68))
            row.weak_composite_reid = _reid(row.weak_composite_dist, threshold)
        else:
            row.weak_composite_reid = False
        # the frontal render: aligned by a fresh dlib detection, for every attacker
        if f.render is None:
            row.render_note = "render missing"
        else:
            try:
                render = load_render_rgb(f.render)
                fr = models.detect(render)
            except Exception as exc:  # noqa: BLE001
                fr, row.render_note = [], f"cannot read the render: {exc}"
            row.weak_render_detected = bool(fr)
            if fr:
                for att in attackers:
                    ar = rows_att[att.name]
                    e_render = att.rec.embed(render, fr[0].landmarks68)
                    ar.render_dist = att.dist(e_orig.get(att.name), e_render)
                    ar.render_reid = _reid(ar.render_dist, att.threshold)
                    if att.rec is models:
                        row.weak_render_dist = embedding_distance(e_weak_orig, e_render)
                        row.weak_render_reid = _reid(row.weak_render_dist, threshold)
            else:
                row.render_note = row.render_note or "no face detected in the render"
                row.weak_render_reid = False
        row.strong_render_dist, row.strong_render_reid = dl.render_dist, dl.render_reid
        for ar in rows_att.values():
            ar.reidentified = None if ar.composite_reid is None and ar.render_reid is None else (
                bool(ar.composite_reid) or bool(ar.render_reid))
            ar.reid_beyond_eraser = beyond_eraser(ar.composite_reid, ar.render_reid, ar.eraser_reid)
        row.reidentified = bool(row.strong_composite_reid) or bool(row.strong_render_reid)
        row.reid_beyond_eraser = dl.reid_beyond_eraser
        row.reid_beyond_eraser_by = "+".join(a.name for a in attackers if rows_att[a.name].reid_beyond_eraser)
        # pixel residuals
        labels = rec["labels"]
        if labels is None:
            problems.append("npz has no seg_visible_labels_full (no residuals)")
        elif labels.shape != original.shape[:2]:
            problems.append(f"seg_visible_labels_full is {labels.shape[1]}x{labels.shape[0]}, the image "
                            f"{original.shape[1]}x{original.shape[0]} (no residuals)")
        else:
            eye, mouth, skin = face_region_stats(original, composite, labels, tolerance)
            row.eye_pixels, row.eye_residual, row.eye_de_mean = eye.pixels, eye.residual, eye.de_mean
            row.mouth_pixels, row.mouth_residual, row.mouth_de_mean = mouth.pixels, mouth.residual, mouth.de_mean
            row.skin_pixels, row.skin_de_mean, row.skin_de_median = skin.pixels, skin.de_mean, skin.de_median
            _n, row.skin_mean_colour_de = _m.mean_colour_delta_e(original, composite, labels)
            if fbox is not None:
                mr = _m.moved_residual(original, composite, labels, _m.MOVE_RADIUS * row.face_size, _m.EYE, tolerance)
                row.eye_residual_moved, row.eye_residual_chance = mr.moved, mr.chance
        if problems:
            row.status, row.error = "error", "; ".join(problems)

    # pixels far from every face the run reconstructed (one value per image, on each of its face rows)
    if face_boxes:
        n_far, far_share = _m.far_pixels_changed(original, composite, face_boxes, tolerance)
        for row in rows:
            row.far_pixels, row.far_changed = n_far, far_share

    # faces dlib finds in the anonymized photo where the run reconstructed none
    for fc in fresh_comp:
        cx, cy = (fc.rect[0] + fc.rect[2]) / 2, (fc.rect[1] + fc.rect[3]) / 2
        if id(fc) in used_comp or any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in run_boxes):
            continue
        row = FaceAudit(face=-1, status="missed_face", score=fc.score, **base)
        row.error = "dlib finds a face at [{:.0f}, {:.0f}, {:.0f}, {:.0f}] that the run did not anonymize".format(*fc.rect)
        row.weak_composite_detected = True
        fo = match_fresh(fresh_orig, fc.rect, None)
        row.weak_original_detected = fo is not None
        if fo is not None:
            row.weak_composite_dist = embedding_distance(models.embed(original, fo.landmarks68),
                                                         models.embed(composite, fc.landmarks68))
            row.weak_composite_reid = _reid(row.weak_composite_dist, threshold)
        row.reidentified = bool(row.weak_composite_reid)
        row.reid_beyond_eraser = row.reidentified  # the face was left as it is: nothing excuses a match
        rows.append(row)
    return rows, attacks


def run_audit(run_out: Path, originals: Optional[Path] = None, threshold: float = DEFAULT_THRESHOLD, *,
              residual_tolerance: float = DEFAULT_TOLERANCE, write: bool = True,
              json_path: Optional[Path] = None, csv_path: Optional[Path] = None,
              progress: Optional[Callable[[int, int, str], None]] = None, models=None,
              attackers: Optional[Sequence] = None) -> AuditResult:
    """Audit every face of every image of a ``faceanon run`` output folder.

    run_out: the OUT folder; originals: the IN folder (None: report.json's ``input`` paths);
    threshold: dlib distance below which a face counts as re-identified (0.6 is dlib's own);
    residual_tolerance: ΔE00 below which a pixel counts as surviving; write: also write
    ``audit.json`` / ``audit.csv`` / ``audit_attacks.csv`` (default inside run_out, or json_path / csv_path);
    progress(i, n, stem) is called before each image; models: the primary attacker with a detector
    (default: dlib's :class:`FaceModels`, loaded once); attackers: further :class:`Recognizer` objects
    (each with its own ``threshold``) that attack every face too.
    Raises AuditExtraMissing without the ``faceanon[audit]`` extra, UsageError on bad arguments.
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise UsageError(f"--threshold must be a positive number, got {threshold}", "dlib's usual value is 0.6")
    if not (math.isfinite(residual_tolerance) and residual_tolerance > 0):
        raise UsageError(f"--residual-tolerance must be a positive ΔE, got {residual_tolerance}", "the default is 2.0")
    run_out = Path(run_out)
    if models is None:
        from faceanon.audit.recognizer import check_available, load_models  # noqa: PLC0415

        check_available()
    images = _layout.discover(run_out, Path(originals) if originals is not None else None)
    if models is None:
        models = load_models()
    extra = [a for a in (attackers or ()) if a is not models and a.name != models.name]
    names = [models.name, *[a.name for a in extra]]
    if len(set(names)) != len(names):
        raise UsageError(f"two attackers share a name: {names}", "give each recognizer its own name")
    result = AuditResult(run_out=str(run_out), threshold=float(threshold), residual_tolerance=float(residual_tolerance),
                         attackers=names)
    for i, img in enumerate(images):
        if progress is not None:
            progress(i, len(images), img.stem)
        rows, attacks = _audit_image(img, models, float(threshold), float(residual_tolerance), extra)
        result.rows.extend(rows)
        result.attacks.extend(attacks)
    if write:
        result.write(json_path, csv_path)
    return result
