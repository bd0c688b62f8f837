"""A FACEANON_HOME holding the verified lite model files, prepared once per test session.

Usage in a test module::

    from tests.support.lite_home import lite_home, faceanon_command, cli_env  # noqa: F401 (fixture)

``lite_env`` (module scope) also sets FACEANON_HOME to it, offline, for the module's tests.

    def test_x(lite_home, tmp_path):
        subprocess.run([*faceanon_command(), "run", ...], env=cli_env(lite_home), ...)

``lite_home`` skips the test when there is no local asset mirror (see ``mirror_dir`` in conftest).
The home is built at most once per process even when several modules import the fixture (each
import registers its own fixture definition, so the work is memoised here). Tests must treat it as
read-only: copy it (:func:`copy_home`) before damaging a file in it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

_HOMES: dict[str, Path] = {}

ASSET_ENV = ("FACEANON_HOME", "FACEANON_ASSETS_MIRROR", "FACEANON_OFFLINE")


def prepare_lite_home(base: Path, mirror: Path) -> Path:
    """Download (copy) and verify the lite model files from ``mirror`` into ``base/home``, once."""
    key = str(mirror)
    if key in _HOMES and _HOMES[key].is_dir():
        return _HOMES[key]
    from faceanon.assets import get_store

    home = base / "home"
    store = get_store(mirror=str(mirror), offline=True, data_dir=home)
    store.download("lite", accept_license=True, progress=False)
    bad = [e.name for e, status in store.verify("lite") if status != "verified"]
    assert not bad, f"lite assets not verified in {home}: {bad}"
    _HOMES[key] = home
    return home


@pytest.fixture(scope="session")
def lite_home(tmp_path_factory: pytest.TempPathFactory, mirror_dir: Path) -> Path:
    """FACEANON_HOME with every lite file verified (shared by the whole session: do not modify)."""
    return prepare_lite_home(tmp_path_factory.mktemp("lite_home"), mirror_dir)


@contextlib.contextmanager
def offline_home(home: Path) -> Iterator[Path]:
    """For the duration: FACEANON_HOME=``home``, offline, no mirror, and an empty model cache (the
    models are loaded from ``home``); a module-scoped fixture wraps its ``yield`` in it."""
    from faceanon.models.loader import clear_cache

    mp = pytest.MonkeyPatch()
    mp.setenv("FACEANON_HOME", str(home))
    mp.setenv("FACEANON_OFFLINE", "1")
    mp.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    clear_cache()
    try:
        yield home
    finally:
        mp.undo()
        clear_cache()


@pytest.fixture(scope="module")
def lite_env(lite_home: Path) -> Iterator[Path]:
    """:func:`offline_home` around a test module: the lite home, offline, models loaded from it."""
    with offline_home(lite_home):
        yield lite_home


def copy_photos(photos_dir: Path, dest: Path, names, rename: dict | None = None) -> Path:
    """``dest`` (created) holding copies of the fixture photos ``names`` (``rename``: name -> new name)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(photos_dir / name, dest / (rename or {}).get(name, name))
    return dest


def copy_home(home: Path, dest: Path) -> Path:
    """A private copy of ``home`` (mtimes kept, so the verified cache stays valid) that a test may damage."""
    shutil.copytree(home, dest, copy_function=shutil.copy2)
    return dest


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``faceanon`` subprocess: ``home`` as FACEANON_HOME, offline, no mirror.

    The package is found where this test process imported it from (the installed one in CI, the
    source tree in a dev checkout).
    """
    import faceanon

    env = {k: v for k, v in os.environ.items() if k not in ASSET_ENV}
    env.update(FACEANON_HOME=str(home), FACEANON_OFFLINE="1", PYTHONIOENCODING="utf-8")
    pkg_root = str(Path(faceanon.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra)
    return env


def faceanon_command() -> list[str]:
    """argv prefix that runs the CLI: the installed console script next to this Python when there is
    one (CI), else ``python -c "from faceanon.cli import main; main()"`` (dev venv without install)."""
    script = Path(sys.executable).with_name("faceanon.exe" if os.name == "nt" else "faceanon")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from faceanon.cli import main; main()"]


__all__ = ["lite_home", "prepare_lite_home", "copy_home", "cli_env", "faceanon_command"]
