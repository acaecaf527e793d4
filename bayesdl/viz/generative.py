"""Figures of the generative models (autoencoders, VAEs, RBMs, GANs, diffusion)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np

from ._common import new_figure


def _as_image_stack(images) -> np.ndarray:
    """``(N, H, W)`` greyscale images from ``(N, H, W)``, ``(N, 1, H, W)`` or square rows."""
    a = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    a = a.astype(np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if side * side != a.shape[1]:
            raise ValueError(f"rows of {a.shape[1]} values are not square images; reshape them "
                             "to (N, H, W) first.")
        a = a.reshape(len(a), side, side)
    if a.ndim != 3 or len(a) == 0:
        raise ValueError("images must be a non-empty (N, H, W), (N, 1, H, W) or (N, H*W) array "
                         f"of greyscale images, got shape {np.shape(images)}.")
    return a


def mosaic(images, ncol: int, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """Images ``(N, H, W)`` (or ``(N, H, W, 3)``) as one array, ``ncol`` per row, filled row
    by row, with ``pad`` pixels of ``fill`` between neighbours (and in the empty cells)."""
    n, h, w = images.shape[:3]
    rows = math.ceil(n / ncol)
    out = np.full((rows * (h + pad) - pad, ncol * (w + pad) - pad, *images.shape[3:]), fill)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return out


def image_grid(images, nrow: int | None = None, titles=None, *, vmin: float | None = None,
               vmax: float | None = None, cmap: str = "gray_r", pad: int = 1,
               scale: float = 0.45, title: str | None = None):
    """A grid of greyscale images with no axis ticks; returns a ``Figure``.

    ``images``: ``(N, H, W)``, ``(N, 1, H, W)`` or rows ``(N, H*W)`` of square images, numpy
    or torch. ``nrow`` is the number of images per row, as in ``torchvision.utils.make_grid``
    (default: ``ceil(sqrt(N))``); the images fill the grid row by row. ``titles`` (one per
    grid row, e.g. the class of a row of conditional samples) label the rows on the left.
    Grey levels span ``[vmin, vmax]``: by default [0, 1] when the images lie in it, else their
    range. ``cmap="gray_r"`` draws high values dark (ink on paper, as the digits are shown);
    use ``"gray"`` for white on black. ``scale`` is the size of one image in inches.
    """
    a = _as_image_stack(images)  # (N, H, W)
    n, h, w = a.shape
    ncol = math.ceil(math.sqrt(n)) if nrow is None else int(nrow)
    if ncol < 1:
        raise ValueError(f"nrow (images per row) must be positive, got {nrow}.")
    rows = math.ceil(n / ncol)
    if titles is not None and len(titles) != rows:
        raise ValueError(f"titles has {len(titles)} entries but the grid has {rows} rows of "
                         f"{ncol} images; give one title per row (or set nrow).")
    if vmin is None and vmax is None:
        lo, hi = float(a.min()), float(a.max())
        vmin, vmax = (0.0, 1.0) if lo >= 0 and hi <= 1 else (lo, hi)
    grid = mosaic(a, ncol, pad)  # padded with NaN, drawn as the background
    label_width = 0.0 if titles is None else 0.12 * max(len(str(t)) for t in titles) + 0.2
    fig, axes = new_figure(1, 1, width=ncol * scale + label_width,
                           height=rows * scale + (0.3 if title else 0.0))
    ax = axes[0][0]
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="white")  # the padding: white
    ax.imshow(grid, cmap=colormap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    if titles is None:
        ax.set_yticks([])
    else:
        ax.set_yticks([r * (h + pad) + (h - 1) / 2 for r in range(rows)])
        ax.set_yticklabels([str(t) for t in titles])
        ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return fig


def class_histograms(histograms, *, class_names=None, title: str | None = None):
    """Fraction of samples per class for each model, as grouped bars; returns a ``Figure``.

    ``histograms`` maps a model name to a ``(K,)`` array (e.g. ``sample_metrics(...)
    ["class_histogram"]``); the dashed line is the uniform 1/K of a model that covers every
    class equally (the digits' classes are balanced). Missing bars show dropped modes.
    """
    hists = {name: np.asarray(h, dtype=np.float64) for name, h in histograms.items()}
    if not hists:
        raise ValueError("histograms is empty: give at least one {model name: (K,) array}.")
    sizes = {h.shape for h in hists.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1:
        raise ValueError(f"every histogram must be a (K,) array with one K, got shapes "
                         f"{sorted(sizes)}.")
    K = next(iter(sizes))[0]
    names = [str(c) for c in (range(K) if class_names is None else class_names)]
    if len(names) != K:
        raise ValueError(f"class_names has {len(names)} entries for {K} classes.")
    fig, axes = new_figure(1, 1, width=min(2.0 + 0.45 * K * len(hists) ** 0.5, 10.0), height=3.2)
    ax = axes[0][0]
    width = 0.8 / len(hists)
    for i, (name, h) in enumerate(hists.items()):
        ax.bar(np.arange(K) + (i - (len(hists) - 1) / 2) * width, h, width, label=name)
    ax.axhline(1 / K, color="k", ls="--", lw=1, label=f"uniform 1/{K}")
    ax.set_xticks(np.arange(K), names)
    ax.set_xlabel("class assigned by the classifier")
    ax.set_ylabel("fraction of samples")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig


def metrics_comparison(results, *, noise_fcd: float | None = None, title: str | None = None):
    """The Fréchet classifier distance, precision and recall of several models side by side,
    each against the real-data floor; returns a ``Figure``.

    ``results`` maps a model name to ``sample_metrics(...)`` computed on the same real data
    (so one floor serves all). Left: FCD (log scale; lower is better) with the floor and, if
    given, uniform noise's FCD as dashed lines. Right: precision and recall (higher is
    better) with their floors.
    """
    if not results:
        raise ValueError("results is empty: give at least one {model name: sample_metrics}.")
    names = list(results)
    first = next(iter(results.values()))
    y = np.arange(len(names))
    fig, axes = new_figure(1, 2, width=11.0, height=1.5 + 0.42 * len(names))
    ax_fcd, ax_pr = axes[0]
    ax_fcd.barh(y, [results[n]["fcd"] for n in names], color="C0")
    ax_fcd.axvline(first["fcd_floor"], color="k", ls="--", lw=1,
                   label=f"real vs real (floor) {first['fcd_floor']:.3g}")
    if noise_fcd is not None:
        ax_fcd.axvline(noise_fcd, color="C3", ls=":", lw=1.5,
                       label=f"uniform noise {noise_fcd:.3g}")
    ax_fcd.set_xscale("log")
    ax_fcd.set_yticks(y, names)
    ax_fcd.set_ylabel("model")
    ax_fcd.invert_yaxis()
    ax_fcd.set_xlabel("Fréchet classifier distance (log scale; lower is better)")
    ax_fcd.legend(fontsize=8, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    height = 0.38
    for shift, key, color in ((-height / 2, "precision", "C1"), (height / 2, "recall", "C2")):
        ax_pr.barh(y + shift, [results[n][key] for n in names], height, color=color, label=key)
        ax_pr.axvline(first[f"{key}_floor"], color=color, ls="--", lw=1,
                      label=f"{key} floor {first[key + '_floor']:.2f}")
    ax_pr.set_yticks(y, names)
    ax_pr.set_ylabel("model")
    ax_pr.invert_yaxis()
    ax_pr.set_xlim(0, 1)
    ax_pr.set_xlabel("precision and recall (k-NN manifolds; higher is better)")
    ax_pr.legend(fontsize=8, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    if title:
        fig.suptitle(title)
    return fig
