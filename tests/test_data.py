import csv
import gzip
import json
import re
import struct
import sys
from importlib.resources import files

import numpy as np
import pytest

from ghostmlp.data import (
    Normaliser, convert_images, load, load_array, load_csv, load_digits, load_idx, load_labels,
    load_text, one_hot, read_on_root, synthetic, train_test_split, validation_split,
)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64])
def test_load_digits_shape_and_dtype(dtype):
    X, y = load_digits(dtype=dtype)
    assert X.shape == (1797, 64)
    assert X.dtype == np.dtype(dtype)
    assert X.flags.c_contiguous
    assert y.shape == (1797,)
    assert y.dtype == np.int64


def test_load_digits_value_range():
    X, _ = load_digits()
    assert X.min() == 0.0
    assert X.max() == 1.0
    raw, _ = load_digits(scale=False)
    assert raw.min() == 0.0
    assert raw.max() == 16.0
    np.testing.assert_array_equal(raw, np.round(raw))
    np.testing.assert_allclose(X * 16.0, raw)


def test_load_digits_class_counts():
    _, y = load_digits()
    counts = np.bincount(y)
    assert counts.shape == (10,)
    assert [int((y == c).sum()) for c in range(10)] == counts.tolist()
    assert counts.sum() == 1797
    assert np.all((counts >= 170) & (counts <= 190))
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_load_digits_matches_csv_reader():
    path = files("ghostmlp") / "datasets" / "digits.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", newline="") as text:
        first = next(csv.reader(text))
    assert len(first) == 65
    X, y = load_digits(scale=False)
    assert y[0] == int(first[-1])
    np.testing.assert_array_equal(X[0], [int(v) for v in first[:64]])


@pytest.mark.parametrize("dtype", ["float16", "int64", "complex128", None, "not-a-dtype"])
def test_load_digits_rejects_dtype(dtype):
    with pytest.raises(ValueError, match="dtype"):
        load_digits(dtype=dtype)


def test_split_sizes_disjoint_and_covering():
    X, y = load_digits()
    idx = np.arange(1797)
    i_train, i_test, y_train, y_test = train_test_split(idx, y)
    assert i_test.shape == (449,)
    assert i_train.shape == (1348,)
    assert np.intersect1d(i_train, i_test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([i_train, i_test])), idx)
    np.testing.assert_array_equal(y_train, y[i_train])
    np.testing.assert_array_equal(y_test, y[i_test])
    X_train, X_test, _, _ = train_test_split(X, y)
    np.testing.assert_array_equal(X_train, X[i_train])
    np.testing.assert_array_equal(X_test, X[i_test])


def test_split_reproducible_by_seed():
    idx = np.arange(1797)
    a = train_test_split(idx, idx, seed=3)
    b = train_test_split(idx, idx, seed=3)
    c = train_test_split(idx, idx, seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    expected = np.random.default_rng(3).permutation(1797)[:449]
    np.testing.assert_array_equal(a[1], expected)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(np.zeros((10, 2)), np.zeros(10), test_fraction=fraction)


def test_split_rejects_row_mismatch():
    with pytest.raises(ValueError, match="X and y"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


def test_one_hot_round_trip():
    _, y = load_digits()
    Y = one_hot(y)
    assert Y.shape == (1797, 10)
    assert Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), np.ones(1797))
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    Y32 = one_hot(y[:5], n_classes=12, dtype="float32")
    assert Y32.shape == (5, 12)
    assert Y32.dtype == np.float32
    np.testing.assert_array_equal(Y32.argmax(axis=1), y[:5])


def test_one_hot_values():
    np.testing.assert_array_equal(one_hot([2, 0, 1]), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(one_hot(np.array([1.0, 0.0])), [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    "labels, n_classes, name",
    [
        ([0, -1, 2], None, "y"),
        ([0.5, 1.0], None, "y"),
        ([0.0, np.nan], None, "y"),
        ([0.0, np.inf], None, "y"),
        ([True, False], None, "y"),
        (["a", "b"], None, "y"),
        ([0, 3], 3, "n_classes"),
    ],
)
def test_one_hot_rejects(labels, n_classes, name):
    with pytest.raises(ValueError, match=name):
        one_hot(labels, n_classes=n_classes)


# ---------------------------------------------------------------- loaders

def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def raises_at(path, line, match=""):
    """pytest.raises for a ValueError naming path (and line, unless None) and matching `match`."""
    where = re.escape(str(path)) + (f", line {line}:" if line else "")
    return pytest.raises(ValueError, match=f"^{where}.*{match}")


def test_load_text_whitespace_comments_and_blank_lines(tmp_path):
    path = write(tmp_path / "testInput.txt",
                 "# the paper's format\n1 2.5 -3e-1\n\n  4\t5   6  # trailing comment\r\n7 8 9\n")
    X = load_text(path)
    np.testing.assert_array_equal(X, [[1, 2.5, -0.3], [4, 5, 6], [7, 8, 9]])
    assert X.dtype == np.float64
    assert load_text(path, dtype="float32").dtype == np.float32


def test_load_text_commas_and_single_column(tmp_path):
    np.testing.assert_array_equal(load_text(write(tmp_path / "a.txt", "1, 2,3\n# x\n4 ,5, 6\n")),
                                  [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(load_text(write(tmp_path / "b.txt", "1\n2\n")), [[1], [2]])


def test_load_text_matches_numpy_and_reads_gzip_by_content(tmp_path):
    expected = np.random.default_rng(0).normal(size=(50, 7))
    np.savetxt(tmp_path / "plain.txt", expected, fmt="%.17g")
    np.savetxt(tmp_path / "commas.txt", expected, fmt="%.17g", delimiter=",")
    zipped = tmp_path / "zipped.dat"                   # no .gz suffix: found by its magic bytes
    zipped.write_bytes(gzip.compress((tmp_path / "plain.txt").read_bytes()))
    for name in ("plain.txt", "commas.txt", "zipped.dat"):
        np.testing.assert_array_equal(load_text(tmp_path / name), expected)


@pytest.mark.parametrize("text, line, match", [
    ("1 2\n3 x\n", 2, "non-numeric token 'x'"),
    ("1,2\n3,\n", 2, "non-numeric token ''"),
    ("1 2\n# c\n\n3\n", 4, "expected 2 columns, got 1"),
    ("1,2\n3 4\n", 2, "mixes comma and whitespace"),
    ("1 2\n3 4,5\n", 2, "mixes comma and whitespace"),
    ("1 2\n3 nan\n", 2, "non-finite"),
    ("1 2\n3 inf\n", 2, "non-finite"),
    ("", None, "empty file"),
    ("# only a comment\n\n", None, "empty file"),
])
def test_load_text_errors_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path / "bad.txt", text)
    with raises_at(path, line, match):
        load_text(path)


def test_load_text_rejects_binary_and_missing_files(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with raises_at(path, None, "not a readable UTF-8 text file"):
        load_text(path)
    corrupt = tmp_path / "corrupt.txt"
    corrupt.write_bytes(gzip.compress(b"1 2\n")[:-6])
    with raises_at(corrupt, None, "not a readable"):
        load_text(corrupt)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_text(tmp_path / "missing.txt")


def test_load_labels_indices(tmp_path):
    y = load_labels(write(tmp_path / "y.txt", "# labels\n3\n0\n\n1.0\n"))
    np.testing.assert_array_equal(y, [3, 0, 1])
    assert y.dtype == np.int64


def test_load_labels_onehot_rows_become_indices(tmp_path):
    path = write(tmp_path / "y.txt", "0 0 1\n1 0 0\n0 1 0\n0 0 1\n")
    for kind in ("auto", "onehot"):
        y = load_labels(path, kind=kind)
        np.testing.assert_array_equal(y, [2, 0, 1, 2])
        assert y.dtype == np.int64
    np.testing.assert_array_equal(load_labels(path, kind="rows"), np.eye(3)[[2, 0, 1, 2]])


def test_load_labels_soft_rows_stay_float(tmp_path):
    path = write(tmp_path / "y.txt", "0.2,0.8\n1,0\n")
    Y = load_labels(path, dtype="float32")
    np.testing.assert_array_equal(Y, np.array([[0.2, 0.8], [1, 0]], dtype=np.float32))
    assert Y.dtype == np.float32
    two_ones = write(tmp_path / "multi.txt", "1 1 0\n0 1 0\n")      # multi-label rows: not one-hot
    np.testing.assert_array_equal(load_labels(two_ones), [[1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(load_labels(write(tmp_path / "c.txt", "0.5\n2\n"), kind="rows"),
                                  [[0.5], [2]])


@pytest.mark.parametrize("text, kind, line, match", [
    ("1\n-2\n", "auto", 2, "non-negative integer, got -2"),
    ("1\n\n0.5\n", "auto", 3, "non-negative integer, got 0.5"),
    ("1\n0.5\n", "index", 2, "non-negative integer"),
    ("0 1\n1 0\n", "index", 1, "one class index per row, got 2 columns"),
    ("0 1\n1 1\n", "onehot", 2, "not a one-hot row"),
    ("0 1\n0 0\n", "onehot", 2, "not a one-hot row"),
    ("# c\n0.5 0.5\n", "onehot", 2, "not a one-hot row"),
    ("1\nb\n", "auto", 2, "non-numeric token 'b'"),
])
def test_load_labels_errors_name_file_and_line(tmp_path, text, kind, line, match):
    path = write(tmp_path / "labels.txt", text)
    with raises_at(path, line, match):
        load_labels(path, kind=kind)


def test_load_labels_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        load_labels(write(tmp_path / "y.txt", "1\n"), kind="classes")


def test_load_csv_header_auto_and_label_column(tmp_path):
    path = write(tmp_path / "d.csv", 'x0,"x 1",label\n0.5,1,2\n\n1.5, 2 ,0\n')
    np.testing.assert_array_equal(load_csv(path), [[0.5, 1, 2], [1.5, 2, 0]])
    for column in ("label", 2, -1):
        X, y = load_csv(path, label_column=column, dtype="float32")
        np.testing.assert_array_equal(X, [[0.5, 1], [1.5, 2]])
        assert X.dtype == np.float32
        np.testing.assert_array_equal(y, [2, 0])
        assert y.dtype == np.int64
    X, y = load_csv(path, label_column="x 1")
    np.testing.assert_array_equal(X, [[0.5, 2], [1.5, 0]])
    np.testing.assert_array_equal(y, [1, 2])


def test_load_csv_without_header(tmp_path):
    path = write(tmp_path / "d.csv", "3,0.25,0.5\n1,0.75,1\n")
    X, y = load_csv(path, label_column=0)
    np.testing.assert_array_equal(X, [[0.25, 0.5], [0.75, 1]])
    np.testing.assert_array_equal(y, [3, 1])
    np.testing.assert_array_equal(load_csv(path, header=False), [[3, 0.25, 0.5], [1, 0.75, 1]])
    np.testing.assert_array_equal(load_csv(path, header=True), [[1, 0.75, 1]])   # forced header


def test_load_csv_reads_gzip(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    np.testing.assert_array_equal(load_csv(path), [[1, 2]])


@pytest.mark.parametrize("text, options, line, match", [
    ("a,b\n1,2\n3,x\n", {}, 3, "non-numeric token 'x'"),
    ("a,b\n1,2\n3\n", {}, 3, "expected 2 columns, got 1"),
    ("a,b\n1,2\n", {"header": False}, 1, "non-numeric token 'a'"),
    ("a,b\n1,2\n4,-1\n", {"label_column": "b"}, 3, "non-negative integer, got -1"),
    ("a,b\n1,2\n4,1.5\n", {"label_column": -1}, 3, "non-negative integer, got 1.5"),
    ("a,b\n", {}, None, "empty file"),
    ("", {}, None, "empty file"),
    ("1,2\n", {"label_column": "b"}, None, "needs a header row"),
    ("a,b\n1,2\n", {"label_column": "c"}, None, r"no column 'c'; the header names \['a', 'b'\]"),
    ("a,b\n1,2\n", {"label_column": 2}, None, r"label_column must be .* \[-2, 2\), got 2"),
    ("a,b\n1,2\n", {"label_column": True}, None, "label_column must be"),
])
def test_load_csv_errors_name_file_and_line(tmp_path, text, options, line, match):
    path = write(tmp_path / "bad.csv", text)
    with raises_at(path, line, match):
        load_csv(path, **options)


def test_load_csv_rejects_header_option(tmp_path):
    with pytest.raises(ValueError, match="header must be one of"):
        load_csv(write(tmp_path / "d.csv", "1\n"), header="yes")


def test_load_array_npy_and_npz(tmp_path):
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    b = np.linspace(0, 1, 5, dtype=np.float32)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "one.npz", only=b)
    np.savez_compressed(tmp_path / "two.npz", a=a, b=b)
    for got, want in [(load_array(tmp_path / "a.npy"), a), (load_array(tmp_path / "one.npz"), b),
                      (load_array(tmp_path / "two.npz", key="a"), a),
                      (load_array(tmp_path / "two.npz", key="b"), b)]:
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    several = r"holds several arrays; key must be one of \['a', 'b'\]"
    with raises_at(tmp_path / "two.npz", None, several):
        load_array(tmp_path / "two.npz")
    with raises_at(tmp_path / "two.npz", None, "has no array 'c'"):
        load_array(tmp_path / "two.npz", key="c")


def test_load_array_never_unpickles(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "objects.npz", x=np.array([[1], "a"], dtype=object))
    for name in ("objects.npy", "objects.npz"):
        with raises_at(tmp_path / name, None, "pickle"):
            load_array(tmp_path / name)
    with raises_at(write(tmp_path / "text.npy", "1 2\n"), None, "not a readable .npy/.npz"):
        load_array(tmp_path / "text.npy")


IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}


def write_idx(path, a, gz=False):
    """An IDX file by hand: magic 0, 0, type code, ndim; big-endian uint32 dims and data."""
    data = (bytes([0, 0, IDX_CODES[a.dtype.type], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
            + a.astype(a.dtype.newbyteorder(">")).tobytes())
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_uint8_images(tmp_path, gz):
    images = np.random.default_rng(1).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = write_idx(tmp_path / "images-idx3-ubyte", images, gz=gz)    # no suffix: magic decides
    assert path.read_bytes()[:4] == (b"\x1f\x8b\x08\x00" if gz else b"\x00\x00\x08\x03")
    got = load_idx(path)
    np.testing.assert_array_equal(got, images)
    assert got.dtype == np.uint8 and got.shape == (5, 3, 4)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_load_idx_other_types_are_big_endian(tmp_path, dtype):
    a = np.array([[-2.5, 1.0, 300.0], [7.0, -100.0, 0.0]]).astype(dtype)
    got = load_idx(write_idx(tmp_path / "a.idx", a))
    np.testing.assert_array_equal(got, a)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative


def test_load_idx_errors(tmp_path):
    good = write_idx(tmp_path / "good.idx", np.arange(6, dtype=np.uint8).reshape(2, 3)).read_bytes()
    for name, data, match in [("short.idx", good[:-1], r"\(2, 3\) of uint8 needs 18 bytes, file has 17"),
                              ("long.idx", good + b"\0", "file has 19"),
                              ("header.idx", good[:9], "header truncated"),
                              ("magic.idx", b"\x00\x00\x07\x01" + good[4:], "not an IDX file"),
                              ("text.idx", b"1 2 3\n", "not an IDX file")]:
        (tmp_path / name).write_bytes(data)
        with raises_at(tmp_path / name, None, match):
            load_idx(tmp_path / name)


def test_load_dispatches_by_content_and_flattens_inputs(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    write_idx(tmp_path / "train-images.gz", images, gz=True)
    write_idx(tmp_path / "train-labels", labels)
    np.save(tmp_path / "x.npy", images)
    np.savez(tmp_path / "xy.npz", X=images.astype(np.float32), Y=np.eye(3)[[2, 0]])
    write(tmp_path / "x.txt", "0 1 2 3 4 5 6 7 8 9 10 11\n12 13 14 15 16 17 18 19 20 21 22 23\n")
    write(tmp_path / "x.csv", "a,b,c\n0,1,7\n2,3,1\n")
    expected = images.reshape(2, 12).astype(np.float64)
    for name, key in [("train-images.gz", None), ("x.npy", None), ("xy.npz", "X"), ("x.txt", None)]:
        X = load(tmp_path / name, key=key)
        np.testing.assert_array_equal(X, expected)
        assert X.dtype == np.float64 and X.flags.c_contiguous
    assert load(tmp_path / "x.npy", dtype="float32").dtype == np.float32
    for name, options in [("train-labels", {}), ("x.csv", {"label_column": "c"})]:
        y = load(tmp_path / name, role="labels", **options)
        np.testing.assert_array_equal(y, [7, 1])
        assert y.dtype == np.int64
    np.testing.assert_array_equal(load(tmp_path / "x.csv", label_column=-1), [[0, 1], [2, 3]])
    np.testing.assert_array_equal(load(tmp_path / "xy.npz", "labels", key="Y"), [2, 0])
    np.testing.assert_array_equal(load(tmp_path / "xy.npz", "labels", key="Y", kind="rows"),
                                  np.eye(3)[[2, 0]])


def test_load_errors(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([[1.0, 2.0], [np.nan, 0.0]]))
    with raises_at(tmp_path / "nan.npy", None, "row 1: non-finite value nan"):
        load(tmp_path / "nan.npy")
    np.save(tmp_path / "neg.npy", np.array([0, 2, -1]))
    with raises_at(tmp_path / "neg.npy", None, "row 2: class index must be a non-negative integer"):
        load(tmp_path / "neg.npy", role="labels")
    np.save(tmp_path / "scalar.npy", np.float64(3))
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    for name in ("scalar.npy", "strings.npy"):
        with raises_at(tmp_path / name, None, "expected numbers, one row per sample"):
            load(tmp_path / name)
    with raises_at(write(tmp_path / "y.csv", "1\n2,3\n"), 2, "expected 1 columns, got 2"):
        load(tmp_path / "y.csv", role="labels")
    with pytest.raises(ValueError, match="role must be one of"):
        load(tmp_path / "y.csv", role="targets")
    with pytest.raises(ValueError, match="dtype must be"):
        load(tmp_path / "y.csv", dtype="int32")


# ---------------------------------------------------------------- images

def image_folder(tmp_path):
    """Two classes, created in the opposite of their sorted order, in several formats and modes."""
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path / "images"
    (root / "b_zeros").mkdir(parents=True)
    (root / "a_ones").mkdir()
    (root / ".hidden").mkdir()
    Image.new("L", (16, 16), 0).save(root / "b_zeros" / "1.png")
    Image.new("RGB", (5, 3), (0, 0, 0)).save(root / "b_zeros" / "0.jpg")
    Image.new("L", (8, 8), 255).save(root / "a_ones" / "x.pgm")
    Image.new("RGBA", (24, 16), (255, 255, 255, 255)).save(root / "a_ones" / "y.PNG")
    (root / "a_ones" / "notes.txt").write_text("not an image")
    return root


def test_convert_images_classes_shapes_and_values(tmp_path):
    X, y, classes = convert_images(image_folder(tmp_path), size=(4, 2))
    assert classes == ["a_ones", "b_zeros"]
    assert X.shape == (4, 8) and X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X[:2], 1.0)
    np.testing.assert_allclose(X[2:], 0.0, atol=1 / 255)          # the JPEG may be off by one level


def test_convert_images_averages_blocks_like_the_uci_digits(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    bitmap = np.random.default_rng(2).integers(0, 2, (32, 32)).astype(np.uint8) * 255
    (tmp_path / "digits" / "7").mkdir(parents=True)
    Image.fromarray(bitmap).save(tmp_path / "digits" / "7" / "a.png")
    Image.fromarray(bitmap[:, :16]).save(tmp_path / "digits" / "7" / "b.pgm")   # 16 wide, 32 high
    X, _, _ = convert_images(tmp_path / "digits")
    counts = (bitmap > 0).reshape(8, 4, 8, 4).sum(axis=(1, 3))      # the UCI 4x4 block counts
    np.testing.assert_allclose(X[0], counts.reshape(64) / 16, rtol=1e-6)
    half = (bitmap[:, :16] > 0).reshape(8, 4, 8, 2).mean(axis=(1, 3))  # row-major: [h, w]
    np.testing.assert_allclose(X[1], half.reshape(64), rtol=1e-6)


def test_convert_images_reads_16_bit_images(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "deep" / "c").mkdir(parents=True)
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "deep" / "c" / "a.png")
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(tmp_path / "deep" / "c" / "b.pgm")
    X, _, _ = convert_images(tmp_path / "deep", size=(2, 2))
    np.testing.assert_allclose(X, [[1.0] * 4, [32768 / 65535] * 4], rtol=1e-6)


def test_convert_images_writes_npz(tmp_path):
    X, y, classes = convert_images(image_folder(tmp_path), size=(3, 3), out=tmp_path / "digits.npz")
    with np.load(tmp_path / "digits.npz", allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["X"], X)
        assert saved["X"].dtype == np.float32
        np.testing.assert_array_equal(saved["y"], y)
        assert saved["classes"].tolist() == classes
    np.testing.assert_array_equal(load(tmp_path / "digits.npz", key="X", dtype="float32"), X)


def test_convert_images_writes_text(tmp_path):
    (tmp_path / "out").mkdir()
    X, y, _ = convert_images(image_folder(tmp_path), size=(5, 3), out=tmp_path / "out" / "digits.txt")
    assert not (tmp_path / "out" / "digits.txt").exists()
    np.testing.assert_array_equal(load(tmp_path / "out" / "digits_inputs.txt", dtype="float32"), X)
    np.testing.assert_array_equal(load(tmp_path / "out" / "digits_labels.txt", role="labels"), y)
    labels = (tmp_path / "out" / "digits_labels.txt").read_text()
    assert labels.startswith("# class 0: a_ones\n# class 1: b_zeros\n0\n")


def test_convert_images_errors(tmp_path):
    pytest.importorskip("PIL.Image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no class subfolders"):
        convert_images(tmp_path / "empty")
    (tmp_path / "noimages" / "cls").mkdir(parents=True)
    (tmp_path / "noimages" / "cls" / "readme.txt").write_text("x")
    with raises_at(tmp_path / "noimages" / "cls", None, "no images"):
        convert_images(tmp_path / "noimages")
    root = image_folder(tmp_path)
    (root / "b_zeros" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with raises_at(root / "b_zeros" / "broken.png", None, "unreadable image"):
        convert_images(root)
    for size in [(8,), (0, 8), (8.0, 8), "8x8"]:
        with pytest.raises(ValueError, match="size must be"):
            convert_images(root, size=size)
    with pytest.raises(ValueError, match="out must end in .npz or .txt"):
        convert_images(root, out=tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        convert_images(tmp_path / "missing")


def test_convert_images_without_pillow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'ghostmlp[images]'")):
        convert_images(tmp_path)


# ---------------------------------------------------------------- synthetic data, splits

def test_synthetic_is_seeded_and_leaves_global_state_alone():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    X, y = synthetic(100, 7, 3, seed=5)
    assert np.array_equal(np.random.get_state()[1], state)
    assert X.shape == (100, 7) and X.dtype == np.float64 and y.shape == (100,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() < 1.0
    assert set(np.unique(y)) == {0, 1, 2}
    X2, y2 = synthetic(100, 7, 3, seed=5)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(X, rng.random((100, 7)))
    np.testing.assert_array_equal(y, rng.integers(0, 3, 100))
    assert not np.array_equal(X, synthetic(100, 7, 3, seed=6)[0])
    X32, _ = synthetic(10, 4, 2, dtype="float32")
    assert X32.dtype == np.float32 and X32.max() < 1.0


@pytest.mark.parametrize("args", [(0, 3, 2), (5, -1, 2), (5, 3, 0), (5.0, 3, 2), (True, 3, 2)])
def test_synthetic_rejects_sizes(args):
    with pytest.raises(ValueError, match="must be a positive integer"):
        synthetic(*args)


def test_validation_split_is_train_test_split_with_its_own_name():
    X, y = np.arange(40).reshape(20, 2), np.arange(20)
    for got, want in zip(validation_split(X, y, 0.2, seed=9), train_test_split(X, y, 0.2, seed=9)):
        np.testing.assert_array_equal(got, want)
    assert validation_split(X, y, 0.2)[1].shape == (4, 2)
    with pytest.raises(ValueError, match="^fraction must lie in"):
        validation_split(X, y, 1.0)


# ---------------------------------------------------------------- normalisation

KNOWN = np.array([[1.0, 10.0, 5.0], [3.0, 10.0, 7.0], [5.0, 10.0, 12.0]])


def test_normaliser_standard_statistics():
    norm = Normaliser().fit(KNOWN)
    np.testing.assert_allclose(norm.shift, [3.0, 10.0, 8.0])
    np.testing.assert_allclose(norm.scale, [np.sqrt(8 / 3), 1.0, np.sqrt(26 / 3)])
    Z = norm.transform(KNOWN)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Z.std(axis=0), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(Z[:, 1], 0.0)                    # constant column: exactly 0
    np.testing.assert_allclose(norm.transform([[3.0, 11.0, 8.0]]), [[0.0, 1.0, 0.0]])


def test_normaliser_minmax_uses_the_training_split_only():
    norm = Normaliser("minmax")
    np.testing.assert_allclose(norm.fit_transform(KNOWN), [[0, 0, 0], [0.5, 0, 2 / 7], [1, 0, 1]])
    np.testing.assert_allclose(norm.transform([[9.0, 10.0, -2.0]]), [[2.0, 0.0, -1.0]])


def test_normaliser_preserves_dtype():
    norm = Normaliser().fit(KNOWN.astype(np.float32))
    assert norm.transform(KNOWN.astype(np.float32)).dtype == np.float32
    assert norm.transform(KNOWN).dtype == np.float64
    assert norm.transform(KNOWN.astype(np.int32)).dtype == np.float64


@pytest.mark.parametrize("kind", ["standard", "minmax"])
def test_normaliser_round_trips_through_json(kind):
    X, _ = synthetic(30, 5, 2, seed=1)
    norm = Normaliser(kind).fit(X)
    state = json.loads(json.dumps(norm.to_dict()))
    assert state["kind"] == kind and len(state["shift"]) == 5
    again = Normaliser.from_dict(state)
    np.testing.assert_array_equal(again.transform(X), norm.transform(X))
    assert repr(again) == f"Normaliser({kind!r}, fitted on 5 columns)"


def test_normaliser_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        Normaliser("robust")
    with pytest.raises(ValueError, match="call fit"):
        Normaliser().transform(KNOWN)
    with pytest.raises(ValueError, match="nothing to save"):
        Normaliser().to_dict()
    norm = Normaliser().fit(KNOWN)
    for X in (KNOWN[:, :2], KNOWN[0]):
        with pytest.raises(ValueError, match="fitted on 3 columns"):
            norm.transform(X)
    for X in (np.zeros((0, 3)), np.zeros(3), [["a"]], [[1.0, np.nan]]):
        with pytest.raises(ValueError, match="Normaliser.fit"):
            Normaliser().fit(X)
    for state in ({"kind": "standard", "shift": [0.0]}, {"kind": "x", "shift": [0], "scale": [1]},
                  {"kind": "minmax", "shift": [0, 1], "scale": [1]},
                  {"kind": "minmax", "shift": [0], "scale": [0]}):
        with pytest.raises(ValueError, match="not a Normaliser state"):
            Normaliser.from_dict(state)


def test_read_on_root_without_comm_just_reads():
    a = np.arange(3)
    assert read_on_root(lambda: a) is a
    with pytest.raises(ValueError, match="boom"):
        read_on_root(lambda: (_ for _ in ()).throw(ValueError("boom")))
