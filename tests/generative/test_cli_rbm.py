"""``bayesdl fit rbm`` on the bundled digits, then ``bayesdl sample`` from the saved model."""

import numpy as np
import pytest

from bayesdl import load
from bayesdl.cli import main
from bayesdl.datasets import load_digits_images, split_images


def _printed(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_fit_rbm_on_digits_then_sample(tmp_path, capsys):
    model = tmp_path / "rbm.safetensors"
    assert main(["fit", "rbm", "--data", "digits", "--hidden", "12", "--cd-k", "2",
                 "--persistent", "--epochs", "2", "--out", str(model)]) == 0
    printed = _printed(capsys.readouterr().out)
    rbm = load(model)
    assert (rbm.n_components, rbm.cd_k, rbm.persistent, rbm.max_epochs) == (12, 2, True, 2)
    assert rbm.log_partition_stderr_ == 0.0  # 12 hidden units: exact log Z
    X, y = load_digits_images()
    train, val, _ = split_images(X, y)
    keep = np.concatenate([train, val])
    # the printed log-likelihood (6 digits) is the saved model's on the images it was trained on
    assert float(printed["training log-likelihood per image"]) == pytest.approx(
        rbm.score(X[keep]), rel=1e-5)
    assert float(printed["training pseudo-likelihood per image (not a likelihood)"]) < 0

    grid, arr = tmp_path / "grid.png", tmp_path / "samples.npy"
    assert main(["sample", "--model", str(model), "-n", "16", "--out", str(grid)]) == 0
    assert grid.stat().st_size > 0
    assert main(["sample", "--model", str(model), "-n", "5", "--out", str(arr), "--seed",
                 "1"]) == 0
    samples = np.load(arr)
    assert samples.shape == (5, 8, 8) and samples.min() >= 0 and samples.max() <= 1


def test_fit_rbm_refuses_resume_without_a_checkpoint_dir(tmp_path):
    assert main(["fit", "rbm", "--data", "digits", "--resume", "--out",
                 str(tmp_path / "m.safetensors")]) == 2
