"""stages/privacy: the --privacy levels and their overrides, and the run options they resolve to."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.errors import UsageError
from faceanon.stages.privacy import DEFAULT_PRIVACY, PRIVACY_LEVELS, resolve_privacy
from faceanon.stages.segment import DEFAULT_MARGIN


def test_levels_grow_the_removal_and_the_default_is_standard():
    assert DEFAULT_PRIVACY == "standard"
    margins = [PRIVACY_LEVELS[k].margin for k in ("low", "standard", "high")]
    assert margins == sorted(margins) and len(set(margins)) == 3
    assert resolve_privacy() == (DEFAULT_MARGIN, True)  # one default, whoever asks
    assert resolve_privacy("low") == (0.15, False)  # low keeps the person's brows


def test_explicit_options_override_the_level():
    assert resolve_privacy("high", margin=0.05) == (0.05, True)
    assert resolve_privacy("standard", keep_brows=True) == (PRIVACY_LEVELS["standard"].margin, False)
    with pytest.raises(UsageError, match="privacy level"):
        resolve_privacy("max")


@pytest.mark.parametrize("command", ["run", "segment"])
def test_the_commands_offer_the_knob(command):
    out = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
    for flag in ("--privacy", "--keep-brows", "--fill", "--margin"):
        assert flag in out, flag
    assert CliRunner().invoke(app, [command, "a", "b", "--privacy", "max"]).exit_code == 2
