"""``bayesdl evaluate`` on a generative model: held-out likelihoods and sample metrics.

The model is a Gaussian mixture fitted on digit rows (it has ``sample`` and
``score_samples``), so these tests need none of the deep generative models.
"""

import numpy as np
import pytest

from bayesdl import save
from bayesdl.cli import main
from bayesdl.cli.evaluate import _likelihoods
from bayesdl.datasets.images import load_images, split_images
from bayesdl.metrics import metrics_table, sample_metrics
from bayesdl.mixture import GaussianMixture


@pytest.fixture(scope="module")
def digits():
    X, y = load_images("digits")
    train, val, test = split_images(X, y)
    return X, y, np.concatenate([train, val]), test


@pytest.fixture(scope="module")
def gmm_file(digits, tmp_path_factory):
    X, _, keep, _ = digits
    gmm = GaussianMixture(10, reg_covar=1e-2, random_state=0).fit(X[keep].reshape(-1, 64))
    return gmm, save(gmm, tmp_path_factory.mktemp("gmm") / "gmm.safetensors")


def _printed(out: str) -> dict:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_evaluate_prints_held_out_likelihood_and_sample_metrics(digits, gmm_file, tmp_path,
                                                                 capsys):
    X, y, _, test = digits
    gmm, path = gmm_file
    figure = tmp_path / "grid.png"
    assert main(["evaluate", "--model", str(path), "--data", "digits", "--figure",
                 str(figure), "--seed", "3"]) == 0
    printed = _printed(capsys.readouterr().out)
    assert printed["held-out images"].startswith(f"{len(test)} ")
    # the exact log-density of the mixture on the held-out rows
    ll = float(printed["log-likelihood (GaussianMixture.score_samples), nats per image"])
    np.testing.assert_allclose(ll, gmm.score_samples(X[test].reshape(-1, 64)).mean(), rtol=1e-5)
    # the same samples (seeded), clipped to [0, 1], through sample_metrics directly
    gmm.set_params(random_state=3)
    samples = np.clip(gmm.sample(len(test))[0], 0, 1).reshape(-1, 8, 8)
    expected = metrics_table({"": sample_metrics(X[test], samples, seed=3)})
    for key, text in expected.items():
        assert printed[key.strip()] == text
    # a mixture's samples are plausible digits but far from perfect: above the floor
    fcd, floor = (float(v) for v in printed["FCD"].replace("(floor ", "").rstrip(")").split())
    assert fcd > floor
    assert figure.stat().st_size > 1000


def test_likelihood_methods_are_used_when_the_model_has_them(digits):
    X, _, keep, test = digits
    rows = X[test].reshape(-1, 64)

    class Model(GaussianMixture):  # IWAE with an exact posterior: the log-likelihood itself
        def log_likelihood(self, X, n_samples):
            self.k = n_samples
            return self.score_samples(X)

        def elbo(self, X):
            return self.score_samples(X) - 1.0

        def reconstruct(self, X):
            return self.means_[self.predict(X)]

    model = Model(10, reg_covar=1e-2, random_state=0).fit(X[keep].reshape(-1, 64))

    class Args:
        iwae_samples = 7

    out = _likelihoods(model, rows, Args)
    assert model.k == 7
    ll = model.score_samples(rows).mean()
    np.testing.assert_allclose(out["IWAE log-likelihood (k=7), nats per image"], ll)
    np.testing.assert_allclose(out["ELBO, nats per image"], ll - 1.0)
    np.testing.assert_allclose(out["reconstruction error (mean squared error per pixel)"],
                               np.mean((model.means_[model.predict(rows)] - rows) ** 2))
    assert len(out) == 3  # score_samples is not asked again when log_likelihood exists


def test_evaluate_errors_are_one_clear_line(digits, gmm_file, tmp_path, capsys):
    _, path = gmm_file
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.random.default_rng(0).random((50, 10, 10)))
    assert main(["evaluate", "--model", str(path), "--data", str(wrong)]) == 2
    assert "fitted on samples of shape (64,) but" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(path), "--data", "digits", "-n", "10",
                 "--figure", str(tmp_path / "f.png")]) == 2
    assert "draw at least 179 samples, got 10" in capsys.readouterr().err
    # a supervised model needs --target
    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    table.write_text("a,y\n" + "\n".join(f"{a},{2 * a}" for a in rng.normal(size=20)))
    blr = tmp_path / "blr.safetensors"
    assert main(["fit", "blr", "--data", str(table), "--target", "y", "--out", str(blr)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(blr), "--data", str(table)]) == 2
    err = capsys.readouterr().err
    assert "need --target" in err and len(err.strip().splitlines()) == 1


def test_class_conditional_models_are_sampled_per_label(digits, capsys):
    from bayesdl.cli.evaluate import _sample_quality
    from bayesdl.metrics import digits_logits

    X, y, keep, test = digits

    class Conditional:  # a perfect class-conditional "model": real training digits of class y
        classes_ = np.arange(10)

        def get_params(self):
            return {}

        def sample(self, n, y=None):
            rng = np.random.default_rng(0)
            self.asked = y
            return np.stack([X[keep][rng.choice(np.flatnonzero(labels == c))] for c in y])

    labels = y[keep]
    model = Conditional()

    class Args:
        n_samples, seed = None, 0

    samples = _sample_quality(model, X[test], y[test], Args)
    printed = _printed(capsys.readouterr().out)
    # the labels asked for come from the held-out labels; the accuracy is the classifier's
    assert len(model.asked) == len(test) and set(model.asked) <= set(y[test])
    expected = (digits_logits(samples).argmax(1) == model.asked).mean()
    assert printed["conditional accuracy"] == f"{expected:.3f}" and expected > 0.95


def test_an_autoencoder_gets_its_reconstruction_error_and_no_samples(digits, tmp_path,
                                                                       monkeypatch, capsys):
    import bayesdl.io

    X, _, _, test = digits

    class HalfAutoencoder:  # reconstructs every image at half intensity
        input_shape_ = (8, 8)

        def reconstruct(self, images):
            return 0.5 * images

    monkeypatch.setattr(bayesdl.io, "load", lambda path: HalfAutoencoder())
    figure = tmp_path / "f.png"
    assert main(["evaluate", "--model", "ae.safetensors", "--data", "digits",
                 "--figure", str(figure)]) == 0
    printed = _printed(capsys.readouterr().out)
    expected = np.mean((0.5 * X[test]) ** 2)
    np.testing.assert_allclose(
        float(printed["reconstruction error (mean squared error per pixel)"]), expected,
        rtol=1e-5)
    assert "FCD" not in printed and not figure.exists()
