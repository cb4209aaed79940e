"""Which BLAS library the kernels call: chosen once at import, named by ``GHOSTMLP_BLAS``.

Settings (the environment variable, or ``use``):

- ``auto`` (default): numpy's BLAS where its entry points can be found (numpy's wheels
  ship a recent OpenBLAS, ILP64, ``scipy_`` prefix, ``64_`` suffix), else scipy's.
- ``numpy``: numpy's BLAS, an error where it cannot be reached.
- ``scipy``: scipy's ``cython_blas`` (whatever BLAS scipy was linked with).
- ``scipy-openblas32`` / ``scipy-openblas64``: the OpenBLAS of that PyPI wheel, found by its
  file, never by importing the wheel's module (which loads it ``RTLD_GLOBAL``, where it
  would take over numpy's and scipy's calls).
- a path to a shared library with the Fortran BLAS interface (OpenBLAS, MKL's ``mkl_rt``,
  BLIS, ESSL, a system ``libblas``): opened with ``RTLD_LOCAL``, so its symbols interpose
  on nobody, and its entry points looked up by name.

The kernels hold one table of entry points per extension module (``_blas.h``); each module
registers its binder here at import and every ``use`` rebinds them all. Nothing here
changes which library numpy or scipy call.
"""
import ctypes
import os
from dataclasses import dataclass

ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv", "sger", "dger", "sdot", "ddot", "saxpy", "daxpy")
# Symbol spellings tried in a library, first match for every routine wins; a name ending in
# 64_ / _64 is the ILP64 interface (64-bit integers).
SPELLINGS = ("scipy_{}_64_", "{}_64_", "{}_64", "scipy_{}_", "{}_", "{}")
VARIABLE = "GHOSTMLP_BLAS"
# PyPI wheels of OpenBLAS that may be named as a setting: package -> library inside it.
WHEELS = {"scipy-openblas32": "lib/libscipy_openblas.so",
          "scipy-openblas64": "lib/libscipy_openblas64_.so"}


@dataclass(frozen=True)
class Provider:
    """One library's entry points: `setting` as given, the shared object's `path` (None
    where unknown), whether it takes 64-bit integers, and routine -> address."""
    setting: str
    path: str | None
    ilp64: bool
    addresses: dict

    def describe(self):
        """What the kernels call, for `ghostmlp info` and benchmark records: the setting, the
        library's file, API, version, core type and threads in force (threadpoolctl's view)."""
        facts = {"provider": self.setting, "file": self.path, "ilp64": self.ilp64,
                 "api": None, "version": None, "architecture": None, "threads": None}
        for pool in _blas_pools():
            if self.path and _same_file(pool.get("filepath"), self.path):
                facts.update(api=pool.get("internal_api"), version=pool.get("version"),
                             architecture=pool.get("architecture"),
                             threads=pool.get("num_threads"))
        if self.path is None and self.setting == "scipy":
            import scipy
            build = _build_blas(scipy)
            facts.update(api=build.get("name"), version=build.get("version"))
        return facts


_binders = []
_active = None


def register(binder):
    """Called by each extension module at import: binder(addresses, ilp64) fills its table."""
    if _active is None:
        use(os.environ.get(VARIABLE, "auto"))
    binder(_active.addresses, _active.ilp64)
    _binders.append(binder)


def use(setting):
    """Rebinds every kernel module to the BLAS `setting` names; returns the previous Provider."""
    global _active
    previous, _active = _active, resolve(setting)
    for binder in _binders:
        binder(_active.addresses, _active.ilp64)
    return previous


def active():
    """The Provider the kernels call now."""
    return _active


def available(paths=True):
    """The named settings that resolve here, and (paths) the files of the libraries numpy
    and scipy use given as paths (the same libraries, reached by the path route)."""
    settings = []
    for setting in ("numpy", "scipy", *WHEELS):
        try:
            provider = resolve(setting)
        except ValueError:
            continue
        settings.append(setting)
        if paths and setting in ("numpy", "scipy") and provider.path:
            settings.append(provider.path)
    return settings


def resolve(setting):
    """The Provider of a setting (see the module's docstring); ValueError naming it if unusable."""
    if setting == "auto":
        try:
            return _numpy()
        except ValueError:
            return _scipy()
    if setting == "numpy":
        return _numpy()
    if setting == "scipy":
        return _scipy()
    if setting in WHEELS:
        return _library(setting, _wheel_library(setting))
    if os.sep in setting or setting.endswith(".so") or ".so." in setting:
        return _library(setting, setting)
    raise ValueError(f"{VARIABLE}={setting!r}: expected auto, numpy, scipy, "
                     f"{', '.join(WHEELS)} or the path of a BLAS shared library")


def _numpy():
    path = _numpy_library()
    if path is None:
        raise ValueError(f"{VARIABLE}=numpy: numpy's BLAS library was not found among the "
                         "loaded libraries (threadpoolctl lists none inside numpy's install)")
    return _library("numpy", path)


def _numpy_library():
    """Path of the BLAS library numpy loaded: inside numpy's install (a wheel's numpy.libs)
    or in the library folder numpy's build configuration names."""
    import numpy
    import numpy.linalg      # noqa: F401  (loads numpy's BLAS where it is a separate library)
    return _loaded_library(numpy, os.path.dirname(numpy.__file__),
                           _build_blas(numpy).get("lib directory"))


def _wheel_library(setting):
    """The library file of an installed OpenBLAS wheel, located without importing it."""
    import importlib.util
    spec = importlib.util.find_spec(setting.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{VARIABLE}={setting!r}: the {setting} package is not installed "
                         f"(pip install {setting})")
    return os.path.join(spec.submodule_search_locations[0], WHEELS[setting])


def _scipy():
    """scipy's cython_blas: its exported functions, reached through their capsules."""
    from scipy.linalg import cython_blas
    name_of = ctypes.pythonapi.PyCapsule_GetName
    name_of.restype, name_of.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.restype, pointer_of.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    capsules = cython_blas.__pyx_capi__
    addresses = {r: pointer_of(capsules[r], name_of(capsules[r])) for r in ROUTINES}
    return Provider("scipy", _scipy_library(), False, addresses)


def _scipy_library():
    """Path of the BLAS library inside scipy's install (a wheel's scipy.libs), else None."""
    import scipy
    import scipy.linalg      # noqa: F401
    return _loaded_library(scipy)


def _loaded_library(package, *folders):
    """Path of a loaded BLAS library (threadpoolctl's view) in the folder a wheel of
    `package` vendors its libraries in (NAME.libs beside it) or in one of `folders`; None."""
    root = os.path.dirname(os.path.dirname(package.__file__))
    places = {os.path.realpath(place) for place in
              (os.path.join(root, package.__name__ + ".libs"), *folders) if place}
    for pool in _blas_pools():
        path = pool.get("filepath") or ""
        if os.path.dirname(os.path.realpath(path)) in places:
            return path
    return None


def _build_blas(package):
    """The BLAS entry of numpy's or scipy's build configuration, {} where there is none."""
    try:
        return package.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (KeyError, TypeError, ValueError):
        return {}


def _library(setting, path):
    """A shared library's Fortran BLAS entry points, opened RTLD_LOCAL (interposes on nobody)."""
    try:
        library = ctypes.CDLL(path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
    except OSError as error:
        raise ValueError(f"{VARIABLE}={setting!r}: cannot open {path}: {error}") from None
    for spelling in SPELLINGS:
        try:
            addresses = {r: ctypes.cast(getattr(library, spelling.format(r)), ctypes.c_void_p).value
                         for r in ROUTINES}
        except AttributeError:
            continue
        ilp64 = spelling.endswith(("64_", "_64")) or _openblas_ilp64(library)
        return Provider(setting, path, ilp64, addresses)
    raise ValueError(f"{VARIABLE}={setting!r}: {path} has no Fortran BLAS entry points "
                     f"(tried {', '.join(s.format('sgemm') for s in SPELLINGS)})")


def _openblas_ilp64(library):
    """Whether an OpenBLAS built with 64-bit integers but plain names is what was opened."""
    for spelling in ("scipy_openblas_get_config64_", "scipy_openblas_get_config",
                     "openblas_get_config64_", "openblas_get_config"):
        config = getattr(library, spelling, None)
        if config is not None:
            config.restype = ctypes.c_char_p
            return b"USE64BITINT" in config()
    return False


def _blas_pools():
    from threadpoolctl import threadpool_info
    return [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _same_file(a, b):
    return a is not None and os.path.realpath(a) == os.path.realpath(b)
