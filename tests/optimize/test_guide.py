"""The Python examples of docs/guide/11b-bayesian-optimisation.md run as written."""

import os
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "11b-bayesian-optimisation.md"


@pytest.mark.slow  # 37 BO suggestions, ~40-75 s on a loaded 2-core machine
def test_guide_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 3
    namespace = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for code in blocks:
            exec(compile(code, str(GUIDE), "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["res"].fun - namespace["BRANIN"].f_min < 1.0
    best = namespace["again"].result()
    assert best.x[1] != 6 and best.fun < 1.0
    assert len(namespace["again"].func_vals) == 24
