"""ghostmlp.formats: text, CSV, .npy/.npz and IDX files, errors naming the file and line."""
import gzip
import re
import struct

import numpy as np
import pytest

from ghostmlp.formats import load, load_array, load_csv, load_idx, load_labels, load_text


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


def npy_with_header(path, header):
    """A version 1.0 .npy file whose header is `header` (bytes) and 16 bytes of data."""
    header = header.ljust(-(-(len(header) + 11) // 64) * 64 - 11) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
                     + bytes(16))
    return path


@pytest.mark.parametrize("header", [
    b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,",     # numpy: TokenError
    b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}})",  # SyntaxError
    b"{'descr': b'<f8', 'fortran_order': False, 'shape': (2,), }",  # TypeError
], ids=["unterminated", "unbalanced", "bytes descr"])
def test_a_damaged_npy_header_names_the_file(tmp_path, header):
    path = npy_with_header(tmp_path / "damaged.npy", header)
    with raises_at(path, None, "not a readable .npy/.npz file"):
        load(path)


@pytest.mark.parametrize("offset, value, match", [
    (6, 99, "zip file version"),            # the version needed to extract the entry
    (8, 1, "encrypted"),                    # the entry's flags: encrypted
], ids=["zip version", "encrypted"])
def test_an_npz_that_zipfile_cannot_open_names_the_file(tmp_path, offset, value, match):
    np.savez_compressed(tmp_path / "X.npz", X=np.zeros(3))
    raw = bytearray((tmp_path / "X.npz").read_bytes())
    raw[raw.find(b"PK\x01\x02") + offset] = value
    (tmp_path / "X.npz").write_bytes(raw)
    with raises_at(tmp_path / "X.npz", None, f"not a readable .npy/.npz file .*{match}"):
        load(tmp_path / "X.npz")


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
