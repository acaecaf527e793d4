"""``bayesdl fit vae`` then ``bayesdl sample`` to a PNG grid and a .npy array, in-process."""

import matplotlib.image
import numpy as np

from bayesdl import load
from bayesdl.cli import main
from bayesdl.generative import ConditionalVAE, VAE
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


def _printed(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_fit_vae_and_sample_a_grid(tmp_path, capsys):
    model = tmp_path / "vae.safetensors"
    assert main(["fit", "vae", "--data", "digits", "--latent", "2", "--epochs", "2",
                 "--hidden", "32", "--out", str(model)]) == 0
    printed = _printed(capsys.readouterr().out)
    vae = load(model)
    assert type(vae) is VAE and vae.latent_dim == 2 and vae.n_iter_ == 2
    assert printed["model"] == "VAE" and float(printed["ELBO per image (training data, nats)"]) < 0
    grid = tmp_path / "grid.png"
    assert main(["sample", "--model", str(model), "-n", "64", "--out", str(grid)]) == 0
    image = matplotlib.image.imread(grid)
    assert image.shape[:2] == (8 * 9 + 1, 8 * 9 + 1)  # 8x8 tiles of 8x8 digits, 1-pixel gaps
    arrays = tmp_path / "samples.npy"
    assert main(["sample", "--model", str(model), "-n", "5", "--out", str(arrays)]) == 0
    np.testing.assert_allclose(np.load(arrays), vae.sample(5))


def test_fit_conditional_conv_vae_and_sample_one_class(tmp_path):
    model = tmp_path / "cvae.safetensors"
    assert main(["fit", "vae", "--data", "digits", "--conditional", "--architecture", "conv",
                 "--decoder", "continuous_bernoulli", "--epochs", "1", "--out", str(model)]) == 0
    cvae = load(model)
    assert type(cvae) is ConditionalVAE and cvae.decoder == "continuous_bernoulli"
    out = tmp_path / "threes.npy"
    assert main(["sample", "--model", str(model), "-n", "4", "--label", "3", "--out",
                 str(out)]) == 0
    np.testing.assert_allclose(np.load(out), cvae.sample(4, y=np.full(4, 3)))


def test_conditional_needs_labels(tmp_path, capsys):
    data = tmp_path / "images.npy"
    np.save(data, np.random.default_rng(0).random((40, 8, 8)))
    assert main(["fit", "vae", "--data", str(data), "--conditional", "--epochs", "1",
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--conditional needs class labels" in capsys.readouterr().err
