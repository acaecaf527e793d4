"""Autoencoder / VAE benchmarks on the bundled 8x8 digits (CPU, one run).

1. Models (the fixed split of ``split_images``: 1259 train, 359 test digits; 8-d codes;
   Bernoulli decoders on the grey levels, so log-likelihoods are cross-entropies in nats):
   AE, VAE (MLP), VAE (conv), CVAE. Columns: the IWAE test log-likelihood with k = K_TEST
   (the CVAE's is log p(x | y) under the true label), the test ELBO, the AE's reconstruction
   error, the sample metrics of ``bayesdl.metrics`` (Fréchet classifier distance, KID,
   precision, recall) next to the real-data floor, the training CPU and wall time.
2. Training throughput (images/s) of the MLP VAE through ``bayesdl.train.Trainer`` against a
   plain PyTorch loop of the same model, loss, optimiser and batch order. Goal: the Trainer
   costs < 5% more. Medians over interleaved repeats of CPU time (the host is shared: CPU time
   is what the code costs, wall time also counts the other processes) and of wall time.

Run: ``python benchmarks/bench_generative_vae.py [K_TEST]`` (default 5000; the whole script
takes ~5 minutes of CPU on one thread, most of it the IWAE-5000 estimates).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import machine  # noqa: E402

from bayesdl.datasets.images import load_digits_images, split_images  # noqa: E402
from bayesdl.generative import AutoEncoder, ConditionalVAE, VAE  # noqa: E402
from bayesdl.generative.likelihoods import BernoulliLikelihood  # noqa: E402
from bayesdl.generative.networks import make_networks  # noqa: E402
from bayesdl.generative.vae import VAENetwork  # noqa: E402
from bayesdl.metrics import sample_metrics  # noqa: E402
from bayesdl.train import Trainer  # noqa: E402

TRAIN = dict(latent_dim=8, max_epochs=100, learning_rate=1e-3, batch_size=64, random_state=0)


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def models_table(k_test: int) -> None:
    X, y = load_digits_images()
    train, _, test = split_images(X, y)
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    runs = {
        "AE (MLP)": lambda: AutoEncoder(**TRAIN).fit(Xtr),
        "VAE (MLP)": lambda: VAE(**TRAIN).fit(Xtr),
        "VAE (conv)": lambda: VAE(**TRAIN, architecture="conv").fit(Xtr),
        "CVAE (MLP)": lambda: ConditionalVAE(**TRAIN).fit(Xtr, ytr),
    }
    print(f"\n{len(train)} training / {len(test)} test digits, latent 8, "
          f"{TRAIN['max_epochs']} epochs, batch {TRAIN['batch_size']}, IWAE k = {k_test}")
    print("| model | IWAE test log-lik | test ELBO | recon. MSE | FCD (floor) | KID (floor) "
          "| precision (floor) | recall (floor) | train CPU s | train wall s | eval wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, fit in runs.items():
        model, cpu, wall = _timed(fit)
        start = time.perf_counter()
        labels = yte if isinstance(model, ConditionalVAE) else None
        if isinstance(model, AutoEncoder):
            ll = elbo = "n/a"
        else:
            ll = f"{model.log_likelihood(Xte, labels, n_samples=k_test).mean():.2f}"
            elbo = f"{model.elbo(Xte, labels, n_samples=100).mean():.2f}"
        mse = model.reconstruction_error(Xte, labels).mean()
        draw = model.sample(len(Xte), labels) if labels is not None else model.sample(len(Xte))
        m = sample_metrics(Xte, draw, seed=0)
        print(f"| {name} | {ll} | {elbo} | {mse:.4f} | {m['fcd']:.1f} ({m['fcd_floor']:.1f}) | "
              f"{m['kid']:.1f} ± {m['kid_se']:.1f} ({m['kid_floor']:.1f}) | "
              f"{m['precision']:.2f} ({m['precision_floor']:.2f}) | "
              f"{m['recall']:.2f} ({m['recall_floor']:.2f}) | {cpu:.1f} | {wall:.1f} | "
              f"{time.perf_counter() - start:.1f} |", flush=True)


def throughput(epochs: int = 10, batch: int = 64, repeats: int = 9) -> None:
    X, _ = load_digits_images()
    train, _, _ = split_images(X)
    x = torch.as_tensor(X[train], dtype=torch.float32)[:, None]  # (N, 1, 8, 8)

    def network():
        torch.manual_seed(0)
        encoder, decoder = make_networks("mlp", (1, 8, 8), 8, 16, 1)
        return VAENetwork(encoder, decoder, BernoulliLikelihood(), 8)

    def loss(model, b, step):
        return -model(b[0]).mean()

    def trainer():
        Trainer(network(), loss, max_epochs=epochs, batch_size=batch, seed=0,
                progress=False).fit((x,))

    def plain():
        model = network()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(len(x), generator=g).split(batch):
                value = loss(model, (x[idx],), None)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()

    trainer(), plain()  # warm-up
    times = {"Trainer": [], "plain loop": []}
    for _ in range(repeats):
        for name, fn in (("Trainer", trainer), ("plain loop", plain)):
            times[name].append(_timed(fn)[1:])
    images = epochs * len(x)
    print(f"\nVAE (MLP 64-256-128-16 / 8-128-256-64) training throughput, batch {batch}, "
          f"{epochs} epochs of {len(x)} digits, median of {repeats} interleaved runs")
    print("| loop | images/s (CPU time) | images/s (wall) |")
    print("|---|---|---|")
    med = {}
    for name, ts in times.items():
        cpu = statistics.median(t[0] for t in ts)
        wall = statistics.median(t[1] for t in ts)
        med[name] = (cpu, wall)
        print(f"| {name} | {images / cpu:.0f} | {images / wall:.0f} |")
    cpu, wall = (100 * (med["Trainer"][i] / med["plain loop"][i] - 1) for i in (0, 1))
    print(f"Trainer overhead over the plain loop: CPU {cpu:+.1f}%, wall {wall:+.1f}%")


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(machine())
    throughput()
    models_table(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
