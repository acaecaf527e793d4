"""Fit a denoising diffusion model (DDPM, Ho et al. 2020) on images.

``--data`` is ``digits`` (the bundled 8x8 digits), a .npy/.npz array of images, an MNIST IDX
file or a folder of images (subfolder names as labels). With ``--conditional`` the labels
train a class-conditional model with label dropout, so ``bayesdl sample --label 3
--guidance 2.0`` can use classifier-free guidance (Ho & Salimans 2022). Training shows its
progress with ``--progress`` and continues an interrupted run with ``--checkpoint-dir DIR
--resume``. ``--sampling-steps K`` makes the saved model sample with K DDIM steps (Song et
al. 2021) instead of all T ancestral steps.
"""

from __future__ import annotations

from .fit import add_generative_options, generative_params

HELP = "denoising diffusion model (DDPM/DDIM, classifier-free guidance) on images"
NEEDS_TARGET = False
DATA = "images"


def add_arguments(p) -> None:
    add_generative_options(p, epochs=30, batch_size=64, lr=2e-3)
    p.add_argument("--conditional", action="store_true",
                   help="train on the data's labels (needed for --label/--guidance when "
                        "sampling)")
    p.add_argument("--timesteps", type=int, default=1000,
                   help="length T of the diffusion (default: %(default)s)")
    p.add_argument("--schedule", choices=["linear", "cosine"], default="linear",
                   help="noise schedule (default: %(default)s)")
    p.add_argument("--prediction", choices=["epsilon", "x0", "v"], default="epsilon",
                   help="what the network predicts (default: %(default)s)")
    p.add_argument("--channels", type=int, default=32,
                   help="U-Net width at full resolution (default: %(default)s)")
    p.add_argument("--p-uncond", type=float, default=0.1,
                   help="label dropout rate for classifier-free guidance (default: %(default)s)")
    p.add_argument("--sampling-steps", type=int, default=None,
                   help="sample with this many DDIM steps (default: all T ancestral steps)")


def fit(args, X, y):
    from ..generative import DDPM

    model = DDPM(n_timesteps=args.timesteps, schedule=args.schedule, prediction=args.prediction,
                 base_channels=args.channels, p_uncond=args.p_uncond,
                 sampling_steps=args.sampling_steps, **generative_params(args))
    model.fit(X, y if args.conditional else None)
    summary = {"images": len(X), "epochs": model.n_iter_,
               "final loss": float(model.history_[-1]["loss"])}
    if args.conditional:
        summary["classes"] = int(model.n_classes_)
    return model, summary
