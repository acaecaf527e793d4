"""``bayesdl evaluate``: score a saved model on held-out data.

Supervised models (classifiers and regressors) are scored against ``--target``, a column of
a labelled CSV. Classifiers (models with ``predict_proba``): accuracy, NLL, Brier score, ECE
(equal-width and adaptive bins) and MCE, and a reliability diagram. Regressors (a
``predict_dist``): NLL, RMSE and the coverage of the central ``--interval``, and a
coverage-calibration plot. For a density model on a table use ``bayesdl predict --score``.

Generative models (any model with ``sample``, and autoencoders with ``reconstruct``) are
evaluated without ``--target`` on images: ``--data`` is ``digits`` or an image file/folder,
as for ``bayesdl fit``, and the model is scored on the held-out test part of the same fixed
split. Printed, where the model offers them: the IWAE log-likelihood
(``log_likelihood(X, n_samples=--iwae-samples)``), the ELBO (``elbo``), the reconstruction
error (``reconstruct``), the log-likelihood of ``score_samples`` (AIS for an RBM; exact for
a mixture), and the sample metrics of :func:`bayesdl.metrics.sample_metrics` (Fréchet and
kernel classifier distances, precision and recall, density and coverage, the class
histogram; the conditional accuracy for class-conditional models) beside their real-data
floor. The sample metrics use the shipped 8x8 digits classifier, so they need 8x8 images in
[0, 1].

The figure is written to ``--figure`` (PNG; a grid of samples for generative models).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from .predict import check_interval, load_model_and_inputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a saved model's predictions and uncertainty on a labelled CSV",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("--data", required=True,
                   help="supervised models: labelled data (.csv with a header); generative "
                   "models: 'digits' or an image file/folder (the --data of 'bayesdl fit')")
    p.add_argument("--target", default=None,
                   help="supervised models: the target column in --data (generative models "
                   "take none)")
    p.add_argument("--interval", type=float, default=0.95,
                   help="central predictive interval for coverage (default: %(default)s)")
    p.add_argument("--bins", type=int, default=15, help="calibration bins (default: %(default)s)")
    p.add_argument("--figure", default=None,
                   help="where to write the reliability diagram (supervised models; default "
                   "reliability.png) or a grid of samples (generative models; default "
                   "samples.png); its suffix picks the format (.png, .pdf, .svg)")
    g = p.add_argument_group("generative models")
    g.add_argument("--iwae-samples", type=int, default=5000,
                   help="importance samples k of the IWAE log-likelihood (default: %(default)s)")
    g.add_argument("-n", "--n-samples", type=int, default=None,
                   help="samples drawn for the sample metrics (default: as many as there are "
                   "held-out images)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the samples and of the metrics' random halves (default: "
                   "%(default)s)")
    p.set_defaults(func=run)


def _check_supervised(final) -> None:
    from sklearn.base import is_classifier, is_regressor

    name = type(final).__name__
    if not (is_classifier(final) or is_regressor(final)):
        kind = (final.__sklearn_tags__().estimator_type or "unsupervised").replace("_", " ")
        raise ValueError(
            f"evaluate scores classifiers and regressors against --target; {name} is a {kind} "
            "model. For mixtures use 'bayesdl predict --score' (per-row log-density) or "
            "'bayesdl predict' (component probabilities); generative models of images are "
            "evaluated without --target.")
    if not hasattr(final, "predict_dist"):
        raise ValueError(f"{name} models have no predictive distribution to evaluate.")


def _metrics(final, Xt, y, args):
    import torch
    from sklearn.base import is_classifier

    from .. import uncertainty as U
    from ..viz.uncertainty import interval_calibration, reliability_diagram

    name = type(final).__name__
    dist = final.predict_dist(Xt)
    if is_classifier(final):
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


def _write_figure(fig, path) -> None:
    from ..io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=120)
    print(f"wrote {atomic_write_bytes(path, buf.getvalue())}")


def _held_out_images(model, spec):
    """The test part of the fixed split of ``spec`` (as 'bayesdl fit' held it out), shaped
    for ``model``: ``(X_model, X_images, y)``."""
    import numpy as np

    from ..datasets.images import load_images, split_images

    X, y = load_images(spec)
    bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{spec}: image {int(np.argmax(bad))} has NaN or infinite pixels "
                         f"({int(bad.sum())} such images); fix or drop them.")
    test = split_images(X, y)[2]
    X, y = X[test], None if y is None else y[test]
    shape = getattr(model, "input_shape_", None)
    if shape is None:  # a table model (e.g. a mixture) fitted on flattened images
        shape = (getattr(model, "n_features_in_", X[0].size),)
    if int(np.prod(shape)) != X[0].size:
        raise ValueError(f"{type(model).__name__} was fitted on samples of shape {tuple(shape)} "
                         f"but {spec} holds images of shape {X.shape[1:]}; evaluate on the "
                         "data it was fitted on.")
    return X.reshape(len(X), *shape), X, y


def _likelihoods(model, X, args) -> dict:
    """What the model can say about held-out data, by the methods it has."""
    import numpy as np

    out = {}
    if hasattr(model, "log_likelihood"):
        k = args.iwae_samples
        out[f"IWAE log-likelihood (k={k}), nats per image"] = np.mean(
            model.log_likelihood(X, n_samples=k))
    elif hasattr(model, "score_samples"):  # a VAE's score_samples is the IWAE estimate again
        out[f"log-likelihood ({type(model).__name__}.score_samples), nats per image"] = np.mean(
            model.score_samples(X))
    if hasattr(model, "elbo"):
        out["ELBO, nats per image"] = np.mean(model.elbo(X))
    if hasattr(model, "reconstruct"):
        R = np.asarray(model.reconstruct(X)).reshape(X.shape)
        out["reconstruction error (mean squared error per pixel)"] = np.mean((R - X) ** 2)
    return out


def _draw(model, n, y_test, rng):
    """``n`` samples, and the labels asked for when the model is class-conditional."""
    import inspect

    import numpy as np

    conditional = (getattr(model, "classes_", None) is not None and y_test is not None
                   and "y" in inspect.signature(model.sample).parameters)
    labels = rng.choice(y_test, n) if conditional else None
    drawn = model.sample(n, y=labels) if conditional else model.sample(n)
    X = drawn[0] if isinstance(drawn, tuple) else drawn  # mixtures return (X, components)
    return np.asarray(X, dtype=np.float64), labels


def _sample_quality(model, images, y, args):
    """Sample metrics against the held-out images and a grid of the samples."""
    import numpy as np

    from ..metrics import metrics_table, sample_metrics

    if args.n_samples is not None and args.n_samples < 1:
        raise ValueError(f"-n must be at least 1, got {args.n_samples}.")
    n = args.n_samples or len(images)
    if "random_state" in model.get_params():
        model.set_params(random_state=args.seed)
    X, labels = _draw(model, n, y, np.random.default_rng(args.seed))
    X = X.reshape(n, *images.shape[1:])
    if images[0].size != 64 or images.min() < 0 or images.max() > 1:
        print("sample metrics: skipped; the shipped classifier knows only 8x8 digits in [0, 1]. "
              "For other images call bayesdl.metrics.sample_metrics(real, generated, "
              "features=your_extractor) in Python.")
        return X
    outside = (X < 0) | (X > 1)
    if outside.any():
        print(f"samples: {outside.mean():.2%} of the pixel values fell outside [0, 1] and are "
              "clipped to it")
        X = np.clip(X, 0, 1)
    digit_labels = labels is not None and np.isin(labels, np.arange(10)).all()
    r = sample_metrics(images, X, labels=labels if digit_labels else None, seed=args.seed)
    print(f"sample metrics: {r['n_generated']} samples against half of the held-out images "
          f"({r['n_real']}); floor: the other half")
    for key, text in metrics_table({"": r}).items():
        print(f"{key.strip()}: {text}")
    return X


def _evaluate_generative(args) -> int:
    import numpy as np

    from ..io import load
    from ..viz.generative import image_grid

    if args.iwae_samples < 1:
        raise ValueError(f"--iwae-samples must be at least 1, got {args.iwae_samples}.")
    model = load(args.model)
    name = type(model).__name__
    if not (hasattr(model, "sample") or hasattr(model, "reconstruct")):
        raise ValueError(f"{name} models need --target (the column to score predictions "
                         "against); only generative models (with sample or reconstruct) are "
                         "evaluated without one.")
    X, images, y = _held_out_images(model, args.data)
    print(f"held-out images: {len(images)} (the test part of the split 'bayesdl fit' uses)")
    for key, value in _likelihoods(model, X, args).items():
        print(f"{key}: {value:.6g}")
    if not hasattr(model, "sample"):  # an autoencoder: nothing to sample
        return 0
    samples = _sample_quality(model, images, y, args)
    if samples.ndim >= 3:  # 64 of them at random (a mixture's come sorted by component)
        shown = np.random.default_rng(args.seed).permutation(len(samples))[:64]
        _write_figure(image_grid(samples[shown], title=f"{name} samples"),
                      args.figure or "samples.png")
    return 0


def run(args) -> int:
    if args.target is None:
        return _evaluate_generative(args)
    check_interval(args.interval)
    if args.bins < 1:
        raise ValueError(f"--bins must be a positive integer, got {args.bins}.")
    final, Xt, y = load_model_and_inputs(args.model, args.data, args.target)
    _check_supervised(final)
    metrics, fig = _metrics(final, Xt, y, args)
    print(f"n: {len(y)}")
    for key, value in metrics.items():
        print(f"{key}: {value:.6g}")
    _write_figure(fig, args.figure or "reliability.png")
    return 0
