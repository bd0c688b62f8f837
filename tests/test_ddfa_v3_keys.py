"""The ddfa_v3 modules' state_dict keys, shapes and dtypes equal spec/data/keys_*.tsv exactly."""

from __future__ import annotations

import pytest

from ddfa_v3.landmark106 import LargeBaseNet
from ddfa_v3.recon_net import ReconNet
from ddfa_v3.retinaface import RetinaFaceNet

CASES = {
    "retinaface": (RetinaFaceNet, 456),
    "large_base_net": (LargeBaseNet, 335),
    "net_recon_resnet50": (lambda: ReconNet("resnet50"), 332),
    "net_recon_mbnetv3": (lambda: ReconNet("mbnetv3"), 322),
}


def _read_tsv(path):
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split("\t")
            rows.append((key, shape, dtype))
    return rows


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_layout_matches_spec(name, spec_data_dir):
    tsv = spec_data_dir / f"keys_{name}.tsv"
    if not tsv.is_file():
        pytest.skip(f"{tsv} not found")
    factory, count = CASES[name]
    expected = _read_tsv(tsv)
    got = [(k, str(tuple(v.shape)), str(v.dtype).replace("torch.", "")) for k, v in factory().state_dict().items()]
    assert len(expected) == count
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
    assert got == expected  # same order too
