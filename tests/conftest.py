"""Shared fixtures: where the test data folder (FACEANON_SHARED), the asset mirror and the fixture photos are.

Tests that need the real model files use the mirror through FACEANON_ASSETS_MIRROR (set by
.ci/run when the test data folder has one) and skip with a clear reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import sys

import pytest

# tests/support (the local HTTP server, synthetic data builders) is importable as ``support``.
# The package under test is always the INSTALLED faceanon (pytest runs with --import-mode=importlib
# and without the repo root on sys.path), never the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEANON_SHARED", REPO.parent / "shared"))


def _mirror_dir() -> Path | None:
    env = os.environ.get("FACEANON_ASSETS_MIRROR")
    if env and not env.startswith(("http://", "https://")) and Path(env).is_dir():
        return Path(env).resolve()
    candidate = SHARED / "assets"
    return candidate.resolve() if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared folder not found at {SHARED} (set FACEANON_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The local asset mirror (a directory); skips the test when there is none."""
    d = _mirror_dir()
    if d is None:
        pytest.skip("no asset mirror: set FACEANON_ASSETS_MIRROR to a folder holding the lite model files "
                    "(../shared/assets in this project's CI)")
    return d


def _fixture_folder(shared_dir: Path, name: str, what: str) -> Path:
    d = shared_dir / "fixtures" / name
    if not d.is_dir():
        pytest.skip(f"{what} not found at {d}")
    return d


@pytest.fixture(scope="session")
def photos_dir(shared_dir: Path) -> Path:
    return _fixture_folder(shared_dir, "photos", "fixture photos")


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    return _fixture_folder(shared_dir, "reference_3ddfa_v3", "3DDFA-V3 reference outputs")


@pytest.fixture(scope="session")
def spec_data_dir(shared_dir: Path) -> Path:
    return shared_dir / "spec" / "data"
