"""Report section: autoencoders and variational autoencoders on the bundled 8x8 digits."""

from __future__ import annotations

import time

import numpy as np
from scipy.stats import norm

from ...datasets.images import load_digits_images, split_images
from ...generative import AutoEncoder, ConditionalVAE, VAE
from ...metrics import metrics_table, sample_metrics
from ...viz import vae as viz
from ...viz.decomposition import latent_scatter
from ...viz.generative import image_grid
from ..section import Section

TITLE = "Autoencoders and VAEs"


def _fit(cls, X, y, epochs: int, batch_size: int, seed: int):
    model = cls(latent_dim=2, max_epochs=epochs, learning_rate=3e-3, batch_size=batch_size,
                random_state=seed)
    return model.fit(X, y) if cls is ConditionalVAE else model.fit(X)


def _manifold(vae, n: int = 15):
    """Kingma & Welling Figure 4: decode z = Phi^-1 of an even grid on the unit square."""
    z = norm.ppf(np.linspace(0.05, 0.95, n))
    grid = np.stack(np.meshgrid(z, z), -1).reshape(-1, 2)  # row i: z_2 = z[i]
    images = vae.decode(grid).reshape(n, n, 8, 8)
    return viz.latent_manifold(images, z, z, "decoded E[x | z] on a grid of z")


def _bounds(vae, X, ks, seed: int):
    """Mean ELBO and IWAE L_k over the images ``X``, with the standard error of L_k - ELBO."""
    vae = vae.set_params(random_state=seed)
    elbo = vae.elbo(X, n_samples=1000)  # (N,)
    means, ses = [], []
    for k in ks:
        lk = vae.log_likelihood(X, n_samples=k)
        means.append(float(lk.mean()))
        ses.append(float((lk - elbo).std(ddof=1) / np.sqrt(len(X))))
    return float(elbo.mean()), means, ses


def build(quick: bool = False, seed: int = 0) -> Section:
    start = time.perf_counter()
    X, y = load_digits_images()
    train, _, test = split_images(X, y)
    # quick: fewer epochs of smaller batches (as many Adam steps; fewer and the 2-D VAE
    # still sits near the collapsed posterior q(z | x) = p(z))
    epochs, batch_size = (12, 32) if quick else (30, 64)
    ae = _fit(AutoEncoder, X[train], None, epochs, batch_size, seed)
    vae = _fit(VAE, X[train], None, epochs, batch_size, seed)
    cvae = _fit(ConditionalVAE, X[train], y[train], epochs, batch_size, seed)
    X_test, y_test = X[test], y[test]

    manifold_fig = _manifold(vae)
    scatter_fig = latent_scatter(vae.transform(X_test), y_test,
                                 "posterior means of the test digits")
    shown = X_test[:12]
    recon_fig = image_grid(np.concatenate([shown, vae.reconstruct(shown)]), nrow=12,
                           titles=["data", "reconstruction"], title="test digits")
    recon_fig.axes[0].set_ylabel("image")
    samples = vae.sample(len(X_test))
    labels = np.repeat(cvae.classes_, int(np.ceil(len(X_test) / 10)))[: len(X_test)]
    cvae_samples = cvae.sample(len(labels), y=labels)
    per_class = np.concatenate([cvae_samples[labels == c][:10] for c in cvae.classes_])
    cvae_fig = image_grid(per_class, nrow=10, titles=[str(c) for c in cvae.classes_],
                          title="conditional VAE: 10 samples per class")
    cvae_fig.axes[0].set_ylabel("requested class")
    samples_fig = image_grid(samples[:40], nrow=10, title="VAE: E[x | z], z ~ N(0, I)")

    ks = [1, 10, 100, 500] if quick else [1, 10, 100, 1000, 5000]
    n_scored = 20 if quick else 50
    elbo, iwae, ses = _bounds(vae, X_test[:n_scored], ks, seed)
    bound_fig = viz.bound_curve(ks, iwae, ses, elbo,
                                title=f"{n_scored} test digits, Bernoulli decoder")

    generated = {"AE": ae.sample(len(X_test)), "VAE": samples, "CVAE": cvae_samples}
    results = {name: sample_metrics(X_test, images, seed=seed,
                                    labels=labels if name == "CVAE" else None)
               for name, images in generated.items()}
    table = {
        f"training: {len(train)} digits, {epochs} epochs of batches of {batch_size} (AE, VAE, "
        "CVAE), latent dim": 2,
        "AE / VAE test reconstruction error (mean squared, per pixel)":
            f"{ae.reconstruction_error(X_test).mean():.4f} / "
            f"{vae.reconstruction_error(X_test).mean():.4f}",
        "VAE test ELBO (nats)": round(elbo, 2),
        **{f"VAE test IWAE L_{k} (nats)": round(v, 2) for k, v in zip(ks, iwae)},
        **metrics_table(results),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return Section(
        title=TITLE,
        summary=(
            "A variational autoencoder (Kingma & Welling 2014) learns a decoder p(x | z) from a "
            "2-D code z ~ N(0, I) and an encoder q(z | x) = N(mu(x), diag sigma^2(x)) by "
            "maximising the ELBO, E_q[log p(x | z)] - KL(q(z | x) || p(z)), with the "
            "reparameterisation z = mu + sigma eps. Here both are MLPs (256, 128 hidden) with a "
            "Bernoulli decoder on the grey-level digits (so log p is a cross-entropy in nats, "
            f"not a normalised density), trained {epochs} epochs on {len(train)} digits; the "
            "conditional VAE (Sohn et al. 2015) also sees the label. The manifold shows how "
            "the digits morph across the latent plane; the latent scatter that the classes "
            "occupy separate regions without any label. The importance-weighted bound "
            "L_k (Burda et al. 2015) equals the ELBO at k = 1 and rises with k towards log p(x). "
            "The metrics compare samples with held-out digits on the features of the shipped "
            "digits classifier, next to the floor between two halves of the real test digits; "
            "the plain autoencoder (same networks, no KL) samples by decoding codes drawn from "
            "a Gaussian fitted to its training codes."),
        figures=[
            ("2-D latent manifold (Kingma & Welling Figure 4): decoded means on a grid of "
             "Gaussian quantiles", manifold_fig),
            ("Latent space coloured by the true digit (labels unused in training)", scatter_fig),
            ("Test digits (top) and their reconstructions E[x | z = E_q[z | x]] (bottom)",
             recon_fig),
            ("VAE samples: decoder means for z drawn from the prior", samples_fig),
            ("Conditional VAE samples, one row per requested class", cvae_fig),
            ("ELBO against the IWAE estimate L_k: L_1 = ELBO in expectation, L_k rises with k "
             "(error bars: 2 standard errors of L_k - ELBO over the images)", bound_fig),
        ],
        table=table,
        samples=generated,
    )
