"""Report section: generative adversarial networks on the bundled digits.

A GAN with MLP networks, a DCGAN and a WGAN-GP are trained briefly on the train + validation
part of the digits' fixed split; every few epochs the run is continued from its checkpoint
(exact resumption) and the Fréchet classifier distance of 1,000 samples (400 in quick mode)
to the held-out test digits is recorded. Each experiment is a function returning its numbers.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from ...datasets.images import load_digits_images, split_images
from ...generative import DCGAN, GAN, WGANGP
from ...metrics import frechet_classifier_distance, metrics_table, sample_metrics
from ...train import torch_threads
from ...viz.gan import gan_training_curves
from ...viz.generative import image_grid
from ..section import Section

TITLE = "GANs"

# Small networks and a learning rate of 1e-3 (the papers use 2e-4 / 1e-4) so that all three
# reach digit-like samples within the report's time budget; (model, epochs (full, quick)).
MODELS = {
    "GAN (MLP)": (lambda seed: GAN(latent_dim=32, hidden=(128, 128), learning_rate=1e-3,
                                   random_state=seed), (30, 2)),
    "DCGAN": (lambda seed: DCGAN(latent_dim=32, base_channels=16, learning_rate=1e-3,
                                 random_state=seed), (18, 2)),
    "WGAN-GP": (lambda seed: WGANGP(latent_dim=32, base_channels=16, learning_rate=1e-3,
                                    random_state=seed), (30, 4)),
}
N_SAMPLES = (1000, 400)  # samples scored (full, quick)


def train_gans(quick: bool = False, seed: int = 0) -> dict:
    """Train each model in chunks of epochs (resuming from its checkpoint), recording the
    FCD of its samples to the test digits after each chunk; the final samples' metrics."""
    X, y = load_digits_images()
    train, val, test = split_images(X, y)
    X_train, X_test = X[np.concatenate([train, val])], X[test]
    n_samples = N_SAMPLES[quick]
    rng = np.random.default_rng(seed)
    noise = rng.uniform(size=(n_samples, 8, 8))
    real = X_train[rng.choice(len(X_train), n_samples, replace=False)]  # as many as samples
    out = {"noise_fcd": frechet_classifier_distance(X_test, noise),
           "floor_fcd": frechet_classifier_distance(X_test, real), "models": {}}
    for name, (make, (full, short)) in MODELS.items():
        epochs = short if quick else full
        chunk = max(epochs // (2 if quick else 6), 1)
        curve, seconds = ([], []), 0.0
        with tempfile.TemporaryDirectory() as ckpt:
            for end in range(chunk, epochs + 1, chunk):
                start = time.perf_counter()
                model = make(seed).set_params(max_epochs=end, checkpoint_dir=ckpt,
                                              resume=True).fit(X_train)
                seconds += time.perf_counter() - start
                curve[0].append(end)
                curve[1].append(frechet_classifier_distance(X_test, model.sample(n_samples)))
        start = time.perf_counter()
        samples = model.sample(1000, random_state=seed + 1)
        sample_seconds = time.perf_counter() - start
        samples = samples[:n_samples]
        out["models"][name] = {
            "model": model, "samples": samples, "curve": curve, "train_seconds": seconds,
            "sample_seconds": sample_seconds, "metrics": sample_metrics(X_test, samples,
                                                                        seed=seed)}
    return out


def build(quick: bool = False, seed: int = 0) -> Section:
    with torch_threads(1):  # small networks: one thread is fastest (and fair on shared cores)
        run = train_gans(quick, seed)
    models = run["models"]
    wgan = models["WGAN-GP"]
    wasserstein = [h["wasserstein"] for h in wgan["model"].history_]
    epochs = {name: m["curve"][0][-1] for name, m in models.items()}
    seconds = sum(m["train_seconds"] for m in models.values())
    section = Section(
        title=TITLE,
        summary=(
            "Three generative adversarial networks from bayesdl.generative trained on the bundled"
            f" 8x8 digits ({min(epochs.values())} to {max(epochs.values())} epochs, {seconds:.0f} "
            "s of training in all, with a learning rate of 1e-3 to fit the report's budget): a "
            "GAN with MLP networks and the non-saturating loss (Goodfellow et al. 2014), a DCGAN "
            "(Radford et al. 2016) and a Wasserstein GAN with gradient penalty (Gulrajani et al. "
            "2017: 5 critic steps per generator step, lambda = 10). Samples come from an "
            "exponential moving average of the generator's weights. Once the WGAN-GP critic has "
            "learnt (its first epochs), its estimate of the Wasserstein distance falls while the "
            "Fréchet classifier distance (FCD, on the shipped digits classifier's features, lower"
            " is better) of its samples to held-out digits falls with it; the dashed lines are "
            "the FCD of as many training digits (the floor a perfect model reaches) and that of "
            "uniform noise; the table's floors compare two halves of the test digits "
            "(sample_metrics), hence their higher values. Precision and recall (Kynkäänniemi et "
            "al. 2019) separate the two ways to fail: unrealistic samples (low precision) and "
            "missing modes, i.e. mode collapse (low recall); the class histogram shows which "
            "digits a model draws. Judge GANs by such numbers as well as by pictures."
        ),
    )
    section.figures.append((
        "The WGAN-GP critic's Wasserstein estimate per epoch, and the FCD of "
        f"{len(models['DCGAN']['samples']):,} samples during training",
        gan_training_curves(wasserstein, {n: m["curve"] for n, m in models.items()},
                            floor=run["floor_fcd"], noise=run["noise_fcd"])))
    for name, m in models.items():
        section.figures.append((
            f"{name}: 36 samples after {epochs[name]} epochs",
            image_grid(m["samples"][:36], nrow=12, title=name)))
    section.table.update(metrics_table({n: m["metrics"] for n, m in models.items()}))
    for name, m in models.items():
        section.table[f"{name} training seconds / seconds to sample 1,000"] = (
            f"{m['train_seconds']:.1f} / {m['sample_seconds']:.3f}")
    section.table["FCD of uniform noise"] = f"{run['noise_fcd']:.4g}"
    section.samples = {name: m["samples"] for name, m in models.items()}
    return section
