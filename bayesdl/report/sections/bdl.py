"""Report section: Bayesian deep learning (MC dropout, Bayes by Backprop, deep ensembles).

Each experiment is a function returning its numbers, so the tests check the same runs the
report shows.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import torch
from scipy.ndimage import rotate
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from torch import nn

from ...datasets import load_digits, load_mcycle
from ...neural_network import BayesianMLPClassifier, BayesianMLPRegressor
from ...nn import MCDropout, mc_dropout_weight_decay, signal_to_noise, signal_to_noise_prune
from ...train import Trainer, torch_threads
from ...uncertainty import (accuracy, decompose, expected_calibration_error,
                            negative_log_likelihood, ood_auroc, predict_dist)
from ...viz.bdl import rotated_digit, snr_pruning, uncertainty_bands
from ...viz.uncertainty import reliability_diagram
from ..section import Section

TITLE = "Bayesian deep learning"

# Digits with a small training set, where a deterministic network becomes over-confident.
DIGITS_TRAIN_SIZE = 300
DIGITS_METHODS = {
    "deterministic": dict(method="ensemble", n_estimators=1),
    "MC dropout": dict(method="mc_dropout", dropout=0.25),
    "BBB (Gaussian prior)": dict(method="bbb", prior_sigma=3.0),
    "BBB (scale mixture)": dict(method="bbb", prior="scale_mixture", prior_sigma=3.0),
    "deep ensemble": dict(method="ensemble", n_estimators=5),
    "Laplace (last layer)": dict(method="laplace", prior_sigma=3.0),
}


def _digits(seed: int):
    d = load_digits()
    return train_test_split(d.data, d.target, train_size=DIGITS_TRAIN_SIZE, random_state=seed,
                            stratify=d.target)


def _classifier(epochs: int, seed: int, **kw) -> BayesianMLPClassifier:
    # a fixed budget (no early stopping): every method trained the same way
    return BayesianMLPClassifier((100,), max_epochs=epochs, learning_rate=3e-3, dtype="float32",
                                 n_samples=100, early_stopping=False, random_state=seed, **kw)


def digits_calibration(quick: bool = False, seed: int = 0, methods=None) -> dict:
    """Train every method the same way on 300 digits: test error, NLL, ECE, seconds (fit and
    predict), and the AUROC of predictive entropy for telling the test digits from the same
    digits rotated by 90 degrees (out-of-distribution)."""
    Xtr, Xte, ytr, yte = _digits(seed)
    X_rotated = np.rot90(Xte.reshape(-1, 8, 8), axes=(1, 2)).reshape(len(Xte), 64)
    epochs = 40 if quick else 400
    results = {}
    for name in methods or DIGITS_METHODS:
        start = time.perf_counter()
        clf = _classifier(epochs, seed, **DIGITS_METHODS[name]).fit(Xtr, ytr)
        dist = clf.predict_dist(Xte)
        seconds = time.perf_counter() - start
        # out-of-distribution: the same test digits turned by 90 degrees, scored by entropy
        ood = clf.predict_dist(X_rotated)
        results[name] = {"model": clf, "dist": dist, "error": 1 - accuracy(dist, yte),
                         "nll": negative_log_likelihood(dist, yte),
                         "ece": expected_calibration_error(dist, yte),
                         "ood_auroc": ood_auroc(dist.entropy(), ood.entropy()),
                         "seconds": seconds}
    return {"results": results, "X_test": Xte, "y_test": yte}


def rotated_digit_experiment(quick: bool = False, seed: int = 0) -> dict:
    """Rotate a test digit "1" through 0-180 degrees and ask an MC-dropout network about it.

    Built from the library's lower floor (``bayesdl.nn`` + ``Trainer``) as Gal & Ghahramani
    did: a 64-128-128-10 MLP with dropout p = 0.5 before each hidden-to-next layer, weight
    decay from their eq. 7, pixels scaled to [0, 1] (not standardised, so ink where training
    images never have it is not blown up into extreme inputs).
    """
    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=0.3,
                                          random_state=seed, stratify=d.target)
    p = 0.5
    torch.manual_seed(seed)
    masks = torch.Generator().manual_seed(seed)  # one stream for both dropout layers
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), MCDropout(p, generator=masks),
                        nn.Linear(128, 128), nn.ReLU(), MCDropout(p, generator=masks),
                        nn.Linear(128, 10))
    decay = mc_dropout_weight_decay(length_scale=1.0, dropout=p, n_train=len(ytr))
    Trainer(net, lambda model, batch, step: nn.functional.cross_entropy(model(batch[0]), batch[1]),
            optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=decay),
            max_epochs=10 if quick else 60, batch_size=64, seed=seed, progress=False
            ).fit((torch.as_tensor(Xtr, dtype=torch.float32), torch.as_tensor(ytr)))
    one = Xte[np.flatnonzero(yte == 1)[0]].reshape(8, 8)
    angles = np.linspace(0, 180, 7 if quick else 13)
    images = np.stack([np.clip(rotate(one, a, reshape=False, order=1), 0, 1) for a in angles])
    dist = predict_dist(net, torch.as_tensor(images.reshape(len(angles), 64),
                                             dtype=torch.float32), n_samples=100)
    parts = decompose(dist)
    probs = dist.member_probs.numpy()  # (A, S, K)
    top = list(dict.fromkeys(probs.mean(1).argmax(1).tolist()))
    classes = (top + [c for c in np.argsort(-probs.mean((0, 1))) if c not in top])[:4]
    return {"angles": angles, "images": images, "member_probs": probs, "classes": classes,
            "entropy": parts.total.numpy(), "mutual_info": parts.epistemic.numpy()}


def _bands(reg, x_grid):
    dist = reg.predict_dist(x_grid[:, None])
    parts = decompose(dist)
    return dist.mean.numpy(), parts.aleatoric.numpy(), parts.epistemic.numpy()


def gap_regression(quick: bool = False, seed: int = 0) -> dict:
    """1-D data with a gap and noise growing with |x|: aleatoric vs epistemic bands."""
    rng = np.random.default_rng(seed)
    n = 160
    x = np.concatenate([rng.uniform(-4, -1.5, n // 2), rng.uniform(1.5, 4, n // 2)])
    y = np.sin(x) + (0.02 + 0.06 * np.abs(x)) * rng.standard_normal(n)
    grid = np.linspace(-6, 6, 200)
    epochs = 60 if quick else 500
    common = dict(heteroscedastic=True, max_epochs=epochs, learning_rate=3e-3,
                  early_stopping=False, n_samples=100, random_state=seed)
    fits = {
        "MC dropout": BayesianMLPRegressor((64, 64), method="mc_dropout", dropout=0.1, **common),
        "deep ensemble": BayesianMLPRegressor((64, 64), method="ensemble", **common),
    }
    return {"x": x, "y": y, "grid": grid,
            "fits": {name: _bands(reg.fit(x[:, None], y), grid) for name, reg in fits.items()}}


def motorcycle(quick: bool = False, seed: int = 0) -> dict:
    """Heteroscedastic MC dropout on the motorcycle crash data."""
    d = load_mcycle()
    x, y = d.data[:, 0], d.target
    reg = BayesianMLPRegressor((64, 64), method="mc_dropout", dropout=0.1, heteroscedastic=True,
                               max_epochs=100 if quick else 1500, learning_rate=3e-3,
                               early_stopping=False, n_samples=100,
                               random_state=seed).fit(x[:, None], y)
    grid = np.linspace(x.min(), x.max(), 200)
    return {"x": x, "y": y, "grid": grid, "fit": _bands(reg, grid),
            "nll": negative_log_likelihood(reg.predict_dist(x[:, None]), y)}


def snr_pruning_experiment(clf: BayesianMLPClassifier, X_test, y_test,
                           fractions=(0.0, 0.5, 0.75, 0.9, 0.95, 0.98)) -> dict:
    """Remove the lowest-SNR weights of a fitted BBB classifier; test error per fraction."""
    snr = signal_to_noise(clf.network_).numpy()
    errors = []
    for fraction in fractions:
        pruned = copy.deepcopy(clf)
        signal_to_noise_prune(pruned.network_, fraction)
        errors.append(1 - accuracy(pruned.predict_dist(X_test), y_test))
    return {"snr_db": 10 * np.log10(snr), "fractions": list(fractions), "errors": errors}


def build(quick: bool = False, seed: int = 0) -> Section:
    # the experiments train for fixed budgets on purpose (early_stopping=False): the estimators'
    # "budget ran out while still improving" warning is for users, not for this page
    with torch_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        digits = digits_calibration(quick, seed)
        rotated = rotated_digit_experiment(quick, seed)
        gap = gap_regression(quick, seed)
        moto = motorcycle(quick, seed)
        res = digits["results"]
        pruning = snr_pruning_experiment(res["BBB (Gaussian prior)"]["model"],
                                         digits["X_test"], digits["y_test"])

    i90 = int(np.argmin(np.abs(rotated["angles"] - 90)))
    section = Section(
        title=TITLE,
        summary=(
            "Approximate Bayesian neural networks from bayesdl.nn, trained by the "
            "BayesianMLPRegressor/Classifier estimators: MC dropout (Gal & Ghahramani 2016), "
            "Bayes by Backprop with local reparameterisation (Blundell et al. 2015) and deep "
            "ensembles (Lakshminarayanan et al. 2017), and a post-hoc last-layer Laplace "
            "approximation of a MAP network (Daxberger et al. 2021) with its prior precision "
            "from the evidence. A digit '1' rotated away from anything "
            "seen in training raises the predictive entropy and mutual information of MC "
            "dropout. On 1-D data with a gap, the aleatoric band follows the input-dependent "
            "noise while the epistemic band widens in the gap (Kendall & Gal 2017); the "
            "motorcycle data shows the same split on real measurements. On held-out digits "
            f"(trained on {DIGITS_TRAIN_SIZE} images) the reliability diagrams compare "
            "calibration; the OOD AUROC scores how well predictive entropy tells test digits "
            "from the same digits turned by 90 degrees. Bayes by Backprop keeps its accuracy "
            "after most of its weights are removed by signal-to-noise ratio."
        ),
    )
    section.figures += [
        ("MC-dropout softmax samples and predictive entropy of a rotated digit '1'",
         rotated_digit(rotated["angles"], rotated["images"], rotated["member_probs"],
                       rotated["entropy"], rotated["mutual_info"], rotated["classes"])),
        ("Heteroscedastic regression with a data gap: aleatoric and epistemic uncertainty",
         uncertainty_bands(gap["x"], gap["y"], gap["grid"], gap["fits"])),
        ("Motorcycle crash data, heteroscedastic MC dropout",
         uncertainty_bands(moto["x"], moto["y"], moto["grid"], {"MC dropout": moto["fit"]},
                           xlabel="time (ms)", ylabel="acceleration (g)")),
        ("Reliability diagrams on held-out digits",
         reliability_diagram({k: v["dist"] for k, v in res.items()}, digits["y_test"])),
        ("Bayes by Backprop: weight signal-to-noise ratios and test error after pruning",
         snr_pruning(pruning["snr_db"], pruning["fractions"], pruning["errors"],
                     baseline=res["deterministic"]["error"])),
    ]
    for name, r in res.items():
        section.table[f"digits {name}: error / NLL / ECE / OOD AUROC / s"] = (
            f"{100 * r['error']:.1f}% / {r['nll']:.3f} / {100 * r['ece']:.2f}% / "
            f"{r['ood_auroc']:.3f} / {r['seconds']:.1f}")
    section.table["rotated '1': entropy at 0 / 90 degrees (nats)"] = (
        f"{rotated['entropy'][0]:.3f} / {rotated['entropy'][i90]:.3f}")
    section.table["motorcycle: NLL per point (MC dropout, training data)"] = round(moto["nll"], 3)
    for fraction, error in zip(pruning["fractions"], pruning["errors"]):
        section.table[f"BBB test error with {100 * fraction:g}% weights pruned"] = (
            f"{100 * error:.1f}%")
    return section
