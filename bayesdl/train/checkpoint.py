"""Training checkpoints without pickle: tensors in safetensors, the rest as JSON metadata.

A checkpoint holds everything needed to continue a run exactly: the model and best-model
weights, the optimiser state (tensors; hyper-parameters as JSON), the scheduler and AMP
grad-scaler states (JSON scalars), every RNG state (the global CPU/CUDA generators of each
rank and the private generators of modules such as ``MCDropout``) and the loop's own counters.
It is the same container as a saved model (:func:`bayesdl.io.write_safetensors`): written
atomically, so an interrupted write leaves the previous checkpoint intact, and checksummed, so
a truncated or damaged checkpoint is refused with a clear error instead of resuming from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..io import _jsonable, read_safetensors, write_safetensors

_META_KEY = "trainer"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().clone().contiguous()


def optimizer_to_flat(state_dict: dict, prefix: str = "optim.") -> tuple[dict,
                                                                      dict[str, torch.Tensor]]:
    """Split an optimiser ``state_dict`` into JSON and tensors named ``{prefix}{param}.{key}``."""
    tensors, scalars = {}, {}
    for pid, pstate in state_dict["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{pid}.{key}"] = _cpu(value)
            else:
                scalars.setdefault(str(pid), {})[key] = _jsonable(value)
    return {"param_groups": _jsonable(state_dict["param_groups"]), "scalars": scalars}, tensors


def optimizer_from_flat(meta: dict, tensors: dict[str, torch.Tensor],
                        prefix: str = "optim.") -> dict:
    """The ``state_dict`` that :func:`optimizer_to_flat` split (tensors named with ``prefix``)."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix) and name[len(prefix):].split(".", 1)[0].isdigit():
            pid, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Atomically write ``tensors`` and the JSON-serialisable ``meta`` to ``path``."""
    return write_safetensors(path, {k: _cpu(v) for k, v in tensors.items()}, {_META_KEY: meta})


def load_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensors, meta)``."""
    config, tensors = read_safetensors(path, what="training checkpoint")
    if _META_KEY not in config:
        raise ValueError(f"{path} is not a bayesdl training checkpoint (no trainer metadata).")
    return tensors, config[_META_KEY]
