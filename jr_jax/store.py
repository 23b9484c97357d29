"""The checkpoint store: one folder of resumable work, shared by ``simulate``, ``sweep``, ``fit`` and the CLI.

A store holds ``spec.json`` (what fixes the numbers: a second call with another specification is refused and changes
nothing), data files (``.npz``) and ``manifest.json``, the list of finished files with their SHA-256 and metadata.
A data file is written under a fresh name and listed in the manifest afterwards, and a file that replaces an
earlier version gets a new name, so a write killed at any point leaves the previous manifest valid: a file it does
not list is never read. Every file also carries the hash of its specification and its own name, so a file that is
missing, truncated, swapped with another or copied from another folder is named in a :class:`StoreError`, never
used; a folder with data but no ``spec.json`` is refused.

Writers: the manifest is read and rewritten under an exclusive ``fcntl.flock`` on ``.lock`` (POSIX advisory locks
from the standard library, released by the kernel when a process dies; they need a local or flock-capable file
system), and temporary files have unique names. A job whose steps depend on each other (a run, a fit) opens its
store with ``exclusive=True``: a second process on the same folder then fails at once with :class:`StoreBusyError`
naming the folder and the process that holds it. A sweep's chunks are pure functions of the specification and
their index, so several processes may fill one sweep folder at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np

SPEC = "spec.json"
MANIFEST = "manifest.json"
LOCK = ".lock"
JOB_LOCK = ".job.lock"
FORMAT = 2
"""The store's format, part of every specification: a folder of another format is refused, never misread."""


class StoreError(OSError):
    """A file in a checkpoint folder is missing, damaged or not what the manifest says."""


class StoreBusyError(StoreError):
    """Another process is running a job in this checkpoint folder."""


SPEC_KEY, NAME_KEY = "_store_spec_sha256", "_store_name"
"""Arrays that every data file carries: the SHA-256 of its specification, and its own name."""


def digest(tree) -> str:
    """A SHA-256 of a pytree's structure, leaf shapes and values (as float64)."""
    h = hashlib.sha256()
    h.update(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf, np.float64))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """``data`` into a fresh temporary file beside ``path``, then renamed over ``path``: a reader sees the old file
    or the new one, never half of one (the temporary name is unique, so writers never collide)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
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

    def __init__(self, path, spec: dict, *, error: type = ValueError, what: str = "job", exclusive: bool = False):
        self.path = Path(path)
        self.what = what
        self._job = None
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not a folder; pass a folder for the {what}'s checkpoints.")
        spec = json.loads(json.dumps({**spec, "store_format": FORMAT}))
        self.spec_sha256 = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        self._check_spec(spec, error)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:          # a parent is a file, or not writable
            raise StoreError(f"{self.path} cannot be created ({err.strerror}); pass a folder for the {what}'s "
                             f"checkpoints that this process can create and write.") from None
        if exclusive:
            self._hold_job()
        with self._locked():            # again under the lock: a process that began beside this one wrote first
            self._check_spec(spec, error)
            if stored_spec(self.path) is None:
                _atomic_write(self.path / SPEC, json.dumps(spec, indent=1, sort_keys=True).encode())
        self.spec = spec

    def _check_spec(self, spec: dict, error: type) -> None:
        """Refuse a folder whose specification differs, or that holds data without one."""
        old = stored_spec(self.path)
        if old is None:
            data = [] if not self.path.is_dir() else sorted(
                p.name for p in self.path.iterdir() if p.suffix == ".npz" or p.name == MANIFEST)
            if data:
                raise StoreError(f"{self.path} holds {', '.join(data[:4])}{' …' if len(data) > 4 else ''} but no "
                                 f"{SPEC}: it cannot be told what they were computed for. Delete them (or the folder) "
                                 f"to start again, or use another folder.")
            return
        diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        if diff:
            details = "; ".join(f"{k}: stored {old.get(k)!r}, now {spec.get(k)!r}" for k in diff[:6])
            raise error(f"{self.path} holds a different {self.what} (differs in {diff}: {details}). Nothing was "
                        f"overwritten: use another folder, or delete this one to start again.")

    def _hold_job(self) -> None:
        """Hold the folder's job lock until :meth:`close`, or fail at once naming the process that holds it."""
        fh = open(self.path / JOB_LOCK, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreBusyError(f"{self.path} is in use by {holder}; wait for it to finish, or use another "
                                 f"folder.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()} on {os.uname().nodename}")
        fh.flush()
        self._job = fh

    def close(self) -> None:
        """Release the job lock (if held)."""
        if self._job is not None:
            self._job.close()
            self._job = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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
        """``{name: metadata}`` of the finished files (each metadata has its ``file`` and ``sha256``)."""
        path = self.path / MANIFEST
        manifest = _read_json(path) if path.exists() else {}
        if not isinstance(manifest, dict) or not all(isinstance(m, dict) and {"file", "sha256"} <= set(m)
                                                     for m in manifest.values()):
            raise StoreError(f"{path} is damaged (not a list of files with their SHA-256); delete the folder to start "
                             f"again.")
        return manifest

    def __contains__(self, name: str) -> bool:
        return name in self.manifest()

    def meta(self, name: str) -> dict:
        """The metadata stored with ``name`` (a ``KeyError`` where it is not finished)."""
        return self.manifest()[name]

    def load(self, name: str) -> dict:
        """The arrays of the finished file ``name``, checked against the manifest's checksum and tags."""
        entry = self.meta(name)
        path = self.path / entry["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{path} is listed in {self.path / MANIFEST} but missing; delete the folder to start "
                             f"again.") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StoreError(f"{path} is damaged or was replaced (its SHA-256 differs from the manifest's); delete "
                             f"the folder to start again.")
        with np.load(io.BytesIO(data)) as z:
            arrays = {k: z[k] for k in z.files}
        spec, own = str(arrays.pop(SPEC_KEY, "")), str(arrays.pop(NAME_KEY, ""))
        if spec != self.spec_sha256 or own != name:
            raise StoreError(f"{path} was computed for {'another specification' if spec != self.spec_sha256 else own!r}"
                             f" (it is not this {self.what}'s {name!r}); delete the folder to start again.")
        return arrays

    def save(self, files: dict[str, dict], meta: dict[str, dict] | None = None) -> None:
        """Write ``{name: {array name: array}}``, then list them in the manifest (with ``meta[name]``) in one
        update: after a crash either all of them count as finished or none does."""
        meta = meta or {}
        entries, listed_now = {}, self.manifest()
        for name, arrays in files.items():
            buf = io.BytesIO()
            np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()}, **{SPEC_KEY: self.spec_sha256,
                                                                              NAME_KEY: name})
            data = buf.getvalue()
            sha = hashlib.sha256(data).hexdigest()
            listed = listed_now.get(name)
            if listed is not None and listed["sha256"] == sha and (self.path / listed["file"]).exists():
                continue                # the same bytes are listed already (another writer of the same chunk)
            # a file that replaces a listed one gets a new name, so the listed one stays valid until the switch
            fname = f"{name}.npz" if listed is None else f"{name}.{sha[:16]}.npz"
            _atomic_write(self.path / fname, data)
            entries[name] = {**meta.get(name, {}), "file": fname, "sha256": sha}
        if not entries:
            return
        with self._locked():
            manifest = self.manifest()
            replaced = {manifest[n]["file"] for n in entries if n in manifest} - {e["file"] for e in entries.values()}
            manifest.update(entries)
            _atomic_write(self.path / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for fname in replaced:          # no longer listed: nothing reads it any more
            with contextlib.suppress(FileNotFoundError):
                (self.path / fname).unlink()
