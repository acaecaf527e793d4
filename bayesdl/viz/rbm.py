"""Figures of restricted Boltzmann machines: filters, Gibbs chains, AIS against exact log Z."""

from __future__ import annotations

import matplotlib
import numpy as np

from ._common import new_figure


_GUTTER = "#9db4d0"  # colour of the NaN gutters between tiles


def _mosaic(tiles: np.ndarray, ncols: int) -> np.ndarray:
    """(n, h, w) tiles -> one (rows (h + 1) - 1, ncols (w + 1) - 1) image, NaN gutters."""
    n, h, w = tiles.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tile
    return out


def filters_figure(weight: np.ndarray, image_shape: tuple[int, int], n: int = 64,
                   ncols: int = 16, active=None):
    """The first ``n`` hidden units' weight vectors W[:, j] (D,) drawn as images.

    Each filter is scaled to its own largest |weight| (red positive, blue negative), so the
    figure shows shapes, not magnitudes. ``active`` (D,) bool marks the pixels to show; the
    others (e.g. pixels that are 0 in every training image, whose weights only learn to
    switch them off) are drawn blank and left out of the scale.
    """
    weight = np.asarray(weight, dtype=float)
    n = min(n, weight.shape[1])
    if active is not None:
        weight = np.where(np.asarray(active, dtype=bool)[:, None], weight, 0.0)
    tiles = weight[:, :n].T.reshape(n, *image_shape)  # (n, h, w)
    tiles = tiles / np.abs(tiles).max(axis=(1, 2), keepdims=True).clip(1e-12)
    ncols = min(ncols, n)
    fig, axes = new_figure(1, 1, width=0.5 * ncols + 1, height=0.5 * -(-n // ncols) + 0.9)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=_GUTTER)
    im = ax.imshow(_mosaic(tiles, ncols), cmap=cmap, vmin=-1, vmax=1,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"hidden units 1-{n}: each tile is one column of W as a "
                  f"{image_shape[0]}x{image_shape[1]} image")
    ax.set_ylabel("filters")
    fig.colorbar(im, ax=ax, shrink=0.8, label="weight / max |weight|")
    return fig


def gibbs_chains_figure(chains: np.ndarray, steps, image_shape: tuple[int, int]):
    """Gibbs chains as an image table: one row per chain, one column per recorded sweep.

    ``chains`` is (n_chains, len(steps), D) visible means E[v | h] in [0, 1]; ``steps`` the
    sweep counts they were recorded at.
    """
    chains = np.asarray(chains)
    n_chains, n_steps = chains.shape[:2]
    h, w = image_shape
    tiles = chains.reshape(n_chains * n_steps, h, w)
    fig, axes = new_figure(1, 1, width=0.55 * n_steps + 1.2, height=0.55 * n_chains + 0.8)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad=_GUTTER)
    ax.imshow(_mosaic(tiles, n_steps), cmap=cmap, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([c * (w + 1) + (w - 1) / 2 for c in range(n_steps)], [str(s) for s in steps],
                  fontsize=7)
    ax.set_yticks([r * (h + 1) + (h - 1) / 2 for r in range(n_chains)],
                  [str(r + 1) for r in range(n_chains)], fontsize=7)
    ax.set_xlabel("Gibbs sweeps from a random start")
    ax.set_ylabel("chain")
    return fig


def ais_figure(n_betas, values, stderrs, exact: float, *, runtime_s=None):
    """AIS estimates of log Z with +-1 SE bars against the number of intermediate
    distributions (log axis), and the exact log Z as a horizontal line.

    ``runtime_s`` (optional, one per K) is written above each bar.
    """
    n_betas, values, stderrs = (np.asarray(a, dtype=float) for a in (n_betas, values, stderrs))
    fig, axes = new_figure(1, 1, width=5.5, height=3.4)
    ax = axes[0, 0]
    ax.axhline(exact, color="0.3", lw=1, ls="--", label=f"exact (enumeration): {exact:.3f}")
    ax.errorbar(n_betas, values, yerr=stderrs, fmt="o", color="C0", capsize=3,
                label="AIS estimate $\\pm$ 1 SE")
    if runtime_s is not None:
        for k, v, s, t in zip(n_betas, values, stderrs, runtime_s):
            ax.annotate(f"{t:.2g} s", (k, v + s), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.margins(y=0.15)  # room for the run-time labels
    ax.set_xlabel("intermediate distributions K")
    ax.set_ylabel("log Z")
    ax.legend(fontsize=8, loc="lower right")
    return fig


__all__ = ["ais_figure", "filters_figure", "gibbs_chains_figure"]
