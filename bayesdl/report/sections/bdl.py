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
# one ECE everywhere (table and reliability-diagram titles): 15 equal-width bins (Guo et al. 2017)
ECE_BINS = 15
DIGITS_METHODS = {
    "deterministic": dict(method="ensemble", n_estimators=1),
    "MC dropout": dict(method="mc_dropout", dropout=0.25),
    "BBB (Gaussian prior)": dict(method="bbb", prior_sigma=3.0),
    "BBB (scale mixture)": dict(method="bbb", prior="scale_mixture", prior_sigma=3.0),
    "deep ensemble": dict(method="ensemble", n_estimators=5),
    # the estimator's default for a Laplace: the MAP trains on 90% of the rows for the whole
    # budget and the held-out 10% only choose the prior precision (laplace_prior="auto")
    "Laplace (last layer)": dict(method="laplace", prior_sigma=3.0, early_stopping=True),
}


def _digits(seed: int):
    d = load_digits()
    return train_test_split(d.data, d.target, train_size=DIGITS_TRAIN_SIZE, random_state=seed,
                            stratify=d.target)


def _classifier(epochs: int, seed: int, **kw) -> BayesianMLPClassifier:
    # a fixed budget (no early stopping): every method trained the same way
    kw = {"early_stopping": False, **kw}
    # pixels scaled as images are, by one global mean and scale: per-pixel standardisation
    # would divide ink in always-blank corners by a near-zero spread (rotated digits would
    # reach |z| in the hundreds and look far more extreme than they are)
    return BayesianMLPClassifier((100,), max_epochs=epochs, learning_rate=3e-3, dtype="float32",
                                 n_samples=100, input_scaling="global",
                                 random_state=seed, **kw)


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
                         "ece": expected_calibration_error(dist, yte, ECE_BINS),
                         "ood_auroc": ood_auroc(dist.entropy(), ood.entropy()),
                         "seconds": seconds}
    return {"results": results, "X_test": Xte, "y_test": yte}


def rotated_digit_experiment(quick: bool = False, seed: int = 0) -> dict:
    """Rotate every test digit through 0-180 degrees and ask an MC-dropout network about it.

    Built from the library's lower floor (``bayesdl.nn`` + ``Trainer``) as Gal & Ghahramani
    did: a 64-128-128-10 MLP with dropout p = 0.5 before each hidden-to-next layer, weight
    decay from their eq. 7, pixels scaled to [0, 1] (not standardised per pixel, so ink where
    training images never have it is not blown up into extreme inputs). Returns, per angle,
    the accuracy, the mean top-class probability, and the mean predictive entropy and mutual
    information over all test digits, with a test '1' at every angle to show the rotation.
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
    angles = np.linspace(0, 180, 7 if quick else 13)
    digits = Xte.reshape(-1, 8, 8)  # (N, 8, 8)
    stats = {"accuracy": [], "confidence": [], "entropy": [], "mutual_info": []}
    for angle in angles:
        turned = np.clip(rotate(digits, angle, axes=(1, 2), reshape=False, order=1), 0, 1)
        dist = predict_dist(net, torch.as_tensor(turned.reshape(len(digits), 64),
                                                 dtype=torch.float32), n_samples=100)
        parts = decompose(dist)
        confidence, label = dist.probs.max(-1)
        stats["accuracy"].append(float((label.numpy() == yte).mean()))
        stats["confidence"].append(float(confidence.mean()))
        stats["entropy"].append(float(parts.total.mean()))
        stats["mutual_info"].append(float(parts.epistemic.mean()))
    one = digits[np.flatnonzero(yte == 1)[0]]
    images = np.stack([np.clip(rotate(one, a, reshape=False, order=1), 0, 1) for a in angles])
    return {"angles": angles, "images": images, "n_digits": len(digits),
            **{k: np.asarray(v) for k, v in stats.items()}}


def _bands(reg, x_grid):
    dist = reg.predict_dist(x_grid[:, None])
    parts = decompose(dist)
    return dist.mean.numpy(), parts.aleatoric.numpy(), parts.epistemic.numpy()


def gap_noise_sd(x):
    """The true noise sd of the gap data: 0.05 at x = -4 rising linearly to 0.25 at x = 4, so
    it is identified on both sides of the gap (a noise level only inside the gap would not be)."""
    return 0.05 + 0.025 * (np.asarray(x) + 4)


def gap_regression(quick: bool = False, seed: int = 0) -> dict:
    """1-D data with a gap in (-1.5, 1.5) and input-dependent noise: aleatoric and epistemic
    sd of a heteroscedastic deep ensemble and of heteroscedastic MC dropout on a grid."""
    rng = np.random.default_rng(seed)
    n = 160
    x = np.concatenate([rng.uniform(-4, -1.5, n // 2), rng.uniform(1.5, 4, n // 2)])
    y = np.sin(x) + gap_noise_sd(x) * rng.standard_normal(n)
    grid = np.linspace(-6, 6, 241)
    common = dict(heteroscedastic=True, max_epochs=150 if quick else 500, learning_rate=3e-3,
                  early_stopping=False, n_samples=100, random_state=seed)
    fits = {
        "deep ensemble (5 networks)": BayesianMLPRegressor((64, 64), method="ensemble", **common),
        "MC dropout (p = 0.1)": BayesianMLPRegressor((64, 64), method="mc_dropout", dropout=0.1,
                                                     **common),
    }
    # the true noise sd over the span of the data (-4, 4), where the data were drawn
    noise_sd = np.where(np.abs(grid) <= 4, gap_noise_sd(grid), np.nan)
    return {"x": x, "y": y, "grid": grid, "noise_sd": noise_sd,
            "fits": {name: _bands(reg.fit(x[:, None], y), grid) for name, reg in fits.items()}}


def _gap_summary(gap: dict, name: str) -> dict:
    """Mean epistemic sd for |x| < 0.5 over its mean where there is data, and the median
    relative error of the aleatoric sd against the true noise sd where there is data."""
    _, alea, epis = gap["fits"][name]
    x = gap["grid"]
    data = (np.abs(x) > 1.5) & (np.abs(x) < 4)
    centre = np.abs(x) < 0.5
    sd_e = np.sqrt(epis)
    return {"gap_ratio": float(sd_e[centre].mean() / sd_e[data].mean()),
            "aleatoric_error": float(np.median(np.abs(np.sqrt(alea[data]) / gap["noise_sd"][data]
                                                      - 1)))}


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


def run_experiments(quick: bool = False, seed: int = 0) -> dict:
    """Every experiment of the section, by name: the numbers :func:`compose` shows (and the
    tests check)."""
    # the experiments train for fixed budgets on purpose (early_stopping=False): the estimators'
    # "budget ran out while still improving" warning is for users, not for this page
    with torch_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        digits = digits_calibration(quick, seed)
        return {"digits": digits,
                "rotated": rotated_digit_experiment(quick, seed),
                "gap": gap_regression(quick, seed),
                "motorcycle": motorcycle(quick, seed),
                "pruning": snr_pruning_experiment(
                    digits["results"]["BBB (Gaussian prior)"]["model"], digits["X_test"],
                    digits["y_test"])}


def build(quick: bool = False, seed: int = 0) -> Section:
    return compose(run_experiments(quick, seed))


def compose(experiments: dict) -> Section:
    """The section (text, figures, table) from the results of :func:`run_experiments`."""
    digits, rotated, gap, moto, pruning = (experiments[k] for k in (
        "digits", "rotated", "gap", "motorcycle", "pruning"))
    res = digits["results"]
    i90 = int(np.argmin(np.abs(rotated["angles"] - 90)))
    ensemble, dropout = (_gap_summary(gap, name) for name in gap["fits"])
    aurocs = [r["ood_auroc"] for r in res.values()]
    errors = dict(zip(pruning["fractions"], pruning["errors"]))
    laplace_confidence = float(res["Laplace (last layer)"]["dist"].probs.max(-1).values.mean())
    laplace_verdict = (
        "Here they find it under-confident (the evidence of a last layer that fits the "
        "training digits closely picks a very broad prior) and raise the prior precision "
        "until their top-class hits no longer outnumber their confidences."
        if res["Laplace (last layer)"]["model"].prior_method_ == "calibrated"
        else "Here they accept it.")
    section = Section(
        title=TITLE,
        summary=(
            "Approximate Bayesian neural networks from bayesdl.nn, trained by the "
            "BayesianMLPRegressor/Classifier estimators: MC dropout (Gal & Ghahramani 2016), "
            "Bayes by Backprop with local reparameterisation (Blundell et al. 2015) and deep "
            "ensembles (Lakshminarayanan et al. 2017), and a post-hoc last-layer Laplace "
            "approximation of a MAP network trained to a mode (Daxberger et al. 2021).\n\nDigit pixels are scaled as images are (to [0, 1], or by one "
            "global mean and scale), never per pixel: per-pixel standardisation turns ink in "
            "always-blank corners into inputs hundreds of standard deviations out. "
            f"Rotating the {rotated['n_digits']} test digits, MC dropout's mean predictive "
            f"entropy goes from {rotated['entropy'][0]:.2f} nats upright to "
            f"{rotated['entropy'][i90]:.2f} at 90 degrees and the mutual information from "
            f"{rotated['mutual_info'][0]:.2f} to {rotated['mutual_info'][i90]:.2f}; both are "
            "highest at the in-between angles, where the rotated 8 x 8 digit is also blurred. "
            f"At 90 degrees the accuracy is {100 * rotated['accuracy'][i90]:.0f}% while the "
            f"mean top-class probability stays at {100 * rotated['confidence'][i90]:.0f}%: "
            "the uncertainty rises, but not by as much as the errors do.\n\n"
            f"On held-out digits (trained on {DIGITS_TRAIN_SIZE} images) the reliability "
            f"diagrams compare calibration; ECE uses {ECE_BINS} equal-width confidence bins "
            "in the table and in the diagram titles alike. The OOD AUROC is the probability "
            "that a test digit turned by 90 degrees gets a higher predictive entropy than an "
            "upright one (0.5 is chance, 1 perfect separation); it ranges from "
            f"{min(aurocs):.2f} to {max(aurocs):.2f} over the methods: once the pixels are "
            "scaled as images, every method, the single deterministic network included, gives "
            "turned digits the higher entropy more often than not, and none separates them "
            "cleanly, because many turned digits still look like some digit to the network "
            "(see the confidence at 90 degrees above). The last-layer Laplace has ECE "
            f"{100 * res['Laplace (last layer)']['ece']:.1f}% (mean top-class probability "
            f"{100 * laplace_confidence:.0f}% at "
            f"{100 * (1 - res['Laplace (last layer)']['error']):.0f}% accuracy) against the "
            f"deterministic network's {100 * res['deterministic']['ece']:.1f}%. It holds 10% of "
            "the training digits out, as the estimator does by default: the MAP network trains "
            "on the rest, and the held-out rows only test the evidence's prior precision "
            "(laplace_prior='auto', guide chapter 18). "
            f"{laplace_verdict}\n\n"
            "On 1-D data with a gap in (-1.5, 1.5) and noise sd rising from 0.05 to 0.25, the "
            "deep ensemble shows the textbook split (Kendall & Gal 2017): its aleatoric sd "
            "follows the true noise (median relative error "
            f"{100 * ensemble['aleatoric_error']:.0f}%) "
            f"and its epistemic sd is {ensemble['gap_ratio']:.1f} times larger in the gap than "
            "over the data. MC dropout learns the noise less well "
            f"({100 * dropout['aleatoric_error']:.0f}%) and its epistemic sd rises only "
            f"{dropout['gap_ratio']:.1f}-fold in the gap: single-network approximations "
            "lack in-between uncertainty (Foong et al. 2019). The motorcycle data shows the "
            "split on real measurements.\n\nRemoving the Bayes-by-Backprop weights with the "
            "lowest signal-to-noise ratio costs little at first: the test error goes from "
            f"{100 * errors[0.0]:.1f}% to {100 * errors[0.5]:.1f}% with half of them gone and "
            f"{100 * errors[0.75]:.1f}% with three quarters gone, then climbs."
        ),
    )
    section.figures += [
        ("Test digits rotated through 0-180 degrees (one '1' shown): MC-dropout accuracy "
         "against confidence, and the mean predictive entropy and mutual information",
         rotated_digit(rotated["angles"], rotated["images"], rotated["accuracy"],
                       rotated["confidence"], rotated["entropy"], rotated["mutual_info"])),
        ("Heteroscedastic regression with a data gap: aleatoric and epistemic uncertainty "
         "against the true noise sd",
         uncertainty_bands(gap["x"], gap["y"], gap["grid"], gap["fits"],
                           noise_sd=gap["noise_sd"])),
        ("Motorcycle crash data, heteroscedastic MC dropout",
         uncertainty_bands(moto["x"], moto["y"], moto["grid"], {"MC dropout": moto["fit"]},
                           xlabel="time (ms)", ylabel="acceleration (g)")),
        (f"Reliability diagrams on held-out digits (ECE with {ECE_BINS} equal-width bins)",
         reliability_diagram({k: v["dist"] for k, v in res.items()}, digits["y_test"],
                             n_bins=ECE_BINS)),
        ("Bayes by Backprop: weight signal-to-noise ratios and test error after pruning",
         snr_pruning(pruning["snr_db"], pruning["fractions"], pruning["errors"],
                     baseline=res["deterministic"]["error"])),
    ]
    for name, r in res.items():
        section.table[f"digits {name}: error / NLL / ECE ({ECE_BINS} bins) / OOD AUROC / s"] = (
            f"{100 * r['error']:.1f}% / {r['nll']:.3f} / {100 * r['ece']:.2f}% / "
            f"{r['ood_auroc']:.3f} / {r['seconds']:.1f}")
    section.table["rotated digits: mean entropy at 0 / 90 degrees (nats)"] = (
        f"{rotated['entropy'][0]:.3f} / {rotated['entropy'][i90]:.3f}")
    section.table["rotated digits: mean mutual information at 0 / 90 degrees (nats)"] = (
        f"{rotated['mutual_info'][0]:.3f} / {rotated['mutual_info'][i90]:.3f}")
    for name, summary in zip(gap["fits"], (ensemble, dropout)):
        section.table[f"gap: {name} epistemic sd in gap / over data"] = (
            f"{summary['gap_ratio']:.1f}x")
    section.table["motorcycle: NLL per point (MC dropout, training data)"] = round(moto["nll"], 3)
    for fraction, error in zip(pruning["fractions"], pruning["errors"]):
        section.table[f"BBB test error with {100 * fraction:g}% weights pruned"] = (
            f"{100 * error:.1f}%")
    return section
