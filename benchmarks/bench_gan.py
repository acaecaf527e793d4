"""GANs on the bundled digits: sample quality against the real-data floor, training time and
the time to sample 1,000 images.

Each model is fitted with the estimator's defaults (the papers' optimisers and learning
rates; EMA sampling) for a fixed number of epochs on the train + validation part of the fixed
digits split, then 1,000 samples are scored against the held-out test digits with
``bayesdl.metrics.sample_metrics`` (FCD, KID, precision, recall on the shipped digits
classifier's features; the floor compares two halves of the test digits). Also shown: the
FCD of uniform noise and of 1,000 training digits (what a perfect model reaches at this
sample size). There is no reference GAN library installed to time against: the anchor here is
the real data. Train time is wall-clock and CPU (process) time; the CPU time is the number to
compare on a shared machine. Run:
``OMP_NUM_THREADS=1 python benchmarks/bench_gan.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _timing import machine, median_time
from bayesdl.datasets.images import load_digits_images, split_images
from bayesdl.generative import DCGAN, GAN, WGANGP
from bayesdl.metrics import frechet_classifier_distance, sample_metrics

# (estimator, epochs (full, quick)): the library defaults (paper settings per loss), and
# WGAN-GP with the larger learning rate the report uses (1e-4 needs far more epochs)
MODELS = {
    "GAN (MLP, non-saturating)": (lambda: GAN(random_state=0), (60, 6)),
    "DCGAN": (lambda: DCGAN(random_state=0), (30, 3)),
    "WGAN-GP": (lambda: WGANGP(random_state=0), (60, 6)),
    "WGAN-GP, learning rate 1e-3": (lambda: WGANGP(learning_rate=1e-3, random_state=0),
                                    (60, 6)),
}


def main(quick: bool, only=None) -> None:
    torch.set_num_threads(1)
    X, y = load_digits_images()
    train, val, test = split_images(X, y)
    X_train, X_test = X[np.concatenate([train, val])], X[test]
    rng = np.random.default_rng(0)
    print(machine())
    noise = rng.uniform(size=(1000, 8, 8))
    real = X_train[rng.choice(len(X_train), 1000, replace=False)]
    print(f"FCD of uniform noise: {frechet_classifier_distance(X_test, noise):.1f}; of 1,000 "
          f"training digits: {frechet_classifier_distance(X_test, real):.1f}")
    print("| model | epochs | FCD (floor) | KID ± se (floor) | precision (floor) | recall (floor) "
          "| train s wall / CPU | sample 1,000 s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (make, (full, short)) in MODELS.items():
        if only and name not in only:
            continue
        epochs = short if quick else full
        model = make().set_params(max_epochs=epochs)
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(X_train)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        sample_s = median_time(lambda: model.sample(1000), repeats=5)
        m = sample_metrics(X_test, model.sample(1000, random_state=1))
        print(f"| {name} | {epochs} | {m['fcd']:.1f} ({m['fcd_floor']:.1f}) "
              f"| {m['kid']:.0f} ± {m['kid_se']:.0f} "
              f"({m['kid_floor']:.0f} ± {m['kid_se_floor']:.0f}) "
              f"| {m['precision']:.2f} ({m['precision_floor']:.2f}) "
              f"| {m['recall']:.2f} ({m['recall_floor']:.2f}) | {wall:.1f} / {cpu:.1f} "
              f"| {sample_s:.3f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the epochs")
    parser.add_argument("--only", nargs="+", choices=list(MODELS), help="run these models")
    args = parser.parse_args()
    main(args.quick, args.only)
