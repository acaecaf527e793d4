"""Persistence: round trips, the documented errors for corrupt files, atomic writes, no pickle."""

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import bayesdl
from bayesdl.linear_model import BayesianLinearRegression, GaussianBasis, PolynomialBasis


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=60)


@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "model.safetensors"
    BayesianLinearRegression().fit(*data).save(path)
    return path


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n, json.loads(raw[8:8 + n])


def _rewrite(path, header, rest):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + rest)


@pytest.mark.parametrize("make", [
    lambda: BayesianLinearRegression(alpha_shape=0.0, dtype="float32", random_state=3),
    lambda: Pipeline([("basis", GaussianBasis(n_centers=4)), ("blr", BayesianLinearRegression())]),
    lambda: Pipeline([("scale", StandardScaler()), ("poly", PolynomialBasis(degree=2)),
                      ("blr", BayesianLinearRegression(fit_intercept=False))]),
])
def test_round_trip_gives_identical_predictions(tmp_path, data, make):
    X, y = data
    model = make().fit(X, y)
    bayesdl.save(model, tmp_path / "m.safetensors")
    loaded = bayesdl.load(tmp_path / "m.safetensors")
    assert type(loaded) is type(model)
    assert loaded.get_params(deep=True).keys() == model.get_params(deep=True).keys()
    final = loaded[-1] if isinstance(loaded, Pipeline) else loaded
    mean, std = final.predict(loaded[:-1].transform(X) if isinstance(loaded, Pipeline) else X,
                              return_std=True)
    ref_final = model[-1] if isinstance(model, Pipeline) else model
    ref_mean, ref_std = ref_final.predict(model[:-1].transform(X) if isinstance(model, Pipeline) else X,
                                          return_std=True)
    np.testing.assert_array_equal(mean, ref_mean)
    np.testing.assert_array_equal(std, ref_std)


def test_loaded_model_continues_partial_fit(tmp_path, data):
    X, y = data
    model = BayesianLinearRegression().partial_fit(X[:30], y[:30])
    model.save(tmp_path / "m.safetensors")
    resumed = bayesdl.load(tmp_path / "m.safetensors").partial_fit(X[30:], y[30:])
    np.testing.assert_allclose(resumed.coef_, BayesianLinearRegression().fit(X, y).coef_, rtol=1e-10)


def test_info_round_trip(tmp_path, data):
    model = BayesianLinearRegression().fit(*data)
    bayesdl.save(model, tmp_path / "m.safetensors", info={"feature_names": ["a", "b", "c"]})
    _, info = bayesdl.load(tmp_path / "m.safetensors", with_info=True)
    assert info == {"feature_names": ["a", "b", "c"]}


def test_truncated_file(saved):
    raw = saved.read_bytes()
    for cut in (len(raw) - 3, 100, 5, 0):
        saved.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="truncated|corrupt|not a valid"):
            bayesdl.load(saved)


def test_edited_hyper_parameter_in_header_is_detected(saved):
    raw, n, header = _header(saved)
    config = json.loads(header["__metadata__"]["bayesdl.config"])
    config["model"]["params"]["alpha_shape"] = 0.5
    header["__metadata__"]["bayesdl.config"] = json.dumps(config, sort_keys=True)
    _rewrite(saved, header, raw[8 + n:])
    with pytest.raises(ValueError, match="checksum does not match"):
        bayesdl.load(saved)


def test_edited_tensor_bytes_are_detected(saved):
    raw = bytearray(saved.read_bytes())
    raw[-1] ^= 0xFF
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum does not match"):
        bayesdl.load(saved)


def test_header_that_is_not_json(saved):
    raw, n, _ = _header(saved)
    saved.write_bytes(raw[:8] + b"{" * n + raw[8 + n:])
    with pytest.raises(ValueError, match="not valid JSON"):
        bayesdl.load(saved)


def test_unknown_class_is_rejected_without_importing_it(saved):
    raw, n, header = _header(saved)
    config = json.loads(header["__metadata__"]["bayesdl.config"])
    config["model"]["class"] = "os.system"
    blob = json.dumps(config, sort_keys=True)
    header["__metadata__"]["bayesdl.config"] = blob
    # even with a matching checksum the class is refused
    from bayesdl.io import _digest
    from safetensors.torch import load as st_load
    header["__metadata__"]["bayesdl.sha256"] = _digest(blob, st_load(raw))
    _rewrite(saved, header, raw[8 + n:])
    with pytest.raises(ValueError, match="Unknown model class 'os.system'"):
        bayesdl.load(saved)


def test_plain_safetensors_file_and_future_version(tmp_path, saved):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="no bayesdl metadata"):
        bayesdl.load(plain)
    raw, n, header = _header(saved)
    header["__metadata__"]["bayesdl.format_version"] = "99"
    _rewrite(saved, header, raw[8 + n:])
    with pytest.raises(ValueError, match="newer than this bayesdl"):
        bayesdl.load(saved)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        bayesdl.load(tmp_path / "absent.safetensors")


def test_saving_a_foreign_object_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="not a bayesdl model"):
        bayesdl.save(object(), tmp_path / "x.safetensors")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, data, monkeypatch):
    path = tmp_path / "m.safetensors"
    model = BayesianLinearRegression().fit(*data)
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bayesdl.io.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        BayesianLinearRegression(alpha=1.0).fit(*data).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp file left


def test_load_never_unpickles(saved, monkeypatch):
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used on load")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    assert isinstance(bayesdl.load(saved), BayesianLinearRegression)


def test_zero_dimensional_and_empty_tensors_round_trip(tmp_path, data):
    model = BayesianLinearRegression().fit(*data)
    model.scale_ = torch.tensor(2.5, dtype=torch.float64)  # a 0-d tensor attribute
    model.empty_ = np.zeros((0, 3))
    model.save(tmp_path / "m.safetensors")
    loaded = bayesdl.load(tmp_path / "m.safetensors")
    assert loaded.scale_.shape == () and float(loaded.scale_) == 2.5
    assert loaded.empty_.shape == (0, 3)


def test_one_element_views_of_a_row_round_trip(tmp_path, data):
    """A one-element slice of a wider array (a binary classifier's intercept_ = W[:, D]) is
    "contiguous" yet keeps the row's stride; saving it once failed in the checksum."""
    model = BayesianLinearRegression().fit(*data)
    model.strided_ = np.arange(14.0).reshape(2, 7)[:1, 3]  # (1,), stride 7 elements
    model.strided_t_ = torch.arange(14.0).reshape(2, 7)[:1, 3]
    model.save(tmp_path / "m.safetensors")
    loaded = bayesdl.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.strided_, [3.0])
    assert loaded.strided_t_.tolist() == [3.0]
