"""Bayesian deep learning benchmarks (one run each, CPU).

1. Bayes-by-Backprop MLP 784-1200-1200-10 (Blundell et al.'s MNIST shape) on random data:
   one training step (forward, KL, backward, Adam) with bayesdl.nn.BayesLinear against
   bayesian-torch's LinearReparameterization network of the same shape, both with plain
   reparameterisation and the closed-form Gaussian KL. Goal: ratio >= 1.0 (no slower).
2. MC-dropout prediction with T = 100 samples: bayesdl.uncertainty.predict_dist batched in one
   forward pass against a Python loop of 100 forward passes. Goal: >= 5x.
3. Digits (300 training images, the report's setting): test error, NLL and ECE of the
   deterministic MLP, MC dropout, BBB (Gaussian and scale-mixture priors) and a deep
   ensemble, each with its wall-clock time (fit + predict).

Run: ``python benchmarks/bench_bdl.py [THREADS]`` (needs ``pip install bayesian-torch`` for 1).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import compare, machine, median_time  # noqa: E402

from bayesdl.nn import BayesLinear, MCDropout, elbo_loss, kl_divergence  # noqa: E402
from bayesdl.uncertainty import predict_dist  # noqa: E402

SHAPE = (784, 1200, 1200, 10)
BATCH = 128
N_TRAIN = 60000


def _bayesdl_step():
    torch.manual_seed(0)
    net = nn.Sequential(BayesLinear(784, 1200, posterior_rho_init=-3.0), nn.ReLU(),
                        BayesLinear(1200, 1200, posterior_rho_init=-3.0), nn.ReLU(),
                        BayesLinear(1200, 10, posterior_rho_init=-3.0))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 784), torch.randint(0, 10, (BATCH,))

    def step():
        opt.zero_grad()
        loss = elbo_loss(nn.functional.cross_entropy(net(x), y), kl_divergence(net), N_TRAIN)
        loss.backward()
        opt.step()
    return step


def _bayesian_torch_step():
    from bayesian_torch.layers import LinearReparameterization

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(
                LinearReparameterization(a, b, posterior_rho_init=-3.0)
                for a, b in zip(SHAPE[:-1], SHAPE[1:]))

        def forward(self, x):
            kl = 0.0
            for i, layer in enumerate(self.layers):
                x, k = layer(x)
                kl = kl + k
                if i < len(self.layers) - 1:
                    x = torch.relu(x)
            return x, kl

    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, 784), torch.randint(0, 10, (BATCH,))

    def step():
        opt.zero_grad()
        out, kl = net(x)
        loss = nn.functional.cross_entropy(out, y) + kl / N_TRAIN
        loss.backward()
        opt.step()
    return step


def bench_bbb_step(repeats: int = 40):
    try:
        anchor = _bayesian_torch_step()
    except ImportError:
        print("BBB step: bayesian-torch is not installed (pip install bayesian-torch); skipped")
        return None
    ours = _bayesdl_step()
    # alternate single steps, so a change in the load of the machine hits both alike
    median_time(ours, warmup=3, repeats=1)
    median_time(anchor, warmup=3, repeats=1)
    t_ours, t_anchor = [], []
    for _ in range(repeats):
        t_ours.append(median_time(ours, warmup=0, repeats=1))
        t_anchor.append(median_time(anchor, warmup=0, repeats=1))
    a, b = statistics.median(t_ours), statistics.median(t_anchor)
    print(f"BBB MLP 784-1200-1200-10 training step (batch 128): bayesdl {a:.4f} s, "
          f"bayesian-torch {b:.4f} s, ratio {b / a:.2f}x (median of {repeats} interleaved)")
    return {"bayesdl_s": a, "anchor_s": b, "ratio": b / a}


def bench_mc_dropout():
    torch.manual_seed(0)
    masks = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), MCDropout(0.5, generator=masks),
                        nn.Linear(256, 256), nn.ReLU(), MCDropout(0.5, generator=masks),
                        nn.Linear(256, 10)).eval()
    results = []
    for n in (1, 16, 200):
        x = torch.randn(n, 64)

        def looped():
            with torch.no_grad():
                return torch.stack([net(x) for _ in range(100)])

        results.append(compare(f"MC dropout, T=100 predictive samples of {n} input(s)",
                               lambda: predict_dist(net, x, 100, batched=True), looped,
                               anchor_name="loop of 100 forward passes", warmup=2, repeats=10))
    return results


def bench_digits():
    import time

    from bayesdl.report.sections.bdl import DIGITS_METHODS, digits_calibration
    from bayesdl.train import torch_threads

    start = time.perf_counter()
    with torch_threads(1):
        res = digits_calibration(quick=False, seed=0)["results"]
    print(f"digits, {len(DIGITS_METHODS)} methods in {time.perf_counter() - start:.1f} s:")
    print("| method | test error | NLL | ECE | OOD AUROC (rotated 90) | wall-clock (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in res.items():
        print(f"| {name} | {100 * r['error']:.1f}% | {r['nll']:.3f} | {100 * r['ece']:.2f}% | "
              f"{r['ood_auroc']:.3f} | {r['seconds']:.1f} |")
    return res


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    print(machine())
    bench_bbb_step()
    bench_mc_dropout()
    bench_digits()
