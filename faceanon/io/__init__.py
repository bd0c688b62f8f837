"""File input/output at the edges of the pipeline (the stages themselves are pure).

* :mod:`faceanon.io.images` - find input photos, unique output stems, decode (EXIF orientation,
  every mode to RGB uint8, size guards), save without metadata except the ICC profile;
* :mod:`faceanon.io.atomic` - atomic writes (temp file + fsync + rename), OSError -> OutputError,
  pickle-free ``.npz`` writing, stale temp cleanup;
* :mod:`faceanon.io.mesh` - OBJ/MTL writing (seed layout) and tolerant OBJ reading;
* :mod:`faceanon.io.records` - the projections record (npz) contract;
* :mod:`faceanon.io.layout` - every output file name, and finding an earlier stage's outputs;
* :mod:`faceanon.io.facefiles` - reading/writing the per-face files with their frame conversions.

Submodules are imported on demand (``from faceanon.io.images import load_image``) so that
importing the package stays cheap.
"""
