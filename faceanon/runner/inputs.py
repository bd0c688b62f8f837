"""The inputs and the output folder of a run: which files, under which output stems, and whether
OUT may be written at all (checked before any model is loaded)."""

from __future__ import annotations

import os
from pathlib import Path

from faceanon.errors import OutputError, UsageError


def check_out_not_in(inp: Path, out: Path) -> None:
    """Refuse IN and OUT inside one another: outputs must never land among the inputs (a later
    recursive run would take them as photos) nor overwrite them (IN inside OUT)."""
    i = inp.resolve()
    o = out.resolve()
    if inp.is_dir() and (o == i or i in o.parents):
        raise UsageError(f"OUT ({out}) is inside IN ({inp})", "choose an output folder outside the input folder")
    if o in i.parents:
        raise UsageError(f"IN ({inp}) is inside OUT ({out})",
                         "outputs could overwrite the inputs: choose an output folder that does not contain them")


def collect_inputs(inp: Path, recursive: bool) -> list[tuple[Path, str]]:
    """The (path, output stem) pairs of an input file or folder; raises UsageError when there are none."""
    from faceanon.io.images import IMAGE_EXTENSIONS, list_images, output_stems

    if not inp.exists():
        raise UsageError(f"input not found: {inp}")
    if inp.is_file():
        paths = [inp]
        root = inp.parent
    else:
        paths = list_images(inp, recursive=recursive)
        root = inp
    if not paths:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UsageError(f"no images in {inp}", f"supported: {exts} (any letter case); use --recursive for subfolders")
    stems = output_stems(paths, root)
    return [(p, stems[p]) for p in paths]


def prepare_out(out: Path) -> None:
    """Create OUT and prove it is writable (a probe file), or raise one OutputError line."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}", "choose a writable output folder") from exc
