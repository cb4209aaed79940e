"""ghostmlp.data, the public data API: each name comes from the module that owns it."""
from ghostmlp.broadcast import RELAYED, read_on_root
from ghostmlp.datasets import load_digits, synthetic
from ghostmlp.formats import (
    load, load_array, load_csv, load_idx, load_labels, load_text, save_dataset,
)
from ghostmlp.images import convert_images
from ghostmlp.normalise import Normaliser
from ghostmlp.splits import one_hot, train_test_split, validation_split

__all__ = [
    "RELAYED", "Normaliser", "convert_images", "load", "load_array", "load_csv", "load_digits",
    "load_idx", "load_labels", "load_text", "one_hot", "read_on_root", "save_dataset",
    "synthetic", "train_test_split", "validation_split",
]
