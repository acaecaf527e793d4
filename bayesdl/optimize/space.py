"""Search spaces for Bayesian optimisation: real, log-scaled, integer and categorical dimensions.

The optimiser works in the unit cube: a real dimension maps affinely to [0, 1], a log-scaled one
affinely in log space, an integer one like a real over [low - 0.5, high + 0.5] (rounded on
decode, so each integer owns an equal share of the cube), and a categorical one to a one-hot
block of width ``len(categories)`` (decoded by the arg-max, so a continuous point of the block
is projected on its nearest vertex).

A space is given as a list of dimensions (scikit-optimize style: ``(low, high)`` tuples, lists
of categories, or :class:`Real`/:class:`Integer`/:class:`Categorical`) or as a dict of named
dimensions (``{"lr": {"type": "real", "low": 1e-4, "high": 1e-1, "log": true}}``, the form of
``bayesdl optimize --space space.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real as RealNumber

import numpy as np


def _log_flag(dim, prior) -> None:
    """Set ``dim.log`` from scikit-optimize's ``prior`` ("uniform" / "log-uniform"), given as
    the keyword or in the place of ``log`` (skopt's third positional argument)."""
    log = dim.log
    if isinstance(log, str):
        log, prior = False, log if prior is None else prior
    if prior is not None:
        if prior not in _PRIORS:
            raise ValueError(f"dimension {dim.name or ''!s} has unknown prior {prior!r}; use "
                             "'uniform' or 'log-uniform'.")
        log = _PRIORS[prior]
    object.__setattr__(dim, "log", bool(log))


_PRIORS = {"uniform": False, "log-uniform": True}


@dataclass(frozen=True)
class Real:
    """A continuous dimension on [low, high], optionally log-scaled (then low > 0).

    ``prior="log-uniform"`` (scikit-optimize's spelling) is the same as ``log=True``.
    """

    low: float
    high: float
    log: bool = False
    name: str | None = None
    prior: str | None = None

    def __post_init__(self):
        _log_flag(self, self.prior)
        object.__setattr__(self, "prior", None)
        _check_bounds(self.low, self.high, self.name)
        object.__setattr__(self, "low", float(self.low))  # plain floats (numpy ones included)
        object.__setattr__(self, "high", float(self.high))
        if self.log and self.low <= 0:
            raise ValueError(f"dimension {self.name or ''!s} is log-scaled so needs low > 0, "
                             f"got low={self.low}; drop log or raise low.")

    width = 1

    def _t(self, v):
        return np.log(v) if self.log else np.asarray(v, dtype=float)

    def encode(self, v) -> np.ndarray:  # (N,) -> (N, 1)
        lo, hi = self._t(self.low), self._t(self.high)
        return ((self._t(np.asarray(v, dtype=float)) - lo) / (hi - lo))[:, None]

    def decode(self, u) -> list:  # (N, 1) -> N values
        lo, hi = self._t(self.low), self._t(self.high)
        t = lo + np.clip(u[:, 0], 0.0, 1.0) * (hi - lo)
        return [float(v) for v in np.clip(np.exp(t) if self.log else t, self.low, self.high)]

    def contains(self, v) -> bool:
        return isinstance(v, RealNumber) and self.low <= v <= self.high

    def value(self, v) -> float:
        """``v`` as a plain float (numpy scalars and ints included)."""
        return float(v)

    def to_config(self) -> dict:
        return {"type": "real", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Integer:
    """An integer dimension low, low + 1, ..., high (optionally log-scaled)."""

    low: int
    high: int
    log: bool = False
    name: str | None = None
    prior: str | None = None

    def __post_init__(self):
        _log_flag(self, self.prior)
        object.__setattr__(self, "prior", None)
        if not (isinstance(self.low, Integral) and isinstance(self.high, Integral)):
            raise ValueError(f"integer dimension {self.name or ''!s} needs integer bounds, "
                             f"got ({self.low!r}, {self.high!r}).")
        _check_bounds(self.low, self.high, self.name)
        object.__setattr__(self, "low", int(self.low))  # plain ints (numpy ones included)
        object.__setattr__(self, "high", int(self.high))
        if self.log and self.low <= 0:
            raise ValueError(f"dimension {self.name or ''!s} is log-scaled so needs low > 0.")

    width = 1

    def _edges(self):
        # Each integer k owns [k - 1/2, k + 1/2] (in log space [log(k-1/2), log(k+1/2)]).
        lo, hi = self.low - 0.5, self.high + 0.5
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def encode(self, v) -> np.ndarray:
        lo, hi = self._edges()
        v = np.asarray(v, dtype=float)
        return (((np.log(v) if self.log else v) - lo) / (hi - lo))[:, None]

    def decode(self, u) -> list:
        lo, hi = self._edges()
        t = lo + np.clip(u[:, 0], 0.0, 1.0) * (hi - lo)
        v = np.round(np.exp(t) if self.log else t)
        return [int(k) for k in np.clip(v, self.low, self.high)]

    def contains(self, v) -> bool:
        """An integer in [low, high]; a whole float such as 3.0 (read from a file) counts."""
        return (isinstance(v, Integral) or (isinstance(v, RealNumber) and float(v).is_integer())
                ) and self.low <= v <= self.high

    def value(self, v) -> int:
        return int(v)

    def to_config(self) -> dict:
        return {"type": "integer", "low": int(self.low), "high": int(self.high), "log": self.log}


@dataclass(frozen=True)
class Categorical:
    """One of a finite list of categories, encoded one-hot."""

    categories: tuple
    name: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "categories", tuple(self.categories))  # a list is fine too
        if len(self.categories) == 0:
            raise ValueError(f"categorical dimension {self.name or ''!s} has no categories; "
                             "give at least one.")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categorical dimension {self.name or ''!s} repeats a category: "
                             f"{list(self.categories)}.")

    @property
    def width(self):
        return len(self.categories)

    def encode(self, v) -> np.ndarray:
        index = [self.categories.index(c) for c in v]
        return np.eye(self.width)[index]  # (N, C)

    def decode(self, u) -> list:
        return [self.categories[k] for k in np.argmax(u, axis=1)]

    def contains(self, v) -> bool:
        return v in self.categories

    def value(self, v):
        """The category itself (as given in ``categories``)."""
        return self.categories[self.categories.index(v)]

    def to_config(self) -> dict:
        return {"type": "categorical", "categories": list(self.categories)}


def _check_bounds(low, high, name):
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"dimension {name or ''!s} needs finite bounds, got ({low}, {high}).")
    if not low < high:
        raise ValueError(f"dimension {name or ''!s} has inverted or empty bounds ({low}, {high}); "
                         "give (low, high) with low < high.")


Dimension = Real | Integer | Categorical
_TYPES = {"real": Real, "integer": Integer, "int": Integer, "categorical": Categorical}


def _dimension(spec, name=None) -> Dimension:
    """One dimension from a Dimension, a dict, or a list/tuple/array read by scikit-optimize's
    rules (``skopt.space.check_dimension``): one entry is a fixed category; two numbers are
    bounds (Integer when both are integers, else Real); ``(low, high, prior[, base])`` with
    prior "uniform" or "log-uniform" is a range (the base of a log-uniform prior does not
    change its distribution); anything else is a list of categories."""
    if isinstance(spec, (Real, Integer, Categorical)):
        return spec if name is None or spec.name == name else _renamed(spec, name)
    if isinstance(spec, dict):
        kind = spec.get("type")
        if kind not in _TYPES:
            raise ValueError(f"dimension {name!r} has unknown type {kind!r}; use one of "
                             "'real', 'integer', 'categorical'.")
        args = {k: v for k, v in spec.items() if k != "type"}
        needed = ["categories"] if _TYPES[kind] is Categorical else ["low", "high"]
        allowed = set(needed) | ({"log", "prior"} if _TYPES[kind] is not Categorical else set())
        if [k for k in needed if k not in args] or set(args) - allowed:
            raise ValueError(f"dimension {name!r} of type {kind!r} takes the keys "
                             f"{sorted(allowed)} (needs {needed}), got {sorted(args)}.")
        if _TYPES[kind] is Categorical:
            return Categorical(tuple(args["categories"]), name=name)
        return _TYPES[kind](args["low"], args["high"], bool(args.get("log", False)), name=name,
                            prior=args.get("prior"))
    if isinstance(spec, (list, tuple, np.ndarray)):
        spec = list(spec.tolist() if isinstance(spec, np.ndarray) else spec)
        bounds = len(spec) >= 2 and all(isinstance(b, RealNumber) and not isinstance(b, bool)
                                        for b in spec[:2])
        prior = len(spec) in (3, 4) and isinstance(spec[2], str) and spec[2] in _PRIORS and (
            len(spec) == 3 or isinstance(spec[3], RealNumber))
        if bounds and (len(spec) == 2 or prior):
            kind = Integer if all(isinstance(b, Integral) for b in spec[:2]) else Real
            return kind(spec[0], spec[1], _PRIORS[spec[2]] if prior else False, name=name)
        return Categorical(tuple(spec), name=name)
    raise ValueError(f"cannot read dimension {name or ''!s} from {spec!r}; give (low, high), a "
                     "list of categories, or a dict with 'type'.")


def _renamed(dim, name):
    fields = dict(vars(dim))
    fields["name"] = name
    return type(dim)(**fields)


class Space:
    """A product of dimensions with an encoding to the unit cube [0, 1]^d.

    Points are lists of values (in dimension order); :meth:`to_dict` names them.
    """

    def __init__(self, dimensions):
        if isinstance(dimensions, Space):
            dimensions = dimensions.dimensions
        if isinstance(dimensions, dict):
            dims = [_dimension(spec, str(name)) for name, spec in dimensions.items()]
        else:
            dims = [_dimension(spec, getattr(spec, "name", None) or f"x{i}")
                    for i, spec in enumerate(dimensions)]
        if not dims:
            raise ValueError("the search space has no dimensions; give at least one.")
        self.dimensions = dims
        self.names = [d.name for d in dims]
        offsets = np.cumsum([0] + [d.width for d in dims])
        self._slices = [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:])]
        self.n_dims = int(offsets[-1])  # width of the encoding

    def __len__(self):
        return len(self.dimensions)

    @property
    def categorical_blocks(self) -> list[slice]:
        return [s for s, d in zip(self._slices, self.dimensions) if isinstance(d, Categorical)]

    def check_point(self, x) -> list:
        """``x`` as a list of plain values (float, int, the category), each checked."""
        x = list(x)
        if len(x) != len(self.dimensions):
            raise ValueError(f"a point needs {len(self.dimensions)} values, got {len(x)}.")
        for v, d in zip(x, self.dimensions):
            if not d.contains(v):
                raise ValueError(f"value {v!r} of {d.name} lies outside its dimension "
                                 f"{d.to_config()}.")
        return [d.value(v) for v, d in zip(x, self.dimensions)]

    def encode(self, points) -> np.ndarray:
        """Points (N lists of values) -> (N, n_dims) in the unit cube."""
        points = [self.check_point(p) for p in points]
        if not points:
            return np.zeros((0, self.n_dims))
        cols = list(zip(*points))
        return np.concatenate([d.encode(list(c)) for d, c in zip(self.dimensions, cols)], 1)

    def decode(self, U) -> list[list]:
        """(N, n_dims) unit-cube array -> N points (integers rounded, categories by arg-max)."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        cols = [d.decode(U[:, s]) for d, s in zip(self.dimensions, self._slices)]
        return [list(p) for p in zip(*cols)]

    def project(self, U) -> np.ndarray:
        """The encoding of the nearest valid point: round integers, snap one-hot blocks."""
        return self.encode(self.decode(U))

    def sample(self, n: int, rng) -> list[list]:
        """n points uniform in the encoded cube (log-uniform on log dimensions)."""
        U = rng.uniform(size=(n, self.n_dims))
        return self.decode(U)

    def to_dict(self, x) -> dict:
        return dict(zip(self.names, x))

    def to_config(self) -> dict:
        return {d.name: d.to_config() for d in self.dimensions}

    @classmethod
    def from_config(cls, config: dict) -> "Space":
        if not isinstance(config, dict):
            raise ValueError("a space file must hold a JSON object of named dimensions, e.g. "
                             '{"lr": {"type": "real", "low": 1e-4, "high": 0.1, "log": true}}.')
        return cls(config)
