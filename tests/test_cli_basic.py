"""Basic CLI behaviour: help, version, the assets group, usage errors, and the installed entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import faceanon
from faceanon.assets.manifest import ENTRIES
from faceanon.cli import app
from tests.support import asset_home  # noqa: F401 (fixture)


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_help():
    result = cli("--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "assets" in result.stdout


def test_version():
    result = cli("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"faceanon {faceanon.__version__}"


def test_assets_help_lists_the_subcommands_with_examples():
    result = cli("assets", "--help")
    assert result.exit_code == 0, result.output
    for command in ("download", "list", "verify", "path"):
        assert command in result.stdout
    assert "faceanon assets download --accept-license" in result.stdout
    assert "error" not in result.stderr


def test_assets_download_help_shows_its_options():
    result = cli("assets", "download", "--help")
    assert result.exit_code == 0, result.output
    for option in ("--model", "--mirror", "--accept-license", "--force", "--offline"):
        assert option in result.stdout
    assert "FACEANON_ASSETS_MIRROR" in result.stdout


def test_assets_list_shows_every_file(asset_home):
    result = cli("assets", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for entry in ENTRIES:
        [row] = [line for line in lines if f" {entry.name} " in line]
        assert "missing" in row and entry.model in row
        assert ("yes" if entry.bfm_derived else "no") in row
    assert str(asset_home) in result.stdout


def test_assets_list_filters_by_model(asset_home):
    result = cli("assets", "list", "--model", "3ddfa-v3")
    assert result.exit_code == 0, result.output
    assert "3ddfa_v3/net_recon.pth" in result.stdout and "bfm/tri.mat" not in result.stdout


def test_assets_path(asset_home):
    result = cli("assets", "path")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(asset_home.resolve())
    result = cli("assets", "path", "3ddfa_v3/net_recon.pth")
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == asset_home.resolve() / "3ddfa_v3" / "net_recon.pth"


def test_assets_path_of_an_unknown_file_is_one_error_line(asset_home):
    result = cli("assets", "path", "no/such.file")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown model file 'no/such.file' (not in the asset manifest) "
        "(hint: run `faceanon assets list` to see the known files)"
    ]


@pytest.mark.parametrize("args", [
    ["--no-such-option"],
    ["assets", "list", "--no-such-option"],
    ["assets", "download", "--model", "huge"],
])
def test_usage_errors_exit_2(args, asset_home):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output


def _entry_point() -> str | None:
    found = shutil.which("faceanon")
    if found:
        return found
    candidate = Path(sys.executable).parent / ("faceanon.exe" if os.name == "nt" else "faceanon")
    return str(candidate) if candidate.exists() else None


def test_installed_entry_point(tmp_path):
    exe = _entry_point()
    if exe is None:
        pytest.skip("the `faceanon` console script is not installed (pip install -e . puts it next to "
                    f"{sys.executable}); the CLI itself is covered by the CliRunner tests")
    env = dict(os.environ, FACEANON_HOME=str(tmp_path / "home"))
    env.pop("FACEANON_ASSETS_MIRROR", None)
    version = subprocess.run([exe, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"faceanon {faceanon.__version__}"
    path = subprocess.run([exe, "assets", "path"], env=env, capture_output=True, text=True, timeout=60)
    assert path.returncode == 0, path.stderr
    assert Path(path.stdout.strip()) == (tmp_path / "home").resolve()
