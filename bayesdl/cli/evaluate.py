"""``bayesdl evaluate``: score a saved model's predictive distribution on labelled data.

Classifiers (models with ``predict_proba``): accuracy, NLL, Brier score, ECE (equal-width
and adaptive bins) and MCE, and a reliability diagram. Regressors (a ``predict_dist``):
NLL, RMSE and the coverage of the central ``--interval``, and a coverage-calibration plot.
The figure is written to ``--figure`` (PNG).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import torch

from .. import uncertainty as U
from ..io import atomic_write_bytes
from ..viz.uncertainty import interval_calibration, reliability_diagram
from .predict import check_interval, load_model_and_inputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a saved model's predictions and uncertainty on a labelled CSV",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("--data", required=True, help="labelled data (.csv with a header)")
    p.add_argument("--target", required=True, help="name of the target column in --data")
    p.add_argument("--interval", type=float, default=0.95,
                   help="central predictive interval for coverage (default: %(default)s)")
    p.add_argument("--bins", type=int, default=15, help="calibration bins (default: %(default)s)")
    p.add_argument("--figure", default="reliability.png",
                   help="where to write the reliability diagram (default: %(default)s)")
    p.set_defaults(func=run)


def _metrics(final, Xt, y, args):
    name = type(final).__name__
    if not hasattr(final, "predict_dist"):
        raise ValueError(f"{name} models have no predictive distribution to evaluate.")
    dist = final.predict_dist(Xt)
    if hasattr(final, "predict_proba"):
        codes = U.encode_labels(y, final.classes_)
        metrics = {
            "accuracy": U.accuracy(dist, codes),
            "NLL": U.negative_log_likelihood(dist, codes),
            "Brier": U.brier_score(dist, codes),
            "ECE": U.expected_calibration_error(dist, codes, args.bins),
            "ECE (adaptive bins)": U.expected_calibration_error(dist, codes, args.bins, "adaptive"),
            "MCE": U.maximum_calibration_error(dist, codes, args.bins),
        }
        return metrics, reliability_diagram({name: dist}, codes, args.bins)
    y_t = torch.as_tensor(y, dtype=dist.mean.dtype)
    metrics = {
        "NLL": U.negative_log_likelihood(dist, y_t),
        "RMSE": U.rmse(dist, y_t),
        f"coverage of the {100 * args.interval:g}% interval": U.interval_coverage(
            dist, y_t, args.interval),
    }
    return metrics, interval_calibration({name: dist}, y_t)


def run(args) -> int:
    check_interval(args.interval)
    if args.bins < 1:
        raise ValueError(f"--bins must be a positive integer, got {args.bins}.")
    final, Xt, y = load_model_and_inputs(args.model, args.data, args.target)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):  # text labels have no NaN
        raise ValueError(f"the target column {args.target!r} contains NaN or infinite values; "
                         "drop those rows first.")
    metrics, fig = _metrics(final, Xt, y, args)
    print(f"n: {len(y)}")
    for key, value in metrics.items():
        print(f"{key}: {value:.6g}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    print(f"wrote {atomic_write_bytes(args.figure, buf.getvalue())}")
    return 0
