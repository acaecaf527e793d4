"""Standard global-optimisation test functions with known minima (Surjanovic & Bingham,
"Virtual Library of Simulation Experiments"), for tests, the report and the benchmark.

Each is a ``TestFunction`` with ``fn(x) -> float`` on a list of values, its ``bounds`` and
its global minimum value ``f_min``; simple regret = best value found - f_min.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TestFunction:
    name: str
    fn: Callable
    bounds: list
    f_min: float

    __test__ = False  # not a pytest class


def _branin(x):
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(x):
    x = np.asarray(x, dtype=float)
    return float(-_H6_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(1)))


def _ackley(x):
    x = np.asarray(x, dtype=float)
    d = x.size
    return float(-20 * np.exp(-0.2 * np.sqrt((x ** 2).sum() / d))
                 - np.exp(np.cos(2 * np.pi * x).sum() / d) + 20 + math.e)


BRANIN = TestFunction("Branin", _branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729738)
HARTMANN6 = TestFunction("Hartmann-6", _hartmann6, [(0.0, 1.0)] * 6, -3.32236801141551)
ACKLEY5 = TestFunction("Ackley-5", _ackley, [(-32.768, 32.768)] * 5, 0.0)
