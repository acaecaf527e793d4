"""Fit a Gaussian mixture by EM; with a range of component counts, keep the best by BIC/AIC.

Example: bayesdl fit gmm --data x.npy --components 1..10 --select bic --out gmm.safetensors
"""

from __future__ import annotations

from .fit import add_torch_options

HELP = "Gaussian mixture by EM (choose the number of components by BIC or AIC)"
NEEDS_TARGET = False


def parse_components(text: str) -> list[int]:
    """``"3"``, ``"1..10"`` or ``"2,4,8"`` as a list of component counts."""
    try:
        if ".." in text:
            lo, hi = (int(t) for t in text.split(".."))
            if lo > hi:
                raise ValueError(f"--components {text!r}: the range is reversed; write it "
                                 f"low..high, e.g. {hi}..{lo}.")
            counts = list(range(lo, hi + 1))
        else:
            counts = [int(t) for t in text.split(",")]
    except ValueError as e:
        if "reversed" in str(e):
            raise
        raise ValueError(f"--components {text!r}: use a number (3), a range (1..10) or a "
                         "list (2,4,8).") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--components {text!r}: component counts must be positive.")
    return counts


def check_components(counts: list[int], n_rows: int, option: str) -> None:
    """Refuse, before any fit, a component count above the number of rows."""
    too_many = [k for k in counts if k > n_rows]
    if too_many:
        raise ValueError(f"{option}: {max(too_many)} components is more than the {n_rows} rows "
                         f"of --data; use at most {n_rows}.")


def warnings_once(fits):
    """Run ``fits()`` showing each warning once, with how often it occurred.

    The same warning (a collapsed component, no convergence) would otherwise repeat for
    every EM restart and every component count; warnings from one place in the code count
    as one, shown with its first message.
    """
    import warnings

    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return fits()
    finally:
        by_site: dict = {}
        for w in caught:
            by_site.setdefault((w.category, w.filename, w.lineno), []).append(w)
        for (category, filename, lineno), ws in by_site.items():
            message = str(ws[0].message)
            if len(ws) > 1:
                message += f" [{len(ws)} such warnings over the fits; this was the first]"
            warnings.warn_explicit(message, category, filename, lineno)


def add_mixture_arguments(p) -> None:
    """Options shared by the gmm and vbgmm targets."""
    p.add_argument("--covariance-type", default="full",
                   choices=["full", "tied", "diag", "spherical"],
                   help="covariance of each component (default: %(default)s)")
    p.add_argument("--max-iter", type=int, default=100, help="EM iterations (default: 100)")
    p.add_argument("--n-init", type=int, default=1, help="restarts; the best is kept")
    p.add_argument("--reg-covar", type=float, default=1e-6,
                   help="added to the covariance diagonals (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_torch_options(p)
    p.add_argument("--verbose", action="store_true", help="show a progress bar")


def mixture_kwargs(args) -> dict:
    return dict(covariance_type=args.covariance_type, max_iter=args.max_iter,
                n_init=args.n_init, reg_covar=args.reg_covar, random_state=args.seed,
                device=args.device, dtype=args.dtype, verbose=int(args.verbose))


def add_arguments(p) -> None:
    p.add_argument("--components", default="1",
                   help="number of components: 3, a range 1..10 or a list 2,4,8 (default: 1)")
    p.add_argument("--select", default="bic", choices=["bic", "aic"],
                   help="criterion that picks among several --components (default: bic)")
    add_mixture_arguments(p)


def fit(args, X, y):
    from ..mixture import GaussianMixture

    counts = parse_components(args.components)
    check_components(counts, len(X), f"--components {args.components}")

    def fits():
        models = [GaussianMixture(k, **mixture_kwargs(args)).fit(X) for k in counts]
        return models, [m.bic(X) if args.select == "bic" else m.aic(X) for m in models]

    models, scores = warnings_once(fits)
    summary = {f"{args.select}[{k}]": float(score) for k, score in zip(counts, scores)}
    best = models[min(range(len(models)), key=scores.__getitem__)]
    summary["n_components"] = best.n_components
    summary["mean_log_likelihood"] = float(best.score(X))
    summary["converged"] = bool(best.converged_)
    return best, summary
