"""faceanon.io.layout: the one module that names the output files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import faceanon
from faceanon.io import layout as L


def test_the_run_tree_is_the_seeds_file_contract(tmp_path):
    """The names of the seed's contract (docs/seed_compatibility.md), for a main face and another face
    of a nested stem (``--recursive``)."""
    out = tmp_path
    folder = L.recon_folder(out / L.FACE3D, "sub/a")
    r = L.recon_files(folder, L.face_name("sub/a", 0))
    assert [p.relative_to(out).as_posix() for p in (*r.mesh, r.npz)] == [
        "face3d/sub/a/a_extractTex.png", "face3d/sub/a/a_extractTex.obj", "face3d/sub/a/a_extractTex.mtl",
        "face3d/sub/a/a_projections.npz"]
    assert L.overlay_file(folder, "sub/a").relative_to(out).as_posix() == "face3d/sub/a/a_overlay.png"
    a = L.anon_files(out / L.ANON, "sub/a", L.face_name("sub/a", 2))
    assert [p.relative_to(out).as_posix() for p in a.mesh] == [
        "anon/sub/a_face2/a_face2_texture.png", "anon/sub/a_face2/a_face2.obj", "anon/sub/a_face2/a_face2.mtl"]
    assert L.render_file(out / L.RENDER, "sub/a", "a_face2").relative_to(out).as_posix() == "render/sub/a_face2_front.png"
    assert L.segmented_file(out / L.SEG, "sub/a").relative_to(out).as_posix() == "seg/sub/a_masked.png"
    assert L.anonymized_file(out / L.ANONYMIZED, "sub/a", ".jpg").relative_to(out).as_posix() == "anonymized/sub/a.jpg"


@pytest.mark.parametrize("name,split", [("a", ("a", 0)), ("a_face3", ("a", 3)), ("a_face1_face12", ("a_face1", 12)),
                                        ("a_face", ("a_face", 0)), ("a_facex", ("a_facex", 0))])
def test_face_names_round_trip(name, split):
    assert L.split_face_name(name) == split
    assert L.face_name(*split) == name


def test_extra_face_base_ignores_case():
    assert L.extra_face_base("IMG_FACE2") == "IMG"
    assert L.extra_face_base("img_face") is None


def test_recon_faces_finds_both_namings(tmp_path):
    """Files named after the stem's last part (this release) and after the whole stem (older runs)."""
    d = L.recon_folder(tmp_path, "x/p")
    (d / "x").mkdir(parents=True)
    for f in (L.recon_files(d, "p").npz, L.recon_files(d / "x", "p_face1").npz, L.recon_files(d, "q").npz):
        f.write_bytes(b"")
    assert L.recon_faces(tmp_path, "x/p") == {0: L.recon_files(d, "p").npz, 1: L.recon_files(d / "x", "p_face1").npz}


def test_find_segmented_is_exact_then_case_insensitive_never_a_prefix(tmp_path):
    L.segmented_file(tmp_path, "edoardo").write_bytes(b"")
    assert L.find_segmented(tmp_path, "edo") is None
    upper = tmp_path / L.segmented_file(tmp_path, "EDO").name
    upper.write_bytes(b"")
    assert L.find_segmented(tmp_path, "edo") == upper
    assert L.has_segmented(tmp_path) and not L.has_segmented(tmp_path / "nothing")


def test_no_other_module_spells_an_output_file_name():
    """Every suffix the layout defines appears in faceanon/io/layout.py only (code, comments and help)."""
    # the layout's private name constants, but the "_face" infix (identifiers such as fit_faces have it)
    suffixes = [v for k, v in vars(L).items() if re.fullmatch(r"_[A-Z]+", k) and isinstance(v, str) and len(v) > 5]
    assert {"_extractTex", "_projections.npz", "_masked.png", "_front.png", "_texture.png", "_overlay.png"} <= set(suffixes)
    pkg = Path(faceanon.__file__).resolve().parent
    found = {(p.relative_to(pkg).as_posix(), s) for p in pkg.rglob("*.py") for s in suffixes
             if p != pkg / "io" / "layout.py" and s in p.read_text(encoding="utf-8")}
    assert not found, sorted(found)
