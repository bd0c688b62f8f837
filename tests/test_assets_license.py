"""BFM-derived files need an explicit, remembered acceptance of their non-commercial licence."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

import faceanon.cli.assets_cmd as assets_cmd
from faceanon.assets import get_store
from faceanon.cli import app
from faceanon.errors import LicenseNotAccepted
from tests.support import asset_home, http_mirror  # noqa: F401 (fixtures)


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_without_acceptance_and_without_a_tty_download_fails_with_the_hint(asset_home, http_mirror):
    result = cli("assets", "download", "--mirror", http_mirror.url)
    assert result.exit_code == 1
    assert "non-commercial research" in result.stderr and "Basel Face Model" in result.stderr  # the notice
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "BFM-derived" in line and "3ddfa_v2/indices.npy" in line
    assert "(hint:" in line and "--accept-license" in line.split("(hint:")[1]
    assert http_mirror.requests == []  # refused before any download
    assert not (asset_home / "license_accepted.json").exists()


def test_acceptance_is_remembered(asset_home, http_mirror):
    result = cli("assets", "download", "--mirror", http_mirror.url, "--accept-license")
    assert result.exit_code == 0, result.output
    assert "non-commercial research" in result.stderr
    record = json.loads((asset_home / "license_accepted.json").read_text())
    assert record["accepted"] is True
    when = dt.datetime.fromisoformat(record["date"])
    assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 600

    # later downloads of BFM files do not ask again (no flag, no TTY) and still remind briefly
    result = cli("assets", "download", "--mirror", http_mirror.url, "--force")
    assert result.exit_code == 0, result.output
    assert "note:" in result.stderr and "BFM-derived" in result.stderr
    assert "By downloading them you accept" not in result.stderr


def test_interactive_yes_accepts_and_no_refuses(asset_home, http_mirror, monkeypatch):
    monkeypatch.setattr(assets_cmd, "_stdin_is_tty", lambda: True)
    result = cli("assets", "download", "--mirror", http_mirror.url, input="n\n")
    assert result.exit_code == 1
    assert "not accepted" in result.stderr
    assert http_mirror.requests == [] and not (asset_home / "license_accepted.json").exists()

    result = cli("assets", "download", "--mirror", http_mirror.url, input="y\n")
    assert result.exit_code == 0, result.output
    assert json.loads((asset_home / "license_accepted.json").read_text())["accepted"] is True
    assert (asset_home / "bfm" / "w_shp_sim.npy").is_file()


def test_api_requires_acceptance_only_for_bfm_files(asset_home, http_mirror):
    store = get_store(mirror=http_mirror.url)
    [result] = store.download(names=["detectors/centerface.onnx"], progress=False)  # not BFM-derived
    assert result.status == "downloaded"
    with pytest.raises(LicenseNotAccepted, match="--accept-license"):
        store.download(names=["bfm/tri.mat"], progress=False)
    assert not (asset_home / "bfm" / "tri.mat").exists()
    assert store.pending_license("lite") and "bfm/tri.mat" in [e.name for e in store.pending_license("lite")]
    store.download(names=["bfm/tri.mat"], accept_license=True, progress=False)
    assert store.license_accepted() is not None and store.pending_license("lite") == []


def test_3ddfa_v3_face_model_needs_the_licence_too(asset_home):
    pending = get_store().pending_license("3ddfa-v3")
    assert [e.name for e in pending] == ["3ddfa_v3/face_model.npy"]
