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

Row statuses: ``ok``; ``error`` (this face could not be audited: the reason is in ``error``);
``run_failed`` (report.json says the run failed on the image: nothing to audit); ``missed_face``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from faceanon.audit import layout as _layout
from faceanon.audit.metrics import DEFAULT_TOLERANCE, face_region_stats
from faceanon.errors import OutputError, UsageError

DEFAULT_THRESHOLD = 0.6
AUDIT_VERSION = 1
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
    yaw: float = NAN
    pitch: float = NAN
    roll: float = NAN
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
    # pixel residuals (ΔE00 original vs composite)
    eye_pixels: Optional[int] = None
    eye_residual: float = NAN
    eye_de_mean: float = NAN
    mouth_pixels: Optional[int] = None
    mouth_residual: float = NAN
    mouth_de_mean: float = NAN
    skin_pixels: Optional[int] = None
    skin_de_mean: float = NAN
    skin_de_median: float = NAN


FIELD_NAMES = [f.name for f in fields(FaceAudit)]
_HINTS = typing.get_type_hints(FaceAudit)


def _base_type(name: str):
    t = _HINTS[name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if args else t


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def rows_equal(a: List[FaceAudit], b: List[FaceAudit]) -> bool:
    """Row lists equal field by field (NaN equals NaN)."""
    return len(a) == len(b) and all(_same(getattr(x, n), getattr(y, n)) for x, y in zip(a, b) for n in FIELD_NAMES)


def _nanmean(vals) -> float:
    v = np.array([x for x in vals if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else NAN


@dataclass
class AuditResult:
    """All rows of an audit and the settings it ran with."""

    run_out: str
    threshold: float
    residual_tolerance: float
    rows: List[FaceAudit] = field(default_factory=list)
    json_path: Optional[str] = None
    csv_path: Optional[str] = None

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

    def exit_code(self, fail_on_reid: bool = False) -> int:
        """3 when ``fail_on_reid`` and a face is re-identified; else 1 if a face could not be audited; else 0."""
        if fail_on_reid and self.any_reidentified:
            return 3
        return 1 if self.errors else 0

    def summary(self) -> Dict[str, object]:
        ok = self.face_rows

        def rate(attr: str) -> float:
            return float(np.mean([bool(getattr(r, attr)) for r in ok])) if ok else NAN

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
        }

    # -- serialisation ---------------------------------------------------------------------------
    def to_json_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return {
            "version": AUDIT_VERSION,
            "run_out": self.run_out,
            "threshold": self.threshold,
            "residual_tolerance": self.residual_tolerance,
            "summary": {k: clean(v) for k, v in self.summary().items()},
            "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows],
        }

    def write(self, json_path: Optional[Path] = None, csv_path: Optional[Path] = None) -> None:
        """Write audit.json and audit.csv (default: inside run_out), each atomically."""
        jp = Path(json_path) if json_path else Path(self.run_out) / "audit.json"
        cp = Path(csv_path) if csv_path else Path(self.run_out) / "audit.csv"
        atomic_write_text(jp, json.dumps(self.to_json_dict(), indent=2, ensure_ascii=False) + "\n")
        atomic_write_text(cp, rows_to_csv(self.rows))
        self.json_path, self.csv_path = str(jp), str(cp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".incomplete", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "check the folder's permissions and free space") from None


def _csv_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def rows_to_csv(rows: List[FaceAudit]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELD_NAMES)
    for r in rows:
        w.writerow([_csv_cell(getattr(r, n)) for n in FIELD_NAMES])
    return buf.getvalue()


def _parse(name: str, value):
    t = _base_type(name)
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


def read_audit_json(path: Path) -> List[FaceAudit]:
    """The rows of an audit.json."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [_row_from_mapping(m) for m in data["rows"]]


def read_audit_csv(path: Path) -> List[FaceAudit]:
    """The rows of an audit.csv."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [_row_from_mapping(m) for m in csv.DictReader(fh)]


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
    if key not in d.files:
        return default
    v = np.asarray(d[key])
    try:
        return kind(v.reshape(-1)[0]) if v.size else default
    except (TypeError, ValueError):
        return default


def read_face_npz(path: Path) -> dict:
    """The keys of a ``<stem>_projections.npz`` the audit uses (missing ones are None)."""
    with np.load(path, allow_pickle=False) as d:
        out = {
            "labels": np.asarray(d["seg_visible_labels_full"]).astype(np.uint8) if "seg_visible_labels_full" in d.files else None,
            "landmarks68": np.asarray(d["landmarks68"], dtype=np.float64) if "landmarks68" in d.files else None,
            "box": np.asarray(d["box"], dtype=np.float64).reshape(-1)[:4] if "box" in d.files else None,
            "score": _npz_scalar(d, "score", float, NAN),
            "pose": np.asarray(d["pose"], dtype=np.float64).reshape(-1)[:3] if "pose" in d.files else None,
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


def _audit_image(img: _layout.ImageFiles, models, threshold: float, tolerance: float) -> List[FaceAudit]:
    from faceanon.audit.recognizer import embedding_distance, match_fresh  # noqa: PLC0415

    base = dict(stem=img.stem, original=str(img.original or ""), anonymized=str(img.anonymized or ""))
    if img.run_status == "failed":
        return [FaceAudit(face=0, status="run_failed", error=img.run_error or "the run failed on this image", **base)]
    rows: List[FaceAudit] = []
    faces = list(img.faces)
    if img.run_faces is not None and img.run_faces > len(faces):
        have = {f.k for f in faces}
        faces += [_layout.FaceFiles(k=k, npz=None, render=None) for k in range(img.run_faces) if k not in have][: img.run_faces - len(faces)]

    def err_rows(msg: str) -> List[FaceAudit]:
        return [FaceAudit(face=f.k, status="error", error=msg, render=str(f.render or ""), **base) for f in (faces or [_layout.FaceFiles(0, None, None)])]

    if img.original is None:
        return err_rows(img.original_note or "original not found")
    if img.anonymized is None:
        if not faces:
            return []  # the run found no face and wrote nothing: nothing to compare
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

    for f in faces:
        row = FaceAudit(face=f.k, render=str(f.render or ""), **base)
        rows.append(row)
        if f.npz is None:
            row.status, row.error = "error", f"report.json lists face {f.k} but its _projections.npz is missing"
            continue
        try:
            rec = read_face_npz(f.npz)
        except Exception as exc:  # noqa: BLE001
            row.status, row.error = "error", f"cannot read {f.npz}: {exc}"
            continue
        row.face_index, row.face_count, row.backend, row.score = rec["face_index"], rec["face_count"], rec["backend"], rec["score"]
        if rec["pose"] is not None and rec["pose"].size == 3:
            row.yaw, row.pitch, row.roll = (float(x) for x in rec["pose"])
        problems = []
        lm = rec["landmarks68"]
        if rec["box"] is not None and rec["box"].size == 4:
            run_boxes.append(rec["box"])
        if lm is not None:
            run_boxes.append(np.concatenate([lm.min(axis=0), lm.max(axis=0)]))
        # strong attacker
        e_orig = None
        if lm is None:
            problems.append("npz has no landmarks68 (strong attacker not run)")
        else:
            e_orig = models.embed(original, lm)
            e_comp = models.embed(composite, lm)
            row.strong_composite_dist = embedding_distance(e_orig, e_comp)
            row.strong_composite_reid = _reid(row.strong_composite_dist, threshold)
        # weak attacker on the photos
        fo = match_fresh(fresh_orig, rec["box"], lm)
        fc = match_fresh(fresh_comp, rec["box"], lm)
        row.weak_original_detected = fo is not None
        row.weak_composite_detected = fc is not None
        e_weak_orig = models.embed(original, fo.landmarks68) if fo is not None else e_orig
        if fc is not None:
            used_comp.add(id(fc))
            row.weak_composite_dist = embedding_distance(e_weak_orig, models.embed(composite, fc.landmarks68))
            row.weak_composite_reid = _reid(row.weak_composite_dist, threshold)
        else:
            row.weak_composite_reid = False
        # the frontal render: a fresh detection for both attackers
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
                e_render = models.embed(render, fr[0].landmarks68)
                row.strong_render_dist = embedding_distance(e_orig, e_render)
                row.strong_render_reid = _reid(row.strong_render_dist, threshold)
                row.weak_render_dist = embedding_distance(e_weak_orig, e_render)
                row.weak_render_reid = _reid(row.weak_render_dist, threshold)
            else:
                row.render_note = row.render_note or "no face detected in the render"
                row.weak_render_reid = False
        row.reidentified = bool(row.strong_composite_reid) or bool(row.strong_render_reid)
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
        if problems:
            row.status, row.error = "error", "; ".join(problems)

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
        rows.append(row)
    return rows


def run_audit(run_out: Path, originals: Optional[Path] = None, threshold: float = DEFAULT_THRESHOLD, *,
              residual_tolerance: float = DEFAULT_TOLERANCE, write: bool = True,
              json_path: Optional[Path] = None, csv_path: Optional[Path] = None,
              progress: Optional[Callable[[int, int, str], None]] = None, models=None) -> AuditResult:
    """Audit every face of every image of a ``faceanon run`` output folder.

    run_out: the OUT folder; originals: the IN folder (None: report.json's ``input`` paths);
    threshold: dlib distance below which a face counts as re-identified (0.6 is dlib's own);
    residual_tolerance: ΔE00 below which a pixel counts as surviving; write: also write
    ``audit.json`` / ``audit.csv`` (default inside run_out, or json_path / csv_path);
    progress(i, n, stem) is called before each image; models: a :class:`FaceModels` (default: loaded once).
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
    result = AuditResult(run_out=str(run_out), threshold=float(threshold), residual_tolerance=float(residual_tolerance))
    for i, img in enumerate(images):
        if progress is not None:
            progress(i, len(images), img.stem)
        result.rows.extend(_audit_image(img, models, float(threshold), float(residual_tolerance)))
    if write:
        result.write(json_path, csv_path)
    return result
