"""The torch-backed scikit-learn estimator base shared by every classical bayesdl model.

Contract (scikit-learn's "Rolling your own estimator"): ``__init__`` only stores parameters,
``fit`` validates and returns ``self``, fitted state ends in ``_``. This mixin adds the three
parameters every bayesdl estimator has (``device``, ``dtype``, ``random_state``), input
validation through scikit-learn's utilities (so the error messages name the problem and the
fix: NaN/inf, wrong ndim, empty input, too few samples, feature-count mismatch), and the
numpy <-> torch conversion at the boundary. Computation happens in torch on ``device``;
scikit-learn-facing methods return numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import torch
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_random_state, validate_data

from .io import Persistable

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class TorchEstimatorMixin(Persistable):
    """Device, dtype and random-state handling plus validated numpy <-> torch conversion.

    Subclasses list ``**TorchEstimatorMixin._parameter_constraints`` in their own
    ``_parameter_constraints`` and call ``self._validate_params()`` at the start of ``fit``.
    """

    _parameter_constraints: dict = {
        "device": [str, torch.device],
        "dtype": [StrOptions(set(_DTYPES))],
        "random_state": ["random_state"],
    }

    # -- parameters -------------------------------------------------------------------------
    @property
    def _torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]

    @property
    def _numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def _torch_device(self) -> torch.device:
        try:
            device = torch.device(self.device)
        except RuntimeError as e:
            raise ValueError(f"device={self.device!r} is not a torch device: {e}") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} was requested but torch sees no CUDA GPU here. "
                "Use device='cpu'."
            )
        return device

    def _torch_generator(self, random_state=None) -> torch.Generator:
        """A torch generator on ``device`` seeded from ``random_state`` (or the estimator's)."""
        rng = check_random_state(self.random_state if random_state is None else random_state)
        gen = torch.Generator(device=self._torch_device)
        gen.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        return gen

    # -- validation and conversion ----------------------------------------------------------
    def _validate_X(self, X, *, reset: bool, min_samples: int = 1) -> np.ndarray:
        """Validate ``X`` as a finite 2-D float array of the estimator's dtype."""
        return validate_data(
            self, _host(X), reset=reset, dtype=self._numpy_dtype, ensure_min_samples=min_samples
        )

    def _validate_X_y(self, X, y, *, reset: bool = True, min_samples: int = 1,
                      y_numeric: bool = True):
        """Validate ``X`` (2-D) and a 1-D target ``y``.

        A numeric target (regression) is cast to the estimator's dtype; with
        ``y_numeric=False`` (class labels) ``y`` keeps its own dtype.
        """
        X, y = validate_data(
            self,
            _host(X),
            _host(y, "y"),
            reset=reset,
            dtype=self._numpy_dtype,
            y_numeric=y_numeric,
            ensure_min_samples=min_samples,
        )
        return X, (y.astype(self._numpy_dtype, copy=False) if y_numeric else y)

    def _to_torch(self, array) -> torch.Tensor:
        """A numpy array (or tensor) as a tensor of the estimator's dtype on its device.

        Shares memory with ``array`` when dtype and device allow: read-only inputs (memory
        maps) are fine since bayesdl never writes into its inputs.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(array, dtype=self._torch_dtype, device=self._torch_device)

    @staticmethod
    def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()


class DenseDataRequired(TypeError, ValueError):
    """Sparse input given to a model that computes on dense arrays.

    Both a ``TypeError`` (what scikit-learn raises for it) and a ``ValueError`` (what bayesdl
    raises for bad input), so either ``except`` catches it.
    """


def check_dense(X, name: str = "X"):
    """Return ``X`` unchanged, or refuse a sparse matrix or tensor with the fix in one line."""
    if scipy.sparse.issparse(X):
        fix = f"{name}.toarray()"
    elif isinstance(X, torch.Tensor) and X.layout != torch.strided:
        fix = f"{name}.to_dense()"
    else:
        return X
    raise DenseDataRequired(
        f"{name} is a sparse {type(X).__name__}; bayesdl estimators need dense data: convert it "
        f"with {fix} (it must fit in memory as a dense array).")


def _host(a, name: str = "X"):
    """Move a torch tensor to host numpy so scikit-learn's validators can read it."""
    a = check_dense(a, name)
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return a

