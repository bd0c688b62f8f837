"""``faceanon run IN OUT``: the options; the work is :class:`faceanon.runner.Runner`, shown by RunDisplay."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from faceanon.cli import options as opt
from faceanon.cli.app import app
from faceanon.cli.batch import RunDisplay, err_console, print_run_summary
from faceanon.cli.formats_cli import print_run_notes
from faceanon.io.layout import FACE3D, OUTPUT_KINDS, SEG
from faceanon.options import SAFE_OUTPUTS


@app.command(
    "run",
    epilog=(
        "Examples:\n\n"
        "  faceanon run photos/ out/\n\n"
        "  faceanon run photos/ out/ --alpha 0.7 --keep-mouth --jobs 2\n\n"
        "  faceanon run photos/ out/ --privacy high          (wider removal: see bench/privacy.md)\n\n"
        "  faceanon run photos/ out/ --fill inpaint          (the seed's look: no drawn eyes, lips or brows)\n\n"
        "  faceanon run photos/ out/ --outputs all     (also face3d/ and seg/, for debugging: not safe to share)\n\n"
        "  faceanon run photos/ out/ --scheduler tcp://HOST:8786     (on a Dask cluster)\n\n"
        "  faceanon run photos/ out/ --force          (redo images that are already complete)"
    ),
)
def run(
    inp: Path = typer.Argument(..., metavar="IN", help="An image or a folder of images."),
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder (never inside IN)."),
    model: opt.Model = opt.MODEL,
    alpha: float = opt.ALPHA,
    keep_pose: bool = opt.KEEP_POSE,
    keep_mouth: bool = opt.KEEP_MOUTH,
    fill: opt.Fill = opt.FILL,
    privacy: opt.Privacy = opt.PRIVACY,
    margin: Optional[float] = opt.MARGIN,
    keep_brows: bool = opt.KEEP_BROWS,
    feather_px: float = opt.FEATHER_PX,
    tex_size: int = opt.TEX_SIZE,
    recon_tex_size: int = opt.RECON_TEX_SIZE,
    img_size: int = opt.IMG_SIZE,
    frame_fill: float = opt.FRAME_FILL,
    background: opt.Background = opt.BACKGROUND,
    outputs: Optional[str] = typer.Option(
        None, "--outputs", metavar="all|LIST",
        help=f"Output folders to write: a comma list of {', '.join(OUTPUT_KINDS)}, or all. "
             f"Default {','.join(SAFE_OUTPUTS)} (safe to share); {FACE3D}/ (the original face texture) and {SEG}/ "
             "(the photo minus eyes and mouth) are for debugging."),
    recursive: bool = opt.RECURSIVE,
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip images already completed with the same options."),
    force: bool = typer.Option(False, "--force", help="Redo every image, even complete ones."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, max=64, help="Worker processes (each loads the models once)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", envvar="FACEANON_SCHEDULER",
        help="Dask scheduler address (tcp://HOST:8786): run on its workers (needs faceanon\\[cluster])."),
    vis: bool = opt.option(opt.o.VIS, help=f"Also write reconstruction overlays (into {FACE3D}/)."),
    lossless: bool = typer.Option(
        False, "--lossless",
        help="Write anonymized photos of JPEG/WebP inputs as PNG: every pixel away from the faces stays "
             "bit-identical to the input (a JPEG re-encode changes them slightly)."),
    audit: bool = typer.Option(False, "--audit", help="Run `faceanon audit` at the end (needs faceanon\\[audit]; "
                                                      f"also writes {FACE3D}/, which the audit reads)."),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse DICOM inputs whose Burned In Annotation is not NO (faceanon does not "
                                "look for text burned into the pixels)."),
    min_face_size: int = opt.MIN_FACE,
    max_faces: int = opt.MAX_FACES,
    threshold: Optional[float] = opt.THRESHOLD,
    max_pixels: int = opt.MAX_PIXELS,
    mirror: Optional[str] = opt.MIRROR,
    offline: bool = opt.OFFLINE,
) -> None:
    """Reconstruct, segment, anonymize, render and composite every image, loading the models once.

    Writes OUT/anonymized, OUT/anon, OUT/render and OUT/report.json (--outputs adds face3d, seg). Exit 0
    when every image succeeded, 1 when some failed, 2 on a usage error.
    """
    from faceanon.runner import Runner, RunOptions
    from faceanon.options import parse_outputs

    wanted = parse_outputs(outputs)
    if audit:  # fail before hours of work, not after
        from faceanon.audit.recognizer import check_available

        check_available()
        if FACE3D not in wanted:
            wanted = (*wanted, FACE3D)
            err_console.print(f"--audit: also writing {FACE3D}/ (the audit reads its landmarks; do not share it)")
    opts = RunOptions(model=model.value, recon_tex_size=recon_tex_size, tex_size=tex_size, alpha=alpha,
                      keep_pose=keep_pose, keep_mouth=keep_mouth, fill=fill.value, privacy=privacy.value,
                      margin=margin, keep_brows=keep_brows, feather_px=feather_px, img_size=img_size,
                      frame_fill=frame_fill, background=background.value, max_pixels=max_pixels,
                      min_face_size=min_face_size, max_faces=max_faces, threshold=threshold, vis=vis,
                      lossless=lossless, strict=strict, outputs=wanted)
    runner = Runner(opts, jobs=jobs, scheduler=scheduler, mirror=mirror, offline=offline, events=RunDisplay())
    result = runner.run(inp, out, recursive=recursive, resume=resume, force=force)
    print_run_summary(result.reports)
    print_run_notes(result.reports, inp, recursive)  # format notes, files of IN that are not images
    err_console.print(f"report: {escape(str(result.report_path))}")
    code = result.exit_code
    if audit:
        from faceanon.cli.audit_cmd import audit_and_report

        code = max(code, audit_and_report(out, inp if inp.is_dir() else inp.parent))  # the audit's default threshold
    raise typer.Exit(code)
