"""``bayesdl fit MODEL``: fit a model on the user's CSV/NPY file and save it.

Each model is a module ``bayesdl.cli.fit_<name>`` exposing ``HELP``, ``add_arguments(p)`` and
``fit(args, X, y) -> (model, summary)``, where ``summary`` maps names to key numbers to print.
The common ``--data``/``--out`` options, reading the data and saving live here. A supervised
model sets ``NEEDS_TARGET = True`` and gets a required ``--target`` column option.
"""

from __future__ import annotations

import importlib

FIT_MODELS: list[str] = ["blr", "blogreg", "gmm", "vbgmm", "pca", "ppca", "fa", "hmm", "lds",
                         "gpr", "bnn"]


def add_torch_options(p, dtype: bool = True) -> None:
    """``--device`` (and ``--dtype``): where and in what precision the estimator computes."""
    p.add_argument("--device", default="cpu",
                   help="torch device, e.g. cpu or cuda (default: %(default)s)")
    if dtype:
        p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="floating-point precision of the computation (default: %(default)s)")


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
        module = importlib.import_module(f"{__package__}.fit_{name}")
        mp = models.add_parser(name, help=module.HELP, description=module.__doc__)
        mp.add_argument("--data", required=True, help="training data: .csv with header, or .npy")
        mp.add_argument("--out", required=True, help="where to write the model (.safetensors)")
        if module.NEEDS_TARGET:
            mp.add_argument("--target", required=True, help="name of the target column in --data")
        module.add_arguments(mp)
        # ALLOWS_MISSING: the model marginalises NaN cells itself (HMMs, state-space models)
        mp.set_defaults(func=_run, fit=module.fit,
                        allows_missing=getattr(module, "ALLOWS_MISSING", False))


def _run(args) -> int:
    from ..io import save
    from ._tables import read_features, require_complete

    # a sequence model's --lengths-column is read like a target: kept out of the features
    target = getattr(args, "target", None) or getattr(args, "lengths_column", None)
    X, y, names = read_features(args.data, target)
    if not args.allows_missing:
        require_complete(args.data, X, names)
    if y is not None:
        require_complete(args.data, y, [target])
    model, summary = args.fit(args, X, y)
    path = save(model, args.out, info={"feature_names": names})
    for key, value in summary.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    print(f"saved {path}")
    return 0
