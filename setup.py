"""Build of the C++/Cython rasterizer extension (everything else lives in pyproject.toml)."""

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "faceanon._ext._raster",
        sources=["faceanon/_ext/_raster.pyx", "faceanon/_ext/raster_core.cpp", "faceanon/_ext/texel_core.cpp"],
        include_dirs=[np.get_include(), "faceanon/_ext"],
        language="c++",
        extra_compile_args=["-O3", "-std=c++17", "-ffp-contract=off"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}))
