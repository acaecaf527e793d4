"""Mixtures and K-means vs scikit-learn, and a streaming fit of a file larger than memory.

Three benchmarks (run one with --only gmm|kmeans|stream):

- gmm: GaussianMixture, full covariance, n=200,000, d=16, K=16, 20 EM iterations, float64,
  the same initial parameters in both; the final log-likelihoods are compared first. The fits
  alternate (us, scikit-learn, us, ...; --repeats rounds) and CPU times are printed too.
- kmeans: KMeans n=500,000, d=32, K=64, 20 Lloyd iterations from the same k-means++
  centres (tol=0), on two data sets: 64 blobs (clear clusters) and standard normal data (no
  cluster structure, where most rows fail Hamerly's bounds): bayesdl's default
  (algorithm="auto") and its plain Lloyd against scikit-learn's algorithm="lloyd"; inertias
  and labels compared first. The runs alternate (us, scikit-learn, us, ...) so that load on
  a shared machine hits both alike.
- stream: GaussianMixture on a 20,000,000 x 32 float32 .npy file (2.5 GB) read from disk in
  chunks; the fit runs in a child process whose peak resident memory is reported.

Run: python benchmarks/bench_mixture.py [--only NAME] [--device cuda] [--n N]
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
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from bayesdl.cluster import KMeans  # noqa: E402
from bayesdl.core.em import DEFAULT_CHUNK_ELEMENTS  # noqa: E402
from bayesdl.mixture import GaussianMixture  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)  # fixed iteration counts, by design


def _blobs(n, d, k, seed=0, dtype=np.float64):
    """n rows from k unit-variance Gaussian clusters (the same centres whatever the seed)."""
    centres = 3.0 * np.random.default_rng(0).normal(size=(k, d))
    rng = np.random.default_rng(seed)
    X = centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))
    return X.astype(dtype, copy=False)


def _report(name, t_ours, t_anchor, anchor_name):
    print(f"{name}: bayesdl {t_ours:.3f} s, {anchor_name} {t_anchor:.3f} s, "
          f"ratio {t_anchor / t_ours:.2f}x")


def bench_gmm(args):
    n, d, K = args.n or 200_000, 16, 16
    X = _blobs(n, d, K)
    rng = np.random.default_rng(1)
    init = dict(weights_init=np.full(K, 1.0 / K), means_init=X[rng.choice(n, K, replace=False)],
                precisions_init=np.stack([np.eye(d)] * K))
    kw = dict(n_components=K, covariance_type="full", max_iter=20, tol=0.0, **init)
    ours = GaussianMixture(**kw, device=args.device)
    anchor = SkGaussianMixture(**kw)
    ours.fit(X)  # warm-up
    wall: dict = {"bayesdl": [], "sklearn": []}
    cpu: dict = {"bayesdl": [], "sklearn": []}
    for _ in range(args.repeats):  # interleaved, so load on a shared machine hits both alike
        for key, model in [("bayesdl", ours), ("sklearn", anchor)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(X)
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    t_ours, t_anchor = (float(np.median(wall[k])) for k in ("bayesdl", "sklearn"))
    rel = abs(ours.lower_bound_ - anchor.lower_bound_) / abs(anchor.lower_bound_)
    print(f"GMM final mean log-likelihood: bayesdl {ours.lower_bound_:.10f}, scikit-learn "
          f"{anchor.lower_bound_:.10f} (relative difference {rel:.1e})")
    if rel > 1e-8:
        raise SystemExit("log-likelihoods differ: the timing comparison is not like for like")
    _report(f"GMM full n={n} d={d} K={K} 20 iterations float64 ({args.device}), median of "
            f"{args.repeats}", t_ours, t_anchor, "sklearn GaussianMixture")
    # CPU time (all threads) is less sensitive to other load than wall time.
    cpu_ours, cpu_anchor = (float(np.median(cpu[k])) for k in ("bayesdl", "sklearn"))
    rows = ours.chunk_size or max(256, DEFAULT_CHUNK_ELEMENTS // d)  # the default chunk
    chunks = -(-n // rows)
    print(f"GMM CPU time: bayesdl {cpu_ours:.2f} s ({cpu_ours / 20 * 1e3:.0f} ms per iteration, "
          f"{cpu_ours / 20 / chunks * 1e3:.2f} ms per chunk of {rows} rows), "
          f"scikit-learn {cpu_anchor:.2f} s, ratio {cpu_anchor / cpu_ours:.2f}x")


def bench_kmeans(args):
    n, d, K, iters = args.n or 500_000, 32, 64, 20
    datasets = {"blobs": _blobs(n, d, K),
                "unclustered (standard normal)": np.random.default_rng(1).normal(size=(n, d))}
    for name, X in datasets.items():
        centres, _ = kmeans_plusplus(X[:100_000], K, random_state=0)
        anchor = SkKMeans(K, init=centres, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
        models = {a: KMeans(K, init=centres, max_iter=iters, tol=0.0, algorithm=a,
                            device=args.device) for a in ("auto", "lloyd")}
        times: dict = {"sklearn": [], "auto": [], "lloyd": []}
        anchor.fit(X)
        for model in models.values():
            model.fit(X)  # warm-up
        for _ in range(3):  # interleaved, median of 3
            for key, fit in [("auto", models["auto"]), ("sklearn", anchor),
                             ("lloyd", models["lloyd"])]:
                start = time.perf_counter()
                fit.fit(X)
                times[key].append(time.perf_counter() - start)
        t_anchor = float(np.median(times["sklearn"]))
        for algorithm, ours in models.items():
            rel = abs(ours.inertia_ - anchor.inertia_) / anchor.inertia_
            same = np.array_equal(ours.labels_, anchor.labels_)
            print(f"KMeans {name} ({algorithm}) inertia: bayesdl {ours.inertia_:.6f}, "
                  f"scikit-learn {anchor.inertia_:.6f} (relative difference {rel:.1e}); "
                  f"labels equal: {same}")
            if rel > 1e-8 or not same:
                raise SystemExit("results differ: the timing comparison is not like for like")
            _report(f"KMeans {name} algorithm={algorithm!r} n={n} d={d} K={K} {iters} Lloyd "
                    f"iterations float64 ({args.device})", float(np.median(times[algorithm])),
                    t_anchor, "sklearn KMeans(algorithm='lloyd')")


def _write_npy(path, n, d, k, block=1_000_000):
    """A float32 .npy of n x d mixture data, written block by block (never all in memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
              "fortran_order": False, "shape": (n, d)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, block):
            rows = min(block, n - start)
            f.write(_blobs(rows, d, k, seed=1 + start, dtype=np.float32).tobytes())


_STREAM_CHILD = """
import sys, time
from bayesdl.mixture import GaussianMixture
path, K, iters, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
gm = GaussianMixture(K, covariance_type="full", init_params="k-means++", max_iter=iters,
                     tol=0.0, dtype="float32", random_state=0, device=device).fit(path)
elapsed = time.perf_counter() - start
# VmHWM: this process image's peak resident set (ru_maxrss would include the parent's).
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(f"{elapsed:.1f} {peak:.0f} {gm.lower_bound_:.6f} {gm.n_iter_}")
"""


def bench_stream(args):
    n, d, K, iters = args.n or 20_000_000, 32, 8, 3
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "big.npy"
        t = time.perf_counter()
        _write_npy(path, n, d, K)
        print(f"wrote {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - t:.0f} s")
        out = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(path), str(K), str(iters),
                              args.device], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])
        if out.returncode:
            raise SystemExit(out.stderr)
        elapsed, peak, bound, n_iter = out.stdout.split()
    print(f"GMM streaming n={n} d={d} K={K} full float32 from a .npy file: {n_iter} EM "
          f"iterations (+ k-means++ init) in {elapsed} s, peak resident memory {peak} MiB, "
          f"final mean log-likelihood {bound}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["gmm", "kmeans", "stream"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=None, help="override the number of rows")
    parser.add_argument("--tmp", default=None, help="folder for the streaming benchmark file")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved rounds of the gmm benchmark (median reported)")
    args = parser.parse_args(argv)
    print(machine())
    for name, bench in [("gmm", bench_gmm), ("kmeans", bench_kmeans), ("stream", bench_stream)]:
        if args.only in (None, name):
            bench(args)


if __name__ == "__main__":
    main()
