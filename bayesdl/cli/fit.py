"""``bayesdl fit MODEL``: fit a model on the user's CSV/NPY file and save it.

Each model is a module ``bayesdl.cli.fit_<name>`` exposing ``HELP``, ``add_arguments(p)`` and
``fit(args, X, y) -> (model, summary)``, where ``summary`` maps names to key numbers to print.
The common ``--data``/``--out`` options, reading the data and saving live here. A supervised
model sets ``NEEDS_TARGET = True`` and gets a required ``--target`` column option.

A generative image model sets ``DATA = "images"``: its ``--data`` is ``digits`` (the bundled
8x8 digits) or an image file/folder read by :func:`bayesdl.datasets.images.load_images`, and
``fit(args, X, y)`` receives images ``(N, H, W)`` and their labels (or None). It is fitted on
the train + validation part of the fixed split of :func:`~bayesdl.datasets.images.split_images`,
so ``bayesdl evaluate`` can score it on the held-out test part of the same data.
"""

from __future__ import annotations

import importlib

FIT_MODELS: list[str] = ["blr", "blogreg", "gmm", "vbgmm", "pca", "ppca", "fa", "hmm", "lds",
                         "gpr", "bnn", "vae", "rbm", "gan", "dcgan", "wgan-gp",
                         "ddpm"]


def add_torch_options(p, dtype: bool = True) -> None:
    """``--device`` (and ``--dtype``): where and in what precision the estimator computes."""
    p.add_argument("--device", default="cpu",
                   help="torch device, e.g. cpu or cuda (default: %(default)s)")
    if dtype:
        p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="floating-point precision of the computation (default: %(default)s)")


def add_generative_options(p, *, epochs: int, batch_size: int, lr: float) -> None:
    """The training options of a deep generative model (defaults are the family's)."""
    p.add_argument("--epochs", type=int, default=epochs,
                   help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help="mini-batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=lr, help="learning rate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="write a checkpoint there after every epoch (atomically)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from --checkpoint-dir")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    add_torch_options(p, dtype=False)


def generative_params(args) -> dict:
    """The estimator parameters set by the options of :func:`add_generative_options`."""
    return dict(max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                checkpoint_dir=args.checkpoint_dir, resume=args.resume, verbose=args.progress,
                device=args.device, random_state=args.seed)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit a model on a CSV/NPY file and save it as .safetensors",
        description="Fit a model on your data and save it (safetensors + JSON metadata).",
    )
    # The fit_<name> modules may import their model family (and torch) at the top: add them
    # only when 'bayesdl fit' itself is parsed, so 'bayesdl --help' imports none of them.
    p.defer(_add_models)


def _add_models(p) -> None:
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    for name in FIT_MODELS:
        module = importlib.import_module(f"{__package__}.fit_{name.replace('-', '_')}")
        mp = models.add_parser(name, help=module.HELP, description=module.__doc__)
        images = getattr(module, "DATA", "table") == "images"
        mp.add_argument("--data", required=True, help=(
            "training images: 'digits' (bundled), a .npy/.npz or MNIST IDX file, or a folder of "
            "images" if images else "training data: .csv with header, or .npy"))
        mp.add_argument("--out", required=True, help="where to write the model (.safetensors)")
        if module.NEEDS_TARGET:
            mp.add_argument("--target", required=True, help="name of the target column in --data")
        module.add_arguments(mp)
        # ALLOWS_MISSING: the model marginalises NaN cells itself (HMMs, state-space models)
        mp.set_defaults(func=_run_images if images else _run, fit=module.fit,
                        allows_missing=getattr(module, "ALLOWS_MISSING", False))


def _run(args) -> int:
    from ._tables import read_features, require_complete

    # a sequence model's --lengths-column is read like a target: kept out of the features
    target = getattr(args, "target", None) or getattr(args, "lengths_column", None)
    X, y, names = read_features(args.data, target)
    if not args.allows_missing:
        require_complete(args.data, X, names)
    if y is not None:
        require_complete(args.data, y, [target])
    model, summary = args.fit(args, X, y)
    _save_and_report(model, args.out, {"feature_names": names}, summary)
    return 0


def _run_images(args) -> int:
    import numpy as np

    from ..datasets.images import load_images, split_images
    if args.resume and not args.checkpoint_dir:
        raise ValueError("--resume needs --checkpoint-dir (where the interrupted run wrote "
                         "its checkpoints).")
    X, y = load_images(args.data)
    if getattr(args, "conditional", False) and y is None:  # the class-conditional models
        raise ValueError(f"--conditional needs class labels, but {args.data} has none: put the "
                         "images in one subfolder per class, give an .npz with a y array or an "
                         "IDX file with a *labels* sibling, or drop --conditional.")
    bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{args.data}: image {int(np.argmax(bad))} has NaN or infinite pixels "
                         f"({int(bad.sum())} such images); fix or drop them.")
    train, val, test = split_images(X, y)
    keep = np.concatenate([train, val])  # the test part stays held out for 'bayesdl evaluate'
    model, summary = args.fit(args, X[keep], None if y is None else y[keep])
    summary = {"trained on": f"{len(keep)} images (held out for evaluate: {len(test)})",
               **summary}
    _save_and_report(model, args.out, {"data": str(args.data)}, summary)
    return 0


def _save_and_report(model, out, info, summary) -> None:
    from ..io import save

    path = save(model, out, info=info)
    for key, value in summary.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    print(f"saved {path}")
