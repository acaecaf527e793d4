"""Gaussian processes: exact GP fit vs scikit-learn, and SVGP on a million points.

1. Exact GP regression with hyper-parameter optimisation: n = 3,000, d = 4,
   ConstantKernel * RBF(ARD) + WhiteKernel, 3 restarts (scikit-learn's draws, same seed), us
   against scikit-learn's GaussianProcessRegressor on the same data, one run each (the fits take
   minutes). The log marginal likelihoods are printed beside the times: ours must be >= theirs.
2. The same fit for a range of n (scikit-learn only up to --sklearn-max-n).
3. SVGP with 256 inducing points on n = 1,000,000 synthetic rows streamed from a .npy file:
   seconds per epoch and the peak resident memory of the process (measured in a fresh
   subprocess, so the rest of this script does not count).

Run: python benchmarks/bench_gaussian_process.py [--n 3000] [--curve 500 1000 2000 5000 10000]
     [--svgp-n 1000000] [--skip-exact] [--skip-svgp]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor as SkGPR
from sklearn.gaussian_process import kernels as sk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from bayesdl.gaussian_process import GaussianProcessRegressor  # noqa: E402
from bayesdl.gaussian_process import kernels as bk  # noqa: E402


def _data(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    f = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 - 0.3 * X[:, 2] + 0.1 * X[:, 3]
    return X, f + 0.1 * rng.normal(size=n)


def _kernel(m, d):
    return m.ConstantKernel(1.0) * m.RBF([1.0] * d) + m.WhiteKernel(0.1)


def _fit(make, X, y):
    start = time.perf_counter()
    model = make().fit(X, y)
    return time.perf_counter() - start, model.log_marginal_likelihood_value_


def exact(n, restarts, with_sklearn=True):
    X, y = _data(n)
    d = X.shape[1]
    t_ours, lml_ours = _fit(lambda: GaussianProcessRegressor(
        _kernel(bk, d), n_restarts_optimizer=restarts, random_state=0), X, y)
    line = f"exact GP n={n}: bayesdl {t_ours:.1f} s (LML {lml_ours:.4f})"
    if with_sklearn:
        t_sk, lml_sk = _fit(lambda: SkGPR(_kernel(sk, d), n_restarts_optimizer=restarts,
                                          random_state=0), X, y)
        line += (f", scikit-learn {t_sk:.1f} s (LML {lml_sk:.4f}); ratio {t_sk / t_ours:.2f}x; "
                 f"LML ours - sklearn = {lml_ours - lml_sk:+.2e}")
    print(line, flush=True)


_SVGP_CHILD = """
import resource, sys, time
import numpy as np
from bayesdl.gaussian_process import SparseGaussianProcessRegressor
from bayesdl.gaussian_process.kernels import ConstantKernel, RBF
X, y, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = SparseGaussianProcessRegressor(ConstantKernel(1.0) * RBF([1.0] * np.load(X, mmap_mode="r").shape[1]),
                                       n_inducing=256, method="svgp", batch_size=4096, max_epochs=epochs,
                                       lr=0.01, max_iter=50, noise=0.1, random_state=0)
start = time.perf_counter()
model.fit(X, y)
total = time.perf_counter() - start
print(f"SVGP fit {total:.1f} s for {epochs} epoch(s) (incl. k-means and the SGPR start on 2,000 rows); "
      f"losses per epoch {[round(h, 4) for h in model.history_]}; ELBO/n {model.lower_bound_ / 1e6:.4f}; "
      f"noise std {model.noise_ ** 0.5 * model.y_train_std_:.4f} (true 0.1); "
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
    print(f"SVGP n={n:,}, d=4, M=256, batch 4096: " + out.stdout.strip(), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--curve", type=int, nargs="*", default=[500, 1000, 2000, 5000, 10000])
    parser.add_argument("--sklearn-max-n", type=int, default=3000)
    parser.add_argument("--svgp-n", type=int, default=1_000_000)
    parser.add_argument("--svgp-epochs", type=int, default=1)
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--skip-svgp", action="store_true")
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    if not args.skip_exact:
        exact(args.n, args.restarts)
        for n in args.curve:
            if n != args.n:
                exact(n, args.restarts, with_sklearn=n <= args.sklearn_max_n)
    if not args.skip_svgp:
        svgp(args.svgp_n, args.svgp_epochs)


if __name__ == "__main__":
    main()
