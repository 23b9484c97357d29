"""Shared by the make_0N_*.py generators: execute a notebook at full size and write it with its outputs.

The executed notebook is written to notebooks/ (what the test suite re-executes in its reduced mode);
docs/notebooks/ holds links to these files, which the documentation site renders without executing them again.
"""

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
QUICK_ENV = "JR_JAX_NOTEBOOK_QUICK"   # set to 1 by the test suite: shorter runs that check the same statements
QUICK_CELL = ("import os\n\n"
              f"# {QUICK_ENV}=1 (set by the test suite) runs shorter versions that check the same statements\n"
              f"QUICK = os.environ.get('{QUICK_ENV}') == '1'\n")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def execute_and_write(nb: nbformat.NotebookNode, name: str) -> None:
    """Execute ``nb`` at full size (cwd = repo root) and write notebooks/NAME.

    MPLBACKEND is unset for the kernel so that it uses the inline backend and the figures are embedded as PNG.
    """
    env = {k: os.environ.get(k) for k in (QUICK_ENV, "MPLBACKEND")}
    os.environ.pop(QUICK_ENV, None)
    os.environ.pop("MPLBACKEND", None)
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
        print(f"{name}: executed in {time.perf_counter() - t0:.0f} s")
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for cell in nb.cells:   # execution timestamps and ids change on every run and only add noise to diffs
        cell.get("metadata", {}).pop("execution", None)
    path = ROOT / "notebooks" / name
    nbformat.write(nb, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
