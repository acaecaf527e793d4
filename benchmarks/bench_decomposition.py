"""PCA vs scikit-learn, and streaming PCA / PPCA-EM over a .npy file larger than memory.

Two benchmarks (run one with --only pca|stream):

- pca: PCA(n_components=32) on a 200,000 x 256 float64 array (low-rank signal plus noise):
  bayesdl's default solver (the covariance, n >> d) against scikit-learn's PCA with
  svd_solver="full", "randomized" and "covariance_eigh"; explained variances compared first.
- stream: PCA and PPCA-EM (q = 8, 3 EM iterations) on a 10,000,000 x 64 float32 .npy file
  (2.4 GiB, written to --tmp and deleted), each fitted in a child process whose peak
  resident memory (resource.getrusage ru_maxrss and /proc VmHWM) is reported; goal < 1 GB.

Run: python benchmarks/bench_decomposition.py [--only NAME] [--device cuda] [--n N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, median_time  # noqa: E402

from bayesdl.decomposition import PCA  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)  # fixed iteration counts, by design


def _low_rank(n, d, q=16, seed=0, dtype=np.float64):
    """n rows of a q-dimensional linear signal in d dimensions plus unit noise."""
    W = np.random.default_rng(0).normal(size=(d, q)) * np.linspace(5, 1, q)
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, q)) @ W.T + rng.normal(size=(n, d)) + 3.0).astype(dtype)


def bench_pca(args):
    n, d, k = args.n or 200_000, 256, 32
    X = _low_rank(n, d)
    ours = PCA(k, device=args.device)
    t_ours = median_time(lambda: ours.fit(X), warmup=1, repeats=3)
    print(f"PCA n={n} d={d} k={k}: bayesdl ({ours._fit_svd_solver}) {t_ours:.3f} s")
    for solver in ("full", "randomized", "covariance_eigh"):
        ref = SkPCA(k, svd_solver=solver, random_state=0)
        # the full SVD takes tens of seconds: one run, no warm-up
        slow = solver == "full"
        t = median_time(lambda: ref.fit(X), warmup=0 if slow else 1, repeats=1 if slow else 3)
        err = np.max(np.abs(ours.explained_variance_ / ref.explained_variance_ - 1))
        print(f"  sklearn PCA(svd_solver={solver!r}) {t:.3f} s: ratio {t / t_ours:.2f}x, "
              f"max relative difference of explained variances {err:.1e}")


def _write_npy(path, n, d, block=500_000):
    """A float32 .npy of n x d low-rank data, written block by block (never all in memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (n, d)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, block):
            f.write(_low_rank(min(block, n - start), d, seed=1 + start, dtype=np.float32)
                    .tobytes())


_STREAM_CHILD = """
import resource, sys, time
from bayesdl.decomposition import PCA, ProbabilisticPCA
path, model, device = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if model == "pca":
    m = PCA(8, dtype="float32", device=device).fit(path)
    result = f"explained ratio {m.explained_variance_ratio_.sum():.6f}"
else:
    m = ProbabilisticPCA(8, solver="em", max_iter=3, tol=0.0, dtype="float32",
                         device=device, chunk_size=16384).fit(path)
    result = f"mean log-likelihood {m.lower_bound_:.6f}"
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(f"{elapsed:.1f} s, peak RSS {rss:.0f} MiB (ru_maxrss), {hwm:.0f} MiB (VmHWM), {result}")
"""


def bench_stream(args):
    n, d = args.n or 10_000_000, 64
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "big.npy"
        t = time.perf_counter()
        _write_npy(path, n, d)
        print(f"wrote {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - t:.0f} s")
        for model, what in (("pca", "PCA (streamed covariance, k = 8)"),
                            ("ppca", "PPCA-EM (q = 8, init + 3 EM iterations)")):
            out = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(path), model,
                                  args.device], capture_output=True, text=True,
                                 cwd=Path(__file__).resolve().parents[1])
            if out.returncode:
                raise SystemExit(out.stderr)
            print(f"{what} on a {n} x {d} float32 .npy file: {out.stdout.strip()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["pca", "stream"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=None, help="override the number of rows")
    parser.add_argument("--tmp", default="/tmp", help="folder for the streaming benchmark file")
    args = parser.parse_args(argv)
    print(machine())
    for name, bench in [("pca", bench_pca), ("stream", bench_stream)]:
        if args.only in (None, name):
            bench(args)


if __name__ == "__main__":
    main()
