"""Report section: restricted Boltzmann machines on the bundled digits.

Each experiment is a function returning its numbers, so the tests check the same runs the
report shows.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ...datasets import binarize, load_digits_images, split_images
from ...generative import RBM
from ...metrics import metrics_table, sample_metrics
from ...train import torch_threads
from ...viz import rbm as viz
from ..section import Section

TITLE = "Restricted Boltzmann machines"

CHAIN_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
SMALL_HIDDEN = 12  # small enough for the exact log Z (2^12 hidden states)


def _budget(quick: bool) -> dict:
    return dict(epochs=5 if quick else 12, n_betas=500 if quick else 2000,
                ais_ks=(30, 100, 300) if quick else (30, 100, 300, 1000, 3000),
                n_gibbs=200 if quick else 1000)


def _binary_digits(seed: int):
    """The digits binarised at 0.5 (a proper discrete likelihood) and the fixed split."""
    X, y = load_digits_images()
    train, _, test = split_images(X, y, seed=seed)
    return binarize(X), train, test


def digits_rbms(quick: bool = False, seed: int = 0) -> dict:
    """CD-1 and PCD-1 RBMs (64 hidden units) with the same budget on the binarised digits'
    training split: AIS test log-likelihood (with the SE of log Z), pseudo-likelihood,
    seconds; and the test log-likelihood of independent pixels at the training means."""
    X, train, test = _binary_digits(seed)
    budget = _budget(quick)
    results = {}
    for name, persistent in (("CD-1", False), ("PCD-1", True)):
        start = time.perf_counter()
        model = RBM(64, persistent=persistent, max_epochs=budget["epochs"],
                    n_betas=budget["n_betas"], random_state=seed).fit(X[train])
        seconds = time.perf_counter() - start
        # binary draws (mean=False), like the binarised test images they are compared with
        samples = model.sample(len(test), n_gibbs=budget["n_gibbs"], mean=False)
        results[name] = {"model": model, "seconds": seconds, "samples": samples,
                         "metrics": sample_metrics(X[test], samples, seed=seed),
                         "test_log_likelihood": model.score(X[test]),
                         "log_partition_stderr": model.log_partition_stderr_,
                         "test_pseudo_likelihood": float(model.pseudo_likelihood(X[test]).mean())}
    rows, test_rows = X[train].reshape(len(train), -1), X[test].reshape(len(test), -1)
    p = rows.mean(0).clip(1e-3, 1 - 1e-3)  # the base-rate model of AIS
    base_rate = float((test_rows @ np.log(p) + (1 - test_rows) @ np.log1p(-p)).mean())
    rng = np.random.default_rng(seed)
    independent = (rng.random(test_rows.shape) < p).astype(X.dtype).reshape(X[test].shape)
    # pixels that are ever 1 in training: the others only learn to stay off
    return {"results": results, "n_train": len(train), "active": rows.max(0) > 0,
            "base_rate_log_likelihood": base_rate,
            "base_rate_metrics": sample_metrics(X[test], independent, seed=seed)}


def ais_against_exact(quick: bool = False, seed: int = 0) -> dict:
    """log Z of a 12-hidden-unit RBM trained on the digits: exact enumeration, and AIS (100
    runs) with an increasing number K of intermediate distributions."""
    X, train, _ = _binary_digits(seed)
    model = RBM(SMALL_HIDDEN, max_epochs=_budget(quick)["epochs"], partition="exact",
                random_state=seed).fit(X[train])
    ks = _budget(quick)["ais_ks"]
    estimates, seconds = [], []
    for k in ks:
        start = time.perf_counter()
        estimates.append(model.log_partition("ais", n_betas=k, n_runs=100, random_state=seed))
        seconds.append(time.perf_counter() - start)
    return {"exact": model.log_partition_, "ks": ks, "values": [e.value for e in estimates],
            "stderrs": [e.stderr for e in estimates], "seconds": seconds}


@torch.no_grad()
def gibbs_chains(model: RBM, n_chains: int = 8, steps=CHAIN_STEPS, seed: int = 0) -> np.ndarray:
    """E[v | h], h ~ p(h | v), of ``n_chains`` chains from a random start after each number
    of sweeps in ``steps``: (n_chains, len(steps), D)."""
    rbm, g = model.module_, torch.Generator().manual_seed(seed)
    v = (torch.rand(n_chains, rbm.n_visible, generator=g) < 0.5).to(rbm.weight.dtype)
    recorded, done = [], 0
    for s in steps:
        v = rbm.gibbs(v, s - done, generator=g)
        done = s
        h = (torch.rand(n_chains, rbm.n_hidden, generator=g)
             < torch.sigmoid(rbm.hidden_logits(v))).to(v.dtype)  # h ~ p(h | v)
        recorded.append(rbm.p_v_given_h(h).mean)
    return torch.stack(recorded, 1).numpy()


def build(quick: bool = False, seed: int = 0) -> Section:
    start = time.perf_counter()
    with torch_threads(1):
        digits = digits_rbms(quick, seed)
        ais = ais_against_exact(quick, seed)
        res, budget = digits["results"], _budget(quick)
        # the figures show the model with the better test log-likelihood
        best = max(res, key=lambda name: res[name]["test_log_likelihood"])
        model = res[best]["model"]
        chains = gibbs_chains(model, seed=seed)
    filters = viz.filters_figure(model.module_.weight.detach().numpy(), (8, 8), n=64,
                                 active=digits["active"])
    chains_fig = viz.gibbs_chains_figure(chains, CHAIN_STEPS, (8, 8))
    ais_fig = viz.ais_figure(ais["ks"], ais["values"], ais["stderrs"], ais["exact"],
                             runtime_s=ais["seconds"])
    table = {}
    for name, r in res.items():
        table[f"{name}: test log-likelihood per image, AIS (nats)"] = (
            f"{r['test_log_likelihood']:.2f} +- {r['log_partition_stderr']:.2f}")
        table[f"{name}: test pseudo-likelihood per image (not a likelihood)"] = round(
            r["test_pseudo_likelihood"], 2)
        table[f"{name}: training + AIS seconds"] = round(r["seconds"], 1)
    table["independent pixels at the training means: test log-likelihood"] = round(
        digits["base_rate_log_likelihood"], 2)
    metrics = {f"{name} samples:": r["metrics"] for name, r in res.items()}
    metrics["independent-pixel samples:"] = digits["base_rate_metrics"]
    table.update(metrics_table(metrics))
    for k, value, stderr in zip(ais["ks"], ais["values"], ais["stderrs"]):
        table[f"{SMALL_HIDDEN}-unit RBM: AIS log Z - exact, K = {k} (SE)"] = (
            f"{value - ais['exact']:+.3f} ({stderr:.3f})")
    table[f"{SMALL_HIDDEN}-unit RBM: exact log Z"] = round(ais["exact"], 3)
    table["seconds"] = round(time.perf_counter() - start, 2)
    return Section(
        title=TITLE,
        summary=(
            "A restricted Boltzmann machine is an energy-based model with binary hidden units: "
            "p(v) = exp(-F(v)) / Z with a free energy F that sums the hidden units out in "
            "closed form, and a partition function Z that nothing sums cheaply. Two RBMs with "
            f"64 hidden units were trained on {digits['n_train']} digit images (binarised at "
            f"0.5) for {budget['epochs']} epochs each, by CD-1 (Hinton 2002) "
            "and by persistent CD-1 (Tieleman 2008), with SGD (learning rate 0.05, momentum "
            "0.5, weight decay 1e-4). Their test log-likelihoods use log Z from annealed "
            f"importance sampling (Salakhutdinov & Murray 2008; {budget['n_betas']} "
            "intermediate distributions, 100 runs; +- is the standard error of log Z). The "
            "pseudo-likelihood beside them is what scikit-learn's BernoulliRBM reports as its "
            "score: it never touches Z and is not a likelihood. The figures show the "
            f"{best} model (the better test log-likelihood): its filters, and Gibbs chains "
            "from random binary images (E[v | h] shown), which reach digit-like states within a few sweeps; "
            "each row shows how far one chain moves between the recorded sweeps. For a "
            f"{SMALL_HIDDEN}-unit RBM, whose log Z "
            "can be enumerated exactly, the AIS error bars shrink onto the exact value as "
            "the number K of intermediate distributions grows. The sample metrics compare "
            f"binary draws after {budget['n_gibbs']} Gibbs sweeps with the test images, in "
            "the features of the shipped digits classifier; the floor is the same metric "
            "between two halves of the test images, and samples of independent pixels at the "
            "training means show what a model without structure gets."),
        figures=[
            (f"Filters of the {best} RBM: each tile is one hidden unit's weights W[:, j] as an "
             "8x8 image (red positive, blue negative; pixels that are 0 in every training "
             "image left blank)", filters),
            (f"Gibbs chains of the {best} RBM from random binary images: E[v | h] after 1 to "
             "1,000 sweeps, one row per chain", chains_fig),
            (f"AIS estimates of log Z (+- 1 SE, 100 runs; seconds above each bar) against K, "
             f"and the exact log Z of a {SMALL_HIDDEN}-hidden-unit RBM (dashed)", ais_fig),
        ],
        table=table,
        samples={f"RBM {name}": r["samples"] for name, r in res.items()},
    )
