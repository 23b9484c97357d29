"""Resumable work on disk, shared by simulate, sweep and fit: a specification file, digests, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jax
import numpy as np


def digest(tree) -> str:
    """A SHA-256 of a pytree's structure, leaf shapes and values (as float64)."""
    h = hashlib.sha256()
    h.update(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf, np.float64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def atomic_savez(path, **arrays) -> None:
    """np.savez to a temporary file, then rename: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def stored_spec(out_dir, name: str = "spec.json") -> dict | None:
    """The specification stored in ``out_dir`` by :func:`open_spec_dir`, or None where there is none yet."""
    path = None if out_dir is None else Path(out_dir) / name
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def open_spec_dir(out_dir, spec: dict, error: type, what: str, name: str = "spec.json") -> Path:
    """Create ``out_dir`` with ``spec`` in it, or check that the spec stored there is the same; otherwise raise
    ``error`` naming the keys that differ (nothing on disk is changed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = json.loads(json.dumps(spec))
    spec_path = out_dir / name
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        if diff:
            details = "; ".join(f"{k}: stored {old.get(k)!r}, now {spec.get(k)!r}" for k in diff[:6])
            raise error(f"{out_dir} holds a different {what} (differs in {diff}: {details}). Nothing was "
                        f"overwritten: use another out_dir, or delete this one to start again.")
    else:
        tmp = spec_path.with_name(name + ".tmp")
        tmp.write_text(json.dumps(spec, indent=1, sort_keys=True))
        os.replace(tmp, spec_path)
    return out_dir
