"""``bayesdl fit MODEL``: fit a model on the user's CSV/NPY file and save it.

Each model is a module ``bayesdl.cli.fit_<name>`` exposing ``HELP``, ``add_arguments(p)`` and
``fit(args, X, y) -> (model, summary)``, where ``summary`` maps names to key numbers to print.
The common ``--data``/``--out`` options, reading the data and saving live here. A supervised
model sets ``NEEDS_TARGET = True`` and gets a required ``--target`` column option.
"""

from __future__ import annotations

import importlib

from ..io import save
from ._tables import read_features

FIT_MODELS: list[str] = ["blr", "bnn", "gmm", "vbgmm", "gpr"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit a model on a CSV/NPY file and save it as .safetensors",
        description="Fit a model on your data and save it (safetensors + JSON metadata).",
    )
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    for name in FIT_MODELS:
        module = importlib.import_module(f"{__package__}.fit_{name}")
        mp = models.add_parser(name, help=module.HELP, description=module.__doc__)
        mp.add_argument("--data", required=True, help="training data: .csv with header, or .npy")
        mp.add_argument("--out", required=True, help="where to write the model (.safetensors)")
        if module.NEEDS_TARGET:
            mp.add_argument("--target", required=True, help="name of the target column in --data")
        module.add_arguments(mp)
        mp.set_defaults(func=_run, fit=module.fit)


def _run(args) -> int:
    X, y, names = read_features(args.data, getattr(args, "target", None))
    model, summary = args.fit(args, X, y)
    path = save(model, args.out, info={"feature_names": names})
    for key, value in summary.items():
        print(f"{key}: {value:.6g}" if isinstance(value, float) else f"{key}: {value}")
    print(f"saved {path}")
    return 0
