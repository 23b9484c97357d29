"""A region-level EEG lead field with its sensors, and The Virtual Brain's 65-sensor EEG projection reduced to regions.

Sensor EEG = L · (y1 − y2): ``L[m, j]`` is what sensor m sees of region j's signal. :func:`tvb_eeg65` builds L from
the ``tvb-data`` package (no download): a 65 × 16384 vertex projection of the 16k cortex, summed (or averaged) over
each region's vertices with TVB's region mapping.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

import numpy as np

from . import connectome as connectomes

REDUCTIONS = ("sum", "mean")
TVB_MAPPED = (76, 192)
"""The region counts with a region mapping of the 16k cortex in ``tvb-data``."""


@dataclasses.dataclass(frozen=True, eq=False)
class LeadField:
    """A lead field from N regions to M sensors.

    matrix: (M, N) float64, sensor EEG per unit of region EEG (y1 − y2): sensor mV per region mV. Its absolute scale
      is that of its source (for :func:`tvb_eeg65`, TVB's gain file, which states no unit); ratios between sensors
      and between regions are what it fixes. Multiply it by a constant to set the sensor amplitude.
    sensors: M unique sensor names.
    positions: (M, 3) sensor positions in metres, in MNE's head frame (x to the right ear, y to the nose, z up).
    regions: N unique region labels (those of the connectome it is meant for).
    The arrays are stored read-only copies.
    """

    matrix: np.ndarray
    sensors: tuple
    positions: np.ndarray
    regions: tuple

    def __post_init__(self):
        m = np.asarray(self.matrix)
        if m.dtype.kind not in "iuf" or m.ndim != 2 or 0 in m.shape:
            raise ValueError(f"matrix must be a non-empty real (M, N) array (sensors × regions); got dtype {m.dtype}, "
                             f"shape {m.shape}.")
        sensors, regions = _names("sensors", self.sensors, m.shape[0]), _names("regions", self.regions, m.shape[1])
        bad = np.argwhere(~np.isfinite(m))
        if bad.size:
            i, j = bad[0]
            raise ValueError(f"matrix must be finite; got {len(bad)} NaN/Inf value(s), the first for sensor "
                             f"{sensors[i]!r} and region {regions[j]!r} (index {(int(i), int(j))}).")
        pos = np.asarray(self.positions)
        if pos.dtype.kind not in "iuf" or pos.shape != (m.shape[0], 3) or not np.all(np.isfinite(pos)):
            raise ValueError(f"positions must be finite (M, 3) = {(m.shape[0], 3)} sensor positions in metres; got "
                             f"dtype {pos.dtype}, shape {pos.shape}.")
        for name, value in (("matrix", m), ("positions", pos)):
            a = np.array(value, dtype=np.float64)
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        object.__setattr__(self, "sensors", sensors)
        object.__setattr__(self, "regions", regions)

    @property
    def n_sensors(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.matrix.shape[1])

    def select(self, sensors) -> LeadField:
        """The lead field of ``sensors`` (names, in the order given): a subset or a reordering."""
        wanted = [sensors] if isinstance(sensors, str) else list(sensors)
        if not wanted:
            raise ValueError("sensors must name at least one sensor; got none.")
        unknown = [s for s in wanted if s not in self.sensors]
        if unknown:
            raise ValueError(f"sensors must be names of this lead field's sensors {list(self.sensors)}; got unknown "
                             f"{unknown}.")
        index = [self.sensors.index(s) for s in wanted]
        return LeadField(self.matrix[index], tuple(wanted), self.positions[index], self.regions)

    def check_regions(self, labels) -> None:
        """A ValueError unless the lead field's regions are ``labels`` (a connectome's), in the same order."""
        labels = tuple(labels)
        if len(labels) != self.n_regions:
            raise ValueError(f"lead_field has {self.n_regions} regions; the connectome has {len(labels)}: build the "
                             "lead field for this connectome.")
        for j, (mine, theirs) in enumerate(zip(self.regions, labels)):
            if mine != theirs:
                raise ValueError(f"lead_field's regions differ from the connectome's labels: the first at index {j}, "
                                 f"{mine!r} in the lead field, {theirs!r} in the connectome.")


def _names(what: str, names, n: int) -> tuple:
    if isinstance(names, str):
        raise ValueError(f"{what} must be a sequence of {n} names; got the string {names!r}.")
    out = tuple(str(x) for x in names)
    if len(out) != n:
        raise ValueError(f"{what} must hold {n} names, one per {'row' if what == 'sensors' else 'column'} of the "
                         f"matrix; got {len(out)}.")
    twice = sorted({x for x in out if out.count(x) > 1})
    if twice:
        raise ValueError(f"{what} must be unique; got {twice} more than once.")
    return out


def reduce_to_regions(projection, mapping, n_regions: int, reduce: str = "sum") -> np.ndarray:
    """A surface projection (M, V) reduced to regions (M, N): column j is the sum (``"sum"``) or the mean
    (``"mean"``) of the columns of the vertices that ``mapping`` (one region index per vertex) assigns to region j.

    ``mapping`` may be longer than V: TVB appends one entry per region without a surface vertex (subcortical regions
    of the 192-region mapping); those entries have no projection column and are ignored. A region without a surface
    vertex gets a zero column. The mapping's indices must lie in [0, n_regions) and name every region."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}.")
    p = np.asarray(projection, dtype=np.float64)
    idx = np.asarray(mapping)
    if p.ndim != 2 or idx.ndim != 1 or len(idx) < p.shape[1]:
        raise ValueError(f"mapping must hold one region index per vertex of the projection (M, V) = {p.shape}; got "
                         f"shape {idx.shape}.")
    if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
        idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"mapping must hold integer region indices; got dtype {idx.dtype}.")
    if idx.min() < 0 or idx.max() >= n_regions:
        raise ValueError(f"mapping must hold region indices in [0, {n_regions}) (the connectome's {n_regions} "
                         f"regions); got values in [{idx.min()}, {idx.max()}].")
    missing = np.setdiff1d(np.arange(n_regions), idx)
    if missing.size:
        raise ValueError(f"mapping names {n_regions - missing.size} of the connectome's {n_regions} regions; regions "
                         f"{missing[:8].tolist()} have no entry: a mapping for another parcellation?")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"projection must be finite; got {int(np.sum(~np.isfinite(p)))} NaN/Inf values.")
    surface = idx[:p.shape[1]]
    out = np.zeros((p.shape[0], n_regions))
    np.add.at(out.T, surface, p.T)
    if reduce == "mean":
        count = np.bincount(surface, minlength=n_regions)
        out = out / np.maximum(count, 1)
    return out


def tvb_eeg65(n_regions: int = 76, reduce: str = "sum") -> LeadField:
    """The EEG lead field of TVB's 65-sensor Brainstorm cap onto TVB's connectome of ``n_regions`` (76 or 192), from
    the installed ``tvb-data`` package (``pip install "jr_jax[tvb]"``).

    The 65 × 16384 surface projection (one dipole per vertex of the 16k cortex, normal to it) is reduced to regions
    with ``regionMapping_16k_{n}.txt`` (:func:`reduce_to_regions`). ``reduce="sum"`` (default, as TVB's EEG monitor
    does): each vertex stands for a patch of cortex carrying the region's current density, so a region's field is
    the superposition of its dipoles, larger regions weigh more and opposed walls of a sulcus cancel. ``"mean"``
    divides by the region's vertex count: a region as one average dipole, whatever its size.

    The file's rows for sensors IO1 and IO2 (infra-orbital, below the eyes) are NaN for every vertex (no gain was
    computed there); those two sensors are dropped, leaving 63. Any other NaN is an error. Regions without a surface
    vertex (the 116 subcortical regions of the 192-region connectome) get zero columns (TVB's monitor gives them an
    analytic spherical-head gain instead; none is invented here). Sensor positions are in metres in MNE's
    head frame (x to the right ear, y to the nose, z up), turned from the file's Brainstorm frame (x to the nose, y
    to the left ear), so that MNE draws their maps the right way round. Note: in TVB's 192-region files the hemisphere prefixes are swapped relative to
    the sensors' frame (``lV1`` lies on the side of O2); the 76-region labels agree with it.
    """
    if isinstance(n_regions, bool) or not isinstance(n_regions, (int, np.integer)) or n_regions not in TVB_MAPPED:
        raise ValueError(f"n_regions must be one of {TVB_MAPPED}, the connectomes that tvb-data maps onto the 16k "
                         f"cortex (connectivity sizes {connectomes.TVB_SIZES} have no such mapping); got {n_regions!r}.")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}; got {reduce!r}.")
    labels = connectomes.tvb(int(n_regions)).labels
    projection, names, positions = _tvb_eeg65_sensors(connectomes.tvb_file("projectionMatrix"))
    mapping = _tvb_mapping(connectomes.tvb_file("regionMapping", f"regionMapping_16k_{int(n_regions)}.txt"))
    try:
        matrix = reduce_to_regions(projection, mapping, len(labels), reduce)
    except ValueError as err:
        raise ValueError(f"tvb-data's regionMapping_16k_{n_regions}.txt and connectivity_{n_regions}.zip disagree: "
                         f"{err}") from None
    return LeadField(matrix, names, positions, labels)


@functools.lru_cache(maxsize=4)
def _tvb_mapping(ref) -> np.ndarray:
    with importlib.resources.as_file(ref) as path:
        out = np.loadtxt(path)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=2)
def _tvb_eeg65_sensors(folder) -> tuple:
    """(projection (63, 16384), sensor names, positions in m) with the all-NaN sensor rows dropped (read once)."""
    with importlib.resources.as_file(folder.joinpath("projection_eeg_65_surface_16k.npy")) as path:
        projection = np.load(path, allow_pickle=False)
    rows = [line.split() for line in connectomes.tvb_file("sensors", "eeg_brainstorm_65.txt").read_text().splitlines()
            if line.strip()]
    if projection.shape[0] != len(rows) or any(len(r) != 4 for r in rows):
        raise ValueError(f"tvb-data: the EEG projection has {projection.shape[0]} rows but eeg_brainstorm_65.txt "
                         f"{len(rows)} 'name x y z' lines.")
    keep = ~np.all(np.isnan(projection), axis=1)
    if not np.all(np.isfinite(projection[keep])):
        raise ValueError("tvb-data: projection_eeg_65_surface_16k.npy has NaN/Inf values outside the two sensor rows "
                         "without gain (IO1, IO2); a changed file?")
    names = tuple(r[0] for r, k in zip(rows, keep) if k)
    bs = np.array([[float(x) for x in r[1:]] for r, k in zip(rows, keep) if k]) * 1e-3
    positions = np.c_[-bs[:, 1], bs[:, 0], bs[:, 2]]     # Brainstorm (x nose, y left) -> MNE head (x right, y nose)
    projection = np.ascontiguousarray(projection[keep])
    projection.flags.writeable = False
    return projection, names, positions
