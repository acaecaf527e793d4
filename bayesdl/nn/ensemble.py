"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class DeepEnsemble(nn.Module):
    """M independently initialised networks whose outputs are stacked: (M, N, ...).

    The predictive distribution is the uniform mixture of the members' predictive
    distributions (Lakshminarayanan et al. eq. 5 for Gaussian members);
    :func:`bayesdl.uncertainty.predict_dist` builds it. Members share mini-batches when
    trained with one optimiser on the sum of their losses; since their parameters are
    disjoint, each receives exactly its own loss's gradient.
    """

    def __init__(self, members):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("a DeepEnsemble needs at least one member network.")
        self.members = nn.ModuleList(members)

    @classmethod
    def from_factory(cls, factory: Callable[[], nn.Module], n_members: int = 5,
                     seed: int | None = None) -> "DeepEnsemble":
        """Build ``n_members`` networks with ``factory()``, the i-th seeded with ``seed + i``."""
        if int(n_members) < 1:
            raise ValueError(f"n_members must be a positive integer, got {n_members}.")
        members = []
        for i in range(int(n_members)):
            if seed is None:
                members.append(factory())
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed) + i)
                    members.append(factory())
        return cls(members)

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members])  # (M, N, ...)
