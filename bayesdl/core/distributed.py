"""``torch.distributed`` helpers for models fitted on sharded data.

Under ``torchrun`` (or any initialised process group) each rank holds a shard of the rows;
the EM driver sums its sufficient statistics over the shard and all-reduces them here, so
every rank computes the same M-step and the fit equals the single-process fit. Without an
initialised process group every function is the identity.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def shard(n_samples: int) -> slice:
    """The contiguous block of ``range(n_samples)`` that this rank owns."""
    r, w = rank(), world_size()
    return slice(n_samples * r // w, n_samples * (r + 1) // w)


def all_reduce_sum(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sum each tensor over all ranks (one collective for the whole list)."""
    if not is_distributed() or not tensors:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out, start = [], 0
    for t in tensors:
        out.append(flat[start : start + t.numel()].reshape(t.shape))
        start += t.numel()
    return out


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate an equally shaped tensor from every rank along dimension 0."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def union(values: np.ndarray) -> np.ndarray:
    """The sorted distinct ``values`` over every rank's shard (``np.unique`` of all the rows;
    e.g. the class labels, of which one shard may hold only some)."""
    values = np.unique(values)
    if not is_distributed():
        return values
    parts = [None] * world_size()
    dist.all_gather_object(parts, values)
    return np.unique(np.concatenate(parts))


def broadcast(values: list, src: int = 0) -> list:
    """Rank ``src``'s copy of each numpy array or tensor (other values pass through)."""
    if not is_distributed():
        return values
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    out = []
    for v in values:
        if isinstance(v, (np.ndarray, torch.Tensor)):
            t = torch.as_tensor(v).to(device).contiguous()
            dist.broadcast(t, src=src)
            v = t.cpu().numpy() if isinstance(v, np.ndarray) else t.to(v.device)
        out.append(v)
    return out
