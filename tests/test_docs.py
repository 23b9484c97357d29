"""The documentation builds and its examples run: ``mkdocs build --strict`` passes, every ```python block of
README.md and of docs/*.md runs as written in a fresh interpreter, and the README stays short.

A block preceded by the line ``<!-- no-test -->`` is a fragment (it names things the reader brings) and is not run.
Each block runs in its own empty working directory, so the files it writes land there.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
README_MAX_CHARS = 12_000
BLOCK_TIMEOUT_S = 120
NO_TEST = "<!-- no-test -->"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(line, code, skipped) of every ```python block of a Markdown file; skipped: marked ``<!-- no-test -->``."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip().splitlines()
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1), bool(before) and before[-1].strip() == NO_TEST))
    return out


BLOCKS = [pytest.param(p, code, id=f"{p.relative_to(ROOT)}:{line}")
          for p in PAGES for line, code, skipped in python_blocks(p) if not skipped]


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert n <= README_MAX_CHARS, f"README.md has {n} characters; keep it under {README_MAX_CHARS} (move text to docs/)"


def test_few_blocks_are_skipped():
    blocks = [b for p in PAGES for b in python_blocks(p)]
    skipped = sum(b[2] for b in blocks)
    assert len(blocks) >= 10 and skipped <= 5, (len(blocks), skipped)


def test_mkdocs_build_is_strict_clean(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").exists()


@pytest.mark.parametrize("path, code", BLOCKS)
def test_python_block_runs(path, code, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=BLOCK_TIMEOUT_S, env=env)
    assert r.returncode == 0, f"{path.name}: the block failed:\n{code}\n--- stderr ---\n{r.stderr[-4000:]}"
