"""``bayesdl fit ddpm`` / ``bayesdl sample`` end to end, in-process, with a tiny diffusion."""

import matplotlib.image
import numpy as np
import pytest

from bayesdl import load
from bayesdl.cli import main
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)

TINY = ["--timesteps", "20", "--channels", "8", "--batch-size", "128", "--sampling-steps", "5"]


def _printed(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_fit_conditional_resume_and_sample_a_guided_grid(tmp_path, capsys):
    model, ckpt = tmp_path / "m.safetensors", tmp_path / "ckpt"
    args = ["fit", "ddpm", "--data", "digits", "--out", str(model), "--conditional",
            "--checkpoint-dir", str(ckpt), *TINY]
    assert main([*args, "--epochs", "1"]) == 0
    first = _printed(capsys.readouterr().out)
    assert first["epochs"] == "1" and first["classes"] == "10"
    # --resume continues the checkpointed run to 2 epochs instead of starting afresh
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    resumed = _printed(capsys.readouterr().out)
    assert resumed["epochs"] == "2"
    fitted = load(model)
    assert fitted.n_iter_ == 2 and fitted.history_[0]["loss"] == pytest.approx(
        float(first["final loss"]))
    grid = tmp_path / "grid.png"
    assert main(["sample", "--model", str(model), "-n", "16", "--label", "3", "--guidance", "2.0",
                 "--out", str(grid), "--seed", "0"]) == 0
    image = matplotlib.image.imread(grid)
    assert image.shape[:2] == (4 * 9 + 1, 4 * 9 + 1)  # 4x4 tiles of 8x8 pixels, 1-pixel gaps
    arrays = tmp_path / "s.npy"
    assert main(["sample", "--model", str(model), "-n", "3", "--out", str(arrays)]) == 0
    s = np.load(arrays)
    assert s.shape == (3, 8, 8) and s.min() >= 0 and s.max() <= 1


def test_user_errors_are_one_line(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    assert main(["fit", "ddpm", "--data", "digits", "--out", str(model), "--epochs", "1",
                 *TINY]) == 0
    capsys.readouterr()
    # guidance without a conditional model
    assert main(["sample", "--model", str(model), "-n", "2", "--guidance", "2.0",
                 "--out", str(tmp_path / "g.png")]) == 2
    assert "class-conditional" in capsys.readouterr().err
    X = np.random.default_rng(0).uniform(size=(20, 8, 8))
    np.save(tmp_path / "nolabels.npy", X)
    assert main(["fit", "ddpm", "--data", str(tmp_path / "nolabels.npy"), "--out", str(model),
                 "--conditional", *TINY]) == 2
    assert "--conditional needs class labels" in capsys.readouterr().err
