"""The user guide (docs/guide/) runs as written and every chapter has its four parts.

Each chapter's ```python blocks are run in order as one script (they share a namespace, as a
reader running them one after another does), in a subprocess with a timeout, in a temporary
working directory, with ``MPLBACKEND=Agg`` and one thread. A failing block is reported with the
chapter, the block number and the traceback (which shows the block's own lines). A chapter whose
first line is ``<!-- guide: slow -->`` runs only in the slow suite (``-m slow``).

Every chapter has, in this order, the headings ``## The idea``, ``## Code``, ``## The figure`` and
``## Pitfalls``; the figure section shows at least one ``figures/*.png`` that exists in
docs/guide/figures/ and that the chapter's code writes (by its file name, into the working
directory). The table of contents (docs/guide/README.md) lists every chapter in file order.

To regenerate the figures after editing a chapter, run the chapter and copy what it writes::

    PYTHONPATH=$PWD python tests/test_guide.py 07-kmeans-gmm-em.md   # no names: every chapter
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide"
INDEX = GUIDE / "README.md"
CHAPTERS = sorted(p for p in GUIDE.glob("*.md") if p != INDEX)
PARTS = ("The idea", "Code", "The figure", "Pitfalls")  # the level-2 headings, in this order
SLOW_MARK = "<!-- guide: slow -->"
TIMEOUT_S = 900  # catches a hang; a default chapter takes seconds

# Runs the blocks (a JSON list) of one chapter in one namespace; on an exception it prints the
# traceback, with each block registered in linecache so the traceback shows the block's lines.
_RUNNER = """
import json, linecache, sys, traceback
chapter, blocks = sys.argv[1], json.load(open(sys.argv[2]))
namespace = {"__name__": "__main__"}
for i, code in enumerate(blocks, 1):
    name = f"{chapter}, python block {i}"
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        exec(compile(code, name, "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"GUIDE FAILURE: {chapter}, python block {i} of {len(blocks)} raised (traceback above)")
"""


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a chapter, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def figure_links(text: str) -> list[str]:
    """The ``figures/NAME.png`` images a chapter shows."""
    return re.findall(r"!\[[^\]]*\]\((figures/[^)\s]+\.png)\)", text)


def is_slow(chapter: Path) -> bool:
    return chapter.read_text().splitlines()[0].strip() == SLOW_MARK


def run_chapter(chapter: Path, workdir: Path) -> subprocess.CompletedProcess:
    """Run every python block of ``chapter`` as one script with ``workdir`` as working directory."""
    blocks = workdir / ".guide_blocks.json"
    blocks.write_text(json.dumps(python_blocks(chapter.read_text())))
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", _RUNNER, chapter.name, str(blocks)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def _chapter_params():
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if is_slow(c) else []) for c in CHAPTERS]


@pytest.mark.parametrize("chapter", _chapter_params())
def test_chapter_code_runs_and_writes_its_figures(chapter, tmp_path):
    done = run_chapter(chapter, tmp_path)
    assert done.returncode == 0, f"{chapter.name} failed:\n{done.stderr[-6000:]}"
    for link in figure_links(chapter.read_text()):
        assert (tmp_path / Path(link).name).is_file(), (
            f"{chapter.name} shows {link} but its code does not write {Path(link).name}")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_chapter_has_the_four_parts(chapter):
    text = chapter.read_text()
    number = chapter.name.split("-")[0].lstrip("0")  # 01-... -> "# 1. Title"
    title = next(line for line in text.splitlines() if line.startswith("# "))
    assert title.startswith(f"# {number}. "), f"{chapter.name}: the title must start with '# {number}. '"
    headings = re.findall(r"^## (.+)$", text, re.M)
    found = [next((h for h in headings if h.startswith(part)), None) for part in PARTS]
    assert None not in found, f"{chapter.name} lacks the parts {[p for p, h in zip(PARTS, found) if h is None]}"
    positions = [headings.index(h) for h in found]
    assert positions == sorted(positions), f"{chapter.name}: the parts must come in the order {PARTS}"
    sections = re.split(r"^## ", text, flags=re.M)
    figure_section = next(s for s in sections if s.startswith("The figure"))
    assert figure_links(figure_section), f"{chapter.name}: 'The figure' shows no figures/*.png"
    pitfalls = next(s for s in sections if s.startswith("Pitfalls"))
    assert len(re.findall(r"^- ", pitfalls, re.M)) >= 2, f"{chapter.name}: list at least two pitfalls"
    assert python_blocks(text), f"{chapter.name} has no ```python block"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_every_figure_a_chapter_shows_exists(chapter):
    for link in figure_links(chapter.read_text()):
        assert (GUIDE / link).is_file(), f"{chapter.name} shows {link}, which is not in docs/guide/figures/"


def test_table_of_contents_lists_every_chapter_in_order():
    linked = re.findall(r"\]\(([^)\s]+\.md)\)", INDEX.read_text())
    listed = [name for name in linked if (GUIDE / name) in CHAPTERS]
    assert listed == [c.name for c in CHAPTERS], "docs/guide/README.md must list every chapter, in file order"


def test_a_failing_block_names_the_chapter_the_block_and_the_line(tmp_path):
    chapter = tmp_path / "99-broken.md"
    chapter.write_text("```python\nx = 1\n```\n\ntext\n\n```python\ny = x + 1\nz = y / 0\n```\n")
    done = run_chapter(chapter, tmp_path)
    assert done.returncode != 0
    assert "99-broken.md, python block 2 of 2 raised" in done.stderr
    assert "z = y / 0" in done.stderr and "ZeroDivisionError" in done.stderr


def test_only_a_chapter_that_starts_with_the_slow_mark_is_slow(tmp_path):
    slow, fast = tmp_path / "98-slow.md", tmp_path / "99-fast.md"
    slow.write_text(f"{SLOW_MARK}\n# 98. Slow\n")
    fast.write_text(f"# 99. Fast\n\n{SLOW_MARK}\n")
    assert is_slow(slow) and not is_slow(fast)


def _write_figures(names: list[str]) -> None:
    """Run the named chapters (all when empty) and copy the figures they write into the guide."""
    chosen = [c for c in CHAPTERS if not names or c.name in names]
    for chapter in chosen:
        with tempfile.TemporaryDirectory() as work:
            done = run_chapter(chapter, Path(work))
            print(done.stdout, end="")
            if done.returncode:
                sys.exit(done.stderr)
            for link in figure_links(chapter.read_text()):
                (GUIDE / link).parent.mkdir(exist_ok=True)
                shutil.copyfile(Path(work) / Path(link).name, GUIDE / link)
                print(f"wrote docs/guide/{link}")


if __name__ == "__main__":
    _write_figures(sys.argv[1:])
