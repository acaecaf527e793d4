"""RBM vs scikit-learn's BernoulliRBM on the bundled digits (binarised at 0.5).

Both train the same model the same way: 64 hidden units, persistent CD-1 (scikit-learn's
algorithm), learning rate 0.1, batch size 10, no momentum, no weight decay, the same number of
epochs, on the training part of ``split_images`` (seed 0). Timed: one fit each (bayesdl's
``fit`` also computes log Z by AIS at the end; that time is measured separately and
subtracted). Then both fitted weight sets are loaded into a bayesdl :class:`BernoulliRBM`
module and judged the same way: AIS test log-likelihood (log Z from 100 runs through
``--betas`` intermediate distributions), the pseudo-likelihood (scikit-learn's
``score_samples`` and its expectation, the full sum over bits), and the sample metrics of
binary Gibbs samples against the test images (with the real-data floor).

Run: python benchmarks/bench_rbm.py [--epochs 20] [--betas 10000] [--repeats 3] [--batch-size 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, median_time  # noqa: E402

from bayesdl.datasets import binarize, load_digits_images, split_images  # noqa: E402
from bayesdl.generative import RBM, BernoulliRBM  # noqa: E402
from bayesdl.metrics import sample_metrics  # noqa: E402

HIDDEN, LR = 64, 0.1


def module_from(weight, visible_bias, hidden_bias) -> BernoulliRBM:
    m = BernoulliRBM(*np.shape(weight)).double()
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(weight, dtype=torch.float64))
        m.visible_bias.copy_(torch.as_tensor(visible_bias, dtype=torch.float64))
        m.hidden_bias.copy_(torch.as_tensor(hidden_bias, dtype=torch.float64))
    return m


def judge(m: BernoulliRBM, train, test, test_images, n_betas: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    log_z = m.log_partition("ais", data=train, n_betas=n_betas, n_runs=100, generator=g)
    with torch.no_grad():
        f = m.free_energy(test)  # (N,)
        pl = torch.zeros_like(f)
        for i in range(test.shape[1]):  # sum_i log sigmoid(F(x with bit i flipped) - F(x))
            flipped = test.clone()
            flipped[:, i] = 1 - flipped[:, i]
            pl += torch.nn.functional.logsigmoid(m.free_energy(flipped) - f)
        samples = m.sample(len(test), 1000, generator=g, mean=False)
    metrics = sample_metrics(test_images, samples.numpy().reshape(test_images.shape), seed=seed)
    return {"log_lik": float(-f.mean()) - log_z.value, "log_z_se": log_z.stderr,
            "pseudo_lik": float(pl.mean()), **metrics}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--betas", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=10, help="scikit-learn's default: 10")
    args = p.parse_args(argv)
    from sklearn.neural_network import BernoulliRBM as SklearnRBM

    torch.set_num_threads(1)
    X, y = load_digits_images()
    train_idx, _, test_idx = split_images(X, y, seed=0)
    X = binarize(X)
    rows = X.reshape(len(X), -1).astype(np.float64)
    Xtr, Xte = rows[train_idx], rows[test_idx]

    def ours():
        return RBM(HIDDEN, persistent=True, learning_rate=LR, momentum=0.0, weight_decay=0.0,
                   batch_size=args.batch_size, max_epochs=args.epochs, n_betas=args.betas,
                   random_state=0).fit(Xtr)

    def anchor():
        return SklearnRBM(n_components=HIDDEN, learning_rate=LR, batch_size=args.batch_size,
                          n_iter=args.epochs, random_state=0).fit(Xtr)

    model = ours()
    t_ais = median_time(lambda: model.log_partition("ais"), warmup=0, repeats=args.repeats)
    t_fit = median_time(ours, warmup=0, repeats=args.repeats)
    t_sk = median_time(anchor, warmup=0, repeats=args.repeats)
    t_train = t_fit - t_ais
    print(machine())
    print(f"digits binarised, {len(Xtr)} training / {len(Xte)} test images, {HIDDEN} hidden, "
          f"PCD-1, lr {LR}, batch {args.batch_size}, {args.epochs} epochs; bayesdl float32, "
          "scikit-learn float64")
    print(f"training: bayesdl {t_train:.2f} s (fit {t_fit:.2f} s - AIS {t_ais:.2f} s with "
          f"{args.betas} betas), scikit-learn {t_sk:.2f} s, ratio scikit-learn / bayesdl "
          f"{t_sk / t_train:.2f}x (median of {args.repeats})")
    sk = anchor()
    ours_m = model.module_
    rows_t = {name: torch.as_tensor(a) for name, a in (("train", Xtr), ("test", Xte))}
    test_images = X[test_idx]
    judged = {
        "bayesdl RBM": judge(module_from(ours_m.weight.detach(), ours_m.visible_bias.detach(),
                                         ours_m.hidden_bias.detach()),
                             rows_t["train"], rows_t["test"], test_images, args.betas, 0),
        "scikit-learn BernoulliRBM": judge(module_from(sk.components_.T, sk.intercept_visible_,
                                                       sk.intercept_hidden_),
                                           rows_t["train"], rows_t["test"], test_images,
                                           args.betas, 0),
    }
    print(f"scikit-learn score_samples (one random bit per image), mean over test: "
          f"{sk.score_samples(Xte).mean():.3f}")
    print("| model | AIS test log-lik (nats) | pseudo-lik (sum over bits) | FCD (floor) | "
          "KID (floor) | precision (floor) | recall (floor) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in judged.items():
        print(f"| {name} | {r['log_lik']:.2f} +- {r['log_z_se']:.2f} | {r['pseudo_lik']:.2f} | "
              f"{r['fcd']:.1f} ({r['fcd_floor']:.1f}) | {r['kid']:.0f} +- {r['kid_se']:.0f} "
              f"({r['kid_floor']:.0f} +- {r['kid_se_floor']:.0f}) | {r['precision']:.3f} "
              f"({r['precision_floor']:.3f}) | {r['recall']:.3f} ({r['recall_floor']:.3f}) |")


if __name__ == "__main__":
    main()
