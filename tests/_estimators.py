"""Every registered bayesdl estimator, and a small, fast instance of each, for tests that
check a rule over all of them."""

import inspect

import numpy as np

import bayesdl.io


def registered_estimators() -> list[type]:
    """The public bayesdl estimator classes a fresh process can load (abstract bases left out)."""
    bayesdl.io._import_model_packages()
    return sorted((cls for name, cls in bayesdl.io._REGISTRY.items() if name.startswith("bayesdl.")
                   and hasattr(cls, "fit") and not cls.__name__.startswith("Base")),
                  key=lambda c: c.__name__)


def small_instance(cls):
    """``cls`` with few epochs, samples, components and restarts, where it has them."""
    small = dict(max_epochs=2, n_samples=10, n_components=2, n_clusters=2, n_init=1,
                 random_state=0, n_timesteps=10)
    if cls.__name__ in ("AutoEncoder", "VAE", "ConditionalVAE"):
        # real-valued rows (a Gaussian decoder; a Bernoulli one refuses values outside [0, 1]),
        # tiny networks, few importance samples; float64, as the checks compare outputs on
        # row subsets at rtol 1e-7, below float32's resolution
        small.update(decoder="gaussian", hidden_sizes=(8,), latent_dim=2, n_score_samples=10,
                     dtype="float64")
    params = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in small.items() if k in params})


def example_inputs(cls, X: np.ndarray) -> np.ndarray:
    """``X`` made valid for ``cls``: symbols for a CategoricalHMM, counts for a PoissonHMM,
    values in [0, 1] for an RBM."""
    if cls.__name__ == "CategoricalHMM":
        return (X[:, :1] > 0).astype(int) + (X[:, :1] > 2)
    if cls.__name__ == "PoissonHMM":
        return np.abs(np.round(X))
    if cls.__name__ == "RBM":  # Bernoulli visible units by default: values in [0, 1]
        return 1 / (1 + np.exp(-X))
    return X
