"""Bundled data, synthetic generators and the file loaders, on files the tests write."""

import gzip
import struct

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits as sk_load_digits

from bayesdl.datasets import (load_csv, load_digits, load_faithful, load_idx, load_mcycle, load_npy,
                              load_npz, make_gaussian_blobs, make_sinusoidal)


def test_bundled_faithful_and_mcycle_are_the_published_data():
    faithful = load_faithful()
    assert faithful.data.shape == (272, 2) and faithful.feature_names == ["eruptions", "waiting"]
    # published summaries of R's datasets::faithful
    assert faithful.data[:, 0].mean() == pytest.approx(3.487783, abs=1e-6)
    assert faithful.data[:, 1].mean() == pytest.approx(70.89706, abs=1e-5)
    mcycle = load_mcycle()
    assert mcycle.data.shape == (133, 1) and mcycle.target_name == "accel"
    assert mcycle.data[:, 0].min() == 2.4 and mcycle.data[:, 0].max() == 57.6
    assert mcycle.target.min() == -134.0 and mcycle.target.max() == 75.0


def test_bundled_digits_equal_scikit_learns():
    ours, ref = load_digits(), sk_load_digits()
    np.testing.assert_array_equal(ours.data, ref.data)
    np.testing.assert_array_equal(ours.target, ref.target)
    np.testing.assert_array_equal(ours.images, ref.images)


def test_make_sinusoidal_noise_and_grid():
    x, t = make_sinusoidal(20000, 0.3, random_state=0)
    residual = t - np.sin(2 * np.pi * x[:, 0])
    assert residual.std() == pytest.approx(0.3, rel=0.03)
    assert stats.kstest(x[:, 0], "uniform").pvalue > 1e-3
    xg, _ = make_sinusoidal(10, 0.3, random_state=0, uniform_grid=True)
    np.testing.assert_allclose(xg[:, 0], np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="noise_std"):
        make_sinusoidal(5, -1.0)


def test_make_gaussian_blobs_moments():
    cov = np.array([[[1.0, 0.8], [0.8, 1.0]], [[0.2, 0.0], [0.0, 2.0]]])
    X, labels = make_gaussian_blobs(40000, means=[[0, 0], [5, 5]], covariances=cov,
                                    weights=[0.3, 0.7], random_state=1)
    assert np.mean(labels == 0) == pytest.approx(0.3, abs=0.01)
    for k in range(2):
        np.testing.assert_allclose(np.cov(X[labels == k].T), cov[k], atol=0.05)
    with pytest.raises(ValueError, match="weights"):
        make_gaussian_blobs(10, weights=[0.5, 0.6, 0.1])


def test_load_csv_with_target_and_errors(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n4,5,6\n")
    bunch = load_csv(path, target="y")
    np.testing.assert_array_equal(bunch.data, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(bunch.target, [3, 6])
    assert bunch.feature_names == ["a", "b"]
    with pytest.raises(ValueError, match="Column 'z' is not in"):
        load_csv(path, target="z")
    path.write_text("a,b\n1,x\n")
    with pytest.raises(ValueError, match="line 2, column 'b': 'x' is not a number"):
        load_csv(path)
    path.write_text("a,b\n1\n")
    with pytest.raises(ValueError, match="1 fields where the header has 2"):
        load_csv(path)
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_csv(path)
    with pytest.raises(FileNotFoundError):
        load_csv(tmp_path / "absent.csv")


def test_load_npy_and_npz(tmp_path):
    a = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(load_npy(tmp_path / "a.npy"), a)
    mm = load_npy(tmp_path / "a.npy", mmap=True)
    assert isinstance(mm, np.memmap) and not mm.flags.writeable
    np.savez(tmp_path / "z.npz", x=a, y=a[:, 0])
    np.testing.assert_array_equal(load_npz(tmp_path / "z.npz", "y"), a[:, 0])
    assert set(load_npz(tmp_path / "z.npz")) == {"x", "y"}
    with pytest.raises(ValueError, match="has no array 'w'"):
        load_npz(tmp_path / "z.npz", "w")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a numeric .npy"):
        load_npy(tmp_path / "o.npy")


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
    return payload


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_load_idx_mnist_format(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    _write_idx(tmp_path / name, images, 0x08)
    np.testing.assert_array_equal(load_idx(tmp_path / name), images)
    floats = np.random.default_rng(1).normal(size=(3, 2)).astype(np.float32)
    _write_idx(tmp_path / "f.idx", floats, 0x0D)
    np.testing.assert_array_equal(load_idx(tmp_path / "f.idx"), floats)


def test_load_idx_errors(tmp_path):
    payload = _write_idx(tmp_path / "l.idx", np.arange(10, dtype=np.uint8), 0x08)
    (tmp_path / "cut.idx").write_bytes(payload[:-2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_idx(tmp_path / "cut.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="bad magic number"):
        load_idx(tmp_path / "bad.idx")


def test_load_csv_reads_the_target_as_given(tmp_path):
    path = tmp_path / "d.csv"
    cases = [("0\n1\n1", np.array([0, 1, 1]), np.int64),
             ("-2\n 7 \n0", np.array([-2, 7, 0]), np.int64),
             ("0.0\n1\n", np.array([0.0, 1.0, np.nan]), np.float64),
             ("cat\ndog\ncat", np.array(["cat", "dog", "cat"], dtype=object), object)]
    for cells, expected, dtype in cases:
        rows = cells.split("\n")
        path.write_text("a,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(rows)))
        bunch = load_csv(path, target="y", target_as_given=True)
        assert bunch.target.dtype == dtype
        np.testing.assert_array_equal(bunch.target, expected)
        np.testing.assert_array_equal(bunch.data, [[0.0], [1.0], [2.0]])
        assert dtype is object or load_csv(path, target="y").target.dtype == np.float64
    with pytest.raises(ValueError, match="'cat' is not a number"):  # the default: numbers
        load_csv(path, target="y")
    path.write_text("a,y\n0,cat\n1,\n")
    with pytest.raises(ValueError, match="line 3, column 'y' is empty"):
        load_csv(path, target="y", target_as_given=True)
