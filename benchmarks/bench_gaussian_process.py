"""Gaussian processes: exact GP fit vs scikit-learn, and SVGP on a million points.

1. Exact GP regression with hyper-parameter optimisation: n = 3,000, d = 4,
   ConstantKernel * RBF(ARD) + WhiteKernel, 3 restarts (scikit-learn's draws, same seed, so
   both start from the same 4 points), us against scikit-learn's GaussianProcessRegressor on
   the same data, both on the machine's default threads. Our fit screens the restarts on a
   500-row subsample first (``screen_subsample="auto"``, n >= 2,000) and runs only the kept
   starts on all the data. Printed: wall and CPU time of the fit, the number of evaluations
   (value + gradient, summed over the starts; ours by the rows they factorise and as
   full-data equivalents, a subsample evaluation of m rows counting (m / n)^3) and the log
   marginal likelihood reached (ours must be >= theirs - 1e-6).
   Above ``--sklearn-full-max-n`` scikit-learn's fit is not run (at n = 3,000 it takes 449 s
   on the quiet machine) but, with ``--unscreened``, ESTIMATED as its measured time per
   evaluation times the evaluation count of our fit without screening: both then run
   scipy's L-BFGS-B with default options from the same starts on the same objective (values
   equal to 1e-12, gradients to 1e-10), so they take the same steps; the full runs at
   n = 500 and 1,000 print both counts to check this.
   The time per evaluation is the median of 3, ours (the 4 starts as one batch, / 4) and
   scikit-learn's (one start) interleaved in this process.
2. The same for each n of ``--curve``; above ``--fit-max-n`` our fit is not run either (at
   n = 10,000 one evaluation of 4 starts takes minutes): only the time per evaluation.
3. SVGP's accuracy: test NLL (mean over 2,000 held-out points, with the noise) of SVGP on
   ``--accuracy-n`` rows against the exact GP (hyper-parameters optimised, no restarts) on a
   ``--accuracy-sub``-row subsample of them, and the true noise model's (the floor).
4. SVGP with 256 inducing points on n = 1,000,000 synthetic rows streamed from a .npy file:
   seconds per epoch and the peak resident memory of the process (measured in a fresh
   subprocess, so the rest of this script does not count).

Run (the issue's case alone, scikit-learn's fit run too):
    python benchmarks/bench_gaussian_process.py --n 3000 --curve --sklearn-full-max-n 3000 \
        --skip-svgp --skip-accuracy
Everything: python benchmarks/bench_gaussian_process.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.gaussian_process import GaussianProcessRegressor as SkGPR
from sklearn.gaussian_process import kernels as sk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from bayesdl.core.threads import torch_threads  # noqa: E402
from bayesdl.gaussian_process import GaussianProcessRegressor  # noqa: E402
from bayesdl.gaussian_process import gpr as gpr_module  # noqa: E402
from bayesdl.gaussian_process import kernels as bk  # noqa: E402

_EVALS = {"bayesdl": 0, "sklearn": 0}
_ROWS: dict[int, int] = {}  # our evaluations by the number of rows they factorise


def _counting_log_evidence(kernel, theta, X, *args, **kwargs):
    if torch.is_grad_enabled():  # an optimiser step (value + gradient) for each start
        count = theta.shape[0] if theta.dim() > 1 else 1
        _EVALS["bayesdl"] += count
        _ROWS[X.shape[0]] = _ROWS.get(X.shape[0], 0) + count
    return _log_evidence(kernel, theta, X, *args, **kwargs)


_log_evidence = gpr_module.log_evidence
gpr_module.log_evidence = _counting_log_evidence


class _CountingSkGPR(SkGPR):
    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        _EVALS["sklearn"] += bool(eval_gradient)
        return super().log_marginal_likelihood(theta, eval_gradient, clone_kernel)


def _f(X):
    return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 - 0.3 * X[:, 2] + 0.1 * X[:, 3]


def _data(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    return X, _f(X) + 0.1 * rng.normal(size=n)


def _kernel(m, d):
    return m.ConstantKernel(1.0) * m.RBF([1.0] * d) + m.WhiteKernel(0.1)


def _fit(name, make, X, y):
    """Wall and CPU seconds, evaluations (full-data equivalent: a subsample evaluation of m
    rows counts (m / n)^3, the Cholesky's share), log evidence, and our evaluations by rows."""
    _EVALS[name] = 0
    _ROWS.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    model = make().fit(X, y)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if name == "sklearn":
        return wall, cpu, _EVALS[name], model.log_marginal_likelihood_value_, ""
    equivalent = sum(c * (m / X.shape[0]) ** 3 for m, c in _ROWS.items())
    detail = " + ".join(f"{c} on {m} rows" for m, c in sorted(_ROWS.items(), reverse=True))
    return wall, cpu, equivalent, model.log_marginal_likelihood_value_, detail


def _per_evaluation(X, y, restarts):
    """Median seconds (wall) per evaluation of one start: ours (all starts in one batch) / R
    and scikit-learn's, interleaved, 3 times, at the starts of the fit."""
    d = X.shape[1]
    R = restarts + 1
    ref = SkGPR(_kernel(sk, d), optimizer=None).fit(X[:50], y[:50])  # only for its methods
    ref.X_train_, ref.y_train_ = X, y
    rng = np.random.RandomState(0)
    bounds = ref.kernel_.bounds
    starts = np.vstack([ref.kernel_.theta] + [rng.uniform(bounds[:, 0], bounds[:, 1])
                                              for _ in range(restarts)])  # (R, P)
    ours = GaussianProcessRegressor(_kernel(bk, d), optimizer=None).fit(X[:50], y[:50])
    ours.log_marginal_likelihood(starts, eval_gradient=True)  # warm-up (first-call set-up)
    ours.X_train_, ours.y_train_ = X, y
    times = {"bayesdl": [], "sklearn": []}
    # as in the fit: one torch thread below SINGLE_THREAD_MAX_SAMPLES, the default above
    threads = 1 if X.shape[0] < gpr_module.SINGLE_THREAD_MAX_SAMPLES else torch.get_num_threads()
    for _ in range(3):
        start = time.perf_counter()
        with torch_threads(threads):
            ours.log_marginal_likelihood(starts, eval_gradient=True)
        times["bayesdl"].append((time.perf_counter() - start) / R)
        start = time.perf_counter()
        ref.log_marginal_likelihood(starts[0], eval_gradient=True, clone_kernel=False)
        times["sklearn"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def exact(n, restarts, *, fit_ours=True, fit_sklearn=True, unscreened=False):
    X, y = _data(n)
    d = X.shape[1]
    per = _per_evaluation(X, y, restarts)
    print(f"exact GP n={n}: per evaluation bayesdl {per['bayesdl']:.3g} s, scikit-learn "
          f"{per['sklearn']:.3g} s (ratio {per['sklearn'] / per['bayesdl']:.2f}x)", flush=True)
    if not fit_ours:
        return

    def ours(screen):
        t, cpu, evals, lml, detail = _fit("bayesdl", lambda: GaussianProcessRegressor(
            _kernel(bk, d), n_restarts_optimizer=restarts, screen_subsample=screen,
            random_state=0), X, y)
        print(f"exact GP n={n} fit: bayesdl (screen_subsample={screen!r}) {t:.1f} s (CPU "
              f"{cpu:.1f} s, {evals:.1f} full-data-equivalent evaluations: {detail}; LML "
              f"{lml:.6f})", flush=True)
        return t, evals, lml

    t, _, lml = ours("auto")
    if fit_sklearn:
        t_sk, cpu_sk, evals_sk, lml_sk, _ = _fit("sklearn", lambda: _CountingSkGPR(
            _kernel(sk, d), n_restarts_optimizer=restarts, random_state=0), X, y)
        print(f"exact GP n={n} fit: scikit-learn {t_sk:.1f} s (CPU {cpu_sk:.1f} s, {evals_sk} "
              f"evaluations, LML {lml_sk:.6f}); ratio {t_sk / t:.2f}x; LML ours - sklearn = "
              f"{lml - lml_sk:+.2e}", flush=True)
    elif unscreened:
        # without screening our starts take scikit-learn's L-BFGS-B steps (same starts, same
        # objective to 1e-12), so its fit is estimated as its time per evaluation x that count
        t_all, evals_all, lml_all = ours(None)
        estimate = per["sklearn"] * evals_all
        print(f"exact GP n={n} fit: scikit-learn ESTIMATED {estimate:.0f} s ({per['sklearn']:.3g} s"
              f" x {evals_all:.0f} evaluations; not run); ratio {estimate / t:.2f}x; screening "
              f"alone {t_all / t:.2f}x; LML screened - unscreened {lml - lml_all:+.2e}", flush=True)


_SVGP_CHILD = """
import resource, sys, time
import numpy as np
import torch
from bayesdl.gaussian_process import SparseGaussianProcessRegressor
from bayesdl.gaussian_process import sparse
from bayesdl.gaussian_process.kernels import ConstantKernel, RBF
from bayesdl.train import Trainer

X, y, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
# instrumentation only: the wall and CPU time of the Trainer's epochs, and the noise std each
# epoch starts and ends with (read off the module at every step of the loss)
train, noise = {}, {}
fit_epochs = Trainer.fit

def timed_fit(self, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fit_epochs(self, *args, **kwargs)
    train.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
    return out

svgp_loss = sparse._svgp_loss

def noted_loss(model, batch, step):
    module = model.module if hasattr(model, "module") else model
    with torch.no_grad():
        noise.setdefault(step.epoch, []).append(float(module.hyperparameters()[1]))
    return svgp_loss(model, batch, step)

Trainer.fit, sparse._svgp_loss = timed_fit, noted_loss
model = SparseGaussianProcessRegressor(ConstantKernel(1.0) * RBF([1.0] * np.load(X, mmap_mode="r").shape[1]),
                                       n_inducing=256, method="svgp", batch_size=4096, max_epochs=epochs,
                                       max_iter=50, noise=0.1, random_state=0)
start = time.perf_counter()
model.fit(X, y)
total = time.perf_counter() - start
n = np.load(y, mmap_mode="r").shape[0]

def std(variance):  # the noise std in units of y
    return round((variance * model.y_train_std_ ** 2) ** 0.5, 4)

after = [noise[e][0] for e in sorted(noise)[1:]] + [model.noise_]  # each epoch's end
print(f"fit {total:.1f} s in all: {train['wall'] / epochs:.1f} s per epoch (CPU "
      f"{train['cpu'] / epochs:.1f} s; {len(noise[0])} Adam steps), the rest (k-means on "
      f"100,000 rows, the SGPR start on 2,000 rows, the final ELBO pass) {total - train['wall']:.1f} s; "
      f"loss (-ELBO/n) per epoch {[round(h, 4) for h in model.history_]}; ELBO/n "
      f"{model.lower_bound_ / n:.4f}; noise std (true 0.1) at the start {std(noise[0][0])}, after "
      f"each epoch {[std(v) for v in after]}; "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
"""


def svgp(n, epochs):
    X, y = _data(n, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/X.npy", X)
        np.save(f"{tmp}/y.npy", y)
        del X, y
        out = subprocess.run([sys.executable, "-c", _SVGP_CHILD, f"{tmp}/X.npy", f"{tmp}/y.npy",
                              str(epochs)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the SVGP run failed:\n{out.stderr}")
    print(f"SVGP n={n:,}, d=4, M=256, batch 4096, {epochs} epoch(s): " + out.stdout.strip(),
          flush=True)


def svgp_accuracy(n, sub, inducing=128, epochs=3):
    from bayesdl.gaussian_process import SparseGaussianProcessRegressor

    X, y = _data(n + 2000, seed=2)
    X, y, Xt, yt = X[:n], y[:n], torch.tensor(X[n:]), torch.tensor(y[n:])
    rows = np.random.default_rng(0).choice(n, sub, replace=False)
    start = time.perf_counter()
    exact_model = GaussianProcessRegressor(_kernel(bk, X.shape[1]), normalize_y=True).fit(X[rows], y[rows])
    t_exact = time.perf_counter() - start
    mean, std = exact_model.predict(Xt.numpy(), return_std=True)
    nll_exact = -torch.distributions.Normal(torch.tensor(mean), torch.tensor(std)).log_prob(yt).mean()
    start = time.perf_counter()
    model = SparseGaussianProcessRegressor(bk.ConstantKernel(1.0) * bk.RBF([1.0] * X.shape[1]),
                                           n_inducing=inducing, method="svgp", noise=0.1,
                                           batch_size=1024, max_epochs=epochs, max_iter=100,
                                           random_state=0).fit(X, y)
    t_svgp = time.perf_counter() - start
    nll_svgp = -model.predict_dist(Xt.numpy(), observation_noise=True).log_prob(yt).mean()
    floor = -torch.distributions.Normal(torch.tensor(_f(Xt.numpy())), 0.1).log_prob(yt).mean()
    print(f"SVGP accuracy: test NLL per point, SVGP (n={n:,}, M={inducing}, {epochs} epochs, "
          f"{t_svgp:.0f} s) {float(nll_svgp):.4f}; exact GP on a {sub:,}-row subsample "
          f"({t_exact:.0f} s) {float(nll_exact):.4f}; SVGP - exact {float(nll_svgp - nll_exact):+.4f}; "
          f"true noise model {float(floor):.4f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--curve", type=int, nargs="*", default=[500, 1000, 2000, 5000, 10000])
    parser.add_argument("--sklearn-full-max-n", type=int, default=1000,
                        help="above this n scikit-learn's fit is estimated, not run")
    parser.add_argument("--fit-max-n", type=int, default=3000,
                        help="above this n only the time per evaluation is measured")
    parser.add_argument("--svgp-n", type=int, default=1_000_000)
    parser.add_argument("--svgp-epochs", type=int, default=1)
    parser.add_argument("--unscreened", action="store_true",
                        help="where scikit-learn's fit is estimated, also fit ours without "
                             "restart screening (scikit-learn's evaluation count)")
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--skip-svgp", action="store_true")
    parser.add_argument("--accuracy-n", type=int, default=20000)
    parser.add_argument("--accuracy-sub", type=int, default=1000)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    if not args.skip_exact:
        for n in [args.n] + [n for n in args.curve if n != args.n]:
            exact(n, args.restarts, fit_ours=n <= args.fit_max_n,
                  fit_sklearn=n <= args.sklearn_full_max_n, unscreened=args.unscreened)
    if not args.skip_accuracy:
        svgp_accuracy(args.accuracy_n, args.accuracy_sub)
    if not args.skip_svgp:
        svgp(args.svgp_n, args.svgp_epochs)


if __name__ == "__main__":
    main()
