"""Report section: a hidden Markov model on Old Faithful's eruption series and a local-level
linear dynamical system on the Nile (PRML 13.2, 13.3)."""

from __future__ import annotations

import numpy as np

from ...datasets import load_geyser, load_nile
from ...hmm import GaussianHMM
from ...state_space import LinearGaussianStateSpace
from ...viz import hmm as viz
from ..section import Section

TITLE = "Hidden Markov models"


def _geyser_hmm(seed: int, n_states: int, n_iter: int):
    """A Gaussian HMM on the durations of 299 successive eruptions (MASS ``geyser``)."""
    duration = load_geyser().data[:, 1:2]  # (299, 1) minutes
    model = GaussianHMM(n_states, n_iter=n_iter, tol=1e-3, random_state=seed)
    model.fit(duration)
    order = np.argsort(model.means_[:, 0])  # state 0 = the shortest eruptions
    rank = np.empty_like(order)
    rank[order] = np.arange(n_states)
    log_prob, states = model.decode(duration)
    return model, duration[:, 0], rank[states], order, log_prob


def _nile_local_level(n_iter: int):
    """Local level: level_t = level_{t-1} + w, flow_t = level_t + v; EM learns the two
    variances (and the initial level) from the series; then smooth and forecast."""
    nile = load_nile().data
    years, flow = nile[:, 0], nile[:, 1]
    model = LinearGaussianStateSpace(
        transition_matrices=1.0, observation_matrices=1.0, transition_covariance=1e3,
        observation_covariance=1e4, initial_state_mean=flow[0], initial_state_covariance=1e5,
        em_vars=["transition_covariance", "observation_covariance", "initial_state_mean"],
        n_iter=n_iter, tol=1e-8)
    model.fit(flow[:, None])
    smoothed, covs = model.smooth(flow)
    fc = model.forecast(flow, 10)
    return model, years, flow, smoothed[:, 0], np.sqrt(covs[:, 0, 0]), fc


def build(quick: bool = False, seed: int = 0) -> Section:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        hmm, x, states, order, log_prob = _geyser_hmm(seed, 2 if quick else 3, 15 if quick else 60)
        lds, years, flow, level, level_std, fc = _nile_local_level(8 if quick else 40)
    means = hmm.means_[order, 0]
    variances = hmm.covars_[order, 0]
    occupancy = np.bincount(states, minlength=len(order)) / len(states)
    future = years[-1] + np.arange(1, 11)
    figures = [
        (f"Old Faithful: durations of 299 successive eruptions (MASS geyser, August 1985) and "
         f"the Viterbi path of a {len(order)}-state Gaussian HMM (PRML 13.68-13.71): each "
         "eruption coloured by its decoded state, the state means as a step line.",
         viz.viterbi_path(x, states, means, ylabel="duration (min)")),
        ("The state-conditional densities N(mu_k, sigma_k^2), each weighted by the fraction "
         "of eruptions decoded to it, over the histogram of durations.",
         viz.state_densities(x, means, variances, occupancy, xlabel="duration (min)")),
        ("Nile flow at Aswan, 1871-1970: a local-level linear dynamical system whose two "
         "noise variances were learned by EM; the RTS-smoothed level with its 95% band and a "
         "10-year forecast with its 95% predictive band (PRML 13.3).",
         viz.local_level(years, flow, level, level_std, future, fc.mean[:, 0], fc.lower[:, 0],
                         fc.upper[:, 0], ylabel="flow (10^8 m^3)")),
    ]
    stay = np.diag(hmm.transmat_)[order]
    table = {
        "geyser HMM states": len(order),
        "geyser HMM log-likelihood": round(float(hmm.score(x[:, None])), 2),
        "geyser: P(stay) per state (short to long)": ", ".join(f"{p:.2f}" for p in stay),
        "geyser: Viterbi log p(X, Z*)": round(float(log_prob), 2),
        "Nile level variance (EM)": round(float(lds.transition_covariance_[0, 0]), 1),
        "Nile observation variance (EM)": round(float(lds.observation_covariance_[0, 0]), 1),
        "Nile log-likelihood": round(float(lds.score(flow[:, None])), 2),
    }
    summary = (
        "Hidden Markov models run forward-backward on all sequences of a chunk at once and "
        "feed their Baum-Welch statistics to the same EM engine as the mixtures; the linear "
        "dynamical system is their continuous-state counterpart, with a Joseph-form Kalman "
        "filter, the RTS smoother and EM. After a short eruption the next is almost always "
        "long, which an HMM captures and a mixture cannot.")
    return Section(title=TITLE, summary=summary, figures=figures, table=table)
