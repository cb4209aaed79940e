"""Image folders into data sets: the paper's preprocessing (greyscale, area-averaged resize, [0, 1])."""
import numbers
from pathlib import Path

import numpy as np

from ghostmlp.formats import check_dataset_path, save_dataset

IMAGE_SUFFIXES = (".png", ".pgm", ".pbm", ".ppm", ".pnm", ".jpg", ".jpeg")


def _pixels(Image, file, size):
    """One image file -> its greyscale pixels resized to size = (w, h), row-major, in [0, 1]."""
    try:
        with Image.open(file) as image:
            deep = image.mode.startswith("I")               # 16-bit PNG or PGM
            grey = image.convert("F") if deep else image.convert("L").convert("F")
            grey = grey.resize(size, Image.Resampling.BOX)
    except (OSError, SyntaxError, ValueError) as e:      # SyntaxError: some broken files in Pillow
        raise ValueError(f"{file}: unreadable image ({e})") from None
    return np.asarray(grey, dtype=np.float32).reshape(-1) / np.float32(65535 if deep else 255)


def convert_images(folder, size=(8, 8), out=None):
    """Folder of class subfolders of images -> X[n, w*h] float32, y[n] int64, class names.

    The paper's preprocessing. Class k is the k-th subfolder in sorted name order; its
    images (PNG, PGM/PBM/PPM, JPEG) are taken in sorted name order, read with Pillow, made
    greyscale, resized to size = (w, h) by area averaging (Pillow's BOX filter: 32x32 bitmaps
    become the UCI digits' 4x4 block means) and scaled to [0, 1] (8-bit by 255, 16-bit by
    65535); row i of X is image i, row-major. out: None, or a path ending in .npz (arrays X,
    y and classes, a str array, loadable without pickle) or in .txt (<stem>_inputs.txt and
    <stem>_labels.txt beside it: the text format, class names in '#' comments).
    Needs Pillow: pip install 'ghostmlp[images]'.
    """
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("convert_images needs Pillow: pip install 'ghostmlp[images]'") from e
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                       for s in size)):
        raise ValueError(f"size must be (width, height), two positive integers, got {size!r}")
    if out is not None:
        check_dataset_path(out)
    folder = Path(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{folder}: no class subfolders (expected one folder of images per class)")
    rows, y = [], []
    for k, name in enumerate(classes):
        images = sorted(p for p in (folder / name).iterdir()
                        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not images:
            raise ValueError(f"{folder / name}: no images (looked for {', '.join(IMAGE_SUFFIXES)})")
        rows += [_pixels(Image, image, tuple(size)) for image in images]
        y += [k] * len(images)
    X, y = np.stack(rows), np.array(y, dtype=np.int64)
    if out is not None:
        save_dataset(out, X, y, classes)
    return X, y, classes
