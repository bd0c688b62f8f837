"""A 3DDFA-V3 model of synthetic weights, and its fit of a fixture photo (for the ddfa_v3 tests).

Fixtures (module scope; import them into a test module): ``model`` (:func:`synthetic_model` in a
temporary folder) and ``fit`` (its :func:`centre_fit` of the fixture photo alison1.jpg).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddfa_v3.model import DDFAv3
from ddfa_v3.testing import write_synthetic_assets
from faceanon.types import Detection


def synthetic_model(folder: Path) -> DDFAv3:
    """DDFAv3 on the synthetic asset files written into ``folder``."""
    return DDFAv3(**write_synthetic_assets(folder))


def centre_fit(model: DDFAv3, photo: Path) -> dict:
    """``model.fit`` of ``photo`` for a box where the synthetic detector puts it: a square of 45 % of
    the smaller side at the image centre."""
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    h, w = rgb.shape[:2]
    side = 0.45 * min(h, w)
    box = np.array([w / 2 - side / 2, h / 2 - side / 2, w / 2 + side / 2, h / 2 + side / 2], np.float32)
    return model.fit(rgb, Detection(box=box, score=1.0, landmarks5=np.zeros((5, 2), np.float32)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return synthetic_model(tmp_path_factory.mktemp("ddfa_v3_assets"))


@pytest.fixture(scope="module")
def fit(model, photos_dir):
    return centre_fit(model, photos_dir / "alison1.jpg")
