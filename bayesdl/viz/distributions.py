"""Figures for the distributions family (PRML chapter 2 and section 10.1.2).

Each function returns a :class:`matplotlib.figure.Figure` built with :func:`bayesdl.viz.new_figure`.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.patches import Ellipse
from torch.distributions import Beta, Dirichlet, Distribution, MultivariateNormal, Normal

from ._common import legend_outside, new_figure

__all__ = [
    "plot_beta_prior_likelihood_posterior",
    "plot_beta_sequence",
    "plot_central_limit",
    "plot_dirichlet_simplex",
    "plot_factorised_gaussian_kl",
    "plot_density_fits",
    "plot_gaussian_mean_posteriors",
    "plot_ab_posteriors",
]

_MU = np.linspace(1e-4, 1 - 1e-4, 400)


def _beta_pdf(d: Beta) -> np.ndarray:
    return d.log_prob(torch.as_tensor(_MU, dtype=d.concentration1.dtype)).exp().numpy()


def plot_beta_prior_likelihood_posterior(prior: Beta, posterior: Beta, observation: int):
    """PRML Figure 2.3: prior, likelihood of one Bernoulli observation, and posterior."""
    fig, axes = new_figure(1, 3, width=3.4, height=2.8)
    like = _MU if observation == 1 else 1 - _MU
    panels = [(prior, "prior"), (None, f"likelihood function (x = {observation})"), (posterior, "posterior")]
    for ax, (dist, title) in zip(axes[0], panels):
        if dist is None:
            ax.plot(_MU, like, color="tab:blue")
        else:
            ax.plot(_MU, _beta_pdf(dist), color="tab:red")
            title += f": Beta({dist.concentration1.item():g}, {dist.concentration0.item():g})"
        ax.set(title=title, xlabel=r"$\mu$", xlim=(0, 1), ylim=(0, 2.1),
               ylabel=r"$p(x = 1 | \mu)$" if dist is None else "density")
    return fig


def plot_beta_sequence(posteriors: list[tuple[int, Beta]], true_mu: float):
    """Beta posteriors after N Bernoulli observations, sharpening around the true ``mu``."""
    fig, axes = new_figure(1, 1, width=6.0, height=3.6)
    ax = axes[0, 0]
    colors = [f"C{i}" for i in range(len(posteriors))]
    for (n, d), color in zip(posteriors, colors):
        ax.plot(_MU, _beta_pdf(d), color=color, label=f"N = {n}")
    ax.axvline(true_mu, color="k", ls="--", lw=1, label=rf"true $\mu$ = {true_mu:g}")
    ax.set(xlabel=r"$\mu$", ylabel="posterior density", xlim=(0, 1),
           title="Sequential Bayesian updating of a Beta posterior")
    legend_outside(ax)
    return fig


def _simplex_grid(resolution: int):
    """Barycentric points strictly inside the 2-simplex and their 2-D triangle coordinates."""
    ticks = (np.arange(resolution) + 0.5) / resolution
    a, b = np.meshgrid(ticks, ticks)
    inside = a + b < 1 - 0.5 / resolution
    bary = np.stack([a[inside], b[inside], 1 - a[inside] - b[inside]], -1)  # (M, 3)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    return bary, bary @ corners


def plot_dirichlet_simplex(dirichlets: list[Dirichlet], resolution: int = 120):
    """PRML Figure 2.5: Dirichlet log-densities on the simplex (one panel per concentration).

    All panels share one colour scale (the top 8 nats of the largest log-density, so the shape
    stays visible where the density diverges at the edges), so a uniform Dirichlet is one
    flat colour that reads off the same colour bar as the others.
    """
    fig, axes = new_figure(1, len(dirichlets), width=3.0, height=3.0)
    bary, xy = _simplex_grid(resolution)
    log_ps = [d.log_prob(torch.as_tensor(bary, dtype=d.concentration.dtype)).numpy()
              for d in dirichlets]
    vmax = max(float(lp.max()) for lp in log_ps)
    vmin = max(min(float(lp.min()) for lp in log_ps), vmax - 8.0)
    for ax, d, log_p in zip(axes[0], dirichlets, log_ps):
        im = ax.tripcolor(xy[:, 0], xy[:, 1], log_p, shading="gouraud", cmap="viridis",
                          vmin=vmin, vmax=vmax)
        ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="k", lw=0.8)
        alpha = ", ".join(f"{v:g}" for v in d.concentration.tolist())
        ax.set(title=rf"$\alpha$ = ({alpha})", aspect="equal", xticks=[], yticks=[])
        ax.set_axis_off()
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="log density (one scale for all)")
    return fig


def plot_central_limit(sample_means: dict[int, np.ndarray], exact: dict[int, Distribution],
                       population_mean: float, population_var: float):
    """Histograms of means of N draws, with the exact law of the mean and the CLT Normal."""
    fig, axes = new_figure(1, len(sample_means), width=3.0, height=2.8)
    for ax, (n, means) in zip(axes[0], sample_means.items()):
        ax.hist(means, bins=60, density=True, color="tab:gray", alpha=0.6, label="sample means")
        grid = np.linspace(max(means.min(), 1e-6), means.max(), 300)
        g = torch.as_tensor(grid)
        ax.plot(grid, exact[n].log_prob(g).exp().numpy(), color="tab:blue", label="exact law")
        clt = np.exp(-(grid - population_mean) ** 2 * n / (2 * population_var)) * np.sqrt(n / (2 * np.pi * population_var))
        ax.plot(grid, clt, color="tab:red", ls="--", label="CLT Normal")
        ax.set(title=f"N = {n}", xlabel="mean of N draws", ylabel="density")
    legend_outside(axes[0, -1])
    return fig


def _ellipse(ax, mean, cov, color, label, ls="-"):
    """The 2-standard-deviation contour of a 2-D Gaussian."""
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    ax.add_patch(Ellipse(mean, 4 * np.sqrt(vals[1]), 4 * np.sqrt(vals[0]), angle=angle, fill=False,
                         color=color, lw=2, ls=ls, label=label))


def plot_factorised_gaussian_kl(p: MultivariateNormal, q_reverse: MultivariateNormal, q_forward: MultivariateNormal):
    """PRML Figure 10.2: a factorised Gaussian fitted by KL(q||p) (left) and by KL(p||q) (right)."""
    fig, axes = new_figure(1, 2, width=3.8, height=3.8)
    for ax, q, title in zip(axes[0], (q_reverse, q_forward), ("minimise KL(q || p)", "minimise KL(p || q)")):
        _ellipse(ax, p.loc.numpy(), p.covariance_matrix.numpy(), "tab:green", "p (correlated)")
        _ellipse(ax, q.loc.numpy(), q.covariance_matrix.numpy(), "tab:red", "q (factorised)", ls="--")
        ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal", title=title, xlabel="$z_1$", ylabel="$z_2$")
    legend_outside(axes[0, -1])
    return fig


def plot_density_fits(x: np.ndarray, densities: dict[str, Distribution], xlabel: str):
    """A histogram of ``x`` with the densities of fitted distributions overlaid.

    Curves are drawn from wide and pale (first) to narrow (last), so a curve that coincides
    with a later one still shows as a halo around it.
    """
    fig, axes = new_figure(1, 1, width=5.5, height=3.6)
    ax = axes[0, 0]
    ax.hist(x, bins=30, density=True, color="tab:gray", alpha=0.5, label="data")
    grid = np.linspace(x.min() - 0.1 * np.ptp(x), x.max() + 0.1 * np.ptp(x), 400)
    g = torch.as_tensor(grid)
    widths = np.linspace(6, 1.5, len(densities))
    for (name, d), ls, lw in zip(densities.items(), ["-", "--", ":", "-."] * len(densities),
                                 widths):
        inside = d.support.check(g)
        density = torch.where(inside, d.log_prob(torch.where(inside, g, d.mean)).exp(), torch.nan)
        ax.plot(grid, density.numpy(), ls=ls, lw=lw, alpha=0.5 if lw > 3 else 1.0, label=name)
    ax.set(xlabel=xlabel, ylabel="density")
    legend_outside(ax)
    return fig


def plot_gaussian_mean_posteriors(posteriors: list[tuple[int, Normal]], true_mean: float):
    """PRML Figure 2.12: posteriors over a Gaussian's mean (known variance) after N points."""
    fig, axes = new_figure(1, 1, width=5.5, height=3.6)
    ax = axes[0, 0]
    grid = np.linspace(-1.0, 1.5, 500)
    for n, d in posteriors:
        ax.plot(grid, d.log_prob(torch.as_tensor(grid)).exp().numpy(), label=f"N = {n}")
    ax.axvline(true_mean, color="k", ls="--", lw=1, label=f"true mean {true_mean:g}")
    ax.set(xlabel=r"$\mu$", ylabel=r"$p(\mu | x_1..x_N)$", title="Posterior of a Gaussian mean, known variance")
    legend_outside(ax)
    return fig


def plot_ab_posteriors(names: list[str], posteriors: list[Beta], prob_best: np.ndarray):
    """Beta posteriors of the conversion rate of each arm of an A/B test."""
    fig, axes = new_figure(1, 1, width=5.5, height=3.4)
    ax = axes[0, 0]
    lo = min(float(d.mean - 5 * d.stddev) for d in posteriors)
    hi = max(float(d.mean + 5 * d.stddev) for d in posteriors)
    grid = torch.linspace(max(lo, 1e-6), min(hi, 1 - 1e-6), 500, dtype=torch.float64)
    for name, d, p in zip(names, posteriors, prob_best):
        ax.plot(grid.numpy(), d.log_prob(grid).exp().numpy(),
                label=f"{name}: Beta({d.concentration1.item():g}, {d.concentration0.item():g}), P(best) = {p:.3f}")
    ax.set(xlabel="conversion rate", ylabel="posterior density", title="A/B test posteriors")
    legend_outside(ax)
    return fig
