"""The shipped digits classifier: its weights load without pickle and reach their record."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, shift

from bayesdl.io import read_safetensors
from bayesdl.metrics import digits_features, digits_logits, load_digits_classifier
from bayesdl.metrics.digits_classifier import weights_path
from bayesdl.metrics.train_classifier import augment, digits_split, main
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)

# the accuracy the shipped weights must reach on the held-out test split (recorded: 0.989)
MIN_TEST_ACCURACY = 0.98


def test_shipped_weights_reach_their_recorded_test_accuracy():
    net, record = load_digits_classifier()
    X, y, (train, val, test) = digits_split()
    assert record["split"]["n_test"] == len(test) and record["command"].startswith(
        "python -m bayesdl.metrics.train_classifier")
    pred = digits_logits(X[test]).argmax(1)
    accuracy = (pred == y[test].numpy()).mean()
    np.testing.assert_allclose(accuracy, record["test_accuracy"], rtol=0, atol=1e-12)
    assert accuracy >= MIN_TEST_ACCURACY
    # the split is disjoint and covers the data set
    assert len(np.intersect1d(train, test)) == 0 and len(np.intersect1d(val, test)) == 0
    assert len(train) + len(val) + len(test) == len(X)


def test_weights_file_is_checksummed_safetensors_and_features_are_the_penultimate_layer():
    config, tensors = read_safetensors(weights_path(), what="digits classifier weights")
    assert config["architecture"]["n_features"] == 64 and "head.weight" in tensors
    net, _ = load_digits_classifier()
    X = digits_split()[0][:50]
    feats = digits_features(X[:, 0].numpy())  # (N, 8, 8) input
    assert feats.shape == (50, 64) and feats.dtype == np.float64 and (feats >= 0).all()
    # logits = head(features) (dropout is off in eval mode)
    logits = feats @ net.head.weight.double().numpy().T + net.head.bias.double().numpy()
    np.testing.assert_allclose(digits_logits(X.reshape(50, 64)), logits, rtol=1e-5, atol=1e-5)


def test_classifier_is_robust_to_generated_looking_digits():
    # what samples of generative models look like: off-centre, noisy, blurred (measured on
    # the 359 test digits: shifts 0.964-0.986, noise 0.978, blur 0.981; clean 0.989)
    X, y, (_, _, test) = digits_split()
    X, y = X[test, 0].numpy().astype(np.float64), y[test].numpy()
    rng = np.random.default_rng(0)

    def accuracy(images):
        return (digits_logits(np.clip(images, 0, 1)).argmax(1) == y).mean()

    for offset in [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1)]:
        assert accuracy(np.stack([shift(x, offset, order=0) for x in X])) >= 0.95
    assert accuracy(X + 0.1 * rng.normal(size=X.shape)) >= 0.95
    assert accuracy(np.stack([gaussian_filter(x, 0.5) for x in X])) >= 0.95


def test_augment_shifts_by_at_most_one_pixel_and_stays_in_range():
    torch.manual_seed(0)
    x = torch.zeros(200, 1, 8, 8)
    x[:, 0, 3, 4] = 1.0  # one bright pixel
    out = augment(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    rows, cols = np.unravel_index(out[:, 0].reshape(200, -1).argmax(1).numpy(), (8, 8))
    assert set(rows) == {2, 3, 4} and set(cols) == {3, 4, 5}


@pytest.mark.slow
def test_training_script_reproduces_an_accurate_classifier(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    assert main(["--out", str(out)]) == 0
    config, _ = read_safetensors(out, what="digits classifier weights")
    assert config["test_accuracy"] >= MIN_TEST_ACCURACY
    # on the machine that made the shipped file the rerun was bit-identical (one thread, same
    # seed); other CPUs' kernels may round differently, so only the accuracy is compared
    assert abs(config["test_accuracy"] - load_digits_classifier()[1]["test_accuracy"]) <= 0.01
