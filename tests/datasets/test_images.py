"""Image loaders, transforms and the fixed split, on files the tests write."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits as sk_digits

from bayesdl.datasets import (binarize, dynamic_binarize, load_digits_images, load_images,
                              split_images, to_unit_interval)
from bayesdl.cli.sample import tile
from tests.datasets.test_datasets import _write_idx


def test_bundled_digit_images_are_scikit_learns_divided_by_16():
    X, y = load_digits_images()
    ref = sk_digits()
    np.testing.assert_array_equal(X * 16, ref.images)
    np.testing.assert_array_equal(y, ref.target)
    assert X.min() == 0 and X.max() == 1
    assert load_images("digits")[0].shape == (1797, 8, 8)


def test_to_unit_interval_and_binarisation():
    raw = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_allclose(to_unit_interval(raw), [[0, 128 / 255, 1]])
    np.testing.assert_allclose(to_unit_interval(raw.astype(float)), [[0, 128 / 255, 1]])
    np.testing.assert_array_equal(to_unit_interval([[0.2, 1.0]]), [[0.2, 1.0]])
    with pytest.raises(ValueError, match="negative"):
        to_unit_interval([[-1.0, 0.5]])
    with pytest.raises(ValueError, match="up to 300"):
        to_unit_interval([[300.0]])
    np.testing.assert_array_equal(binarize([[0.2, 0.5, 0.7]]), [[0, 0, 1]])
    p = torch.tensor([0.1, 0.5, 0.9]).repeat(20000, 1)
    draws = dynamic_binarize(p, torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    # Bernoulli(p) means, within 4 standard errors
    np.testing.assert_allclose(draws.mean(0), [0.1, 0.5, 0.9], atol=4 * 0.5 / np.sqrt(20000))


def test_split_is_fixed_disjoint_and_stratified():
    X, y = load_digits_images()
    train, val, test = split_images(X, y, val=0.1, test=0.2, seed=0)
    again = split_images(X, y, val=0.1, test=0.2, seed=0)
    for a, b in zip((train, val, test), again):
        np.testing.assert_array_equal(a, b)
    everything = np.concatenate([train, val, test])
    assert len(everything) == len(X) == len(np.unique(everything))
    for c in range(10):  # each class split 70/10/20 up to rounding
        n_c = (y == c).sum()
        assert abs((y[test] == c).sum() - 0.2 * n_c) <= 1
        assert abs((y[val] == c).sum() - 0.1 * n_c) <= 1
    other = split_images(X, y, seed=1)[2]
    assert not np.array_equal(test, other)
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        split_images(X, val=0.5, test=0.5)


def test_load_images_from_npy_npz_idx_and_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    labels = np.array([3, 1, 3, 0, 1, 0])
    np.save(tmp_path / "x.npy", raw)
    X, y = load_images(tmp_path / "x.npy")
    np.testing.assert_allclose(X, raw / 255.0) and y is None
    np.savez(tmp_path / "d.npz", images=raw, labels=labels)
    X, y = load_images(tmp_path / "d.npz")
    np.testing.assert_allclose(X, raw / 255.0)
    np.testing.assert_array_equal(y, labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", raw, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels.astype(np.uint8), 0x08)
    X, y = load_images(tmp_path / "t10k-images-idx3-ubyte")
    np.testing.assert_allclose(X, raw / 255.0)
    np.testing.assert_array_equal(y, labels)
    for i, (image, label) in enumerate(zip(raw, labels)):
        (tmp_path / "folder" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "folder" / str(label) / f"{i}.png")
    X, y = load_images(tmp_path / "folder")
    order = np.argsort([f"{label}/{i}" for i, label in enumerate(labels)], kind="stable")
    np.testing.assert_allclose(X, raw[order] / 255.0)
    np.testing.assert_array_equal(y, labels[order])


def test_load_images_errors(tmp_path):
    np.save(tmp_path / "rows.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        load_images(tmp_path / "rows.npy")
    np.savez(tmp_path / "other.npz", a=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="no array named X"):
        load_images(tmp_path / "other.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_images(tmp_path / "empty")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((4, 3), np.uint8)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_images(tmp_path / "mixed")


def test_tile_places_each_image_in_its_cell():
    images = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = tile(images, nrow=3, pad=1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    scaled = (images - images.min()) / (images.max() - images.min())
    np.testing.assert_allclose(grid[1:3, 5:8], scaled[1])  # row 0, column 1
    np.testing.assert_allclose(grid[4:6, 1:4], scaled[3])  # row 1, column 0
    assert (grid[4:6, 9:12] == 1).all()  # the empty sixth cell stays white
