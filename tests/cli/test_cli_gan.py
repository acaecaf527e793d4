"""``bayesdl fit gan|dcgan|wgan-gp --data digits``: progress, exact resume, sampling a class."""

import numpy as np
import pytest
import torch

from bayesdl import load
from bayesdl.cli import main
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)

_SMALL = ["--data", "digits", "--latent-dim", "8", "--batch-size", "256", "--seed", "3"]


def test_fit_resumes_an_interrupted_run_with_progress(tmp_path, capsys):
    from bayesdl.datasets.images import load_digits_images

    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    ckpt = str(tmp_path / "ckpt")
    np.save(tmp_path / "few.npy", load_digits_images()[0][:150])  # a user's own small image set
    small = [*_SMALL[2:], "--data", str(tmp_path / "few.npy"), "--batch-size", "32"]
    assert main(["fit", "wgan-gp", *small, "--base-channels", "4", "--epochs", "2",
                 "--out", str(straight)]) == 0
    out = capsys.readouterr().out
    assert "wasserstein: " in out and "epochs: 2" in out
    # the first epoch of a run that then stops, and its continuation
    assert main(["fit", "wgan-gp", *small, "--base-channels", "4", "--epochs", "1",
                 "--checkpoint-dir", ckpt, "--out", str(resumed)]) == 0
    capsys.readouterr()
    assert main(["fit", "wgan-gp", *small, "--base-channels", "4", "--epochs", "2",
                 "--checkpoint-dir", ckpt, "--resume", "--progress",
                 "--out", str(resumed)]) == 0
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err  # the bar continues from epoch 1 of 2
    a, b = load(straight).module_.state_dict(), load(resumed).module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("target", ["gan", "dcgan"])
def test_conditional_fit_and_sample_a_class_grid(tmp_path, target, capsys):
    model, grid = tmp_path / "m.safetensors", tmp_path / "threes.npy"
    assert main(["fit", target, *_SMALL, "--epochs", "1", "--conditional",
                 "--info-codes", "3", "1", "--out", str(model)]) == 0
    assert "critic loss: " in capsys.readouterr().out
    assert main(["sample", "--model", str(model), "-n", "5", "--label", "3",
                 "--out", str(grid)]) == 0
    X = np.load(grid)
    assert X.shape == (5, 8, 8) and 0 <= X.min() and X.max() <= 1
    assert main(["sample", "--model", str(model), "-n", "4", "--out",
                 str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert main(["sample", "--model", str(model), "-n", "4", "--guidance", "2",
                 "--out", str(tmp_path / "g2.png")]) != 0
    assert "no guidance weight" in capsys.readouterr().err
    assert main(["sample", "--model", str(model), "-n", "4", "--label", "11",
                 "--out", str(tmp_path / "g3.png")]) != 0
    assert "not one of the model's classes" in capsys.readouterr().err
