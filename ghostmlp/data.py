"""Data: bundled digits, file loaders, image conversion, splits, normalisation, reading on one rank."""

import csv
import gzip
import io
import itertools
import math
import numbers
import struct
import zipfile
import zlib
from array import array
from importlib.resources import files
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
# IDX header: two zero bytes, a type code, the number of dimensions (MNIST images: 0x00000803).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
LABEL_KINDS = ("auto", "index", "onehot", "rows")
IMAGE_SUFFIXES = (".png", ".pgm", ".pbm", ".ppm", ".pnm", ".jpg", ".jpeg")
# Exceptions that read_on_root raises on every rank as themselves; any other becomes ValueError.
RELAYED = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, OSError,
           ValueError)
_CORRUPT_GZIP = (gzip.BadGzipFile, EOFError, zlib.error)


def _float_dtype(dtype):
    try:
        dt = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dt = None
    if dt is None or dt.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def _count(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def load_digits(dtype="float64", scale=True):
    """X [1797, 64], y [1797] int64: 8x8 digit images (row-major) and labels 0..9.

    Pixels are counts 0..16; with scale=True they are divided by 16 into [0, 1].
    Source: test set of UCI "Optical Recognition of Handwritten Digits"
    (Alpaydin & Kaynak, DOI 10.24432/C50P49), CC BY 4.0, bundled from
    scikit-learn; see ghostmlp/datasets/DIGITS_LICENSE.txt.
    """
    dt = _float_dtype(dtype)
    path = files("ghostmlp") / "datasets" / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.float64)
    X = data[:, :64]
    if scale:
        X = X / 16.0
    return np.ascontiguousarray(X, dtype=dt), data[:, 64].astype(np.int64)


# ---------------------------------------------------------------- reading files

def _open(path):
    """Binary stream of path, gunzipped when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        zipped = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if zipped else open(path, "rb")


def _read(path, size=-1):
    try:
        with _open(path) as f:
            return f.read(size)
    except _CORRUPT_GZIP as e:
        raise ValueError(f"{path}: corrupt gzip data ({e})") from None


def _lines(path):
    """(1-based line number, line) of a UTF-8 text file, gzipped or not."""
    try:
        with io.TextIOWrapper(_open(path), encoding="utf-8-sig", newline="") as text:
            yield from enumerate(text, 1)
    except (UnicodeDecodeError, *_CORRUPT_GZIP) as e:
        raise ValueError(f"{path}: not a readable UTF-8 text file ({e})") from None


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _at(path, lines, i):
    """Where row i came from: its line in a text file, else its index in an array file."""
    return f"{path}, line {lines[i]}" if lines is not None else f"{path}, row {i}"


def _check_finite(A, path, lines):
    if A.dtype.kind == "f" and not np.isfinite(A).all():
        i = int(np.argmin(np.isfinite(A).all(axis=1)))
        raise ValueError(f"{_at(path, lines, i)}: non-finite value {A[i][~np.isfinite(A[i])][0]}")


def _rows(path, records):
    """(line number, tokens) records -> A[n, d] float64 and the line number of each row."""
    values, lines, width = array("d"), [], None
    for number, tokens in records:
        if width is None:
            width = len(tokens)
        elif len(tokens) != width:
            raise ValueError(f"{path}, line {number}: expected {width} columns, got {len(tokens)}")
        try:
            values.extend(map(float, tokens))
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise ValueError(f"{path}, line {number}: non-numeric token {bad.strip()!r}") from None
        lines.append(number)
    if not lines:
        raise ValueError(f"{path}: empty file (no data rows)")
    A = np.frombuffer(values, dtype=np.float64).reshape(len(lines), width)
    _check_finite(A, path, lines)
    return A, lines


def _read_text(path):
    def records():
        comma = None
        for number, line in _lines(path):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if comma is None:
                comma = "," in line
            elif ("," in line) != comma:
                raise ValueError(f"{path}, line {number}: mixes comma and whitespace separators")
            yield number, line.split(",") if comma else line.split()
    return _rows(path, records())


def _read_csv(path, header):
    """-> A[n, d] float64, line numbers [n], column names (None without a header row)."""
    reader = csv.reader(line for _, line in _lines(path))
    records = ((reader.line_num, fields) for fields in reader if any(f.strip() for f in fields))
    first = next(records, None)
    names = None
    if first is not None:
        if not any(map(_is_number, first[1])) if header == "auto" else header:
            names = [name.strip() for name in first[1]]
        else:
            records = itertools.chain([first], records)
    return *_rows(path, records), names


def _column(path, names, width, label_column):
    if isinstance(label_column, str):
        if names is None:
            raise ValueError(f"{path}: label_column={label_column!r} needs a header row")
        if label_column not in names:
            raise ValueError(f"{path}: no column {label_column!r}; the header names {names}")
        return names.index(label_column)
    if (isinstance(label_column, numbers.Integral) and not isinstance(label_column, bool)
            and -width <= label_column < width):
        return int(label_column) % width
    raise ValueError(f"{path}: label_column must be a column name or an index in "
                     f"[{-width}, {width}), got {label_column!r}")


def _labels(A, kind, path, lines, dtype):
    """A[n, k] -> class indices [n] int64 (kinds index, onehot) or rows [n, k] of dtype (rows)."""
    k = A.shape[1]
    onehot = ((A == 0) | (A == 1)).all(axis=1) & (A.sum(axis=1) == 1)
    if kind == "auto":
        kind = "index" if k == 1 else "onehot" if onehot.all() else "rows"
    if kind == "index":
        if k != 1:
            raise ValueError(f"{_at(path, lines, 0)}: expected one class index per row, "
                             f"got {k} columns")
        column = A[:, 0]
        bad = ~np.isfinite(column) | (column < 0) | (column != np.round(column))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{_at(path, lines, i)}: class index must be a non-negative integer, "
                             f"got {column[i]}")
        return column.astype(np.int64)
    if kind == "onehot":
        if not onehot.all():
            i = int(np.argmin(onehot))
            raise ValueError(f"{_at(path, lines, i)}: not a one-hot row (0s and a single 1): "
                             f"{A[i].tolist()}")
        return A.argmax(axis=1).astype(np.int64)
    return np.ascontiguousarray(A, dtype=dtype)


def load_text(path, dtype="float64"):
    """X[n, d] from the paper's text format (testInput.txt): one sample per line.

    Numbers are separated by whitespace or by commas (one or the other throughout the
    file); blank lines and everything after '#' are ignored; gzipped files are read too.
    A ValueError names the file and the 1-based line of bad content.
    """
    dt = _float_dtype(dtype)
    return _read_text(path)[0].astype(dt)


def load_labels(path, kind="auto", dtype="float64"):
    """Labels in text format -> class indices y[n] int64, or target rows Y[n, k] of dtype.

    kind "index": one non-negative integer per line; "onehot": rows of 0s with a single 1,
    returned as indices; "rows": any numbers (soft targets), returned as they are;
    "auto": "index" for one column, "onehot" when every row is one-hot, else "rows".
    """
    _choice("kind", kind, LABEL_KINDS)
    dt = _float_dtype(dtype)
    A, lines = _read_text(path)
    return _labels(A, kind, path, lines, dt)


def load_csv(path, label_column=None, header="auto", dtype="float64"):
    """CSV -> X[n, d], or (X[n, d - 1], y[n] int64) with the class indices in label_column.

    header: True, False or "auto" (a first row with no number in it is a header).
    label_column: a header name or a column index (negative counts from the end).
    """
    _choice("header", header, ("auto", True, False))
    dt = _float_dtype(dtype)
    A, lines, names = _read_csv(path, header)
    if label_column is None:
        return A.astype(dt)
    j = _column(path, names, A.shape[1], label_column)
    return np.delete(A, j, axis=1).astype(dt), _labels(A[:, [j]], "index", path, lines, dt)


def load_array(path, key=None):
    """The array in an .npy file, or array `key` of an .npz (default: its only one), gzipped or not.

    Returned as stored (shape and dtype); files that need unpickling are refused.
    """
    with _open(path) as f:
        try:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                return loaded
            with loaded:
                names = loaded.files
                if key is None and len(names) == 1:
                    key = names[0]
                if key in names:
                    return loaded[key]
        except (ValueError, zipfile.BadZipFile, *_CORRUPT_GZIP) as e:
            raise ValueError(f"{path}: not a readable .npy/.npz file without pickled objects "
                             f"({e})") from None
    which = "holds several arrays" if key is None else f"has no array {key!r}"
    raise ValueError(f"{path}: {which}; key must be one of {names}")


def _is_idx(head):
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in IDX_TYPES and head[3] > 0


def load_idx(path):
    """The array in an IDX file (MNIST's format), gzipped or not, in its stored shape and type.

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian
    uint32; then the values, big-endian, row-major. MNIST images come as [n, 28, 28].
    """
    data = _read(path)
    if not _is_idx(data):
        raise ValueError(f"{path}: not an IDX file (magic bytes {data[:4].hex()})")
    ndim, start = data[3], 4 + 4 * data[3]
    if len(data) < start:
        raise ValueError(f"{path}: IDX header truncated ({len(data)} bytes, {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = start + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: IDX shape {shape} of {dtype.name} needs {expected} bytes, "
                         f"file has {len(data)}")
    return np.frombuffer(data, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def load(path, role="inputs", *, dtype="float64", kind="auto", key=None, label_column=None,
         header="auto"):
    """Inputs X[n, d] of dtype, or labels as load_labels gives them, from a file in any format here.

    The format is read from the content: .npy and .npz (array `key`), IDX (by its magic
    bytes); else a name ending in .csv (or .csv.gz) is CSV (`header`, and `label_column`:
    excluded from the inputs, the only column of the labels); anything else is text.
    Arrays are flattened to a row per sample; values are converted, not scaled.
    """
    _choice("role", role, ("inputs", "labels"))
    _choice("kind", kind, LABEL_KINDS)
    _choice("header", header, ("auto", True, False))
    dt = _float_dtype(dtype)
    head, lines = _read(path, 8), None
    if head.startswith((NPY_MAGIC, NPZ_MAGIC)) or _is_idx(head):
        A = load_idx(path) if _is_idx(head) else load_array(path, key)
        if A.ndim == 0 or len(A) == 0 or A.dtype.kind not in "biuf":
            raise ValueError(f"{path}: expected numbers, one row per sample, "
                             f"got {A.dtype} of shape {A.shape}")
        A = A.reshape(len(A), -1)
        _check_finite(A, path, None)
    elif Path(path).name.lower().endswith((".csv", ".csv.gz")):
        A, lines, names = _read_csv(path, header)
        if label_column is not None:
            j = _column(path, names, A.shape[1], label_column)
            A = A[:, [j]] if role == "labels" else np.delete(A, j, axis=1)
    else:
        A, lines = _read_text(path)
    if role == "labels":
        return _labels(A, kind, path, lines, dt)
    return np.ascontiguousarray(A, dtype=dt)


# ---------------------------------------------------------------- making data

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
    if out is not None and Path(out).suffix not in (".npz", ".txt"):
        raise ValueError(f"out must end in .npz or .txt, got {str(out)!r}")
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


def save_dataset(out, X, y=None, classes=None):
    """Write X[n, d] (and labels y[n] or Y[n, k], class names) as .npz or the paper's text format.

    out.npz: arrays X, y and classes (a str array, loadable without pickle); out.txt:
    <stem>_inputs.txt and, with y, <stem>_labels.txt beside it, class names in '#' comments.
    """
    suffix = Path(out).suffix
    if suffix not in (".npz", ".txt"):
        raise ValueError(f"out must end in .npz or .txt, got {str(out)!r}")
    if suffix == ".npz":
        arrays = {"X": X}
        if y is not None:
            arrays["y"] = y
        if classes is not None:
            arrays["classes"] = np.array(classes, dtype=np.str_)
        np.savez_compressed(out, **arrays)
        return
    stem = Path(out).with_suffix("")
    np.savetxt(f"{stem}_inputs.txt", X, fmt="%.9g")           # 9 digits: float32 round-trips
    if y is not None:
        np.savetxt(f"{stem}_labels.txt", y, fmt="%d" if np.asarray(y).ndim == 1 else "%.9g",
                   header="\n".join(f"class {k}: {name}" for k, name in enumerate(classes or ())))


def synthetic(n_samples, n_inputs, n_classes, seed=0, dtype="float64"):
    """X[n_samples, n_inputs] uniform on [0, 1), y[n_samples] int64 uniform on 0..n_classes-1.

    Dummy data as in the paper's benchmarks, drawn (X, then y) from
    numpy.random.default_rng(seed) alone: the global random state is neither used nor changed.
    """
    dt = _float_dtype(dtype)
    shape = (_count("n_samples", n_samples), _count("n_inputs", n_inputs))
    n_classes = _count("n_classes", n_classes)
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=dt), rng.integers(0, n_classes, shape[0], dtype=np.int64)


# ---------------------------------------------------------------- splitting and encoding

def _split(X, y, fraction, seed, name):
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {fraction!r}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
        )
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * fraction)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """X [n, ...], y [n] -> (X_train, X_test, y_train, y_test).

    The first round(n * test_fraction) indices of a permutation drawn from
    numpy.random.default_rng(seed) form the test set, the rest the training set.
    """
    return _split(X, y, test_fraction, seed, "test_fraction")


def validation_split(X, y, fraction, seed=0):
    """X [n, ...], y [n] -> (X_train, X_val, y_train, y_val), drawn as train_test_split draws X_test."""
    return _split(X, y, fraction, seed, "fraction")


def one_hot(y, n_classes=None, dtype="float64"):
    """y [n] integer labels -> [n, n_classes] with a 1 at each label, 0 elsewhere.

    n_classes defaults to max(y) + 1.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y) & (y == np.round(y)))
    )
    if not integral:
        raise ValueError(f"y must hold integer labels, got {y.dtype} values")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"y must not hold negative labels, got {y.min()}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= n_classes:
        raise ValueError(f"n_classes={n_classes} must exceed every label, got label {y.max()}")
    out = np.zeros((y.shape[0], n_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


class Normaliser:
    """Z[n, d] := (X[n, d] - shift[d]) / scale[d], shift and scale fitted on the training split.

    kind "standard": shift = mean, scale = standard deviation (ddof=0); "minmax": shift = min,
    scale = max - min, mapping the training data onto [0, 1]. A constant column gets
    shift = its value and scale = 1, so it maps to 0.
    """

    KINDS = ("standard", "minmax")

    def __init__(self, kind="standard"):
        self.kind = _choice("kind", kind, self.KINDS)
        self.shift = self.scale = None

    def __repr__(self):
        fitted = f"fitted on {len(self.shift)} columns" if self.shift is not None else "not fitted"
        return f"Normaliser({self.kind!r}, {fitted})"

    def fit(self, X):
        """Learn shift[d] and scale[d] from X[n, d] (the training split only); returns self."""
        X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0 or X.dtype.kind not in "biuf":
            raise ValueError("Normaliser.fit needs numbers X[n, d] with n >= 1, "
                             f"got {X.dtype} of shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("Normaliser.fit: X holds non-finite values")
        X = X.astype(np.float64, copy=False)
        lo, hi = X.min(axis=0), X.max(axis=0)
        shift, scale = (X.mean(axis=0), X.std(axis=0)) if self.kind == "standard" else (lo, hi - lo)
        constant = hi == lo                  # exact, unlike std == 0 after rounding
        self.shift, self.scale = np.where(constant, lo, shift), np.where(constant, 1.0, scale)
        return self

    def transform(self, X):
        """X[n, d] -> Z[n, d], of X's dtype (float64 for integer X)."""
        if self.shift is None:
            raise ValueError("Normaliser: call fit (or from_dict) before transform")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.shift):
            raise ValueError(f"Normaliser was fitted on {len(self.shift)} columns, "
                             f"got X of shape {X.shape}")
        dt = X.dtype if X.dtype.kind == "f" else np.float64
        return ((X - self.shift) / self.scale).astype(dt, copy=False)

    def fit_transform(self, X):
        """fit(X), then transform(X)."""
        return self.fit(X).transform(X)

    def to_dict(self):
        """{"kind", "shift", "scale"} as plain lists, for JSON checkpoints."""
        if self.shift is None:
            raise ValueError("Normaliser: nothing to save before fit")
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, state):
        """The fitted Normaliser that to_dict described."""
        try:
            norm = cls(state["kind"])
            shift, scale = (np.asarray(state[k], dtype=np.float64) for k in ("shift", "scale"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a Normaliser state: {e!r}") from None
        if (shift.ndim != 1 or shift.shape != scale.shape or not np.isfinite(shift).all()
                or not (np.isfinite(scale) & (scale > 0)).all()):
            raise ValueError("not a Normaliser state: shift and scale must be equally long lists "
                             "of finite numbers, scale > 0")
        norm.shift, norm.scale = shift, scale
        return norm


# ---------------------------------------------------------------- reading on one rank

def read_on_root(read, comm=None):
    """read() on rank 0 of comm only; every rank returns its result: an array or a tuple of arrays.

    Without comm, just read(). With one (collective: every rank must call), rank 0 broadcasts
    the arrays' shapes and dtypes (comm.bcast), then each array's bytes (comm.Bcast, no
    pickling). If read() raises on rank 0, every rank raises an error with its message: of
    its type when that is one of RELAYED (or derives from one), else ValueError.
    """
    if comm is None:
        return read()
    root, failure = comm.Get_rank() == 0, None
    if root:
        try:
            result = read()
            single = isinstance(result, np.ndarray)
            if not single and not isinstance(result, tuple):
                raise ValueError("read() must return a numpy array or a tuple, "
                                 f"got {type(result).__name__}")
            arrays = [np.asarray(a, order="C") for a in ([result] if single else result)]
            if any(a.dtype.hasobject for a in arrays):
                raise ValueError("read() must return arrays of numbers or strings, "
                                 "not Python objects")
            plan = ("arrays", single, [(a.shape, a.dtype) for a in arrays])
        except Exception as error:
            failure = error
            relayed = next((c for c in RELAYED if isinstance(error, c)), None)
            message = str(error) if relayed else f"{type(error).__name__}: {error}"
            plan = ("error", RELAYED.index(relayed or ValueError), message)
    plan = comm.bcast(plan if root else None, root=0)
    if plan[0] == "error":
        relayed, message = RELAYED[plan[1]], plan[2]
        if root and type(failure) is relayed:
            raise failure
        raise relayed(message) from failure
    _, single, specs = plan
    if not root:
        arrays = [np.empty(shape, dtype) for shape, dtype in specs]
    for a in arrays:
        comm.Bcast(a.reshape(-1).view(np.uint8), root=0)
    return arrays[0] if single else tuple(arrays)
