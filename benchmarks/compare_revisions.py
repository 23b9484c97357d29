"""jr_jax at two revisions, side by side on workloads W1–W4 of ``benchmarks/peers.py`` (defined there), run alternately.

Each side runs ``peers.py --child jr_jax W`` of its own revision in a fresh process (its own jr_jax on
``PYTHONPATH``), old then new, ``--pairs`` times per workload, so that a drift of the machine hits both alike; the
table gives the median of the per-run medians and the ratio new / old. Run (the cores otherwise idle):

    python benchmarks/compare_revisions.py OLD_REV [--new NEW_REV] [--pairs 3] [W1 W2 W3 W4]

``NEW_REV`` defaults to the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout(rev: str, into: Path) -> Path:
    """A detached worktree of ``rev`` (removed by the caller's temporary folder)."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), rev], check=True,
                   capture_output=True)
    return into


def run_child(tree: Path, workload: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, str(tree / "benchmarks" / "peers.py"), "--child", "jr_jax", workload],
                         capture_output=True, text=True, env=dict(env, PYTHONPATH=str(tree)), timeout=1800)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1]) if lines else {"error": out.stderr[-500:]}
    if "error" in res:
        raise RuntimeError(f"{tree} {workload}: {res['error']}")
    results = res["results"]
    return {workload: results} if "median_s" in results else results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("--new", default=None, help="revision (default: the working tree)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("workloads", nargs="*", default=["W1", "W2", "W3", "W4"])
    args = ap.parse_intermixed_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = checkout(args.old, Path(tmp) / "old")
        new = ROOT if args.new is None else checkout(args.new, Path(tmp) / "new")
        env = dict(os.environ)
        if "W4" in args.workloads:       # the connectome as arrays, as peers.py hands it to every system
            import brainunit as u
            import numpy as np

            sys.path.insert(0, str(ROOT / "benchmarks"))
            import peers
            from jr_jax import connectome

            con = connectome.example(peers.W4_REGIONS)
            path = Path(tmp) / "w4.npz"
            np.savez(path, weights=con.weights, lengths_mm=np.asarray(con.lengths.to_decimal(u.mmeter)),
                     centres_mm=np.asarray(con.centres.to_decimal(u.mmeter)))
            env[peers.W4_FILE] = str(path)
        medians: dict = {}
        for w in args.workloads:
            for i in range(args.pairs):
                for side, tree in (("old", old), ("new", new)):
                    for row, r in run_child(tree, w, env).items():
                        medians.setdefault(row, {"old": [], "new": []})[side].append(r["median_s"])
                print(f"  {w}: pair {i + 1} of {args.pairs} done", file=sys.stderr)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)     # the temporary checkouts are gone
    print(f"old = {args.old}, new = {args.new or 'working tree'}; {args.pairs} alternating pairs per workload\n")
    print("| row | old median (s) | new median (s) | new / old | old runs | new runs |")
    print("|---|---|---|---|---|---|")
    for row, m in medians.items():
        o, n = statistics.median(m["old"]), statistics.median(m["new"])
        runs = lambda xs: ", ".join(f"{x:.4f}" for x in xs)  # noqa: E731
        print(f"| {row} | {o:.4f} | {n:.4f} | {n / o:.3f} | {runs(m['old'])} | {runs(m['new'])} |")


if __name__ == "__main__":
    main()
