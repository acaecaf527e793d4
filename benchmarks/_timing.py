"""Shared benchmark runner: time bayesdl and its anchor on the same data in one process.

Each callable is warmed up, then run ``repeats`` times; the median wall time is reported.
Ratios are anchor / bayesdl, so a ratio above 1 means bayesdl is faster.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable


def machine() -> str:
    """A one-line description of the machine, for docs/benchmarks.md."""
    import numpy
    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {numpy.__version__}, "
            f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}")


def median_time(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, ours: Callable[[], object], anchor: Callable[[], object], *,
            anchor_name: str, warmup: int = 1, repeats: int = 5) -> dict:
    """Time both callables in this process and print one result line with the ratio."""
    t_ours = median_time(ours, warmup=warmup, repeats=repeats)
    t_anchor = median_time(anchor, warmup=warmup, repeats=repeats)
    ratio = t_anchor / t_ours
    print(f"{name}: bayesdl {t_ours:.4f} s, {anchor_name} {t_anchor:.4f} s, "
          f"ratio {ratio:.2f}x (median of {repeats}, {warmup} warm-up)")
    return {"name": name, "bayesdl_s": t_ours, "anchor_s": t_anchor, "ratio": ratio}
