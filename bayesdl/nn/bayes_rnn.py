"""The Bayesian LSTM (Fortunato, Blundell & Vinyals 2017, "Bayesian Recurrent Neural Networks").

Bayes by Backprop through time: one weight sample is drawn per forward call (per mini-batch of
sequences) and shared by every time step, so a sequence sees one consistent network. The local
reparameterisation trick does not apply (a weight is reused across time steps, so the
pre-activations of different steps are correlated); flipout does, with its sign vectors fixed
for the whole sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._variational import BayesModule, _rademacher


class BayesLSTM(BayesModule):
    """Single-layer LSTM with Gaussian posteriors on its weights; a drop-in for ``nn.LSTM``.

    Gates follow ``nn.LSTM`` (order i, f, g, o), so trained ``nn.LSTM`` weights map onto the
    means directly (``bias = bias_ih + bias_hh``)::

        i, f, g, o = split(W_ih x_t + W_hh h_{t-1} + b)
        c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g);   h_t = sigmoid(o) tanh(c_t)

    ``forward(x, (h0, c0)=None)`` takes ``x`` of shape (B, T, I) with ``batch_first=True``
    (else (T, B, I)) and returns ``(output, (h_n, c_n))`` shaped as ``nn.LSTM``'s.

    Training: with a loss averaged over the batch *and* the T time steps, the KL is divided by
    the number of sequences times T: ``elbo_loss(nll, kl_divergence(model), step.n_train * T)``
    (see :func:`~bayesdl.nn.elbo_loss`).
    """

    supported_samplings = ("reparam", "flipout")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 batch_first: bool = False, *, prior=None, sampling: str = "reparam",
                 posterior_rho_init: float = -5.0, kl_samples: int = 1):
        super().__init__(prior, sampling, posterior_rho_init, kl_samples)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.batch_first = bool(batch_first)
        self._add_variational("weight_ih", (4 * self.hidden_size, self.input_size))
        self._add_variational("weight_hh", (4 * self.hidden_size, self.hidden_size))
        if bias:
            self._add_variational("bias", (4 * self.hidden_size,))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.LSTM's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter
        bound = 1 / math.sqrt(self.hidden_size)
        for name in self._variational:
            nn.init.uniform_(getattr(self, f"{name}_mu"), -bound, bound)

    def _bias(self, draw):
        return draw("bias") if "bias" in self._variational else None

    def forward(self, x: torch.Tensor, state=None):
        if x.dim() != 3:
            raise ValueError("BayesLSTM expects a 3-D input (batch, time, features), got "
                             f"{x.dim()}-D.")
        x = x if self.batch_first else x.transpose(0, 1)  # (B, T, I)
        B, T, _ = x.shape
        H = self.hidden_size
        if state is None:
            h = x.new_zeros(B, H)
            c = x.new_zeros(B, H)
        else:
            h, c = state[0].reshape(B, H), state[1].reshape(B, H)

        if self.sampling == "reparam":
            # one weight sample for the whole sequence (Fortunato et al. section 3)
            w_hh = self.sample_weight("weight_hh")
            gates_x = F.linear(x, self.sample_weight("weight_ih"), self._bias(self.sample_weight))

            def recurrent(h_prev):
                return F.linear(h_prev, w_hh)
        else:
            # flipout with per-sequence signs s, r fixed over time (Wen et al. 2018 eq. 4)
            d_ih = self.posterior_std("weight_ih") * torch.randn_like(self.weight_ih_mu)
            d_hh = self.posterior_std("weight_hh") * torch.randn_like(self.weight_hh_mu)
            s_x, r_x = _rademacher(x[:, :1]), _rademacher(x.new_empty(B, 1, 4 * H))
            s_h, r_h = _rademacher(h), _rademacher(x.new_empty(B, 4 * H))
            bias = self._bias(self.sample_weight)
            gates_x = (F.linear(x, self.posterior_mean("weight_ih"), bias)
                       + F.linear(x * s_x, d_ih) * r_x)  # (B, T, 4H)
            mu_hh = self.posterior_mean("weight_hh")

            def recurrent(h_prev):
                return F.linear(h_prev, mu_hh) + F.linear(h_prev * s_h, d_hh) * r_h

        outputs = []
        for t in range(T):
            i, f, g, o = (gates_x[:, t] + recurrent(h)).chunk(4, dim=-1)  # each (B, H)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        out = torch.stack(outputs, dim=1)  # (B, T, H)
        out = out if self.batch_first else out.transpose(0, 1)
        return out, (h.unsqueeze(0), c.unsqueeze(0))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, batch_first={self.batch_first}, "
                f"{super().extra_repr()}")
