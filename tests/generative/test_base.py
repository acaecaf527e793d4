"""The shared generative-estimator plumbing, on a model whose optimum is known in closed form:
a diagonal Gaussian density fitted by maximum likelihood (the MLE is the sample mean and the
biased sample variance)."""

import numpy as np
import pytest
import torch
from torch import nn

import bayesdl
from bayesdl.generative._base import _GenerativeEstimator


class _GaussianModule(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mean = nn.Parameter(torch.randn(d))  # (D,)
        self.log_var = nn.Parameter(torch.zeros(d))  # (D,)

    def nll(self, x):  # x (B, *shape): mean negative log-density per sample
        x = x.reshape(len(x), -1)
        return 0.5 * (self.log_var + (x - self.mean) ** 2 / self.log_var.exp()
                      + np.log(2 * np.pi)).sum(-1).mean()


class DiagonalGaussianDensity(_GenerativeEstimator):
    """Test-only family: registered under tests.*, so never in the library's registry walk."""

    def __init__(self, *, bounded=False, max_epochs=200, batch_size=512, learning_rate=0.05,
                 checkpoint_dir=None, resume=False, verbose=False, device="cpu",
                 dtype="float64", random_state=0):
        self.bounded, self.max_epochs, self.batch_size = bounded, max_epochs, batch_size
        self.learning_rate, self.checkpoint_dir, self.resume = learning_rate, checkpoint_dir, resume
        self.verbose, self.device, self.dtype, self.random_state = verbose, device, dtype, random_state

    def _support(self):
        return (0.0, 1.0) if self.bounded else None

    def _build_module(self):
        return _GaussianModule(self.n_features_in_)

    def fit(self, X, y=None):
        self._validate_params()
        x, _ = self._validate_data(X, y, reset=True)
        self.module_ = self._new_module()
        self._train(lambda model, batch, step: model.nll(batch[0]), (x,))
        return self

    def sample(self, n):
        m = self.module_
        z = torch.randn(n, m.mean.numel(), generator=self._torch_generator(),
                        dtype=m.mean.dtype)
        return self._as_output(m.mean + z * (0.5 * m.log_var).exp())


def _images(n=300, seed=0):
    return np.random.default_rng(seed).beta(2, 5, size=(n, 4, 3))  # (N, H, W) in [0, 1]


def test_fit_reaches_the_closed_form_mle_on_images():
    X = _images()
    model = DiagonalGaussianDensity(bounded=True, max_epochs=300, learning_rate=0.1).fit(X)
    assert model.input_shape_ == (4, 3) and model.data_shape_ == (1, 4, 3)
    assert model.n_features_in_ == 12 and model.n_iter_ == 300 == len(model.history_)
    flat = X.reshape(len(X), -1)
    np.testing.assert_allclose(model.module_.mean.detach().numpy(), flat.mean(0), atol=1e-3)
    np.testing.assert_allclose(model.module_.log_var.exp().detach().numpy(), flat.var(0),
                               rtol=1e-3)
    assert model.data_min_ == X.min() and model.data_max_ == X.max()


def test_samples_come_back_in_the_training_shape_and_range():
    X = _images()
    out = DiagonalGaussianDensity(bounded=True, max_epochs=20).fit(X).sample(500)
    assert out.shape == (500, 4, 3) and out.dtype == np.float64
    assert out.min() >= X.min() and out.max() <= X.max()
    assert (out == X.max()).any()  # the Gaussian's tail was clipped to the data's range


def test_rows_go_through_scikit_learns_checks():
    rows = np.random.default_rng(1).normal(size=(50, 3))
    model = DiagonalGaussianDensity(max_epochs=2).fit(rows)
    assert model.input_shape_ == (3,) and model.data_shape_ == (3,)
    with pytest.raises(ValueError, match="3 features"):
        model._validate_data(rows[:, :2], reset=False)
    with pytest.raises(ValueError, match="NaN"):
        DiagonalGaussianDensity().fit(np.where(rows > 2, np.nan, rows))


def test_bad_images_get_errors_that_name_the_fix():
    X = _images()
    model = DiagonalGaussianDensity(bounded=True, max_epochs=2)
    with pytest.raises(ValueError, match="divide by 255"):
        model.fit(X * 255)
    with pytest.raises(ValueError, match=r"rescale the data to \[0, 1\]"):
        model.fit(X - 0.5)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(X > 0.6, np.nan, X))
    model.fit(X)
    with pytest.raises(ValueError, match=r"shape \(4, 3\) but X has samples of shape \(8, 8\)"):
        model._validate_data(np.zeros((5, 8, 8)), reset=False)
    with pytest.raises(ValueError, match="images with channels"):
        model.fit(np.zeros((5, 1, 2, 2, 2)))


def test_labels_are_encoded_and_unseen_labels_refused():
    X = _images(30)
    y = np.array(["b", "a", "c"] * 10)
    model = DiagonalGaussianDensity(max_epochs=1)
    x, codes = model._validate_data(X, y, reset=True)
    assert model.classes_.tolist() == ["a", "b", "c"] and model.n_classes_ == 3
    assert codes.tolist() == [1, 0, 2] * 10 and codes.dtype == torch.long
    with pytest.raises(ValueError, match=r"\['d'\] are not among the classes"):
        model._encode_labels(["a", "d"])
    with pytest.raises(ValueError, match="fitted without labels"):
        DiagonalGaussianDensity(max_epochs=1).fit(X)._encode_labels([0])


def test_save_load_round_trip_restores_the_network(tmp_path):
    model = DiagonalGaussianDensity(bounded=True, max_epochs=5).fit(_images())
    loaded = bayesdl.load(model.save(tmp_path / "g.safetensors"))
    for a, b in zip(model.module_.parameters(), loaded.module_.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(model.sample(7), loaded.sample(7))
    assert loaded.history_ == model.history_


def test_training_resumes_exactly_from_a_checkpoint(tmp_path):
    X = _images()
    full = DiagonalGaussianDensity(max_epochs=6, batch_size=64).fit(X)
    DiagonalGaussianDensity(max_epochs=3, batch_size=64, checkpoint_dir=tmp_path).fit(X)
    resumed = DiagonalGaussianDensity(max_epochs=6, batch_size=64, checkpoint_dir=tmp_path,
                                      resume=True).fit(X)
    for a, b in zip(full.module_.parameters(), resumed.module_.parameters()):
        assert torch.equal(a, b)


def test_a_refit_without_labels_forgets_the_classes_and_the_range_maps_to_minus_one_one():
    X = _images(30)
    model = DiagonalGaussianDensity(max_epochs=1)
    model._validate_data(X, np.arange(30) % 3, reset=True)
    assert model.n_classes_ == 3
    model.fit(X)
    assert not hasattr(model, "classes_") and not hasattr(model, "n_classes_")
    x = torch.as_tensor(X)
    z = model._to_symmetric(x)  # (x - min) / (max - min) * 2 - 1
    np.testing.assert_allclose(z.numpy(), (X - X.min()) / (X.max() - X.min()) * 2 - 1, rtol=1e-12)
    assert float(z.min()) == -1 and float(z.max()) == 1
    torch.testing.assert_close(model._from_symmetric(z), x, rtol=1e-12, atol=1e-15)
