"""Builds the Cython extensions ghostmlp._kernels and ghostmlp._step; every build knob is an environment variable.

GHOSTMLP_OPT_FLAGS      compiler optimisation flags (default "-O3 -fno-trapping-math", which
                        lets the activation loops vectorise); e.g. add "-march=native" for a
                        local build, "-O3 -mcpu=a2 -mtune=a2" for Blue Gene/Q
GHOSTMLP_CYTHON_DEBUG   "1": bounds, wraparound and initialisation checks in the kernels
GHOSTMLP_CYTHON_ANNOTATE  "1": write the Cython HTML annotation next to the .pyx
CC, CFLAGS, LDSHARED, LDFLAGS  the compiler and flags, as for any setuptools build
"""
import json
import os
import shlex
import sysconfig

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("GHOSTMLP_CYTHON_DEBUG", "0") == "1"
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": not debug,
    "embedsignature": True,
}
opt_flags = shlex.split(os.environ.get("GHOSTMLP_OPT_FLAGS", "-O3 -fno-trapping-math"))
# What `ghostmlp info` reports about this build.
build_info = json.dumps({
    "compiler": os.environ.get("CC") or sysconfig.get_config_var("CC"),
    "opt_flags": opt_flags, "cflags": os.environ.get("CFLAGS", ""), "cython": Cython.__version__,
    "cython_debug": debug, "numpy_headers": numpy.__version__,
})


def extension(name):
    return Extension(
        f"ghostmlp.{name}",
        [f"ghostmlp/{name}.pyx"],
        include_dirs=[numpy.get_include(), "ghostmlp"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                       ("GHOSTMLP_BUILD_INFO", json.dumps(build_info))],
        extra_compile_args=opt_flags,
    )


setup(
    ext_modules=cythonize(
        [extension("_kernels"), extension("_step")],
        compiler_directives=directives,
        annotate=os.environ.get("GHOSTMLP_CYTHON_ANNOTATE", "0") == "1",
    )
)
