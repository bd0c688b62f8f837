"""``ddfa_v3`` is a package of its own: importing it does not import ``faceanon`` (no import cycle),
and the project's adapter turns its errors and records into the project's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

_PROBE = """
import json, pkgutil, sys
import ddfa_v3
mods = sorted(m.name for m in pkgutil.iter_modules(ddfa_v3.__path__))
for m in mods:
    __import__("ddfa_v3." + m)
print(json.dumps({"modules": mods, "faceanon": sorted(k for k in sys.modules if k.split(".")[0] == "faceanon")}))
"""


def test_every_ddfa_v3_module_imports_without_faceanon():
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"model", "retinaface", "checkpoints", "face_model", "texture", "errors"} <= set(seen["modules"])
    assert seen["faceanon"] == [], f"importing ddfa_v3 imported {seen['faceanon']}"


@pytest.mark.parametrize("name", ["CheckpointError", "AssetError", "ImageError", "NoFaceError"])
def test_adapter_raises_the_project_error_of_the_same_name(name):
    from ddfa_v3 import errors as v3
    from faceanon import errors
    from faceanon.models.ddfa_v3_backend import project_errors

    with pytest.raises(getattr(errors, name)) as info:
        with project_errors():
            raise getattr(v3, name)("checkpoint x.pth is broken", "download it again")
    assert isinstance(info.value, errors.FaceanonError) and not isinstance(info.value, v3.DDFAv3Error)
    assert info.value.one_line() == "checkpoint x.pth is broken (hint: download it again)"


def test_adapter_detector_returns_project_detections():
    from ddfa_v3.retinaface import FaceBox
    from faceanon.models.ddfa_v3_backend import DDFAv3Detector
    from faceanon.types import Detection

    def box(x1, size, score):
        return FaceBox(np.array([x1, 10, x1 + size, 10 + size], np.float32), score, np.zeros((5, 2), np.float32))

    class Model:
        def detect(self, rgb):
            return [box(0, 30, 0.9), box(50, 80, 0.8), box(200, 60, 0.95)]

    kept, small = DDFAv3Detector(Model(), min_face_size=40).detect_with_rejected(np.zeros((8, 8, 3), np.uint8))
    assert all(type(d) is Detection for d in kept + small)  # Detection.size: the mean box side
    assert [d.score for d in kept] == [0.95, 0.8] and [d.size for d in small] == [30.0]
