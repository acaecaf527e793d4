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
            anchor_name: str, warmup: int = 1, repeats: int = 5, interleaved: bool = False) -> dict:
    """Time both callables in this process and print one result line with the ratio.

    ``interleaved`` alternates them (ours, anchor, ours, ...), so that a change in the
    machine's load during the run hits both alike (shared hosts); it also reports the
    medians of the CPU time (``time.process_time``, all threads) of each.
    """
    if not interleaved:
        t_ours = median_time(ours, warmup=warmup, repeats=repeats)
        t_anchor = median_time(anchor, warmup=warmup, repeats=repeats)
        cpu = ""
    else:
        for _ in range(warmup):
            ours(), anchor()
        runs: dict = {"ours": [], "anchor": []}
        for _ in range(repeats):
            for key, fn in (("ours", ours), ("anchor", anchor)):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                runs[key].append((time.perf_counter() - start, time.process_time() - start_cpu))
        t_ours, c_ours = (statistics.median(v) for v in zip(*runs["ours"]))
        t_anchor, c_anchor = (statistics.median(v) for v in zip(*runs["anchor"]))
        cpu = (f"; CPU bayesdl {c_ours:.4f} s, {anchor_name} {c_anchor:.4f} s, "
               f"ratio {c_anchor / c_ours:.2f}x")
    ratio = t_anchor / t_ours
    print(f"{name}: bayesdl {t_ours:.4f} s, {anchor_name} {t_anchor:.4f} s, "
          f"ratio {ratio:.2f}x (median of {repeats}, {warmup} warm-up"
          f"{', interleaved' if interleaved else ''}){cpu}")
    return {"name": name, "bayesdl_s": t_ours, "anchor_s": t_anchor, "ratio": ratio}
