"""The Gaussian variational posterior shared by every Bayesian layer (Bayes by Backprop).

Blundell et al. (2015), "Weight Uncertainty in Neural Networks": each weight has a factorised
Gaussian posterior q(w) = N(mu, sigma^2) with sigma = softplus(rho) = log(1 + exp(rho)), so
that the unconstrained pair (mu, rho) is learnt by gradient descent on the negative ELBO

    F(mu, rho) = KL(q(w) || p(w)) - E_q[log p(D | w)]                      (Blundell eq. 1)

Three ways to draw the layer output (``sampling``):

- ``"reparam"`` (alias ``"reparameterization"``): w = mu + sigma * eps, eps ~ N(0, I), one
  weight sample shared by the batch (Blundell eq. 3-4);
- ``"local"`` (fully connected layers, (N, features) inputs): the local reparameterisation
  trick of Kingma, Salimans & Welling (2015): the pre-activation b = x W is Gaussian, so it is
  sampled directly, independently for every example (lower-variance gradients);
- ``"flipout"``: Wen et al. (2018): one perturbation dW = sigma * eps shared by the batch,
  decorrelated across examples by random sign vectors, y = x mu + ((x o s) dW) o r.

All three give every example the same output distribution; they differ in the correlation
between examples (and so in gradient variance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from .priors import GaussianPrior

SAMPLINGS = ("reparam", "local", "flipout")
# other spellings accepted for a sampling: the name it goes by in the literature
SAMPLING_ALIASES = {"reparameterization": "reparam", "reparameterisation": "reparam"}


def _rademacher(like: torch.Tensor) -> torch.Tensor:
    """Random signs +-1 with the shape, dtype and device of ``like``."""
    return torch.empty_like(like).bernoulli_(0.5).mul_(2).sub_(1)


class BayesModule(nn.Module):
    """Base of layers with a factorised Gaussian posterior over some of their parameters.

    A subclass calls :meth:`_add_variational` for each parameter ``name`` (creating the
    learnable ``name_mu`` and ``name_rho``). Pruning adds a 0/1 buffer ``name_mask``; until
    then it is ``None`` and costs nothing.
    """

    #: samplings this layer supports (recurrent layers cannot use the local trick).
    supported_samplings: tuple[str, ...] = SAMPLINGS

    def __init__(self, prior=None, sampling: str = "reparam", posterior_rho_init: float = -5.0,
                 kl_samples: int = 1):
        super().__init__()
        self.prior = GaussianPrior() if prior is None else prior
        if not hasattr(self.prior, "log_prob"):
            raise TypeError(f"prior must be a bayesdl.nn prior, got {type(self.prior).__name__}.")
        sampling = SAMPLING_ALIASES.get(sampling, sampling)
        if sampling not in self.supported_samplings:
            raise ValueError(
                f"sampling={sampling!r} is not supported by {type(self).__name__}; "
                f"choose from {self.supported_samplings} ('reparameterization' is an alias of "
                "'reparam')."
            )
        if int(kl_samples) < 1:
            raise ValueError(f"kl_samples must be a positive integer, got {kl_samples}.")
        self.sampling = sampling
        self.posterior_rho_init = float(posterior_rho_init)
        self.kl_samples = int(kl_samples)
        self._variational: list[str] = []

    def _add_variational(self, name: str, shape: tuple[int, ...]) -> None:
        self.register_parameter(f"{name}_mu", nn.Parameter(torch.empty(shape)))
        self.register_parameter(
            f"{name}_rho", nn.Parameter(torch.full(shape, self.posterior_rho_init))
        )
        self.register_buffer(f"{name}_mask", None)
        self._variational.append(name)

    def mask(self, name: str) -> torch.Tensor | None:
        """The pruning mask of ``name`` (1 = kept), or None if nothing was pruned."""
        return getattr(self, f"{name}_mask")

    def set_mask(self, name: str, mask: torch.Tensor) -> None:
        self.register_buffer(f"{name}_mask", mask.to(getattr(self, f"{name}_mu")))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a pruned layer's state carries masks that a freshly built layer does not have yet
        for name in self._variational:
            key = f"{prefix}{name}_mask"
            if key in state_dict and self.mask(name) is None:
                self.set_mask(name, torch.ones_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _masked(self, name: str, value: torch.Tensor) -> torch.Tensor:
        mask = self.mask(name)
        return value if mask is None else value * mask

    # -- the posterior ----------------------------------------------------------------------
    def posterior_mean(self, name: str) -> torch.Tensor:
        """E_q[w] = mu (zero where pruned)."""
        return self._masked(name, getattr(self, f"{name}_mu"))

    def posterior_std(self, name: str) -> torch.Tensor:
        """sigma = softplus(rho) (Blundell section 3.2; zero where pruned)."""
        return self._masked(name, F.softplus(getattr(self, f"{name}_rho")))

    def sample_weight(self, name: str) -> torch.Tensor:
        """w = mu + sigma o eps, eps ~ N(0, I) (Blundell eq. 3)."""
        mean = self.posterior_mean(name)
        return torch.addcmul(mean, self.posterior_std(name), torch.randn_like(mean))

    def variational_names(self) -> list[str]:
        return list(self._variational)

    # -- KL(q || p) -------------------------------------------------------------------------
    def kl_divergence(self) -> torch.Tensor:
        """KL(q || p) summed over this layer: closed form when the prior allows, else MC."""
        if self.prior.has_closed_form_kl:
            total = 0.0
            for name in self._variational:
                kl = self.prior.kl_from(getattr(self, f"{name}_mu"),
                                        F.softplus(getattr(self, f"{name}_rho")))
                # pruned weights are deterministic zeros: they carry no KL term
                total = total + self._masked(name, kl).sum()
            return total
        return self.kl_divergence_mc(self.kl_samples).mean()

    def kl_divergence_mc(self, n_samples: int) -> torch.Tensor:
        """``n_samples`` independent Monte-Carlo estimates of KL(q || p), shape (n_samples,).

        Each is log q(w) - log p(w) at a fresh w ~ q (Blundell eq. 2), summed over weights.
        """
        total = 0.0
        for name in self._variational:
            q = Normal(getattr(self, f"{name}_mu"), F.softplus(getattr(self, f"{name}_rho")),
                       validate_args=False)
            w = q.rsample((n_samples,))  # (S, *shape)
            log_ratio = self._masked(name, q.log_prob(w) - self.prior.log_prob(w))
            total = total + log_ratio.reshape(n_samples, -1).sum(-1)
        return total

    def extra_repr(self) -> str:
        return f"prior={self.prior!r}, sampling={self.sampling!r}"


class BayesAffine(BayesModule):
    """A Bayesian layer whose output is affine in its weights: y = op(x, W) + b.

    Subclasses define :meth:`_op` (``F.linear``, ``F.conv2d``); the three samplings follow.
    """

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
        raise NotImplementedError

    def _bias_view(self, bias: torch.Tensor) -> torch.Tensor:
        """The bias shaped to broadcast against the output (channels last for linear)."""
        return bias

    def _channel_dim(self, t: torch.Tensor) -> int:
        return -1  # features last (linear layers)

    def _flipout_signs(self, t: torch.Tensor) -> torch.Tensor:
        """Random signs, one per example and channel, shared by the other positions (pixels,
        time steps): Flipout's perturbation of example n must be the weight perturbation
        dW o (r_n s_n^T), which acts on every position of that example alike."""
        shape = [1] * t.dim()
        channel = self._channel_dim(t)
        shape[channel] = t.shape[channel]
        if t.dim() > 1:
            shape[0] = t.shape[0]
        return _rademacher(t.new_empty(shape))

    def _bias_moments(self):
        if "bias" not in self._variational:
            return None, None
        return self.posterior_mean("bias"), self.posterior_std("bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sampling == "reparam":
            bias = self.sample_weight("bias") if "bias" in self._variational else None
            return self._op(x, self.sample_weight("weight"), bias)
        b_mean, b_std = self._bias_moments()
        # E[y] = op(x, mu_W) + mu_b
        mean = self._op(x, self.posterior_mean("weight"), b_mean)
        w_std = self.posterior_std("weight")
        if self.sampling == "local":
            if x.dim() != 2:
                raise ValueError(
                    f"sampling='local' needs (N, features) inputs, got shape {tuple(x.shape)}: "
                    "with more dimensions the weights are shared across positions and the "
                    "trick no longer applies. Use sampling='flipout'.")
            # Kingma et al. 2015 eq. 6: y ~ N(op(x, mu), op(x^2, sigma^2) + sigma_b^2), per example
            var = self._op(x * x, w_std * w_std, None if b_std is None else b_std * b_std)
            return mean + var.clamp_min(1e-30).sqrt() * torch.randn_like(mean)
        # Flipout (Wen et al. 2018 eq. 4): y = op(x, mu) + op(x o s, dW) o r, dW = sigma o eps
        delta_w = w_std * torch.randn_like(w_std)
        perturbation = self._op(x * self._flipout_signs(x), delta_w, None)
        out = mean + perturbation * self._flipout_signs(perturbation)
        if b_std is not None:
            # the bias perturbation is shared by the batch, as the weight perturbation is
            out = out + self._bias_view(b_std * torch.randn_like(b_std))
        return out


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """KL(q || p) summed over every Bayesian layer of ``model`` (0 if it has none)."""
    terms = [m.kl_divergence() for m in model.modules() if isinstance(m, BayesModule)]
    if not terms:
        return torch.zeros(())
    return torch.stack([torch.as_tensor(t) for t in terms]).sum()
