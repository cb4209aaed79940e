"""The file readers fuzzed with hypothesis (tools/fuzz.py's inputs, bounded): only ValueError and OSError escape."""
import importlib.util
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

_SPEC = importlib.util.spec_from_file_location(
    "ghostmlp_tools_fuzz", Path(__file__).resolve().parents[1] / "tools" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fuzz)

SEEDS = fuzz.seeds()
BOUNDED = settings(max_examples=50, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])
positions = st.integers(0, 1 << 16)


def read(filename, data):
    """fuzz.read in a fresh folder; numpy's warnings on odd .npy headers are not findings."""
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fuzz.read(filename, data, folder)


def test_every_seed_is_a_file_its_reader_accepts():
    from ghostmlp.checkpoint import load as load_checkpoint
    from ghostmlp.formats import load
    with tempfile.TemporaryDirectory() as folder:
        for filename, data in SEEDS.values():
            path = Path(folder) / filename
            path.write_bytes(data)
            if filename.endswith(".gmlp"):
                assert load_checkpoint(path).sizes == [3, 4, 2]
            else:
                key = "X" if filename.endswith(".npz") else None
                rows = 3 if filename == "labels.txt" else 4 if filename == "images.idx" else 6
                assert load(path, "inputs", key=key).shape[0] == rows


@pytest.mark.parametrize("name", sorted(SEEDS))
@BOUNDED
@given(overwrites=st.lists(st.tuples(positions, st.integers(0, 255)), max_size=16),
       cut=st.none() | positions,
       insert=st.none() | st.tuples(positions, st.binary(min_size=1, max_size=8)))
def test_a_mutated_file_raises_only_documented_errors(name, overwrites, cut, insert):
    filename, data = SEEDS[name]
    read(filename, fuzz.apply(data, overwrites, cut, insert))


@pytest.mark.parametrize("name", sorted(SEEDS))
@BOUNDED
@given(data=st.binary(max_size=512))
def test_random_bytes_raise_only_documented_errors(name, data):
    read(SEEDS[name][0], data)
