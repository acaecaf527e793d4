"""What every generative estimator shares: image/row validation, training through the
Trainer, outputs in the training data's shape and range, and saving the network.

A family (VAE, RBM, GAN, DDPM, ...) subclasses :class:`_GenerativeEstimator`, declares the
common parameters below in its ``__init__`` and implements

- ``_build_module()``: the ``nn.Module`` for the fitted shapes (``data_shape_``,
  ``n_classes_``) and the hyper-parameters. The base builds it (seeded, on ``device`` and
  ``dtype``) in :meth:`_new_module` at fit time and again on load, before it loads the saved
  ``state_dict``;
- ``fit``: ``self._validate_params()``, ``x, codes = self._validate_data(X, y, reset=True)``,
  ``self.module_ = self._new_module()``, ``self._train(loss_fn, (x,))``, ``return self``;
- optionally ``_support()``: the value range the model's likelihood is defined on.

Common parameters: ``max_epochs``, ``batch_size``, ``learning_rate``, ``checkpoint_dir``,
``resume``, ``verbose``, ``device``, ``dtype`` (float32 by default: these are deep networks)
and ``random_state``.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from torch import nn

from .._base import TorchEstimatorMixin, _host
from ..train import Trainer


class _GenerativeEstimator(TorchEstimatorMixin, BaseEstimator):
    """Base of the estimator wrappers of :mod:`bayesdl.generative` (not a model itself)."""

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume": ["boolean"],
        "verbose": ["boolean"],
    }

    # -- what a family provides ---------------------------------------------------------------
    def _build_module(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement _build_module().")

    def _support(self) -> tuple[float, float] | None:
        """The closed interval the data must lie in (None: any real value).

        Default [0, 1]: images as intensities, what Bernoulli-type likelihoods model.
        """
        return (0.0, 1.0)

    # -- the network ----------------------------------------------------------------------------
    @property
    def module_(self) -> nn.Module:
        """The fitted network (``nn.Module``)."""
        check_is_fitted(self, "input_shape_")
        return self._module

    @module_.setter
    def module_(self, module: nn.Module) -> None:
        # kept private so that io.get_state (every public attribute ending in "_") never
        # tries to store the module as JSON; _get_state stores its state_dict instead
        self._module = module

    def _seed(self) -> int:
        """An int seed from ``random_state`` (the same one every call for an int state)."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _new_module(self) -> nn.Module:
        """``_build_module()`` initialised from ``random_state``, on ``device`` in ``dtype``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            module = self._build_module()
        return module.to(device=self._torch_device, dtype=self._torch_dtype)

    # -- data -------------------------------------------------------------------------------------
    def _validate_data(self, X, y=None, *, reset: bool, min_samples: int = 2):
        """Check rows ``(N, D)`` or images ``(N, H, W)`` / ``(N, C, H, W)``; return tensors.

        Returns ``(x, codes)``: ``x`` of shape ``(N, *data_shape_)`` on ``device`` in
        ``dtype``; ``codes`` the labels as class indices 0..K-1 (a long tensor) or None.
        """
        X = _host(X)
        if not hasattr(X, "ndim"):  # lists, array-likes that only define __array__
            X = np.asarray(X)
        if X.ndim == 2:
            # rows: scikit-learn's checks (NaN, feature count, feature names, too few rows)
            X = validate_data(self, X, reset=reset, dtype=self._numpy_dtype,
                              ensure_min_samples=min_samples)
        else:
            X = check_array(X, allow_nd=True, dtype=self._numpy_dtype,
                            ensure_min_samples=min_samples)
            if X.ndim not in (3, 4):
                raise ValueError(f"X has shape {X.shape}; give rows (N, D), greyscale images "
                                 "(N, H, W) or images with channels (N, C, H, W).")
        shape = tuple(X.shape[1:])
        if not reset:
            check_is_fitted(self, "input_shape_")
            if shape != tuple(self.input_shape_):
                raise ValueError(
                    f"{type(self).__name__} was fitted on samples of shape "
                    f"{tuple(self.input_shape_)} but X has samples of shape {shape}; resize "
                    "or reshape the data to the training shape.")
        self._check_support(X)
        if reset:
            self.input_shape_ = shape
            # (C, H, W) for images (one channel for greyscale), (D,) for rows
            self.data_shape_ = (1, *shape) if len(shape) == 2 else shape
            self.n_features_in_ = int(np.prod(shape))
            self.data_min_, self.data_max_ = float(X.min()), float(X.max())
        x = self._to_torch(X.reshape(len(X), *self.data_shape_))
        if y is None:
            if reset:  # a refit without labels: the classes of an earlier fit no longer apply
                for name in ("classes_", "n_classes_"):
                    self.__dict__.pop(name, None)
            return x, None
        y = column_or_1d(_host(y, "y"), warn=True)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels.")
        if reset:
            self.classes_ = np.unique(y)
            self.n_classes_ = len(self.classes_)
        return x, self._encode_labels(y)

    def _check_support(self, X: np.ndarray) -> None:
        support = self._support()
        if support is None or X.size == 0:
            return
        lo, hi = support
        x_min, x_max = float(X.min()), float(X.max())
        if x_min < lo or x_max > hi:
            fix = ("images stored as 0-255 intensities: divide by 255 (or use "
                   "bayesdl.datasets.to_unit_interval)" if x_max > 1 and x_min >= 0 else
                   f"rescale the data to [{lo:g}, {hi:g}]")
            raise ValueError(
                f"{type(self).__name__} with these settings models values in [{lo:g}, {hi:g}], "
                f"but X ranges over [{x_min:g}, {x_max:g}]; {fix}.")

    def _encode_labels(self, y) -> torch.Tensor:
        """User labels -> class indices (a long tensor on ``device``), refusing unseen labels."""
        if getattr(self, "classes_", None) is None:
            raise ValueError(f"this {type(self).__name__} was fitted without labels, so it takes "
                             "no y; fit it with fit(X, y) for a class-conditional model.")
        y = np.asarray(y).reshape(-1)
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unseen = np.unique(y[self.classes_[codes] != y]) if len(y) else y
        if len(unseen):
            raise ValueError(f"label(s) {unseen.tolist()[:10]} are not among the classes the "
                             f"model was fitted on: {self.classes_.tolist()}.")
        return torch.as_tensor(codes, dtype=torch.long, device=self._torch_device)

    def _to_symmetric(self, x: torch.Tensor) -> torch.Tensor:
        """The training range [data_min_, data_max_] mapped linearly onto [-1, 1], where GAN
        generators (tanh) and diffusion models work; constant data maps to -1."""
        lo, hi = self._range()
        return (x - lo) / (hi - lo) * 2 - 1

    def _from_symmetric(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_to_symmetric`."""
        lo, hi = self._range()
        return (x + 1) / 2 * (hi - lo) + lo

    def _range(self) -> tuple[float, float]:
        lo, hi = self.data_min_, self.data_max_
        return lo, (hi if hi > lo else lo + 1)

    def _as_output(self, x: torch.Tensor) -> np.ndarray:
        """Model-space samples ``(n, *data_shape_)`` as numpy ``(n, *input_shape_)`` within the
        training data's range ``[data_min_, data_max_]``."""
        out = x.detach().reshape(len(x), *self.input_shape_).clamp(self.data_min_, self.data_max_)
        return out.cpu().numpy().astype(self._numpy_dtype, copy=False)

    # -- training ---------------------------------------------------------------------------------
    def _train(self, loss_fn, data, *, val_data=None, optimizer=None, **trainer_kwargs):
        """Train ``module_`` with :class:`~bayesdl.train.Trainer`; record ``history_``, ``n_iter_``.

        ``optimizer``: ``callable(params) -> Optimizer`` (default Adam at ``learning_rate``).
        ``loss_fn=None`` with ``step_fn=`` and ``optimizers=`` (Trainer's multi-optimiser mode,
        e.g. a GAN) passes those through instead.
        ``checkpoint_dir`` / ``resume`` give atomic per-epoch checkpoints and exact resumption
        (with an int ``random_state``: the data order is a function of the seed).
        """
        n = len(data[0]) if isinstance(data, (tuple, list)) else len(data)
        lr = self.learning_rate
        if loss_fn is not None:  # one optimiser; a step_fn brings its own (optimizers=...)
            trainer_kwargs["optimizer"] = optimizer or (
                lambda params: torch.optim.Adam(params, lr=lr))
        trainer = Trainer(
            self.module_, loss_fn,
            max_epochs=self.max_epochs, batch_size=min(self.batch_size, n), seed=self._seed(),
            checkpoint_dir=self.checkpoint_dir, resume=self.resume, progress=self.verbose,
            device=self._torch_device, amp=False, **trainer_kwargs)
        trainer.fit(data, val_data)
        self.history_ = trainer.history
        self.n_iter_ = len(trainer.history)
        return trainer

    # -- persistence ------------------------------------------------------------------------------
    def _get_state(self):
        json_state, tensors = super()._get_state()
        tensors.update({f"module.{k}": v.detach().cpu().contiguous()
                        for k, v in self.module_.state_dict().items()})
        return json_state, tensors

    def _set_state(self, json_state, tensors):
        own = {k: v for k, v in tensors.items() if not k.startswith("module.")}
        super()._set_state(json_state, own)
        self.module_ = self._new_module()
        self.module_.load_state_dict({k[len("module."):]: v for k, v in tensors.items()
                                      if k.startswith("module.")})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.non_deterministic = self.random_state is None
        return tags
