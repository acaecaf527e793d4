"""The Python examples of docs/guide/11-gaussian-processes.md run as written."""

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "11-gaussian-processes.md"


@pytest.mark.slow  # fits five models, ~30 s
def test_guide_examples_run(capsys, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 6
    monkeypatch.chdir(tmp_path)  # the figure block writes its PNG to the working directory
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {}
    for code in blocks:  # the blocks build on each other, as a reader runs them
        exec(compile(code, str(GUIDE), "exec"), namespace)
    assert namespace["gp"].kernel_.k2.noise_level < 1.0
    assert abs(float(namespace["forecast"][0] + namespace["offset"]) - 389.0) < 5.0
