"""Monte-Carlo predictive distributions of stochastic networks as ``torch.distributions``.

A Bayesian network's predictive distribution p(y | x, D) = E_q(w)[p(y | x, w)] is estimated
by S forward passes (weight samples, dropout masks or ensemble members) as a uniform mixture
of the per-sample distributions:

- regression: ``MixtureSameFamily(Categorical(1/S), Normal(mu_s(x), sigma_s(x)))``, whose
  variance is mean(sigma_s^2) + var(mu_s) (law of total variance);
- classification: :class:`MonteCarloCategorical`, a ``Categorical`` with the averaged
  probabilities that also keeps the per-sample probabilities.

Both keep the samples, so :func:`bayesdl.uncertainty.decompose` can split the uncertainty.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, Normal

from ..nn import DeepEnsemble, function_sampling, independent_per_example, is_stochastic
from ..nn.laplace import Laplace

LIKELIHOODS = ("categorical", "gaussian", "heteroscedastic", "logit_noise")


class MonteCarloCategorical(Categorical):
    """Categorical(mean_s p_s) that remembers the sample probabilities ``member_probs``
    (..., S, K), i.e. the mixture (1/S) sum_s Categorical(p_s)."""

    def __init__(self, member_probs: torch.Tensor, validate_args=None):
        self.member_probs = member_probs
        super().__init__(probs=member_probs.mean(-2), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        raise NotImplementedError("MonteCarloCategorical cannot be expanded; index the samples.")


def monte_carlo_normal(loc: torch.Tensor, scale) -> MixtureSameFamily:
    """The uniform mixture of Normal(loc[..., s], scale[..., s]) over the last axis (S)."""
    scale = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device).expand_as(loc)
    weights = Categorical(logits=torch.zeros_like(loc))
    return MixtureSameFamily(weights, Normal(loc, scale))


def _check_n_samples(n_samples) -> int:
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    return int(n_samples)


def _deterministic_prefix(model: nn.Module):
    """Split an ``nn.Sequential`` into (leading deterministic layers, the rest): the prefix
    gives the same output in every Monte-Carlo pass, so it is evaluated once."""
    if not isinstance(model, nn.Sequential):
        return None, model
    for i, layer in enumerate(model):
        if is_stochastic(layer):
            return (model[:i], model[i:]) if i > 0 else (None, model)
    return None, model


@torch.no_grad()
def sample_outputs(model: nn.Module, x: torch.Tensor, n_samples: int = 100,
                   batched: bool | None = None, max_rows: int = 1024) -> torch.Tensor:
    """S forward passes of ``model`` on ``x`` stacked as (S, N, ...).

    A deterministic network gives S = 1, a :class:`~bayesdl.nn.DeepEnsemble` of M
    deterministic members S = M, a stochastic one S = ``n_samples`` (times M for ensembles).
    ``batched=True`` stacks copies of the batch and runs them through the network together,
    at most ``max_rows`` rows per pass (so the activations stay cache-sized); valid when the
    noise is independent per example (local reparameterisation, flipout, dropout).
    ``batched=False`` loops over passes, each one sampled network for the whole batch
    (:func:`~bayesdl.nn.function_sampling`). The default picks batched when it is valid.
    Leading deterministic layers of an ``nn.Sequential`` run once, not once per sample.
    """
    T = _check_n_samples(n_samples) if is_stochastic(model) else 1
    ensemble = isinstance(model, DeepEnsemble)
    was_training = model.training
    model.eval()
    try:
        if batched is None:
            batched = independent_per_example(model)
        prefix, model_rest = _deterministic_prefix(model)
        if prefix is not None:
            x = prefix(x)
        N, tail = x.shape[0], [1] * (x.dim() - 1)
        if batched and T > 1:
            per_pass = max(1, min(T, int(max_rows) // max(N, 1)))
            chunks = []
            for start in range(0, T, per_pass):
                t = min(per_pass, T - start)
                out = model_rest(x.repeat(t, *tail))  # (t N, ...) or (M, t N, ...)
                if ensemble:  # (M, t, N, ...): member-major, then samples
                    chunks.append(out.reshape(out.shape[0], t, N, *out.shape[2:]))
                else:
                    chunks.append(out.reshape(t, N, *out.shape[1:]))
            out = torch.cat(chunks, dim=1 if ensemble else 0)
            if ensemble:
                out = out.reshape(-1, *out.shape[2:])
        else:
            with function_sampling(model_rest):
                # (T, N, ...), or (T, M, N, ...) for ensembles
                out = torch.stack([model_rest(x) for _ in range(T)])
            if ensemble:
                out = out.reshape(-1, *out.shape[2:])
    finally:
        model.train(was_training)
    return out


def predict_dist(model, x, n_samples: int = 100, *,
                 likelihood: str = "categorical", noise_std: float | None = None,
                 batched: bool | None = None, generator: torch.Generator | None = None):
    """The predictive distribution of ``model`` at inputs ``x`` (N, ...).

    ``model`` is an ``nn.Module`` (the Monte-Carlo predictive below), a bayesdl estimator
    (its own ``predict_dist(x)``; the other arguments do not apply) or a scikit-learn
    ``Pipeline`` ending in either, whose leading steps transform ``x`` first.

    A fitted :class:`~bayesdl.nn.laplace.Laplace` gives its own Monte-Carlo predictive
    (``n_samples`` draws of the linearised outputs; ``likelihood`` is its own).

    For a network, ``likelihood`` says what it outputs:

    - ``"categorical"``: logits (N, K) -> :class:`MonteCarloCategorical`;
    - ``"gaussian"``: the mean (N,) or (N, 1), with known noise ``noise_std`` -> mixture of
      Normals;
    - ``"heteroscedastic"``: mean and log-variance (N, 2) (Kendall & Gal eq. 7) -> mixture of
      Normals;
    - ``"logit_noise"``: logits and their log-variances (N, 2K) (Kendall & Gal eq. 12); each
      sample's logits get one Gaussian noise draw (from ``generator``).
    """
    if hasattr(model, "steps"):  # a Pipeline: transform, then the final step's predictive
        x, model = model[:-1].transform(x), model[-1]
        if isinstance(model, nn.Module):  # numpy from the transforms -> the network's dtype
            w = next(model.parameters(), torch.empty(0))
            x = torch.as_tensor(x, dtype=w.dtype, device=w.device)
        return predict_dist(model, x, n_samples, likelihood=likelihood, noise_std=noise_std,
                            batched=batched, generator=generator)
    if isinstance(model, Laplace):  # Gaussian draws of the linearised network's outputs
        return model.predict_dist(x, link_approx="mc", n_samples=_check_n_samples(n_samples),
                                  generator=generator)
    if not isinstance(model, nn.Module):
        if not hasattr(model, "predict_dist"):
            raise ValueError(f"{type(model).__name__} has no predictive distribution "
                             "(no predict_dist method, and it is not a torch network).")
        return model.predict_dist(x)
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    out = sample_outputs(model, x, n_samples, batched)  # (S, N, ...)
    if likelihood == "categorical":
        return MonteCarloCategorical(torch.softmax(out, -1).transpose(0, 1))  # (N, S, K)
    if likelihood == "logit_noise":
        logits, log_var = out.chunk(2, dim=-1)  # (S, N, K) each
        # one standard-normal draw per sample s, shared by the rows (each row still gets
        # iid draws across s), so a row's prediction does not depend on the other rows
        eps = torch.randn((logits.shape[0], 1, logits.shape[2]), dtype=logits.dtype,
                          device=logits.device, generator=generator)
        return MonteCarloCategorical(torch.softmax(logits + (0.5 * log_var).exp() * eps, -1)
                                     .transpose(0, 1))
    if likelihood == "gaussian":
        if noise_std is None or not noise_std > 0:
            raise ValueError("likelihood='gaussian' needs the known noise standard deviation "
                             f"noise_std > 0, got {noise_std}.")
        loc = out.reshape(out.shape[0], out.shape[1])  # (S, N)
        return monte_carlo_normal(loc.T, noise_std)
    if out.shape[-1] != 2:
        raise ValueError("likelihood='heteroscedastic' needs a network with 2 outputs "
                         f"(mean, log-variance); it has {out.shape[-1]}.")
    # sigma_s = exp(s_s / 2) with s = log sigma^2 (Kendall & Gal eq. 8)
    return monte_carlo_normal(out[..., 0].T, (0.5 * out[..., 1].T).exp())
