"""The inpainted fill takes the surrounding skin, not dark features touching the removed area."""

from __future__ import annotations

import numpy as np

from faceanon.stages import segment as seg_mod
from faceanon.stages.segment import SegmentFace, segment_image


def _scene():
    rgb = np.full((200, 200, 3), (200, 160, 140), np.uint8)  # skin
    labels = np.zeros((200, 200), np.uint8)
    labels[40:160, 30:170] = 8
    labels[70:80, 60:80] = 1  # eyes, so the IOD estimate is sane
    labels[70:80, 120:140] = 2
    labels[110:140, 70:130] = 6  # the mouth region to remove
    rgb[98:112, 85:95] = 25  # a dark nostril touching the top of the removed region
    rgb[98:112, 105:115] = 25
    return rgb, labels


def test_dark_feature_does_not_bleed_into_the_fill():
    rgb, labels = _scene()
    out, removed = segment_image(rgb, [SegmentFace(labels, inter_ocular=80.0)], margin=0.0, feather_px=0)
    top = out[112:120, 80:120, :3].astype(float)  # the fill just below the nostrils
    assert removed[112:120, 80:120].all()
    assert top.mean() > 120, top.mean()  # skin-like (skin mean ~167), not the nostrils' 25
    keep = ~removed
    assert np.array_equal(out[keep][:, :3], rgb[keep])  # the nostrils themselves are untouched


def test_without_the_guard_the_fill_would_be_dark(monkeypatch):
    """The test above can fail: with the guard disabled the nostrils smear into the fill."""
    rgb, labels = _scene()
    monkeypatch.setattr(seg_mod, "_tame_dark_border", lambda rgb, mask, iod, *args: rgb)
    out, _ = segment_image(rgb, [SegmentFace(labels, inter_ocular=80.0)], margin=0.0, feather_px=0)
    assert out[112:120, 80:120, :3].astype(float).mean() < 120
