"""Report section: denoising diffusion (DDPM/DDIM) with classifier-free guidance on the digits."""

from __future__ import annotations

import time

import numpy as np
import torch

from ...datasets.images import load_digits_images, split_images
from ...generative import DDPM
from ...generative.diffusion import NoiseSchedule
from ...metrics import conditional_accuracy, sample_metrics
from ...viz import diffusion as viz
from ...viz.generative import image_grid
from ...train import torch_threads
from ..section import Section

TITLE = "Diffusion models"

# the paper's t shown along both chains: x_0 is the data, x_1000 pure noise (code index t - 1)
_SHOWN_T = (0, 50, 100, 200, 400, 700, 1000)


def _train(X, y, quick: bool, seed: int) -> tuple[DDPM, float]:
    start = time.perf_counter()
    model = DDPM(base_channels=16, max_epochs=1 if quick else 8, learning_rate=3e-3,
                 batch_size=32 if quick else 64, random_state=seed).fit(X, y)
    return model, time.perf_counter() - start


def _forward_chain(model: DDPM, image: np.ndarray, seed: int) -> list[np.ndarray]:
    """One digit at each shown t, noised with one fixed noise image (draws of q(x_t | x_0))."""
    schedule = NoiseSchedule.linear(model.n_timesteps)
    x0 = torch.as_tensor(image * 2 - 1, dtype=torch.float64)[None]  # (1, 8, 8) in [-1, 1]
    noise = torch.randn(x0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    # paper t >= 1 is code index t - 1 (t = 0 is the data itself)
    return [image if t == 0 else ((schedule.add_noise(x0, noise, t - 1)[0] + 1) / 2).numpy()
            for t in _SHOWN_T]


def _timed_sample(model, labels, guidance, steps, seed):
    start = time.perf_counter()
    out = model.sample(len(labels), y=labels, guidance=guidance, steps=steps, random_state=seed,
                       return_chain=steps is None)
    return out, (time.perf_counter() - start) / len(labels)


def build(quick: bool = False, seed: int = 0) -> Section:
    with torch_threads(1):  # 8x8 convolutions: one thread is fastest (and fair on shared cores)
        return _build(quick, seed)


def _build(quick: bool, seed: int) -> Section:
    start = time.perf_counter()
    X, y = load_digits_images()
    train, val, test = split_images(X, y, seed=seed)
    fit_idx = np.concatenate([train, val])
    if quick:  # a smoke test of the section: one epoch on a third of the digits
        fit_idx = fit_idx[::3]
    model, train_seconds = _train(X[fit_idx], y[fit_idx], quick, seed)
    real = X[test]

    # guidance weight against quality (FCD to held-out digits) and conditional accuracy
    weights = (0.0, 1.0, 3.0) if quick else (0.0, 1.0, 2.0, 4.0)
    n_per_w, steps = (50, 10) if quick else (200, 20)
    held_out = real[:2 * n_per_w]  # sample_metrics compares n_per_w samples with half of it
    labels = np.arange(n_per_w) % 10
    guided = [model.sample(n_per_w, y=labels, guidance=w, steps=steps, random_state=seed + k)
              for k, w in enumerate(weights)]
    results = [sample_metrics(held_out, images, labels=labels) for images in guided]
    fcd = [r["fcd"] for r in results]
    acc = [r["conditional_accuracy"] for r in results]
    floor = results[0]["fcd_floor"]  # real half against real half, the same sample sizes
    guidance_fig = viz.guidance_figure(weights, fcd, floor, acc)

    # ancestral DDPM over all 1000 steps against DDIM with 50: time per image and accuracy
    n_cmp = 1 if quick else 10
    cmp_labels = np.arange(n_cmp) % 10
    ddim, ddim_s = _timed_sample(model, cmp_labels, 2.0, 50, seed)
    (ddpm, chain), ddpm_s = _timed_sample(model, cmp_labels, 2.0, None, seed)
    samplers = {"DDIM-50": (ddim_s, conditional_accuracy(ddim, cmp_labels)),
                "DDPM-1000": (ddpm_s, conditional_accuracy(ddpm, cmp_labels))}
    samplers_fig = viz.samplers_figure(list(samplers), [v[0] for v in samplers.values()],
                                       [100 * v[1] for v in samplers.values()])
    # chain[k] is the state after k reverse steps, the paper's x_{T-k}; sample 0 is a 0
    reverse = [chain[model.n_timesteps - t][0] for t in _SHOWN_T]
    chains_fig = viz.chains_figure(_forward_chain(model, X[test[0]], seed), reverse, _SHOWN_T)
    per_class = 4 if quick else 8
    grid = model.sample(10 * per_class, y=np.repeat(np.arange(10), per_class), guidance=2.0,
                        steps=20 if quick else 50, random_state=seed)
    grid_fig = image_grid(grid, nrow=per_class, titles=[str(c) for c in range(10)])
    schedules_fig = viz.schedules_figure({"linear (Ho et al. 2020)": NoiseSchedule.linear(),
                                          "cosine (Nichol & Dhariwal 2021)": NoiseSchedule.cosine()})
    best = int(np.argmin(fcd))
    return Section(
        title=TITLE,
        summary=(
            "A denoising diffusion model (Ho et al. 2020) learns to undo a fixed forward "
            "process that adds Gaussian noise over T = 1000 steps: a small U-Net (width 16, "
            "self-attention at 4x4) predicts the noise in x_t from t and the digit's class. "
            f"Training budget: {model.n_iter_} epochs on {len(fit_idx)} 8x8 digits "
            f"({train_seconds:.0f} s on this machine), far below a converged model. "
            "Sampling runs the reverse chain from pure noise, either by ancestral steps over "
            "all 1000 timesteps or by 50 deterministic DDIM steps (Song et al. 2021): here "
            f"DDIM-50 takes {samplers['DDPM-1000'][0] / samplers['DDIM-50'][0]:.0f} times less "
            "time per image. Classifier-free guidance (Ho & Salimans 2022) trades diversity "
            "for fidelity: the guided noise estimate (1 + w) eps(x, c) - w eps(x) makes samples "
            f"more recognisably their class ({100 * acc[0]:.0f}% classified as asked at w = 0, "
            f"{100 * acc[-1]:.0f}% at w = {weights[-1]:g}), while the Frechet classifier "
            f"distance to held-out digits is lowest at w = {weights[best]:g}"
            + (" and rises again as stronger guidance removes diversity."
               if best < len(weights) - 1 else ".")),
        figures=[
            ("The forward process noising one held-out digit (top) and the learnt reverse "
             "chain turning noise into a digit (bottom; class 0, w = 2), at the same t",
             chains_fig),
            ("Class-conditional samples, one row per class 0-9 (w = 2, DDIM)", grid_fig),
            (f"Guidance weight against the Frechet classifier distance (lower is better; "
             f"dashed: real against real) and conditional accuracy, {n_per_w} samples per w "
             f"with DDIM-{steps}", guidance_fig),
            (f"Sampling cost per image and conditional accuracy (w = 2, {n_cmp} samples)",
             samplers_fig),
            ("The signal kept in x_t by the two noise schedules: the cosine schedule destroys "
             "information more slowly at small t", schedules_fig),
        ],
        table={
            "training seconds": round(train_seconds, 1),
            "final training loss (eps MSE)": round(model.history_[-1]["loss"], 4),
            "FCD at w = 0": round(fcd[0], 2),
            f"best FCD (w = {weights[best]:g})": round(fcd[best], 2),
            "FCD real vs real (floor)": round(floor, 2),
            f"conditional accuracy at w = {weights[-1]:g} (%)": round(100 * acc[-1], 1),
            **{f"{name}: seconds per image": round(v[0], 4) for name, v in samplers.items()},
            "seconds": round(time.perf_counter() - start, 2),
        },
        samples={f"DDPM (DDIM-{steps}, w = {weights[best]:g})": guided[best]},
    )
