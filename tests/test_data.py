"""ghostmlp.data, the public entry point: every name the README documents, and read_on_root serially.

read_on_root's cases across ranks are in tests/mpi/cases_data.py.
"""
import numpy as np
import pytest

import ghostmlp.data
from ghostmlp import broadcast, datasets, formats, images, normalise, splits
from ghostmlp.data import read_on_root

OWNERS = {broadcast: ["RELAYED", "read_on_root"], datasets: ["load_digits", "synthetic"],
          formats: ["load", "load_array", "load_csv", "load_idx", "load_labels", "load_text",
                    "save_dataset"],
          images: ["convert_images"], normalise: ["Normaliser"],
          splits: ["one_hot", "train_test_split", "validation_split"]}


def test_every_public_name_is_its_owners():
    names = [name for owned in OWNERS.values() for name in owned]
    assert sorted(ghostmlp.data.__all__) == sorted(names)
    for module, owned in OWNERS.items():
        for name in owned:
            assert getattr(ghostmlp.data, name) is getattr(module, name), name


def test_read_on_root_without_comm_just_reads():
    a = np.arange(3)
    assert read_on_root(lambda: a) is a
    with pytest.raises(ValueError, match="boom"):
        read_on_root(lambda: (_ for _ in ()).throw(ValueError("boom")))
