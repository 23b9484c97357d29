"""Connectomes: weights, tract lengths, region labels and centres; loaders (TVB zip, npz) and a generated example.

Convention: ``weights[i, j]`` is the connection *from* region j *to* region i (row = target), as in
Σ_j K_ij S(…_j(t − τ_ij)). Tract lengths are in mm; a conduction speed turns them into delays τ_ij = length_ij / v.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile

import brainunit as u
import numpy as np

from .units import check_dim


@dataclasses.dataclass(frozen=True, eq=False)
class Connectome:
    """A structural connectome of N regions.

    weights: (N, N) non-negative, ``weights[i, j]`` from j to i (dimensionless).
    lengths: (N, N) tract lengths (Quantity in a length unit) or ``None``.
    labels: N region names.
    centres: (N, 3) region centres (Quantity in a length unit) or ``None``.
    """

    weights: np.ndarray
    lengths: u.Quantity | None = None
    labels: tuple = ()
    centres: u.Quantity | None = None

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"weights must be a square (N, N) matrix; got shape {w.shape}.")
        n = w.shape[0]
        if n < 1:
            raise ValueError("weights must hold at least one region.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and >= 0 (pulse densities add up); got "
                             f"min {np.nanmin(w):.6g}, {int(np.sum(~np.isfinite(w)))} non-finite entries.")
        object.__setattr__(self, "weights", w)
        if self.lengths is not None:
            check_dim("lengths", self.lengths, u.mmeter, "tract_lengths_mm * u.mmeter")
            mm = np.asarray(self.lengths.to_decimal(u.mmeter), dtype=np.float64)
            if mm.shape != (n, n):
                raise ValueError(f"lengths must have the shape of weights {(n, n)}; got {mm.shape}.")
            if not np.all(np.isfinite(mm)) or np.any(mm < 0):
                raise ValueError(f"lengths must be finite and >= 0; got min {np.nanmin(mm):.6g} mm.")
            object.__setattr__(self, "lengths", u.Quantity(mm, unit=u.mmeter))
        labels = tuple(str(x) for x in self.labels) if len(self.labels) else tuple(f"r{i}" for i in range(n))
        if len(labels) != n:
            raise ValueError(f"labels must have one name per region ({n}); got {len(labels)}.")
        object.__setattr__(self, "labels", labels)
        if self.centres is not None:
            check_dim("centres", self.centres, u.mmeter, "xyz_mm * u.mmeter")
            c = np.asarray(self.centres.to_decimal(u.mmeter), dtype=np.float64)
            if c.shape != (n, 3):
                raise ValueError(f"centres must have shape (N, 3) = {(n, 3)}; got {c.shape}.")
            object.__setattr__(self, "centres", u.Quantity(c, unit=u.mmeter))

    @property
    def n_regions(self) -> int:
        return int(self.weights.shape[0])

    def distances(self) -> u.Quantity:
        """Euclidean distances between the centres (mm), (N, N)."""
        if self.centres is None:
            raise ValueError("this connectome has no centres.")
        c = np.asarray(self.centres.to_decimal(u.mmeter))
        return u.Quantity(np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1), unit=u.mmeter)

    def save_npz(self, path) -> None:
        """Write weights, lengths (mm), labels and centres (mm) to ``path`` (read back by :func:`load_npz`)."""
        arrays = {"weights": self.weights, "labels": np.asarray(self.labels)}
        if self.lengths is not None:
            arrays["lengths_mm"] = np.asarray(self.lengths.to_decimal(u.mmeter))
        if self.centres is not None:
            arrays["centres_mm"] = np.asarray(self.centres.to_decimal(u.mmeter))
        np.savez(path, **arrays)


def load_npz(path) -> Connectome:
    """A connectome from an npz with ``weights`` and optionally ``lengths_mm``, ``labels``, ``centres_mm``."""
    with np.load(path, allow_pickle=False) as z:
        if "weights" not in z:
            raise ValueError(f"{path} has no 'weights' array (it has {sorted(z.files)}).")
        return Connectome(z["weights"],
                          u.Quantity(z["lengths_mm"], unit=u.mmeter) if "lengths_mm" in z else None,
                          tuple(z["labels"]) if "labels" in z else (),
                          u.Quantity(z["centres_mm"], unit=u.mmeter) if "centres_mm" in z else None)


def _tvb_files(path) -> dict:
    """{base name: text} of the files of a TVB connectivity zip (or directory), at any folder depth."""
    out = {}
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    out[f] = fh.read()
    else:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if not name.endswith("/"):
                    out[os.path.basename(name)] = z.read(name)
    return out


def _matrix(raw: bytes) -> np.ndarray:
    return np.loadtxt(io.BytesIO(raw), ndmin=2)


def load_tvb(path) -> Connectome:
    """A connectome in The Virtual Brain's layout: a zip (or directory) with ``weights.txt``, ``tract_lengths.txt``
    (mm; ``tract.txt`` in older files) and ``centres.txt`` (one ``label x y z`` line per region, mm); the last two are optional."""
    files = _tvb_files(path)
    if "weights.txt" not in files:
        raise ValueError(f"{path} holds no weights.txt (found {sorted(files)}); expected TVB's connectivity layout.")
    w = _matrix(files["weights.txt"])
    lengths = None
    for name in ("tract_lengths.txt", "tract.txt"):      # the current and the older TVB name
        if name in files:
            lengths = u.Quantity(_matrix(files[name]), unit=u.mmeter)
            break
    labels, centres = (), None
    if "centres.txt" in files:
        rows = [line.split() for line in files["centres.txt"].decode().splitlines() if line.strip()]
        if any(len(r) != 4 for r in rows):
            raise ValueError(f"{path}: centres.txt must have 'label x y z' on every line.")
        labels = tuple(r[0] for r in rows)
        centres = u.Quantity(np.array([[float(x) for x in r[1:]] for r in rows]), unit=u.mmeter)
    return Connectome(w, lengths, labels, centres)


def example(n_regions: int = 16, seed: int = 0) -> Connectome:
    """A small synthetic connectome generated here (no download): two hemispheres of ``n_regions / 2`` regions on
    ellipsoids 70 × 60 × 50 mm, weights exp(−d / 40 mm) between regions of a hemisphere and 0.3·exp(−d / 40 mm)
    across (the homologue pair gets 0.5), symmetric, zero diagonal, scaled so that the largest row sum is 1;
    tract lengths 1.2 × the Euclidean distance (fibres are not straight)."""
    if not isinstance(n_regions, (int, np.integer)) or n_regions < 2 or n_regions % 2:
        raise ValueError(f"n_regions must be an even integer >= 2; got {n_regions!r}.")
    rng = np.random.default_rng(seed)
    half = n_regions // 2
    # quasi-uniform points on a hemi-ellipsoid (x > 0 is the right hemisphere)
    k = np.arange(half) + 0.5
    z = 1 - 2 * k / half
    phi = np.pi * (1 + 5 ** 0.5) * k
    rho = np.sqrt(1 - z ** 2)
    y, x = rho * np.sin(phi), np.abs(rho * np.cos(phi)) + 0.15
    right = np.stack([x * 60, y * 70, z * 50], axis=-1) + rng.normal(0, 2.0, (half, 3))
    left = right * np.array([-1.0, 1.0, 1.0])
    centres = np.concatenate([left, right])
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    same = np.equal.outer(np.arange(n_regions) < half, np.arange(n_regions) < half)
    w = np.exp(-d / 40.0) * np.where(same, 1.0, 0.3)
    homologue = (np.arange(n_regions) + half) % n_regions
    w[np.arange(n_regions), homologue] = 0.5
    np.fill_diagonal(w, 0.0)
    w = w / w.sum(axis=1).max()
    labels = tuple(f"L{i:02d}" for i in range(half)) + tuple(f"R{i:02d}" for i in range(half))
    return Connectome(w, u.Quantity(1.2 * d, unit=u.mmeter), labels, u.Quantity(centres, unit=u.mmeter))
