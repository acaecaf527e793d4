"""``bayesdl demo`` stays fast enough to grow: its CPU time (not wall time, which depends on
what else the machine runs) on one thread, against the budget of issue 13: under a minute
for ``--quick`` and under three minutes in full on 2 cores, with room left for ~4 more
sections of ~25 s each."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cpu_seconds_of_demo(out, *flags) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run([sys.executable, "-m", "bayesdl", "demo", "--out", str(out), *flags],
                         capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert run.returncode == 0, run.stdout + run.stderr
    # progress, one line per section as it starts and as it ends
    assert run.stdout.count("[bayesdl demo]") >= 2 * 8
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.slow
def test_quick_demo_leaves_room_in_its_minute(tmp_path):
    assert _cpu_seconds_of_demo(tmp_path, "--quick") < 40


@pytest.mark.slow
def test_full_demo_leaves_room_in_its_three_minutes(tmp_path):
    assert _cpu_seconds_of_demo(tmp_path) < 90
