"""The checkpoint store: one folder of resumable work, shared by ``simulate``, ``sweep``, ``fit`` and the CLI.

A store holds ``spec.json`` (what fixes the numbers: a second call with another specification is refused and changes
nothing), data files written atomically (``.npz``), and ``manifest.json``, the list of finished files with their
SHA-256 and metadata. The manifest is written last, so a file that it does not list (a write killed half-way) is
never read; a listed file whose bytes no longer match its checksum is named in a :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np

SPEC = "spec.json"
MANIFEST = "manifest.json"
LOCK = ".lock"


class StoreError(OSError):
    """A file in a checkpoint folder is missing, damaged or not what the manifest says."""


def digest(tree) -> str:
    """A SHA-256 of a pytree's structure, leaf shapes and values (as float64)."""
    h = hashlib.sha256()
    h.update(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf, np.float64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """``write(file object)`` into a fresh temporary file beside ``path``, then rename it over ``path``: a reader
    sees the old file or the new one, never half of one (the temporary name is unique, so writers never collide)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StoreError(f"{path} is damaged (not valid JSON: {err}); delete the folder to start again.") from None


def stored_spec(path) -> dict | None:
    """The specification stored in the folder ``path``, or None where there is none (yet)."""
    spec = None if path is None else Path(path) / SPEC
    return _read_json(spec) if spec is not None and spec.exists() else None


class CheckpointStore:
    """A folder of resumable work (see the module docstring).

    ``spec``: a JSON-able dict of everything that fixes the results. Opening a folder that holds a different one
    raises ``error`` (a ``ValueError`` subclass of the caller's) naming the keys that differ, and writes nothing.
    ``what`` names the work in messages ("run", "sweep", "fit").
    """

    def __init__(self, path, spec: dict, *, error: type = ValueError, what: str = "job"):
        self.path = Path(path)
        self.what = what
        self.path.mkdir(parents=True, exist_ok=True)
        spec = json.loads(json.dumps(spec))
        with self._locked():
            old = stored_spec(self.path)
            if old is None:
                _atomic_write(self.path / SPEC, lambda fh: fh.write(json.dumps(spec, indent=1, sort_keys=True).encode()))
            else:
                diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
                if diff:
                    details = "; ".join(f"{k}: stored {old.get(k)!r}, now {spec.get(k)!r}" for k in diff[:6])
                    raise error(f"{self.path} holds a different {what} (differs in {diff}: {details}). Nothing was "
                                f"overwritten: use another folder, or delete this one to start again.")
        self.spec = spec

    @contextlib.contextmanager
    def _locked(self):
        """An exclusive lock on the folder while the manifest or spec is read and rewritten (several writers)."""
        with open(self.path / LOCK, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def manifest(self) -> dict:
        """``{name: metadata}`` of the finished files (each metadata has its ``sha256``)."""
        path = self.path / MANIFEST
        return _read_json(path) if path.exists() else {}

    def __contains__(self, name: str) -> bool:
        return name in self.manifest()

    def meta(self, name: str) -> dict:
        """The metadata stored with ``name`` (a ``KeyError`` where it is not finished)."""
        return self.manifest()[name]

    def load(self, name: str) -> dict:
        """The arrays of the finished file ``name``, checked against the manifest's checksum."""
        entry = self.meta(name)
        path = self.path / f"{name}.npz"
        if not path.exists():
            raise StoreError(f"{path} is listed in {self.path / MANIFEST} but missing; delete the folder to start "
                             f"again.")
        if _file_sha256(path) != entry["sha256"]:
            raise StoreError(f"{path} is damaged or was replaced (its SHA-256 differs from the manifest's); delete "
                             f"the folder to start again.")
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def save(self, files: dict[str, dict], meta: dict[str, dict] | None = None) -> None:
        """Write ``{name: {array name: array}}`` atomically, then list them in the manifest (with ``meta[name]``)
        in one update: after a crash either all of them count as finished or none does."""
        meta = meta or {}
        entries = {}
        for name, arrays in files.items():
            path = self.path / f"{name}.npz"
            _atomic_write(path, lambda fh, a=arrays: np.savez(fh, **{k: np.asarray(v) for k, v in a.items()}))
            entries[name] = {**meta.get(name, {}), "sha256": _file_sha256(path)}
        with self._locked():
            manifest = self.manifest()
            manifest.update(entries)
            _atomic_write(self.path / MANIFEST,
                          lambda fh: fh.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))
