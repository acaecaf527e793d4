"""Factor analysis by EM (PRML 12.2.4): a latent linear model with one noise variance per
feature; missing entries (empty CSV cells or NaN) are marginalised out.

Example: bayesdl fit fa --data x.csv --components 3 --out fa.safetensors
"""

from __future__ import annotations

from .fit_ppca import add_latent_arguments, latent_kwargs, latent_summary

HELP = "factor analysis by EM (diagonal noise, missing values allowed)"
NEEDS_TARGET = False
# NaN cells are marginalised exactly by EM (rows grouped by missing pattern).
ALLOWS_MISSING = True


def add_arguments(p) -> None:
    add_latent_arguments(p, 2)


def fit(args, X, y):
    from ..decomposition import FactorAnalysis

    model = FactorAnalysis(**latent_kwargs(args)).fit(X)
    return model, latent_summary(model, X)
