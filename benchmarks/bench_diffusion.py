"""Diffusion on the bundled digits: sample quality against the real-data floor, training time,
and the cost of ancestral DDPM-1000 against DDIM-50 sampling; the schedule step by step
against diffusers' DDPMScheduler/DDIMScheduler when diffusers is installed (bench extra).

    cd benchmarks && python bench_diffusion.py [--epochs 30] [--n-ddpm 200]

Sampling 1,000 images with all 1000 ancestral steps takes minutes on 2 cores, so the DDPM-1000
row samples ``--n-ddpm`` images and reports their metrics and the time scaled to 1,000.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import machine

from bayesdl.datasets.images import load_digits_images, split_images
from bayesdl.generative import DDPM
from bayesdl.generative.diffusion import NoiseSchedule
from bayesdl.metrics import sample_metrics


def check_against_diffusers() -> None:
    """Our schedule, q_sample, ancestral step and DDIM step against diffusers' schedulers."""
    try:
        from diffusers import DDIMScheduler, DDPMScheduler
    except ImportError:
        print("diffusers not installed: skipping the step-by-step comparison "
              "(pip install diffusers)")
        return
    worst = 0.0
    for kind, name in (("linear", "linear"), ("cosine", "squaredcos_cap_v2")):
        ours = getattr(NoiseSchedule, kind)(1000, clip_sample=False)
        ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=name, clip_sample=False,
                            variance_type="fixed_small")
        worst = max(worst, float((ours.alphas_cumprod - ref.alphas_cumprod.double()).abs().max()))
        g = torch.Generator().manual_seed(0)
        x0, noise, out = (torch.randn(4, 1, 8, 8, generator=g) for _ in range(3))
        for t in (0, 1, 2, 500, 998, 999):
            tt = torch.full((4,), t)
            worst = max(worst, float((ours.add_noise(x0, noise, tt)
                                      - ref.add_noise(x0, noise, tt)).abs().max()))
            a = ours.step(out, t, x0, torch.Generator().manual_seed(t))
            b = ref.step(out, t, x0, generator=torch.Generator().manual_seed(t)).prev_sample
            worst = max(worst, float((a - b).abs().max()))
        ddim = DDIMScheduler(num_train_timesteps=1000, beta_schedule=name, clip_sample=False,
                             set_alpha_to_one=True)
        ddim.set_timesteps(50)  # "leading" spacing: 980, 960, ..., 0 (step 20)
        for t in ddim.timesteps.tolist():
            a = ours.ddim_step(out, t, t - 20, x0)
            b = ddim.step(out, t, x0, eta=0.0).prev_sample
            worst = max(worst, float((a - b).abs().max()))
    print(f"diffusers {__import__('diffusers').__version__}: largest difference over "
          f"alphas_cumprod, add_noise, DDPM step (t = 0, 1, 2, 500, 998, 999) and 50 DDIM steps, "
          f"linear and cosine schedules: {worst:.2e}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n", type=int, default=1000, help="samples for the DDIM rows")
    p.add_argument("--n-ddpm", type=int, default=200, help="samples for the DDPM-1000 row")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    check_against_diffusers()

    X, y = load_digits_images()
    train, val, test = split_images(X, y, seed=0)
    fit_idx = np.concatenate([train, val])
    real = X[test]
    start = time.perf_counter()
    model = DDPM(max_epochs=args.epochs, random_state=0).fit(X[fit_idx], y[fit_idx])
    train_s = time.perf_counter() - start
    print(f"training: {args.epochs} epochs on {len(fit_idx)} digits, {train_s:.0f} s, final "
          f"loss {model.history_[-1]['loss']:.4f}")

    rows = []
    labels = np.arange(args.n) % 10
    for name, n, kw in (("DDIM-50, unconditional", args.n, dict(steps=50)),
                        ("DDIM-50, w = 2", args.n, dict(steps=50, y=labels, guidance=2.0)),
                        ("DDIM-10, unconditional", args.n, dict(steps=10)),
                        ("DDPM-1000, unconditional", args.n_ddpm, dict(steps=None)),
                        ("DDIM-50, unconditional, same n", args.n_ddpm, dict(steps=50))):
        if "y" in kw:
            kw = dict(kw, y=kw["y"][:n])
        start = time.perf_counter()
        s = model.sample(n, random_state=1, **kw)
        seconds = (time.perf_counter() - start) * 1000 / n
        m = sample_metrics(real, s, labels=kw.get("y"))
        rows.append((name, n, m, seconds))
        print(name, n, {k: v for k, v in m.items()}, f"{seconds:.1f} s per 1000")
    start = time.perf_counter()
    bpd = model.bits_per_dim(real, n_bins=17, timesteps=100)
    print(f"negative ELBO on the {len(real)} test digits (17 grey levels, 100 random "
          f"timesteps): {bpd:.3f} bits/dim ({time.perf_counter() - start:.0f} s)")
    print("\n| sampler | n | FCD | KID | precision | recall | s per 1,000 images |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, n, m, seconds in rows:
        print(f"| {name} | {n} | {m['fcd']:.3g} | {m['kid']:.3g} | {m['precision']:.3f} | "
              f"{m['recall']:.3f} | {seconds:.0f} |")
    print(f"| real floor (held-out half vs half) | {len(real) // 2} | "
          f"{m['fcd_floor']:.3g} | {m['kid_floor']:.3g} | - | - | - |")


if __name__ == "__main__":
    main()
