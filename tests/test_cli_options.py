"""One name per meaning: every command that takes an option takes it with the same default, bounds
and choices, which are its :class:`faceanon.options.Spec`'s; renamed options keep their old spelling
for one release (the byte-for-byte checks of each alias are in the command's own test module)."""

from __future__ import annotations

from collections import defaultdict
from enum import Enum

import pytest
import typer
from typer.testing import CliRunner

from faceanon import options as o
from faceanon.cli import app
from faceanon.cli.options import _rename
from faceanon.errors import UsageError

STAGES = ("reconstruct", "segment", "anonymize", "render", "composite", "run")
#: (command, flag) whose default differs from the spec's on purpose
OWN_DEFAULT = {("anonymize", "--model")}  # default: the model recorded in each projections file


def _options() -> dict[str, dict[str, tuple]]:
    """flag -> {command: (default, min, max, choices)} over the stage commands and run."""
    group = typer.main.get_command(app)
    seen: dict[str, dict[str, tuple]] = defaultdict(dict)
    for name in STAGES:
        for p in group.commands[name].params:
            if p.param_type_name != "option":
                continue
            ann = p.type_descriptor.annotation
            choices = tuple(e.value for e in ann) if isinstance(ann, type) and issubclass(ann, Enum) else None
            default = p.default.value if isinstance(p.default, Enum) else p.default
            for flag in p.opts:
                if flag.startswith("--"):
                    seen[flag][name] = (default, p.min, p.max, choices)
    return seen


SPECS = {s.flag: s for s in vars(o).values() if isinstance(s, o.Spec)}


def test_every_stage_option_is_its_spec():
    options = _options()
    for flag, spec in SPECS.items():
        assert flag in options, f"{flag} is used by no command"
        for command, (default, lo, hi, choices) in options[flag].items():
            if (command, flag) not in OWN_DEFAULT:
                assert default == spec.default, (command, flag)
            assert (lo, hi, choices) == (spec.min, spec.max, spec.choices), (command, flag)


def test_a_shared_flag_means_the_same_everywhere():
    for flag, by_command in _options().items():
        bounds = {v[1:] for v in by_command.values()}
        defaults = {v[0] for c, v in by_command.items() if (c, flag) not in OWN_DEFAULT}
        assert len(bounds) == 1 and len(defaults) <= 1, (flag, by_command)


@pytest.mark.parametrize("command,example,options", [
    ("reconstruct", "faceanon reconstruct photos/ out/", ("--recon-tex-size", "--vis", "--min-face-size", "--max-pixels")),
    ("segment", "faceanon segment out/face3d out/seg --images photos/",
     ("--images", "--keep-mouth", "--margin", "--feather-px", "--max-pixels")),
    ("anonymize", "faceanon anonymize out/face3d out/anon --seg out/seg",
     ("--alpha", "--keep-pose", "--tex-size", "--seg", "--model")),
    ("render", "faceanon render out/anon out/render", ("--img-size", "--frame-fill", "--background", "--renderer")),
    ("composite", "faceanon composite face3d/ anon/ final/ --seg seg/ --images photos/",
     ("--seg", "--images", "--blend-px", "--max-pixels")),
])
def test_help_has_examples_and_the_options(command, example, options):
    r = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert r.exit_code == 0
    assert example in r.stdout
    for option in options:
        assert option in r.stdout, option


@pytest.mark.parametrize("command,old,new", [
    ("reconstruct", "--tex-size", "--recon-tex-size"),
    ("anonymize", "--images", "--seg"),
    ("render", "--margin", "--frame-fill"),
    ("composite", "--feather-px", "--blend-px"),
])
def test_renamed_options_are_hidden_and_the_new_names_are_shown(command, old, new):
    flags = {f for p in typer.main.get_command(app).commands[command].params for f in p.opts}
    assert new in flags and old not in flags


def test_rename_rewrites_only_the_old_flags(capsys):
    aliases = {"--margin": "--frame-fill", "-i": "--seg"}
    args = ["a", "--margin", "0.5", "--margin=0.7", "-i", "s", "--img-size", "9", "--", "--margin"]
    assert _rename(args, aliases) == ["a", "--frame-fill", "0.5", "--frame-fill=0.7", "--seg", "s", "--img-size", "9",
                                      "--", "--margin"]
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: --margin is deprecated, use --frame-fill (the old name goes in the next release)",
                   "warning: -i is deprecated, use --seg (the old name goes in the next release)"]
    assert _rename(["--margins", "-ix"], aliases) == ["--margins", "-ix"]


def test_records_refuse_what_the_command_line_refuses():
    o.SegmentOptions().check()
    for record, field, bad in [(o.SegmentOptions, "margin", 2.5), (o.SegmentOptions, "feather_px", -1.0),
                               (o.SegmentOptions, "privacy", "max"), (o.AnonymizeOptions, "tex_size", 63),
                               (o.AnonymizeOptions, "alpha", float("nan")), (o.RenderOptions, "frame_fill", 0.01),
                               (o.RenderOptions, "background", "pink"), (o.CompositeOptions, "blend_px", 501.0),
                               (o.ReconstructOptions, "recon_tex_size", 2048.0), (o.DetectOptions, "model", "v4")]:
        flag = "--" + field.replace("_", "-")
        with pytest.raises(UsageError, match=flag):
            record(**{field: bad}).check()


def test_segment_options_resolve_the_privacy_level():
    from faceanon.stages.privacy import PRIVACY_LEVELS

    for name, lv in PRIVACY_LEVELS.items():
        s = o.SegmentOptions(privacy=name)
        assert (s.removal_margin, s.remove_brows) == (lv.margin, lv.brows)
    assert o.SegmentOptions(privacy="high", margin=0.05).removal_margin == 0.05
    assert not o.SegmentOptions(keep_brows=True).remove_brows
    assert not o.SegmentOptions(fill="inpaint").remove_brows  # brows are removed only where they are redrawn
