"""Connectomes: weights, tract lengths, region labels and centres; loaders (TVB zip, npz) and a generated example.

Convention: ``weights[i, j]`` is the connection *from* region j *to* region i (row = target), as in
Σ_j K_ij S(…_j(t − τ_ij)). Tract lengths are in mm; a conduction speed turns them into delays τ_ij = length_ij / v.
"""

from __future__ import annotations

import bz2
import dataclasses
import importlib.resources
import io
import os
import zipfile
import zlib

import brainunit as u
import numpy as np

from . import data
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


MAX_MEMBER_BYTES = 256 * 2**20
"""The most bytes one file of a connectome zip or folder may hold once decompressed (256 MiB: a float64 weights
matrix of 5792 regions, or TVB's text for several thousand); a larger or growing member is refused unread, so a small
zip that inflates to gigabytes (a zip bomb) cannot fill the memory. Raise it here for a bigger connectome."""

TVB_FILES = ("weights.txt", "tract_lengths.txt", "tract.txt", "centres.txt")
"""The files :func:`load_tvb` reads (``tract.txt`` is the older name of ``tract_lengths.txt``), each also as
``name.bz2`` (bz2-compressed, as in TVB's ``connectivity_68.zip``); others are ignored."""

TVB_SIZES = (66, 68, 76, 96, 192)
"""The region counts of the connectomes in The Virtual Brain's data package (``tvb-data``), read by :func:`tvb`."""

TVB_INSTALL = 'pip install "jr_jax[tvb]"'
"""The install line named when The Virtual Brain's data package is missing."""

NPZ_ARRAYS = ("weights", "lengths_mm", "labels", "centres_mm")
"""The arrays :func:`load_npz` reads (as :meth:`Connectome.save_npz` writes them); others are ignored."""

try:
    from lzma import LZMAError
except ImportError:                  # a Python built without lzma: zipfile then refuses such members itself
    LZMAError = zlib.error
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, LZMAError, EOFError, NotImplementedError, RuntimeError, ValueError,
               OSError)   # a damaged, truncated, encrypted or unsupported member (bz2 raises OSError)


def _too_big(where: str, size: str) -> ValueError:
    return ValueError(f"{where}: {size} bytes uncompressed, over the limit of {MAX_MEMBER_BYTES} bytes "
                      "(jr_jax.connectome.MAX_MEMBER_BYTES); a damaged file or a zip bomb?")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """A zip member's bytes, at most MAX_MEMBER_BYTES: the size the zip states is checked first, and the stream is
    cut one byte past the limit in case the zip understates it."""
    limit = MAX_MEMBER_BYTES
    if info.file_size > limit:
        raise _too_big(where, str(info.file_size))
    try:
        with zf.open(info) as fh:
            raw = fh.read(limit + 1)
    except _ZIP_ERRORS as err:
        raise ValueError(f"{where}: cannot be read, the zip is damaged or unsupported ({err}).") from None
    if len(raw) > limit:
        raise _too_big(where, f"more than {limit}")
    return raw


def _open_zip(path, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError) as err:
        raise ValueError(f"{path}: not a readable zip file ({err}); expected {what}.") from None


def _members(zf: zipfile.ZipFile, path, wanted) -> dict:
    """{wanted base name: ZipInfo} at any folder depth; a name found twice is an error (which one was meant?)."""
    found = {}
    for info in zf.infolist():
        base = os.path.basename(info.filename)
        if base in wanted and not info.is_dir():
            if base in found:
                raise ValueError(f"{path} holds {base} twice ({found[base].filename} and {info.filename}); "
                                 "keep one connectome per zip.")
            found[base] = info
    return found


def _npy(raw: bytes, where: str) -> np.ndarray:
    if not raw.startswith(b"\x93NUMPY"):
        raise ValueError(f"{where}: not a NumPy array (no .npy header).")
    try:
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{where}: not a readable NumPy array ({' '.join(str(err).split())}).") from None


def _numeric(a: np.ndarray, where: str, shape: tuple | None = None, nonneg: bool = True) -> np.ndarray:
    """``a`` as finite float64 of ``shape`` (None: square 2-D), >= 0 if ``nonneg``; the first bad entry is named."""
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{where}: must hold real numbers; got dtype {a.dtype}.")
    if shape is None and (a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1):
        raise ValueError(f"{where}: must be a square (N, N) matrix; got shape {a.shape}.")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{where}: must have shape {shape}; got {a.shape}.")
    a = np.asarray(a, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{where}: {len(bad)} NaN/Inf value(s), the first at index {tuple(int(i) for i in bad[0])}.")
    neg = np.argwhere(a < 0)
    if nonneg and neg.size:
        raise ValueError(f"{where}: must be >= 0; {len(neg)} negative value(s), the first at index "
                         f"{tuple(int(i) for i in neg[0])}.")
    return a


def _connectome(path, weights, lengths, labels, centres) -> Connectome:
    try:
        return Connectome(weights, lengths, labels, centres)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def load_npz(path) -> Connectome:
    """A connectome from an npz with ``weights`` and optionally ``lengths_mm``, ``labels``, ``centres_mm``. Each array
    is read with the size limit MAX_MEMBER_BYTES and checked (numbers, shape, finite); errors name file and array."""
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            raise ValueError(f"{path}: a .npy file (one array), not an npz; write the connectome with "
                             "Connectome.save_npz or np.savez(path, weights=...).")
    with _open_zip(path, "an npz file of arrays (np.savez)") as zf:
        found = _members(zf, path, [f"{n}.npy" for n in NPZ_ARRAYS])
        arrays = {k[:-4]: _npy(_read_member(zf, info, f"{path}, array {k[:-4]!r}"), f"{path}, array {k[:-4]!r}")
                  for k, info in found.items()}
        if "weights" not in arrays:
            held = sorted(n[:-4] if n.endswith(".npy") else n for n in zf.namelist())
            raise ValueError(f"{path} has no 'weights' array (it has {held}); expected {', '.join(NPZ_ARRAYS)} as "
                             "Connectome.save_npz writes them.")
    w = _numeric(arrays["weights"], f"{path}, array 'weights'")
    n = w.shape[0]
    lengths = centres = None
    if "lengths_mm" in arrays:
        lengths = u.Quantity(_numeric(arrays["lengths_mm"], f"{path}, array 'lengths_mm'", (n, n)), unit=u.mmeter)
    if "centres_mm" in arrays:
        xyz = _numeric(arrays["centres_mm"], f"{path}, array 'centres_mm'", (n, 3), nonneg=False)
        centres = u.Quantity(xyz, unit=u.mmeter)
    labels = arrays.get("labels", np.array([]))
    if labels.size and labels.shape != (n,):
        raise ValueError(f"{path}, array 'labels': must hold one name per region, shape ({n},); got {labels.shape}.")
    return _connectome(path, w, lengths, tuple(labels), centres)


def _bunzip(raw: bytes, where: str) -> bytes:
    """The bytes of bz2 data (all its streams), at most MAX_MEMBER_BYTES once decompressed (a bz2 bomb is cut)."""
    out, rest = b"", raw
    while rest:
        dec = bz2.BZ2Decompressor()
        try:
            out += dec.decompress(rest, max_length=MAX_MEMBER_BYTES + 1 - len(out))
        except (OSError, EOFError, ValueError) as err:
            raise ValueError(f"{where}: not readable bz2 data ({err}).") from None
        if len(out) > MAX_MEMBER_BYTES:
            raise _too_big(where, f"more than {MAX_MEMBER_BYTES}")
        if not dec.eof:
            raise ValueError(f"{where}: truncated bz2 data (the stream does not end).")
        rest = dec.unused_data
    return out


def _unpacked(found: dict, path) -> dict:
    """{TVB_FILES name: (where, bytes)} from {base name: (where, bytes)}, ``name.bz2`` decompressed; a file held both
    plain and compressed is an error."""
    out = {}
    for base, (where, raw) in sorted(found.items()):
        name = base[:-4] if base.endswith(".bz2") else base
        if name in out:
            raise ValueError(f"{path} holds {name} twice ({out[name][0]} and {where}); keep one connectome per zip.")
        out[name] = (where, _bunzip(raw, where) if base.endswith(".bz2") else raw)
    return out


def _tvb_files(path) -> dict:
    """{base name: (where, bytes)} of the files of TVB_FILES (or their .bz2) that a TVB zip (or folder) holds, at any
    depth."""
    out = {}
    wanted = TVB_FILES + tuple(f"{f}.bz2" for f in TVB_FILES)
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in sorted(set(files) & set(wanted)):
                where = os.path.join(root, f)
                if f in out:
                    raise ValueError(f"{path} holds {f} twice ({out[f][0]} and {where}); keep one connectome per "
                                     "folder.")
                if os.path.getsize(where) > MAX_MEMBER_BYTES:
                    raise _too_big(where, str(os.path.getsize(where)))
                with open(where, "rb") as fh:
                    out[f] = (where, fh.read(MAX_MEMBER_BYTES + 1))
                if len(out[f][1]) > MAX_MEMBER_BYTES:
                    raise _too_big(where, f"more than {MAX_MEMBER_BYTES}")
        return _unpacked(out, path)
    with _open_zip(path, "TVB's connectivity zip (weights.txt, tract_lengths.txt, centres.txt) or its folder") as zf:
        for base, info in _members(zf, path, wanted).items():
            where = f"{path}, member {info.filename}"
            out[base] = (where, _read_member(zf, info, where))
    return _unpacked(out, path)


def _centres(where: str, raw: bytes, n: int):
    """(labels, centres in mm) from TVB's centres.txt, one ``label x y z`` line per region; further columns (TVB's
    ``connectivity_66.zip`` ends each line with ``None``) are ignored, as TVB reads only the first four."""
    text = data.decode_text(raw, where)
    rows = [(i, r) for i, line in enumerate(text.splitlines(), 1) if (r := line.split("#", 1)[0].split())]
    xyz = np.empty((len(rows), 3))
    for k, (i, r) in enumerate(rows):
        try:
            if len(r) < 4:
                raise ValueError
            xyz[k] = [float(x) for x in r[1:4]]
        except ValueError:
            raise ValueError(f"{where}, line {i}: expected 'label x y z' with x, y, z in mm; got {' '.join(r)!r}.") \
                from None
        if not np.all(np.isfinite(xyz[k])):
            raise ValueError(f"{where}, line {i}: a coordinate is NaN or Inf.")
    if len(rows) != n:
        raise ValueError(f"{where}: {len(rows)} region(s), but weights.txt has {n}.")
    return tuple(r[0] for _, r in rows), xyz


def load_tvb(path) -> Connectome:
    """A connectome in The Virtual Brain's layout: a zip (or directory) with ``weights.txt``, ``tract_lengths.txt``
    (mm; ``tract.txt`` in older files) and ``centres.txt`` (one ``label x y z`` line per region, mm); the last two
    are optional, and each may be bz2-compressed (``weights.txt.bz2``). Members are read with the size limit MAX_MEMBER_BYTES; every error names the file and the member
    (and the line, for text that is not a table of finite numbers)."""
    files = _tvb_files(path)
    if "weights.txt" not in files:
        raise ValueError(f"{path} holds no weights.txt; expected TVB's connectivity layout "
                         f"({', '.join(TVB_FILES)}, at any folder depth).")
    where, raw = files["weights.txt"]
    w = _numeric(data.parse_matrix(raw, where), where)
    n = w.shape[0]
    lengths = None
    for name in ("tract_lengths.txt", "tract.txt"):      # the current and the older TVB name
        if name in files:
            where, raw = files[name]
            lengths = u.Quantity(_numeric(data.parse_matrix(raw, where), where, (n, n)), unit=u.mmeter)
            break
    labels, centres = (), None
    if "centres.txt" in files:
        labels, xyz = _centres(*files["centres.txt"], n)
        centres = u.Quantity(xyz, unit=u.mmeter)
    return _connectome(path, w, lengths, labels, centres)


def tvb_file(*parts: str):
    """A file of The Virtual Brain's data package ``tvb-data`` (an importlib.resources Traversable), e.g.
    ``tvb_file("connectivity", "connectivity_76.zip")``; a ModuleNotFoundError names the install line if the package
    is missing. Nothing is downloaded: the data ship with the package."""
    try:
        root = importlib.resources.files("tvb_data")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"The Virtual Brain's data package (tvb-data) is not installed; it holds the "
                                  f"connectomes and the EEG lead field. Install it with {TVB_INSTALL} "
                                  "(or pip install tvb-data).", name="tvb_data") from None
    return root.joinpath(*parts)


def tvb(n_regions: int) -> Connectome:
    """The Virtual Brain's connectome of ``n_regions`` regions (one of TVB_SIZES: 66, 68, 76, 96, 192) from the
    installed ``tvb-data`` package (``pip install "jr_jax[tvb]"``), read with :func:`load_tvb`: weights, tract
    lengths (mm), labels and centres (mm)."""
    if isinstance(n_regions, bool) or not isinstance(n_regions, (int, np.integer)) or n_regions not in TVB_SIZES:
        raise ValueError(f"n_regions must be one of the sizes of TVB's connectomes {TVB_SIZES}; got {n_regions!r}.")
    with importlib.resources.as_file(tvb_file("connectivity", f"connectivity_{int(n_regions)}.zip")) as path:
        return load_tvb(path)


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
