"""Report section: every generative model of the report scored on the same held-out digits."""

from __future__ import annotations

import numpy as np

from ...datasets.images import load_digits_images, split_images
from ...metrics import frechet_classifier_distance, metrics_table, sample_metrics
from ...viz.generative import metrics_comparison
from ..section import Section

TITLE = "Generative models compared"


def build(quick: bool = False, seed: int = 0, previous=()) -> Section:
    """Score the samples the generative sections built before this one offer (VAE, RBM, GAN,
    diffusion), all against one real set with one sample size, so that one floor serves all."""
    generated = {name: np.asarray(images) for section in previous
                 for name, images in section.samples.items()}
    if not generated:
        raise ValueError("no generative section was built before this one: build it with "
                         "'vae', 'rbm', 'gan' or 'diffusion' (e.g. bayesdl demo --only vae "
                         "generative_summary).")
    X, y = load_digits_images()
    test = split_images(X, y)[2]
    # one real set of 2n digits for all: sample_metrics compares n samples of each model with
    # half of it, and the floor is half against half
    n = min(min(len(g) for g in generated.values()), len(test) // 2)
    real = X[test[: 2 * n]]
    results = {name: sample_metrics(real, images, seed=seed)
               for name, images in generated.items()}
    noise = np.random.default_rng(seed).uniform(size=(n, 8, 8))
    noise_fcd = frechet_classifier_distance(real[:n], noise)
    ranked = sorted(results, key=lambda name: results[name]["fcd"])
    floor = next(iter(results.values()))["fcd_floor"]
    summary = (
        f"The samples of every generative model built above, scored against the same {2 * n} "
        f"held-out digits with {n} samples each (the metrics of bayesdl.metrics on the features "
        "of the shipped digits classifier; the floor is one half of the real digits against "
        "the other, what a perfect model reaches with this many samples). Each family trained "
        "for the report's small budget, so the ranking says as much about that budget as "
        f"about the model. Lowest FCD: {ranked[0]} ({results[ranked[0]]['fcd']:.3g}, floor "
        f"{floor:.3g}); highest: {ranked[-1]} ({results[ranked[-1]]['fcd']:.3g}); uniform "
        f"noise scores {noise_fcd:.3g}. The RBMs model binarised digits, so their binary "
        "samples sit further from the grey-level test digits than their own section's "
        "binarised comparison shows. Precision is the fraction of samples that look like "
        "some real digit, recall the fraction of real digits that some sample resembles "
        "(Kynkäänniemi et al. 2019): a model that draws only a few kinds of digit well has high "
        "precision and low recall.")
    return Section(
        title=TITLE, summary=summary,
        figures=[("FCD (left), precision and recall (right) of each model's samples against "
                  "the held-out digits; dashed lines: the real-data floor", metrics_comparison(
                      results, noise_fcd=noise_fcd))],
        table={"real digits / samples per model": f"{2 * n} / {n}",
               **metrics_table(results), "FCD of uniform noise": round(noise_fcd, 2)})
