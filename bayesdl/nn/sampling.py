"""Which kind of Monte-Carlo sample a stochastic network draws in one forward call."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

from ._variational import BayesModule
from .mc_dropout import MCDropout


def is_stochastic(model: nn.Module) -> bool:
    """True when forward calls are random (Bayesian layers or MC dropout inside)."""
    return any(isinstance(m, (BayesModule, MCDropout)) and not _inactive_dropout(m)
               for m in model.modules())


def _inactive_dropout(m) -> bool:
    return isinstance(m, MCDropout) and m.p == 0.0


def independent_per_example(model: nn.Module) -> bool:
    """True when every example of a batch gets independent noise (local reparameterisation,
    flipout, per-example dropout masks), so a batch repeated T times is T independent
    predictive samples per example."""
    for m in model.modules():
        if isinstance(m, BayesModule) and m.sampling == "reparam":
            return False
        if isinstance(m, MCDropout) and m.batch_shared:
            return False
    return True


@contextmanager
def function_sampling(model: nn.Module):
    """Within the block, one forward call evaluates one sampled network on the whole batch.

    Bayesian layers use plain reparameterisation (one weight sample per call) and MC-dropout
    layers one mask per call. Each example's output distribution is unchanged; what changes
    is that outputs for different inputs come from the same network, so a call is a sample
    of the whole predictive function (coherent curves in plots, and predictions that do not
    depend on which other rows share the batch).
    """
    saved = []
    for m in model.modules():
        if isinstance(m, BayesModule):
            saved.append((m, "sampling", m.sampling))
            m.sampling = "reparam"
        elif isinstance(m, MCDropout):
            saved.append((m, "batch_shared", m.batch_shared))
            m.batch_shared = True
    try:
        yield model
    finally:
        for m, attr, value in saved:
            setattr(m, attr, value)
