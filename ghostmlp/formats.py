"""The data file formats: text, CSV, .npy/.npz and IDX read into arrays; datasets written as .npz or text."""
import csv
import gzip
import io
import itertools
import math
import numbers
import struct
import tokenize
import zipfile
import zlib
from array import array
from pathlib import Path

import numpy as np

from ghostmlp.validate import choice, float_dtype

GZIP_MAGIC = b"\x1f\x8b"
NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
# IDX header: two zero bytes, a type code, the number of dimensions (MNIST images: 0x00000803).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
LABEL_KINDS = ("auto", "index", "onehot", "rows")
DATASET_SUFFIXES = (".npz", ".txt")
_CORRUPT_GZIP = (gzip.BadGzipFile, EOFError, zlib.error)
# What np.load raises besides ValueError on a damaged .npy header or .npz archive (found by
# tools/fuzz.py): the header's Python literal fails to tokenize or compares bytes with str,
# the zip names a version it cannot read (NotImplementedError) or claims encryption
# (RuntimeError).
_DAMAGED_NUMPY = (zipfile.BadZipFile, NotImplementedError, RuntimeError, TypeError,
                  SyntaxError, tokenize.TokenError)


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
    dt = float_dtype(dtype)
    return _read_text(path)[0].astype(dt)


def load_labels(path, kind="auto", dtype="float64"):
    """Labels in text format -> class indices y[n] int64, or target rows Y[n, k] of dtype.

    kind "index": one non-negative integer per line; "onehot": rows of 0s with a single 1,
    returned as indices; "rows": any numbers (soft targets), returned as they are;
    "auto": "index" for one column, "onehot" when every row is one-hot, else "rows".
    """
    choice("kind", kind, LABEL_KINDS)
    dt = float_dtype(dtype)
    A, lines = _read_text(path)
    return _labels(A, kind, path, lines, dt)


def load_csv(path, label_column=None, header="auto", dtype="float64"):
    """CSV -> X[n, d], or (X[n, d - 1], y[n] int64) with the class indices in label_column.

    header: True, False or "auto" (a first row with no number in it is a header).
    label_column: a header name or a column index (negative counts from the end).
    """
    choice("header", header, ("auto", True, False))
    dt = float_dtype(dtype)
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
        except (ValueError, *_DAMAGED_NUMPY, *_CORRUPT_GZIP) as e:
            raise ValueError(f"{path}: not a readable .npy/.npz file without pickled objects "
                             f"({e})") from None
    which = "holds several arrays" if key is None else f"has no array {key!r}"
    raise ValueError(f"{path}: {which}; key must be one of {names}")


def map_npy(path):
    """The array of an .npy file, memory-mapped read-only; a damaged or truncated file is a
    ValueError naming it, a missing or unreadable one numpy's OSError (which names it)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, *_DAMAGED_NUMPY) as e:
        raise ValueError(f"{path}: not a readable .npy file without pickled objects "
                         f"({e})") from None


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
    choice("role", role, ("inputs", "labels"))
    choice("kind", kind, LABEL_KINDS)
    choice("header", header, ("auto", True, False))
    dt = float_dtype(dtype)
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


# ---------------------------------------------------------------- writing datasets

def check_dataset_path(out):
    """Path(out), when it names a file save_dataset writes: one ending in .npz or .txt."""
    path = Path(out)
    if path.suffix not in DATASET_SUFFIXES:
        raise ValueError(f"out must end in .npz or .txt, got {str(out)!r}")
    return path


def save_dataset(out, X, y=None, classes=None):
    """Write X[n, d] (and labels y[n] or Y[n, k], class names) as .npz or the paper's text format.

    out.npz: arrays X, y and classes (a str array, loadable without pickle); out.txt:
    <stem>_inputs.txt and, with y, <stem>_labels.txt beside it, class names in '#' comments.
    """
    if check_dataset_path(out).suffix == ".npz":
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
