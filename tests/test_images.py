"""ghostmlp.images: image folders converted as the paper's preprocessing script does."""
import re
import sys

import numpy as np
import pytest
from test_formats import raises_at

from ghostmlp.formats import load
from ghostmlp.images import convert_images


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
