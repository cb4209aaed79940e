"""The BLAS provider: every installed one computes what numpy's formula says, the setting is
obeyed and checked, and binding one never changes what numpy's or scipy's own BLAS return."""
import ctypes.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ghostmlp import _kernels, blas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SETTINGS = blas.available()


@pytest.fixture(params=SETTINGS, ids=[os.path.basename(s) for s in SETTINGS])
def provider(request):
    previous = blas.use(request.param)
    yield blas.active()
    blas.use(previous.setting)


def test_scipys_blas_is_always_there_and_numpys_wheel_is_found():
    """scipy's cython_blas is the fallback everywhere; numpy's wheels (numpy.libs beside
    numpy) carry an ILP64 OpenBLAS, which must be found."""
    assert "scipy" in SETTINGS and not blas.resolve("scipy").ilp64
    if os.path.isdir(os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")):
        assert "numpy" in SETTINGS and blas.resolve("numpy").ilp64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_gemm_is_the_formula(provider, dtype, trans_a, trans_b):
    rng = np.random.default_rng(7)
    m, n, k = 37, 29, 53
    a = np.asfortranarray(rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype))
    b = np.asfortranarray(rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype))
    c = np.asfortranarray(rng.standard_normal((m, n)).astype(dtype))
    want = 1.5 * (a.T if trans_a else a).astype(np.float64) @ (
        b.T if trans_b else b).astype(np.float64) - 0.5 * c
    _kernels.gemm(1.5, a, b, -0.5, c, trans_a=trans_a, trans_b=trans_b)
    np.testing.assert_allclose(c, want, rtol=0, atol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemv_and_ger_are_the_formula(provider, dtype):
    rng = np.random.default_rng(8)
    a = np.asfortranarray(rng.standard_normal((31, 17)).astype(dtype))
    x, y = rng.standard_normal(17).astype(dtype), rng.standard_normal(31).astype(dtype)
    want = 2.0 * a.astype(np.float64) @ x + 0.25 * y
    _kernels.gemv(2.0, a, x, 0.25, y)
    atol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=0, atol=atol)
    want = a.astype(np.float64) - 0.5 * np.outer(y, x)
    _kernels.ger(-0.5, y, x, a)
    np.testing.assert_allclose(a, want, rtol=0, atol=atol)


def test_the_provider_is_named_with_its_library(provider):
    facts = provider.describe()
    assert facts["provider"] == provider.setting and facts["api"]
    if facts["file"] is not None:       # None: scipy linked with a BLAS outside its install
        assert os.path.isfile(facts["file"]) and facts["version"]


def test_threadpoolctl_limits_the_providers_threads(provider):
    if provider.path is None:
        pytest.skip("the library behind scipy's cython_blas is not known here")
    with threadpool_limits(1):
        assert provider.describe()["threads"] == 1


def test_auto_prefers_numpys_blas():
    fallback = "numpy" if "numpy" in SETTINGS else "scipy"
    assert blas.resolve("auto").addresses == blas.resolve(fallback).addresses


@pytest.mark.parametrize("setting, words", [
    ("mkl", ["GHOSTMLP_BLAS='mkl'", "auto, numpy, scipy"]),
    ("/nowhere/libblas.so", ["GHOSTMLP_BLAS='/nowhere/libblas.so'", "cannot open"]),
])
def test_a_bad_setting_is_named(setting, words):
    with pytest.raises(ValueError) as error:
        blas.resolve(setting)
    assert all(word in str(error.value) for word in words)


def test_a_library_without_blas_is_refused():
    libm = ctypes.util.find_library("m")      # "libm.so.6": opened by name, as a path would be
    with pytest.raises(ValueError, match="no Fortran BLAS entry points"):
        blas.resolve(libm)


def run_python(code, folder, setting=None):
    """python -c code in `folder` (not the checkout: its ghostmlp/ would shadow the installed one)."""
    env = dict(os.environ)
    env.pop("GHOSTMLP_BLAS", None)
    if setting is not None:
        env["GHOSTMLP_BLAS"] = setting
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_environment_variable_chooses_at_import(tmp_path):
    for setting in SETTINGS:
        done = run_python("import ghostmlp, ghostmlp.blas as b; print(b.active().path)",
                          tmp_path, setting)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(blas.resolve(setting).path)


def test_a_bad_environment_variable_fails_the_import_with_its_name(tmp_path):
    done = run_python("import ghostmlp", tmp_path, "openblas-please")
    assert done.returncode != 0
    assert "GHOSTMLP_BLAS='openblas-please'" in done.stderr


UNDISTURBED = """
    import ctypes, json, threadpoolctl, numpy as np
    from scipy.linalg import blas as scipy_blas
    rng = np.random.default_rng(0)
    a32, b32 = (rng.standard_normal((333, 333), dtype=np.float32) for _ in range(2))
    a64, b64 = (rng.standard_normal((333, 333)) for _ in range(2))
    def results():
        return [(a32 @ b32).tobytes().hex()[:4096], (a64 @ b64).sum().hex(),
                scipy_blas.sgemm(1.0, a32, b32).tobytes().hex()[:4096],
                scipy_blas.dgemm(1.0, a64, b64).sum().hex(), float(np.dot(a64[0], b64[0])).hex()]
    def pools():
        return sorted((p["filepath"], p["num_threads"]) for p in threadpoolctl.threadpool_info())
    def global_blas():
        return [name for name in ("scipy_sgemm_", "scipy_sgemm_64_", "sgemm_")
                if hasattr(ctypes.CDLL(None), name)]
    before, pools_before, global_before = results(), pools(), global_blas()
    import ghostmlp
    net = ghostmlp.Network(seed=1, dtype="float32")
    net.add_layer("input", 20); net.add_layer("hidden", 40); net.add_layer("output", 5)
    net.initialize()
    for setting in SETTINGS:
        ghostmlp.blas.use(setting)
        net.train_step(rng.standard_normal((16, 20), dtype=np.float32), rng.integers(0, 5, 16))
    after = results()
    print(json.dumps({"same": before == after, "pools_before": pools_before,
                      "pools_after": [p for p in pools() if p in pools_before],
                      "global_before": global_before, "global_after": global_blas()}))
"""


def test_numpys_and_scipys_own_blas_are_undisturbed(tmp_path):
    """Every installed provider bound and used in turn: numpy's and scipy's products keep
    their exact bits, their libraries their thread counts, and no BLAS symbol enters the
    process's global namespace (where it would take over their calls)."""
    done = run_python(f"SETTINGS = {SETTINGS!r}\n" + textwrap.dedent(UNDISTURBED), tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["same"]
    assert report["pools_after"] == report["pools_before"]
    assert report["global_after"] == report["global_before"]


KERNEL_TESTS = ["tests/test_kernels.py", "tests/test_network.py::test_one_sgd_step_by_hand",
                "tests/test_network.py::test_gradients_match_central_differences",
                "tests/test_step.py"]


@pytest.mark.parametrize("setting", [s for s in blas.available(paths=False) if s != "numpy"])
def test_the_kernel_suite_passes_on_every_provider(setting, tmp_path):
    """The kernels against their literal numpy formulas, the networks against central
    differences, the steps against LayerStack: all of it once more on each other library
    (the rest of the suite runs on the default; a path names a library already covered)."""
    env = dict(os.environ, GHOSTMLP_BLAS=setting)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           *(os.path.join(ROOT, test) for test in KERNEL_TESTS)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


@pytest.fixture
def restore_threads():
    from threadpoolctl import ThreadpoolController
    controller = ThreadpoolController()
    saved = controller.info()
    yield
    for pool in saved:
        controller.select(filepath=pool["filepath"]).limit(limits=pool["num_threads"])


@pytest.mark.parametrize("threads, comm, want", [(1, None, 1), (2, None, 2), (None, "comm", 1)])
def test_the_command_lines_threads_reach_the_kernels_blas(provider, restore_threads, monkeypatch,
                                                          threads, comm, want):
    from argparse import Namespace
    from ghostmlp import cli
    for name in cli.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if provider.path is None:
        pytest.skip("the library behind scipy's cython_blas is not known here")
    cli.limit_threads(Namespace(threads=threads), comm)
    assert provider.describe()["threads"] == min(want, os.cpu_count())


@pytest.mark.parametrize("text", ["0", "-2", "two"])
def test_threads_must_be_a_positive_integer(text, capsys):
    from ghostmlp import cli
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--threads", text])
    assert f"argument --threads: must be a positive integer, got {text!r}" in capsys.readouterr().err
