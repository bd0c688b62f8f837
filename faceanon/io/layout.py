"""Every output file name of faceanon, and how to find the outputs of an earlier stage.

This is the only module that spells a file name: the stages, the commands, the Runner and the
audit ask it for paths. The names are the seed's file contract (docs/seed_compatibility.md), so
that each stage command runs alone on the previous one's outputs.

``faceanon run IN OUT`` writes one folder per output kind (:data:`OUTPUT_KINDS`)::

    OUT/anonymized/<stem>.<ext>                     the anonymized photo              (ANONYMIZED)
    OUT/anon/<sub>/<name>/<name>.obj, .mtl,         the anonymized mesh and texture   (ANON)
                          <name>_texture.png
    OUT/render/<sub>/<name>_front.png               its frontal render                (RENDER)
    OUT/face3d/<stem>/<name>_extractTex.obj/.mtl/.png,  the reconstruction            (FACE3D)
                      <name>_projections.npz,
                      <base>_overlay.png (--vis)
    OUT/seg/<stem>_masked.png                       the photo minus eyes and mouth    (SEG)
    OUT/report.json                                 every image's report              (REPORT)

A stage command writes the same tree without the kind folder: ``faceanon reconstruct IN OUT``
writes ``OUT/<stem>/...``, ``faceanon segment`` ``OUT/<stem>_masked.png``, and so on; the
functions below take that folder (``root``) and so serve both.

* ``<stem>``: the image's output stem (:func:`faceanon.io.images.output_stems`); ``sub/a`` for
  ``IN/sub/a.jpg`` with ``--recursive``. ``<sub>`` is its folder part, ``<base>`` its last part.
* ``<name>``: a face's name (:func:`face_name`): ``<base>`` for the main face (highest detector
  score), ``<base>_face<k>`` for the k-th other face.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from faceanon.errors import ImageError, UsageError

__all__ = [
    "ANONYMIZED", "ANON", "RENDER", "FACE3D", "SEG", "OUTPUT_KINDS", "REPORT", "PATTERNS",
    "face_name", "split_face_name", "extra_face_base",
    "MeshFiles", "ReconFiles", "AnonFiles", "recon_folder", "recon_files", "overlay_file", "segmented_file", "anon_files",
    "render_file", "anonymized_file",
    "ReconFace", "ReconImage", "discover_recon", "recon_faces", "original_photo", "find_segmented", "has_segmented",
    "find_meshes", "find_images",
]

# ------------------------------------------------------------------------------------ the names

ANONYMIZED = "anonymized"
ANON = "anon"
RENDER = "render"
FACE3D = "face3d"
SEG = "seg"
#: Every output folder ``run`` can write, in display order.
OUTPUT_KINDS = (ANONYMIZED, ANON, RENDER, FACE3D, SEG)
#: The run's report, directly in OUT.
REPORT = "report.json"

_FACE = "_face"
_RECON = "_extractTex"
_NPZ = "_projections.npz"
_OVERLAY = "_overlay.png"
_MASKED = "_masked.png"
_TEXTURE = "_texture.png"
_FRONT = "_front.png"
_OBJ = ".obj"
_MTL = ".mtl"
_PNG = ".png"

#: The output files as a user reads them (help texts): what each stage writes per image or face.
PATTERNS = {
    "recon": f"<stem>/<name>{_RECON}{_OBJ}/{_MTL}/{_PNG} and <name>{_NPZ}",
    "overlay": f"<stem>/<stem>{_OVERLAY}",
    "segmented": f"<stem>{_MASKED}",
    "anon": f"<name>/<name>{_OBJ}/{_MTL} and <name>{_TEXTURE}",
    "render": f"<name>{_FRONT}",
    "anonymized": "<stem>.<ext>",
}

_FACE_RE = re.compile(r"^(?P<base>.+)" + _FACE + r"(?P<k>[0-9]+)$")
_FACE_RE_NOCASE = re.compile(r"^(?P<base>.*)" + _FACE + r"[0-9]+$", re.IGNORECASE)


def _base(stem: str) -> str:
    return PurePosixPath(stem).name


def _sub(stem: str) -> PurePosixPath:
    return PurePosixPath(stem).parent


def face_name(stem: str, index: int) -> str:
    """Name of face ``index`` (0 = main face) of the image ``stem``: the stem's last part, with
    ``_face<k>`` for the other faces (``face_name("sub/a", 2) == "a_face2"``)."""
    base = _base(stem)
    return base if index == 0 else f"{base}{_FACE}{index}"


def split_face_name(name: str) -> tuple[str, int]:
    """``"a_face2"`` -> ``("a", 2)``; a main face's name -> ``(name, 0)``."""
    m = _FACE_RE.match(name)
    return (m.group("base"), int(m.group("k"))) if m else (name, 0)


def extra_face_base(name: str) -> Optional[str]:
    """The image name whose extra face ``name`` would be named like (any case: ``"a_FACE1"`` ->
    ``"a"``), or None: an input stem like this must not share output files with that face."""
    m = _FACE_RE_NOCASE.match(name)
    return m.group("base") if m else None


@dataclass(frozen=True)
class MeshFiles:
    """A textured mesh's files: ``obj``, its ``mtl`` next to it, and the ``texture`` PNG its MTL names."""

    obj: Path
    texture: Path

    @property
    def mtl(self) -> Path:
        return self.obj.with_suffix(_MTL)

    @property
    def mesh(self) -> tuple[Path, Path, Path]:
        """The three files, in the order they are listed: (texture, obj, mtl)."""
        return self.texture, self.obj, self.mtl


@dataclass(frozen=True)
class ReconFiles(MeshFiles):
    """The reconstruct files of one face: the mesh in the photo-aligned y-up frame with the texture
    extracted from the photo, and ``npz`` (the projections record)."""

    npz: Path


AnonFiles = MeshFiles  # the anonymize files of one face: its mesh and re-baked texture


def recon_folder(root: Path, stem: str) -> Path:
    """The reconstruct folder of an image: ``root/<stem>``."""
    return Path(root) / stem


def recon_files(folder: Path, name: str) -> ReconFiles:
    """The reconstruct files of face ``name`` in an image's reconstruct folder."""
    folder = Path(folder)
    return ReconFiles(obj=folder / f"{name}{_RECON}{_OBJ}", texture=folder / f"{name}{_RECON}{_PNG}",
                      npz=folder / f"{name}{_NPZ}")


def overlay_file(folder: Path, stem: str) -> Path:
    """The ``--vis`` overlay of an image, in its reconstruct folder."""
    return Path(folder) / f"{_base(stem)}{_OVERLAY}"


def segmented_file(root: Path, stem: str) -> Path:
    """The segmented photo (RGBA) of an image: ``root/<stem>_masked.png``."""
    return Path(root) / f"{stem}{_MASKED}"


def anon_files(root: Path, stem: str, name: str) -> MeshFiles:
    """The anonymize files of face ``name`` of image ``stem``, in their own folder ``root/<sub>/<name>/``."""
    folder = Path(root) / _sub(stem) / name
    return MeshFiles(obj=folder / f"{name}{_OBJ}", texture=folder / f"{name}{_TEXTURE}")


def render_file(root: Path, stem: str, name: str) -> Path:
    """The frontal render of face ``name`` of image ``stem``: ``root/<sub>/<name>_front.png``."""
    return Path(root) / _sub(stem) / f"{name}{_FRONT}"


def anonymized_file(root: Path, stem: str, ext: str) -> Path:
    """The anonymized photo of image ``stem``: ``root/<stem><ext>`` (``ext`` with its dot)."""
    return Path(root) / f"{stem}{ext}"


# ------------------------------------------------------------------------------------ finding outputs


@dataclass
class ReconFace:
    """One face of a reconstructed image: its name, face index and files."""

    name: str
    index: int
    files: ReconFiles

    @property
    def npz(self) -> Path:
        return self.files.npz


@dataclass
class ReconImage:
    """The reconstruct outputs of one image: ``stem`` (may contain ``/``), folder, faces by index."""

    stem: str
    folder: Path
    faces: list[ReconFace] = field(default_factory=list)

    @property
    def item(self) -> Path:
        """The path that names the image in progress and error lines: its folder, or its npz in a
        flat layout."""
        return self.folder if self.folder.name == _base(self.stem) else self.faces[0].npz


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def discover_recon(recon: Path) -> list[ReconImage]:
    """Group the projections files under ``recon`` by image stem (sorted by stem).

    Layouts accepted (searched recursively, hidden folders skipped):

    * ``faceanon reconstruct``'s (``RECON/<stem>/<name>_projections.npz``; a stem with sub-folders,
      from ``--recursive``, is ``RECON/<sub>/<base>/...``) and the seed's (``out/face3d/<stem>/...``);
    * a flat folder of ``<stem>_projections.npz`` files (e.g. the 3DDFA-V3 reference fixtures), or a
      single such file: the stem comes from the file name.

    Raises :class:`UsageError` when ``recon`` does not exist or holds no npz file, or when two
    folders claim the same stem.
    """
    recon = Path(recon)
    if not recon.exists():
        raise UsageError(f"RECON not found: {recon}", "pass the output folder of `faceanon reconstruct`")
    if recon.is_file():
        if not recon.name.endswith(_NPZ):
            raise UsageError(f"{recon} is not a <stem>{_NPZ} file", "pass the output folder of `faceanon reconstruct`")
        files = [recon]
        root = recon.parent
    else:
        root = recon
        files = sorted(p for p in recon.rglob(f"*{_NPZ}") if p.is_file() and not _is_hidden(p.relative_to(recon)))
    if not files:
        raise UsageError(f"no *{_NPZ} file in {recon}",
                         f"RECON must be the output folder of `faceanon reconstruct` (or the seed's {FACE3D}/)")
    groups: dict[str, ReconImage] = {}
    for npz in files:
        name = npz.name[: -len(_NPZ)]
        if not name:
            continue
        folder = npz.parent
        rel = folder.relative_to(root)
        base, k = split_face_name(name)
        if rel != Path(".") and folder.name == name:  # RECON/<stem>/<stem>_projections.npz
            stem, index = rel.as_posix(), 0
        elif rel != Path(".") and k and folder.name == base:  # RECON/<stem>/<stem>_face<k>_...
            stem, index = rel.as_posix(), k
        elif k and recon_files(folder, base).npz.is_file():  # flat, with its main face
            stem, index = (rel / base).as_posix(), k
        else:  # flat layout, or a folder named differently from its npz (seed: stem from the file)
            stem, index = (rel / name).as_posix(), 0
        g = groups.get(stem)
        if g is None:
            g = groups[stem] = ReconImage(stem=stem, folder=folder)
        elif g.folder != folder:
            raise UsageError(f"stem {stem!r} found in two places: {g.folder} and {folder}",
                             "keep one reconstruction per image in RECON")
        g.faces.append(ReconFace(name=name, index=index, files=recon_files(folder, name)))
    out = []
    for stem in sorted(groups, key=lambda s: (s.casefold(), s)):
        g = groups[stem]
        g.faces.sort(key=lambda f: (f.index, f.name))
        out.append(g)
    return out


def recon_faces(root: Path, stem: str) -> dict[int, Path]:
    """The projections files of image ``stem`` in a reconstruct tree, by face index (0 = main face).

    Files are named after the stem's last part, in ``root/<stem>/``; files named with the full
    stem (``root/<stem>/<sub>/<base>_projections.npz``, older runs of a ``--recursive`` input) are
    found too.
    """
    d = recon_folder(root, stem)
    base = _base(stem)
    found: dict[int, Path] = {}
    for folder in dict.fromkeys([d, d / _sub(stem)]):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not p.name.endswith(_NPZ) or not p.is_file():
                continue
            name = p.name[: -len(_NPZ)]
            b, k = (name, 0) if name == base else split_face_name(name)
            if b == base:
                found.setdefault(k, p)
    return dict(sorted(found.items()))


def original_photo(images: Path, stem: str) -> Path:
    """The original photo of output stem ``stem`` in ``images`` (see
    :func:`faceanon.io.images.photo_for_stem`); a one-line :class:`ImageError` when there is none."""
    from faceanon.io.images import photo_for_stem

    hit = photo_for_stem(images, stem)
    if hit is None:
        raise ImageError(f"original photo of {stem} not found in {images}",
                         "--images must be the folder of the photos given to `faceanon reconstruct`")
    return hit


def find_segmented(seg: Path, stem: str) -> Optional[Path]:
    """The segmented photo of ``stem`` in ``seg``: the exact name, else a unique case-insensitive
    match; None if absent.

    Never a prefix match (the seed's ``edo`` would pick ``edoardo``'s, seed bug S-22 in
    docs/seed_compatibility.md). Two case-variants of the name raise a one-line
    :class:`ImageError` naming both.
    """
    exact = segmented_file(seg, stem)
    if exact.is_file():
        return exact
    folder, want = exact.parent, exact.name
    try:
        hits = sorted(p for p in folder.iterdir() if p.is_file() and p.name.casefold() == want.casefold())
    except OSError:
        return None
    if len(hits) > 1:
        raise ImageError(f"segmented image of {stem} is ambiguous: {', '.join(p.name for p in hits)} in {folder}",
                         f"keep one <stem>{_MASKED} per image")
    return hits[0] if hits else None


def has_segmented(seg: Path) -> bool:
    """Whether ``seg`` (recursively) holds any segmented photo."""
    return any(p.name.casefold().endswith(_MASKED) for p in Path(seg).rglob("*") if p.is_file())


def find_meshes(anon: Path) -> list[tuple[Path, str]]:
    """Every ``<name>/<name>.obj`` below ``anon`` (recursively, hidden folders skipped), sorted.

    Returns (obj path, output name) pairs; the output name keeps sub-folders (``sub/a``) so the
    renders mirror the tree. A folder holding ``.obj`` files but none named after it is ambiguous
    (the seed picked the first one): it is returned as (folder, name), for the caller to report as
    one failing item.
    """
    anon = Path(anon)
    if not anon.is_dir():
        raise UsageError(f"ANON folder not found: {anon}", "pass the output folder of `faceanon anonymize`")
    found: list[tuple[Path, str]] = []
    for obj in sorted(anon.rglob(f"*{_OBJ}")):
        rel = obj.relative_to(anon)
        if _is_hidden(rel) or not obj.is_file():
            continue
        if obj.stem == obj.parent.name and obj.parent != anon:
            found.append((obj, rel.parent.as_posix()))
    named = {p.parent for p, _ in found}
    for folder in sorted({o.parent for o in anon.rglob(f"*{_OBJ}")} - named - {anon}):
        if _is_hidden(folder.relative_to(anon)):
            continue
        found.append((folder, folder.relative_to(anon).as_posix()))
    if not found:
        raise UsageError(f"no <name>/<name>{_OBJ} in {anon}", "pass the output folder of `faceanon anonymize`")
    return sorted(found, key=lambda x: (x[1].casefold(), x[1]))


def ambiguous_meshes(folder: Path) -> str:
    """The ``.obj`` files of a folder :func:`find_meshes` found ambiguous, comma-separated."""
    return ", ".join(sorted(p.name for p in Path(folder).glob(f"*{_OBJ}")))


def mesh_file(folder: Path) -> str:
    """The mesh name a folder should hold (``<folder>.obj``), for hints."""
    return f"{Path(folder).name}{_OBJ}"


def find_images(root: Path, stem: str) -> list[Path]:
    """The images ``root/<stem>.<ext>`` of any image extension (sorted), e.g. the anonymized photo
    of a stem whose extension is not known."""
    from faceanon.io.images import IMAGE_EXTENSIONS

    p = Path(root) / stem
    folder = p.parent
    if not folder.is_dir():
        return []
    return sorted(q for q in folder.iterdir() if q.is_file() and q.stem == p.name and q.suffix.lower() in IMAGE_EXTENSIONS)
