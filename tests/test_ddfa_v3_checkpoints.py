"""Strict checkpoint loading: synthetic files wrapped like the real ones load; wrong ones fail in one line."""

from __future__ import annotations

import pytest
import torch

from ddfa_v3 import checkpoints as ck
from ddfa_v3.landmark106 import LargeBaseNet
from ddfa_v3.recon_net import ReconNet
from ddfa_v3.retinaface import RetinaFaceNet
from ddfa_v3.testing import random_state_dict, wrap_large_base_net, wrap_net_recon, wrap_retinaface
from ddfa_v3.errors import AssetError, CheckpointError


@pytest.fixture(scope="module")
def lbn_sd():
    return random_state_dict(LargeBaseNet(), seed=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, lbn_sd):
    d = tmp_path_factory.mktemp("ckpt")
    out = {}
    out["net_recon"] = d / "net_recon.pth"
    torch.save(wrap_net_recon(random_state_dict(ReconNet("resnet50"), seed=2)), out["net_recon"])
    out["net_recon_mbnet"] = d / "net_recon_mbnet.pth"
    torch.save(wrap_net_recon(random_state_dict(ReconNet("mbnetv3"), seed=3, num_batches_tracked=False)),
               out["net_recon_mbnet"])
    out["retinaface"] = d / "retinaface_resnet50_2020-07-20_old_torch.pth"
    torch.save(wrap_retinaface(random_state_dict(RetinaFaceNet(), seed=4)), out["retinaface"])
    out["large_base_net"] = d / "large_base_net.pth"
    torch.save(wrap_large_base_net(lbn_sd), out["large_base_net"])
    return out


def _one_line(exc: CheckpointError) -> str:
    text = exc.one_line()
    assert "\n" not in text
    return text


def test_net_recon_loads_strictly(files):
    net = ck.load_net_recon(files["net_recon"])
    assert net.backbone_name == "resnet50" and not net.training
    sd = torch.load(files["net_recon"], weights_only=True)["net_recon"]
    assert torch.equal(net.state_dict()["final_layers.3.weight"], sd["final_layers.3.weight"])


def test_mbnetv3_detected_and_loaded_without_num_batches_tracked(files):
    net = ck.load_net_recon(files["net_recon_mbnet"])  # backbone="auto"
    assert net.backbone_name == "mbnetv3"
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64))  # small input: the pooled heads accept any size
    assert out.shape == (1, 257)
    with pytest.raises(CheckpointError):
        ck.load_net_recon(files["net_recon_mbnet"], backbone="resnet50")


def test_retinaface_and_large_base_net_load(files, lbn_sd):
    ck.load_retinaface(files["retinaface"])
    net = ck.load_large_base_net(files["large_base_net"])  # 'module.' prefix stripped
    assert torch.equal(net.state_dict()["block19.weight"], lbn_sd["block19.weight"])


def test_large_base_net_without_module_prefix(tmp_path, lbn_sd):
    p = tmp_path / "large_base_net.pth"
    torch.save(wrap_large_base_net(lbn_sd, module_prefix=False), p)
    ck.load_large_base_net(p)


def test_legacy_serialization_plain_state_dict(tmp_path, lbn_sd):
    """The RetinaFace file is an old-torch (non-zip) pickle of a plain state_dict."""
    from collections import OrderedDict

    p = tmp_path / "old.pth"
    torch.save(OrderedDict(lbn_sd), p, _use_new_zipfile_serialization=False)
    sd = ck.extract_state_dict(ck.read_checkpoint(p), p, None)
    ck.load_strict(LargeBaseNet(), sd, p, "large_base_net")


def test_renamed_key_is_refused_naming_it(tmp_path, lbn_sd):
    sd = dict(lbn_sd)
    sd["block7.conv.3.weight_renamed"] = sd.pop("block7.conv.3.weight")
    p = tmp_path / "large_base_net.pth"
    torch.save(wrap_large_base_net(sd), p)
    with pytest.raises(CheckpointError) as ei:
        ck.load_large_base_net(p)
    text = _one_line(ei.value)
    assert str(p) in text
    assert "block7.conv.3.weight" in text and "missing keys 1" in text
    assert "block7.conv.3.weight_renamed" in text and "unexpected keys 1" in text


def test_many_missing_keys_are_summarised(tmp_path, lbn_sd):
    sd = {k: v for k, v in lbn_sd.items() if not k.startswith("block1")}  # block1, block10..19
    p = tmp_path / "lbn.pth"
    torch.save(wrap_large_base_net(sd), p)
    with pytest.raises(CheckpointError) as ei:
        ck.load_large_base_net(p)
    text = _one_line(ei.value)
    assert "more)" in text and len(text) < 600


def test_missing_batch_stats_other_than_num_batches_tracked_refused(tmp_path, lbn_sd):
    sd = {k: v for k, v in lbn_sd.items() if k != "block3.conv.1.running_var"}
    p = tmp_path / "lbn.pth"
    torch.save(wrap_large_base_net(sd), p)
    with pytest.raises(CheckpointError, match="block3.conv.1.running_var"):
        ck.load_large_base_net(p)


def test_only_num_batches_tracked_tolerated(tmp_path, lbn_sd):
    sd = {k: v for k, v in lbn_sd.items() if not k.endswith("num_batches_tracked")}
    p = tmp_path / "lbn.pth"
    torch.save(wrap_large_base_net(sd), p)
    ck.load_large_base_net(p)


def test_shape_mismatch_refused(tmp_path, lbn_sd):
    sd = dict(lbn_sd)
    sd["block19.weight"] = torch.zeros(68, 256, 3, 3)
    p = tmp_path / "lbn.pth"
    torch.save(wrap_large_base_net(sd), p)
    with pytest.raises(CheckpointError) as ei:
        ck.load_large_base_net(p)
    assert "block19.weight" in _one_line(ei.value) and "shape mismatch" in ei.value.message


@pytest.mark.parametrize("which", ["large_base_net", "net_recon"])
def test_truncated_file_refused_in_one_line(tmp_path, files, which):
    data = files[which].read_bytes()
    p = tmp_path / files[which].name
    p.write_bytes(data[: len(data) // 2])
    loader = ck.load_large_base_net if which == "large_base_net" else ck.load_net_recon
    with pytest.raises(CheckpointError) as ei:
        loader(p)
    text = _one_line(ei.value)
    assert str(p) in text and "cannot read checkpoint" in text


def test_wrong_wrapping_refused(tmp_path, files, lbn_sd):
    p = tmp_path / "net_recon.pth"
    torch.save({"state_dict": {}}, p)
    with pytest.raises(CheckpointError, match="no 'net_recon' entry"):
        ck.load_net_recon(p)
    # a large_base_net file given as the RetinaFace checkpoint
    with pytest.raises(CheckpointError) as ei:
        ck.load_retinaface(files["large_base_net"])
    assert "expected a state_dict of tensors" in _one_line(ei.value)
    # a plain large_base_net state_dict given as the RetinaFace checkpoint
    p2 = tmp_path / "retina.pth"
    torch.save(lbn_sd, p2)
    with pytest.raises(CheckpointError) as ei:
        ck.load_retinaface(p2)
    text = _one_line(ei.value)
    assert "missing keys 383" in text and "unexpected keys 335" in text  # 456 minus 73 num_batches_tracked


def test_missing_file_and_non_tensor_pickle(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ck.load_retinaface(tmp_path / "absent.pth")
    assert issubclass(CheckpointError, AssetError)
    p = tmp_path / "evil.pth"
    import argparse
    import pickle

    p.write_bytes(pickle.dumps({"x": argparse.Namespace(a=1)}))  # a global weights_only refuses
    with pytest.raises(CheckpointError) as ei:
        ck.load_retinaface(p)
    _one_line(ei.value)
