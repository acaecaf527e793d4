"""One training loop for every bayesdl deep model.

``Trainer(model, loss_fn, ...).fit(train_data, val_data)`` runs mini-batch gradient descent
with a progress bar (epoch, loss, validation metric), early stopping, gradient clipping,
atomic checkpoints every epoch and exact resumption, ``DistributedDataParallel`` when
``torch.distributed`` is initialised (e.g. under ``torchrun``: gloo on CPU, nccl on GPU) and
mixed precision on CUDA.

The objective is a function ``loss_fn(model, batch, step) -> scalar tensor``: it receives the
(possibly DDP-wrapped) model, the batch as the ``DataLoader`` yields it (already on the
device) and a :class:`Step` with the epoch, batch index, batches per epoch and the number of
training examples, which is what :func:`bayesdl.nn.elbo_loss` needs to scale the KL.

Models with several optimisers (a GAN's generator and critic) give a step function instead:
``Trainer(model, step_fn=f, optimizers={"generator": g, "critic": c})`` calls
``f(model, batch, step, optimizers) -> {name: scalar}`` once per batch; it computes its own
losses, calls ``backward`` and ``optimizers[name].step()`` as its algorithm says (e.g. five
critic updates per generator update) and returns the losses to log. Everything else is the
same loop: data order, progress bar, history (the per-epoch mean of every logged name),
checkpoints that hold every optimiser (and, through the model's ``state_dict``, any extra
state the model keeps as a sub-module, such as an EMA copy of a generator), exact resume and
multi-process training (each optimiser's ``step`` first averages the gradients over the ranks,
which is what DDP's backward does, so a step function written for one process is correct on
many). Noise drawn with :meth:`Step.randn` / :meth:`Step.rand` is a function of
``(seed, epoch, batch)`` and the example's place in the global batch, so a 2-process run
equals a 1-process run with the same global batch (per-batch statistics such as batch norm's
are the exception: each rank normalises its own half).

Exact resumption: the data order of epoch e is a function of ``(seed, e)`` alone
(``DistributedSampler`` seeds its shuffle with ``seed + e``), and the checkpoint written after
every epoch stores the model, optimiser, scheduler, grad scaler and every RNG state, so
``resume=True`` continues an interrupted run to bit-identical weights (same seed, CPU).

Streamed data: a ``torch.utils.data.IterableDataset`` (data that does not fit in memory, read
block by block) yields whole mini-batches, which the loop uses as they come (``batch_size`` and
``shuffle`` do not apply: the order is the stream's). ``Step.n_train`` (the rows of the batches'
first tensors) and ``Step.n_batches`` come from one counting pass before the first epoch, or,
from a stream that knows them already (e.g. from a pass it made itself), from its attributes
``n_rows`` and ``n_batches`` (this rank's rows and batches per epoch), and then the stream is
read only by the epochs. Under ``torch.distributed`` each rank's dataset yields that rank's own
shard, with the same number of batches on every rank (checked before the first epoch: DDP would
otherwise wait forever); ``n_train`` is the sum over the ranks. Every epoch must yield the rows
and batches counted or declared (checked after each epoch). Before each epoch the loop calls
the dataset's ``set_epoch(epoch)`` if it has one.
Resumption restores the model, optimiser and RNG states exactly as for tensors and starts the
next epoch with a fresh pass over the stream; it is bit-identical to the uninterrupted run only
if the stream yields the same batches in every epoch, or makes its order a function of the
epoch given to ``set_epoch`` (a stream that draws its own shuffle, or reads a file that
changes, resumes with other batches than the lost run would have seen).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, TensorDataset
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, save_checkpoint

CHECKPOINT_NAME = "last.safetensors"


@dataclass(frozen=True)
class Step:
    """Where the loop is: what a loss needs to weight per-batch terms (e.g. the KL), and
    noise that does not depend on how the batch is split over processes.

    ``n_train`` is the number of training examples (the length of the whole training dataset,
    also under DDP, where each rank sees a shard of it). For sequences that is the number of
    sequences: a loss averaged over time steps too must multiply it by the sequence length
    before passing it to :func:`bayesdl.nn.elbo_loss`.
    """

    epoch: int
    batch_index: int
    n_batches: int
    n_train: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    _stream: list = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def iteration(self) -> int:
        """The number of training batches before this one, over all epochs."""
        return self.epoch * self.n_batches + self.batch_index

    def _generator(self) -> torch.Generator:
        if not self._stream:  # one stream per batch, seeded by (seed, epoch, batch) alone
            entropy = [self.seed % 2 ** 63, self.epoch + 1, self.batch_index]
            seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
            self._stream.append(torch.Generator().manual_seed(seed))
        return self._stream[0]

    def _draw(self, sampler, n, shape, device, dtype) -> torch.Tensor:
        # the whole global batch is drawn on every rank; rank r keeps rows r, r + W, ...: the
        # places DistributedSampler gives its examples in the global batch
        full = sampler(n * self.world_size, *shape, generator=self._generator(),
                       dtype=dtype or torch.get_default_dtype())
        ours = full[self.rank::self.world_size]
        return ours if device is None else ours.to(device)

    def randn(self, n: int, *shape: int, device=None, dtype=None) -> torch.Tensor:
        """Standard normal noise ``(n, *shape)`` for this rank's ``n`` examples of the batch.

        Successive calls continue one stream seeded by ``(seed, epoch, batch_index)``; the same
        on every rank and in a 1-process run with the same global batch.
        """
        return self._draw(torch.randn, n, shape, device, dtype)

    def rand(self, n: int, *shape: int, device=None, dtype=None) -> torch.Tensor:
        """Uniform [0, 1) noise ``(n, *shape)``; the same stream as :meth:`randn`."""
        return self._draw(torch.rand, n, shape, device, dtype)


def _as_dataset(data) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, torch.Tensor):
        return TensorDataset(data)
    if isinstance(data, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in data):
        return TensorDataset(*data)
    raise TypeError("training data must be a torch Dataset, a tensor or a tuple of tensors, "
                    f"got {type(data).__name__}.")


class _TensorBatches:
    """The mini-batches of a ``TensorDataset`` in the sampler's order, as lists of tensors.

    What ``DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, batch_size,
    drop_last=False))`` yields, batch for batch, without its per-batch Python machinery
    (iterator, fetcher, profiler records, list-to-tensor index conversion), which costs
    more than the step of a small model on CPU.
    """

    def __init__(self, dataset: TensorDataset, sampler, batch_size: int):
        self.tensors, self.sampler, self.batch_size = dataset.tensors, sampler, batch_size

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        for idx in order.split(self.batch_size):
            yield [t[idx] for t in self.tensors]


def _batch_rows(batch) -> int:
    """The number of examples in a batch: the leading size of its first tensor."""
    while isinstance(batch, (list, tuple, dict)):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return int(batch.shape[0])


def _count_stream(dataset: IterableDataset, world: int, comm_device) -> tuple[int, int, int]:
    """(rows summed over the ranks, this rank's rows, batches per rank) of a streamed dataset:
    the ``n_rows`` and ``n_batches`` it declares, or else counted in one pass over it. Every
    rank must have the same number of batches."""
    declared = getattr(dataset, "n_rows", None), getattr(dataset, "n_batches", None)
    if None not in declared:
        if not all(isinstance(v, (int, np.integer)) and v >= 0 for v in declared):
            raise ValueError(f"a stream's n_rows and n_batches must be non-negative integers, "
                             f"got {declared[0]!r} and {declared[1]!r}.")
        n_rows, n_batches = (int(v) for v in declared)
    else:
        n_rows = n_batches = 0
        for batch in dataset:
            n_rows, n_batches = n_rows + _batch_rows(batch), n_batches + 1
    n_train = n_rows
    if world > 1:
        counts = torch.tensor([n_rows, n_batches, -n_batches], dtype=torch.float64,
                              device=comm_device)
        high = counts.clone()
        dist.all_reduce(counts)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if high[1] != -high[2]:
            raise ValueError(
                f"the ranks' streams hold different numbers of batches ({int(-high[2])} to "
                f"{int(high[1])}); every rank needs the same number, or the gradient "
                "all-reduce of the missing steps would wait forever. Shard the data evenly.")
        n_train = int(counts[0])
    return n_train, n_rows, n_batches


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun if nobody has."""
    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _optim_prefix(name: str | None) -> str:
    return "optim." if name is None else f"optim.{name}."


class _SyncedOptimizer:
    """An optimiser whose ``step`` first averages the gradients over the ranks (as DDP's
    backward does) and clips their global norm; everything else is the wrapped optimiser's."""

    def __init__(self, optimizer, world: int, comm_device, grad_clip):
        self.optimizer, self.world, self.comm_device = optimizer, world, comm_device
        self.grad_clip = grad_clip

    def __getattr__(self, name):
        return getattr(self.optimizer, name)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        if self.world > 1 and params:
            flat = torch.cat([p.grad.reshape(-1) for p in params]).to(self.comm_device)
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.grad.numel()].view_as(p.grad))
                offset += p.grad.numel()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.optimizer.step()


class Trainer:
    """Mini-batch training with validation, early stopping, checkpoints, DDP and AMP.

    Parameters
    ----------
    model : the ``nn.Module`` to train (trained in place).
    loss_fn : ``loss_fn(model, batch, step) -> scalar tensor``; or None with ``step_fn``.
    step_fn : ``step_fn(model, batch, step, optimizers) -> {name: scalar}`` for models with
        several optimisers (give ``optimizers``, not ``loss_fn``). It gets the plain model (not
        DDP-wrapped) and the optimisers by name, zeroes gradients, calls ``backward`` and
        ``optimizers[name].step()`` itself (``step`` averages gradients over the ranks and
        clips them to ``grad_clip``) and returns the losses to log; ``history`` records the
        per-epoch mean of each (a name need not be logged every batch). Mixed precision is not
        used in this mode; a validation set needs ``val_metric``.
    optimizer : ``callable(params) -> torch.optim.Optimizer`` (default Adam with ``lr``).
    optimizers : with ``step_fn``: ``{name: callable(model) -> torch.optim.Optimizer}``, e.g.
        ``{"generator": lambda m: Adam(m.generator.parameters()), "critic": ...}``; every one
        is checkpointed and restored.
    scheduler : ``callable(optimizer) -> LRScheduler``, stepped once per epoch (one for each
        optimiser with ``step_fn``), or None.
    max_epochs, batch_size, shuffle : the loop (an IterableDataset brings its own batches and
        order: see the module docstring on streamed data).
    val_metric : ``callable(model, val_loader) -> float``; default: mean ``loss_fn`` on the
        validation data. ``val_mode`` is ``"min"`` or ``"max"``.
    patience : stop after this many epochs without improvement of the validation metric
        (of the training loss without validation data) by more than ``min_delta``;
        ``restore_best`` then reloads the best weights, as it does when ``max_epochs`` ends a
        run with ``patience`` set before the metric stopped improving.
    grad_clip : clip the global gradient 2-norm to this value (None: no clipping).
    checkpoint_dir : write ``last.safetensors`` there after every epoch (atomically).
    resume : continue from ``checkpoint_dir/last.safetensors`` if it exists.
    seed : seeds the global RNG at the start of ``fit`` (``seed + rank`` on each rank), the data
        order of every epoch and the noise of :meth:`Step.randn` (the same on every rank).
    amp : ``"auto"`` (mixed precision on CUDA), True or False.
    device : where to train (default: this rank's GPU when CUDA is available, else CPU).
    progress : show a tqdm progress bar (rank 0 only).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable | None = None, *,
                 step_fn: Callable | None = None, optimizer: Callable | None = None,
                 optimizers: dict[str, Callable] | None = None,
                 lr: float = 1e-3, scheduler: Callable | None = None, max_epochs: int = 10,
                 batch_size: int = 64, shuffle: bool = True, val_metric: Callable | None = None,
                 val_mode: str = "min", patience: int | None = None, min_delta: float = 0.0,
                 restore_best: bool = True, grad_clip: float | None = None,
                 checkpoint_dir=None, resume: bool = False, seed: int = 0, amp="auto",
                 device=None, progress: bool = True):
        if val_mode not in ("min", "max"):
            raise ValueError(f"val_mode must be 'min' or 'max', got {val_mode!r}.")
        if int(max_epochs) < 1 or int(batch_size) < 1:
            raise ValueError(f"max_epochs and batch_size must be positive, got {max_epochs} and "
                             f"{batch_size}.")
        if patience is not None and int(patience) < 1:
            raise ValueError(f"patience must be a positive integer or None, got {patience}.")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip}.")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir (where the checkpoint lives).")
        if (loss_fn is None) == (step_fn is None):
            raise ValueError("give either loss_fn (one optimiser) or step_fn with optimizers "
                             "(a step function that updates several), not both or neither.")
        if step_fn is not None:
            if not optimizers or optimizer is not None:
                raise ValueError("step_fn needs optimizers={name: callable(model) -> "
                                 "Optimizer} (and no optimizer=, which is for loss_fn).")
            bad = [name for name in optimizers if not str(name).isidentifier()]
            if bad:
                raise ValueError(f"optimizer names must be identifiers, got {bad}.")
            if patience is not None and val_metric is None:
                raise ValueError("patience with step_fn needs val_metric: the step function "
                                 "logs several losses, none of them an objective to stop on.")
        elif optimizers is not None:
            raise ValueError("optimizers= is for step_fn; with loss_fn give optimizer=.")
        self.model, self.loss_fn, self.step_fn = model, loss_fn, step_fn
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=lr))
        self.optimizer_factories = optimizers
        self.scheduler_factory = scheduler
        self.max_epochs, self.batch_size, self.shuffle = int(max_epochs), int(batch_size), shuffle
        self.val_metric, self.val_mode = val_metric, val_mode
        self.patience, self.min_delta, self.restore_best = patience, float(min_delta), restore_best
        self.grad_clip = grad_clip
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resume, self.seed, self.amp = resume, int(seed), amp
        self.device, self.progress = device, progress
        self.history: list[dict] = []

    # -- setup --------------------------------------------------------------------------------
    def _device(self, rank: int) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) %
                                torch.cuda.device_count())
        return torch.device("cpu")

    def _use_amp(self, device: torch.device) -> bool:
        if self.step_fn is not None:
            if self.amp is True:
                raise ValueError("amp=True is not supported with step_fn; use amp='auto'.")
            return False
        if self.amp == "auto":
            return device.type == "cuda"
        if self.amp and device.type != "cuda":
            raise ValueError("amp=True needs a CUDA device; use amp='auto' or amp=False on CPU.")
        return bool(self.amp)

    def _generators(self) -> dict[str, torch.Generator]:
        """Private generators of modules (e.g. MCDropout), by module name."""
        return {name: m.generator for name, m in self.model.named_modules()
                if isinstance(getattr(m, "generator", None), torch.Generator)}

    # -- RNG states across ranks ----------------------------------------------------------------
    def _rng_states(self, device) -> dict[str, torch.Tensor]:
        states = {"rng.cpu": torch.get_rng_state()}
        if device.type == "cuda":
            states["rng.cuda"] = torch.cuda.get_rng_state(device)
        for name, gen in self._generators().items():
            states[f"rng.module.{name}"] = gen.get_state()
        if self.world == 1:
            return {f"{k}.0": v for k, v in states.items()}
        gathered = {}
        for key, state in states.items():  # every rank's state, so each resumes its own stream
            state = state.to(self._comm_device)  # nccl gathers GPU tensors, gloo CPU ones
            parts = [torch.empty_like(state) for _ in range(self.world)]
            dist.all_gather(parts, state)
            gathered.update({f"{key}.{r}": p.cpu() for r, p in enumerate(parts)})
        return gathered

    def _set_rng_states(self, tensors, device) -> None:
        suffix = f".{self.rank}"
        torch.set_rng_state(tensors["rng.cpu" + suffix])
        if device.type == "cuda" and "rng.cuda" + suffix in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda" + suffix], device)
        for name, gen in self._generators().items():
            gen.set_state(tensors[f"rng.module.{name}{suffix}"])

    # -- checkpoints ----------------------------------------------------------------------------
    def _save(self, epoch, optimizers, schedulers, scaler, best_state, device) -> None:
        """``optimizers``/``schedulers``: by name (the single one of ``loss_fn`` under None)."""
        rng = self._rng_states(device)  # collective: every rank takes part
        if self.rank == 0:
            tensors, optim_meta = {}, {}
            for name, optimizer in optimizers.items():
                optim_meta[name], flat = optimizer_to_flat(optimizer.state_dict(),
                                                           _optim_prefix(name))
                tensors.update(flat)
            sched_meta = {name: s.state_dict() if s is not None else None
                          for name, s in schedulers.items()}
            if self.step_fn is None:  # the 1-optimiser layout of loss_fn checkpoints
                optim_meta, sched_meta = optim_meta[None], sched_meta[None]
            tensors.update({f"model.{k}": v for k, v in self.model.state_dict().items()})
            if best_state is not None:
                tensors.update({f"best.{k}": v for k, v in best_state.items()})
            tensors.update(rng)
            meta = {"epoch": epoch, "history": self.history, "best": self._best,
                    "best_epoch": self.best_epoch, "bad_epochs": self._bad_epochs,
                    "stopped_early": self.stopped_early, "world_size": self.world,
                    "seed": self.seed, "optimizer": optim_meta, "scheduler": sched_meta,
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None}
            save_checkpoint(self.checkpoint_dir / CHECKPOINT_NAME, tensors, meta)
        if self.world > 1:
            dist.barrier()

    def _load(self, optimizers, schedulers, scaler, device):
        tensors, meta = load_checkpoint(self.checkpoint_dir / CHECKPOINT_NAME)
        if meta["world_size"] != self.world or meta["seed"] != self.seed:
            raise ValueError(
                f"the checkpoint was written by a run with world size {meta['world_size']} and "
                f"seed {meta['seed']}; this run has {self.world} and {self.seed}. Resume with "
                "the same settings, or start afresh without resume=True."
            )

        def prefixed(p):
            return {k[len(p):]: v.to(device) for k, v in tensors.items() if k.startswith(p)}

        try:
            self.model.load_state_dict(prefixed("model."))
        except RuntimeError as e:  # another architecture or data shape wrote the checkpoint
            raise ValueError(
                f"the checkpoint in {self.checkpoint_dir} was written for another model (its "
                "weights do not fit this one: different layer sizes or data shape). Resume "
                "with the same model settings and data, or start afresh without resume=True."
                f"\n{e}") from e
        optim_meta, sched_meta = meta["optimizer"], meta["scheduler"]
        if self.step_fn is None:
            optim_meta, sched_meta = {None: optim_meta}, {None: sched_meta}
        elif set(optim_meta) != set(optimizers):
            raise ValueError(f"the checkpoint holds optimisers {sorted(optim_meta)} but this run "
                             f"has {sorted(optimizers)}; resume with the same optimizers.")
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(optimizer_from_flat(optim_meta[name], tensors,
                                                          _optim_prefix(name)))
            if schedulers[name] is not None and sched_meta[name] is not None:
                schedulers[name].load_state_dict(sched_meta[name])
        if meta["scaler"] is not None:
            scaler.load_state_dict(meta["scaler"])
        self._set_rng_states(tensors, device)
        self.history = meta["history"]
        self._best, self.best_epoch, self._bad_epochs = (meta["best"], meta["best_epoch"],
                                                         meta["bad_epochs"])
        self.stopped_early = meta["stopped_early"]
        best = prefixed("best.")
        return meta["epoch"] + 1, (best or None)

    # -- the loop -------------------------------------------------------------------------------
    def _reduce_mean(self, total: float, count: int, device) -> float:
        if self.world == 1:
            return total / max(count, 1)
        t = torch.tensor([total, float(count)], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return (t[0] / t[1].clamp_min(1)).item()

    def _validate(self, wrapped, val_loader, n_train, device) -> float:
        self.model.eval()
        with torch.no_grad():
            if self.val_metric is not None:
                value = float(self.val_metric(self.model, val_loader))
                return self._reduce_mean(value, 1, device)
            total, count = 0.0, 0
            n_batches = 0 if isinstance(val_loader, IterableDataset) else len(val_loader)
            for b, batch in enumerate(val_loader):
                batch = _to(batch, device)
                loss = self.loss_fn(self.model, batch, Step(-1, b, n_batches, n_train))
                total, count = total + loss.item(), count + 1
        return self._reduce_mean(total, count, device)

    def _improved(self, value: float) -> bool:
        if self._best is None:
            return True
        if self.val_mode == "min":
            return value < self._best - self.min_delta
        return value > self._best + self.min_delta

    def _loss_step(self, wrapped, batch, step, optimizer, scaler, device, use_amp) -> float:
        """One gradient step on ``loss_fn`` (the single-optimiser mode); returns the loss."""
        # a disabled autocast still costs ~10 us a step: entered only for AMP
        with (torch.autocast(device.type, dtype=torch.float16) if use_amp
              else contextlib.nullcontext()):
            loss = self.loss_fn(wrapped, batch, step)
        value = loss.item()  # one device sync per step, for the check and the mean
        if not math.isfinite(value):
            return value  # the caller raises, naming the epoch and batch
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return value

    def fit(self, train_data, val_data=None) -> "Trainer":
        """Train on ``train_data`` (a Dataset, an IterableDataset of whole batches, a tensor or
        a tuple of tensors); returns ``self``.

        ``self.history`` lists per-epoch ``{"epoch", "loss", "val"}`` (with ``step_fn``: the mean
        of every name it logged instead of ``"loss"``); ``self.best_epoch`` and
        ``self.stopped_early`` say how it ended.
        """
        self.rank, self.world = _distributed()
        device = self._device(self.rank)
        self._comm_device = device if dist.is_available() and self.world > 1 and \
            dist.get_backend() == "nccl" else torch.device("cpu")
        use_amp = self._use_amp(device)
        train_data = _as_dataset(train_data)
        streamed = isinstance(train_data, IterableDataset)
        if streamed:
            n_train, n_stream_rows, n_stream_batches = _count_stream(train_data, self.world,
                                                                     self._comm_device)
        else:
            n_train = len(train_data)
        if n_train == 0:
            raise ValueError("the training data is empty.")
        if self.step_fn is not None and val_data is None and self.patience is not None:
            raise ValueError("patience with step_fn needs validation data for val_metric.")
        if val_data is not None and self.step_fn is not None and self.val_metric is None:
            raise ValueError("validation data with step_fn needs val_metric (there is no single "
                             "loss to average over it).")
        torch.manual_seed(self.seed + self.rank)
        self.model.to(device)
        wrapped = self.model
        if self.step_fn is not None:
            if self.world > 1:  # every rank starts from rank 0's weights, as DDP makes them
                for tensor in self.model.state_dict().values():
                    buffer = tensor.detach().to(self._comm_device)
                    dist.broadcast(buffer, 0)
                    tensor.detach().copy_(buffer)
            optimizers = {name: factory(self.model)
                          for name, factory in self.optimizer_factories.items()}
        else:
            if self.world > 1:
                wrapped = nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[device.index] if device.type == "cuda" else None)
            optimizers = {None: self.optimizer_factory(self.model.parameters())}
        schedulers = {name: self.scheduler_factory(opt) if self.scheduler_factory else None
                      for name, opt in optimizers.items()}
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        sampler = None if streamed else DistributedSampler(
            train_data, num_replicas=self.world, rank=self.rank, shuffle=self.shuffle,
            seed=self.seed)
        if streamed:  # whole batches as the stream yields them (a DataLoader would draw a
            loader = train_data  # seed from the global RNG each epoch, which the tensors' path does not)
        elif isinstance(train_data, TensorDataset):
            # index the tensors with a whole batch of indices at once (no per-row collate)
            loader = _TensorBatches(train_data, sampler, self.batch_size)
        else:
            loader = DataLoader(train_data, batch_size=self.batch_size, sampler=sampler)
        val_loader = None
        if val_data is not None:
            val_data = _as_dataset(val_data)
            val_loader = val_data if isinstance(val_data, IterableDataset) else DataLoader(
                val_data, batch_size=self.batch_size)

        self.history, self._best, self.best_epoch, self._bad_epochs = [], None, None, 0
        self.stopped_early = False
        start, best_state = 0, None
        if self.resume and (self.checkpoint_dir / CHECKPOINT_NAME).is_file():
            start, best_state = self._load(optimizers, schedulers, scaler, device)
        synced = {name: _SyncedOptimizer(opt, self.world, self._comm_device, self.grad_clip)
                  for name, opt in optimizers.items()}

        if self.stopped_early:  # the checkpointed run had already finished
            start = self.max_epochs
        bar = tqdm(range(start, self.max_epochs), initial=start, total=self.max_epochs,
                   desc="training", unit="epoch", disable=not self.progress or self.rank != 0)
        for epoch in bar:
            for ordered in (sampler, train_data):
                if hasattr(ordered, "set_epoch"):
                    ordered.set_epoch(epoch)
            self.model.train()
            sums: dict[str, list] = {}  # name -> [total, count]
            n_rows = n_batches = 0  # a stream's on this rank in this epoch, for the check below
            for b, batch in enumerate(loader):
                if streamed:
                    n_rows, n_batches = n_rows + _batch_rows(batch), n_batches + 1
                batch = _to(batch, device)
                step = Step(epoch, b, n_stream_batches if streamed else len(loader), n_train,
                            self.seed, self.rank, self.world)
                if self.step_fn is not None:
                    logged = self.step_fn(self.model, batch, step, synced)
                else:
                    logged = {"loss": self._loss_step(wrapped, batch, step, optimizers[None],
                                                      scaler, device, use_amp)}
                for name, value in logged.items():
                    value = float(value)
                    if not np.isfinite(value):
                        raise FloatingPointError(
                            f"the {name} became {value} at epoch {epoch}, batch {b}. Lower the "
                            "learning rate or set grad_clip."
                        )
                    total = sums.setdefault(name, [0.0, 0])
                    total[0], total[1] = total[0] + value, total[1] + 1
            if streamed and (n_rows, n_batches) != (n_stream_rows, n_stream_batches):
                raise ValueError(
                    f"epoch {epoch} of the stream yielded {n_batches} batches of {n_rows} rows "
                    f"in all, but it holds {n_stream_batches} batches of {n_stream_rows} rows "
                    "(declared by its n_batches and n_rows, or counted before the first epoch). "
                    "A stream must yield the same number of rows and batches in every epoch.")
            for scheduler in schedulers.values():
                if scheduler is not None:
                    scheduler.step()
            record = {"epoch": epoch}
            for name in sorted(sums):
                record[name] = self._reduce_mean(*sums[name], device)
            monitored = record.get("loss")
            if val_loader is not None:
                record["val"] = monitored = self._validate(wrapped, val_loader, n_train, device)
            self.history.append(record)
            if monitored is None:  # a step function without validation: nothing to monitor
                pass
            elif self._improved(monitored):
                self._best, self.best_epoch, self._bad_epochs = monitored, epoch, 0
                if self.patience is not None and self.restore_best:
                    best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                self._bad_epochs += 1
            self.stopped_early = self.patience is not None and self._bad_epochs >= self.patience
            if self.checkpoint_dir is not None:
                self._save(epoch, optimizers, schedulers, scaler, best_state, device)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
            if self.stopped_early:
                break
        bar.close()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return self


__all__ = ["Step", "Trainer"]
