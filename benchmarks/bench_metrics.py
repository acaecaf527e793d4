"""Sample-quality metrics on 2,000 vs 2,000 digits: each metric against a plain reference.

The "real" set is the 1,797 bundled digits plus 203 shifted copies, the "generated" set the
same 2,000 digits re-drawn with the classifier's training augmentation (shifts of one pixel
and noise): similar but not equal distributions. Features are computed once (timed
separately); each metric is then timed on the (2000, 64) feature arrays:

- Fréchet distance: bayesdl (eigen-decompositions of symmetric matrices) vs the usual
  ``scipy.linalg.sqrtm(C_r @ C_g)`` formula (as in pytorch-fid);
- KID, 100 subsets of 500: bayesdl (batched kernel products) vs a loop over the subsets with
  the same index blocks (as in Bińkowski et al.'s reference code);
- precision/recall, k = 3: bayesdl (blocked distances) vs scikit-learn ``NearestNeighbors``
  radii and a ``scipy.spatial.distance.cdist`` membership test.

Results are checked for agreement before they are timed. Run:
``OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from _timing import compare, machine, median_time
from bayesdl.datasets import load_digits
from bayesdl.metrics import (digits_features, frechet_classifier_distance,
                             kernel_classifier_distance, precision_recall, sample_metrics)
from bayesdl.metrics.sample_quality import _polynomial_mmd2
from bayesdl.metrics.train_classifier import augment

N = 2000


def identity(f):
    return f


def digit_sets():
    torch.manual_seed(0)
    X = torch.as_tensor(load_digits().images / 16.0, dtype=torch.float32).unsqueeze(1)
    extra = augment(X[: N - len(X)])
    real = torch.cat([X, extra])  # (2000, 1, 8, 8)
    generated = augment(real)
    return real.numpy(), generated.numpy()


def fid_scipy(fr, fg):
    s1, s2 = np.cov(fr, rowvar=False), np.cov(fg, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = fr.mean(0) - fg.mean(0)
    return diff @ diff + np.trace(s1 + s2 - 2 * covmean)


def kid_loop(fr, fg, bx, by):
    d, m = fr.shape[1], bx.shape[1]
    out = []
    for ix, iy in zip(bx, by):
        x, y = fr[ix], fg[iy]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        out.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.sum() / m ** 2)
    return np.array(out)


def pr_sklearn(fr, fg, k=3):
    def radii(f):  # distance to the k-th neighbour other than the point itself
        return NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)[0][:, k]

    rr, rg = radii(fr), radii(fg)
    precision = (cdist(fg, fr) <= rr[None, :]).any(1).mean()
    recall = (cdist(fr, fg) <= rg[None, :]).any(1).mean()
    return precision, recall


def main():
    torch.set_num_threads(1)
    print(machine())
    real, generated = digit_sets()
    t = median_time(lambda: digits_features(np.concatenate([real, generated])), repeats=3)
    print(f"digits_features of 4000 images: {t:.4f} s")
    fr, fg = digits_features(real), digits_features(generated)

    ours = frechet_classifier_distance(fr, fg, identity)
    print(f"FCD {ours:.6f}, scipy sqrtm {fid_scipy(fr, fg):.6f}")
    compare("Fréchet distance, 2000 vs 2000, F=64", lambda: frechet_classifier_distance(
        fr, fg, identity), lambda: fid_scipy(fr, fg), anchor_name="scipy sqrtm")

    rng = np.random.default_rng(0)
    bx = np.stack([rng.permutation(N)[:500] for _ in range(100)])
    by = np.stack([rng.permutation(N)[:500] for _ in range(100)])
    gap = np.abs(_polynomial_mmd2(fr, fg, bx, by) - kid_loop(fr, fg, bx, by)).max()
    print(f"KID blocks: max |bayesdl - loop| = {gap:.2e}; KID = "
          f"{kernel_classifier_distance(fr, fg, identity, subset_size=500)}")
    compare("KID, 100 subsets of 500", lambda: kernel_classifier_distance(
        fr, fg, identity, n_subsets=100, subset_size=500), lambda: kid_loop(fr, fg, bx, by),
        anchor_name="loop over subsets")

    ours, ref = precision_recall(fr, fg, identity), pr_sklearn(fr, fg)
    print(f"precision/recall {ours}, sklearn+cdist {ref}")
    compare("precision/recall, k=3", lambda: precision_recall(fr, fg, identity),
            lambda: pr_sklearn(fr, fg), anchor_name="sklearn NearestNeighbors + cdist")

    t = median_time(lambda: sample_metrics(real, generated), repeats=3)
    print(f"sample_metrics(2000 real, 2000 generated) from images, with the floor: {t:.4f} s")


if __name__ == "__main__":
    main()
