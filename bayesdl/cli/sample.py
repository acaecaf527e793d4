"""``bayesdl sample``: draw samples from a saved generative model.

Works with any saved model that has a ``sample(n)`` method. Table models (mixtures, ...)
write CSV rows: columns are the model's training feature names (``x0, x1, ...`` when it was
trained on a .npy file), plus ``component`` when the model reports which component drew each
row. Image models (VAE, RBM, GAN, DDPM) write an image grid when ``--out`` ends in ``.png``,
or the array of samples when it ends in ``.npy``. ``--label`` draws from one class of a
class-conditional model and ``--guidance`` sets the classifier-free guidance weight of a
diffusion model.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a saved generative model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("-n", "--n-samples", type=int, default=1000,
                   help="number of samples to draw (default: %(default)s)")
    p.add_argument("--out", required=True,
                   help="output: .csv (table models), .png (an image grid) or .npy")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the model's)")
    p.add_argument("--label", default=None,
                   help="draw every sample from this class (class-conditional models)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance weight (conditional diffusion models)")
    p.set_defaults(func=run)


def _label_array(model, label: str, n: int):
    """``--label`` as the model's class type (the classes it was fitted on), repeated n times."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ValueError(f"--label needs a class-conditional model; this {type(model).__name__} "
                         "was fitted without labels.")
    match = [c for c in classes.tolist() if str(c) == label]
    if not match:
        raise ValueError(f"--label {label!r} is not one of the model's classes "
                         f"{classes.tolist()}.")
    return np.full(n, match[0], dtype=classes.dtype)


def _draw(model, n: int, args):
    kwargs = {}
    if args.label is not None:
        kwargs["y"] = _label_array(model, args.label, n)
    if args.guidance is not None:
        kwargs["guidance"] = args.guidance
    try:
        return model.sample(n, **kwargs)
    except TypeError as e:
        if kwargs and "unexpected keyword" in str(e):
            given = " / ".join(f"--{k if k != 'y' else 'label'}" for k in kwargs)
            raise ValueError(f"{type(model).__name__} models do not take {given}.") from e
        raise


def tile(images, nrow: int | None = None, pad: int = 1):
    """Images ``(n, H, W)`` (or ``(n, C, H, W)`` with C in 1, 3) as one grid array."""
    import numpy as np

    from ..viz.generative import mosaic

    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    lo, hi = images.min(), images.max()
    scaled = (images - lo) / (hi - lo) if hi > lo else np.zeros_like(images)
    grid = mosaic(scaled, nrow or int(np.ceil(np.sqrt(len(images)))), pad, fill=1.0)
    border = [(pad, pad), (pad, pad)] + [(0, 0)] * (grid.ndim - 2)
    return np.pad(grid, border, constant_values=1.0)  # white between and around the images


def run(args) -> int:
    if args.n_samples < 1:
        raise ValueError(f"-n must be at least 1, got {args.n_samples}.")
    import numpy as np

    from ..io import atomic_write_bytes, load
    from ._tables import write_table

    model, info = load(args.model, with_info=True)
    if not hasattr(model, "sample"):
        raise ValueError(f"{type(model).__name__} models cannot be sampled (no sample method).")
    if args.seed is not None:
        model.set_params(random_state=args.seed)
    drawn = _draw(model, args.n_samples, args)
    X, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    X = np.asarray(X)
    suffix = Path(args.out).suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, X, allow_pickle=False)
        path = atomic_write_bytes(args.out, buf.getvalue())
    elif suffix == ".png":
        if X.ndim < 3:
            raise ValueError(f"{type(model).__name__} draws table rows, not images: write them "
                             "to a .csv file.")
        import matplotlib.image

        buf = io.BytesIO()
        matplotlib.image.imsave(buf, tile(X), cmap="gray", format="png", vmin=0, vmax=1)
        path = atomic_write_bytes(args.out, buf.getvalue())
    else:
        if X.ndim != 2:
            raise ValueError(f"{type(model).__name__} draws images of shape {X.shape[1:]}: "
                             "write them to a .png grid or a .npy file.")
        names = info.get("feature_names") or [f"x{j}" for j in range(X.shape[1])]
        columns = {name: X[:, j] for j, name in enumerate(names)}
        if labels is not None:
            columns["component"] = np.asarray(labels)
        path = write_table(args.out, columns)
    print(f"wrote {len(X)} samples to {path}")
    return 0
