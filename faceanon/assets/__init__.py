"""Model files: manifest, download (mirror, resume, verify, licence) and verified lookup.

Typical use by other code::

    from faceanon.assets import get_store

    store = get_store()                      # FACEANON_HOME / FACEANON_ASSETS_MIRROR / FACEANON_OFFLINE
    path = store.require("3ddfa_v2/mb05_120x120.pth")   # verified path, or AssetError with the fix
    cache = store.derived_dir / "bfm_nonneck.npz"       # caches built from assets
"""

from faceanon.assets.download import RetryPolicy, sha256_file
from faceanon.assets.manifest import ALL, BFM_NOTICE, ENTRIES, LITE, MODEL_CHOICES, MODELS, V3, AssetEntry, entries
from faceanon.assets.store import (
    ENV_HOME,
    ENV_MIRROR,
    ENV_OFFLINE,
    AssetStore,
    DownloadResult,
    Mirror,
    default_data_dir,
    get_store,
)

__all__ = [
    "ALL", "BFM_NOTICE", "ENTRIES", "LITE", "MODEL_CHOICES", "MODELS", "V3",
    "ENV_HOME", "ENV_MIRROR", "ENV_OFFLINE",
    "AssetEntry", "AssetStore", "DownloadResult", "Mirror", "RetryPolicy",
    "default_data_dir", "entries", "get_store", "sha256_file",
]
