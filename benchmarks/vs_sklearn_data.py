"""The data sets of benchmarks.vs_sklearn: those installed packages ship, one seeded split, standardising."""
import tempfile
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ghostmlp.images import convert_images

TEST_SIZE = 0.25
DIGITS28_SIDE = 28


def digits28():
    """X[1797, 784] of raw 0-255 values, y[1797]: scikit-learn's 8x8 digits upscaled to 28x28.

    Not MNIST (no installed package ships it): each 8x8 image of counts 0..16 is written as
    an 8-bit PNG of round(16ths x 255) and read back by ghostmlp.images.convert_images at
    28x28 (Pillow's BOX filter), whose [0, 1] values are multiplied by 255 and rounded.
    """
    X8, y = datasets.load_digits(return_X_y=True)
    from PIL import Image
    with tempfile.TemporaryDirectory() as folder:
        for index, (pixels, label) in enumerate(zip(X8, y)):
            (Path(folder) / str(label)).mkdir(exist_ok=True)
            grey = np.rint(pixels.reshape(8, 8) * (255 / 16)).astype(np.uint8)
            Image.fromarray(grey, mode="L").save(Path(folder) / str(label) / f"{index:05d}.png")
        X, by_class, _ = convert_images(folder, size=(DIGITS28_SIDE, DIGITS28_SIDE))
    # convert_images orders rows by class, then file name: put them back in load_digits' order.
    order = np.concatenate([np.flatnonzero(y == label) for label in np.unique(y)])
    raw = np.empty_like(X, dtype=np.float64)
    raw[order] = np.rint(X.astype(np.float64) * 255)
    assert np.array_equal(by_class, y[order])
    return raw, y


def _shipped(loader):
    return lambda: loader(return_X_y=True)


# name -> (what it is, X[n, d] float64 and y[n] int class indices as a user would load them)
DATASETS = {
    "breast_cancer": ("tabular medical (sklearn load_breast_cancer, raw values up to ~4,000)",
                      _shipped(datasets.load_breast_cancer)),
    "wine": ("chemistry (sklearn load_wine)", _shipped(datasets.load_wine)),
    "iris": ("sklearn load_iris", _shipped(datasets.load_iris)),
    "digits": ("8x8 digits, counts 0-16 (sklearn load_digits; ghostmlp's bundled digits "
               "are the same 1,797 images)", _shipped(datasets.load_digits)),
    "digits28": ("28x28 digits, raw 0-255: sklearn load_digits upscaled (not MNIST)", digits28),
}
FEATURES = ("raw", "standard")


def split(name, seed):
    """(X_train, X_test, y_train, y_test) of data set `name`: a stratified 75/25 split by `seed`."""
    X, y = DATASETS[name][1]()
    return train_test_split(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64),
                            test_size=TEST_SIZE, stratify=y, random_state=seed)


def featurize(features, X_train, X_test):
    """The split's inputs as given ("raw"), or standardised ("standard") by a StandardScaler
    fitted on X_train."""
    if features == "raw":
        return X_train, X_test
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)
