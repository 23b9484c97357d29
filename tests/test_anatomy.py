"""Real anatomy from The Virtual Brain's data package (tvb-data): the connectomes and the 65-sensor EEG lead field.

Every expected value is read here from the package's files with NumPy alone, or is a fact of the data set (sizes,
electrode placement of the 10-20 system), not recomputed by the library's code.
"""

import bz2
import io
import sys
import zipfile
from importlib import resources

import brainunit as u
import jax
import numpy as np
import pytest

from jr_jax import connectome, leadfield, network

TVB = resources.files("tvb_data")
N_VERTICES = 16384                        # cortex_16384: the surface of the projection and of the region mappings
OCCIPITAL = {"O1", "O2", "Oz", "Iz", "POz", "PO3", "PO4"}


def _zip_text(n: int, name: str) -> str:
    """A member of connectivity_{n}.zip, found at any depth, plain or .bz2 (read here with zipfile and bz2)."""
    with zipfile.ZipFile(TVB / "connectivity" / f"connectivity_{n}.zip") as z:
        for member in z.namelist():
            base = member.rsplit("/", 1)[-1]
            if base == name:
                return z.read(member).decode()
            if base == name + ".bz2":
                return bz2.decompress(z.read(member)).decode()
    raise KeyError(name)


def _mapping(n: int) -> np.ndarray:
    return np.loadtxt(TVB / "regionMapping" / f"regionMapping_16k_{n}.txt").astype(int)


def _raw_sensors():
    rows = [line.split() for line in (TVB / "sensors" / "eeg_brainstorm_65.txt").read_text().splitlines()]
    return [r[0] for r in rows], np.array([[float(x) for x in r[1:4]] for r in rows])


@pytest.mark.parametrize("n", [66, 68, 76, 96, 192])
def test_tvb_connectomes_equal_their_files(n):
    con = connectome.tvb(n)
    w = np.loadtxt(io.StringIO(_zip_text(n, "weights.txt")))
    lengths = np.loadtxt(io.StringIO(_zip_text(n, "tract_lengths.txt")))
    centres = [line.split() for line in _zip_text(n, "centres.txt").splitlines() if line.strip()]
    assert w.shape == (n, n) and con.n_regions == n and len(con.labels) == n
    np.testing.assert_array_equal(con.weights, w)
    np.testing.assert_array_equal(np.asarray(con.lengths.to_decimal(u.mmeter)), lengths)
    np.testing.assert_allclose(lengths, lengths.T, rtol=1e-6)          # a tract is as long both ways
    assert con.labels == tuple(r[0] for r in centres)
    np.testing.assert_array_equal(np.asarray(con.centres.to_decimal(u.mmeter)),
                                  np.array([[float(x) for x in r[1:4]] for r in centres]))


def test_tvb_76_has_38_regions_per_hemisphere():
    labels = connectome.tvb(76).labels
    assert sum(lab.startswith("r") for lab in labels) == 38 and sum(lab.startswith("l") for lab in labels) == 38
    assert {"rV1", "lV1", "rV2", "lV2", "rPFCPOL", "lPFCPOL"} <= set(labels)


def test_lead_field_shapes_sensors_and_positions():
    lf = leadfield.tvb_eeg65()
    names, mm = _raw_sensors()
    assert len(names) == 65 and lf.matrix.shape == (63, 76) == (lf.n_sensors, lf.n_regions)
    assert set(names) - set(lf.sensors) == {"IO1", "IO2"}                  # the two rows without gain
    keep = [names.index(s) for s in lf.sensors]
    bs = mm[keep] / 1000.0                                                  # metres, Brainstorm frame
    np.testing.assert_allclose(lf.positions, np.c_[-bs[:, 1], bs[:, 0], bs[:, 2]])   # MNE head frame
    fp1, oz, t8 = (lf.positions[lf.sensors.index(n)] for n in ("Fp1", "Oz", "T8/T4"))
    assert fp1[1] > 0.05 > -0.05 > oz[1] and t8[0] > 0.05                 # nose +y, back −y, right ear +x
    assert lf.regions == connectome.tvb(76).labels
    assert not lf.matrix.flags.writeable


def test_the_nan_of_the_projection_are_the_rows_of_io1_and_io2():
    p = np.load(TVB / "projectionMatrix" / "projection_eeg_65_surface_16k.npy")
    names, _ = _raw_sensors()
    assert p.shape == (65, N_VERTICES)
    nan_rows = np.flatnonzero(np.isnan(p).any(axis=1))
    assert [names[i] for i in nan_rows] == ["IO1", "IO2"] and np.isnan(p[nan_rows]).all()
    assert np.isfinite(np.delete(p, nan_rows, axis=0)).all()


def test_region_mappings_cover_the_connectomes():
    m76 = _mapping(76)
    assert m76.shape == (N_VERTICES,)
    np.testing.assert_array_equal(np.unique(m76), np.arange(76))
    m192 = _mapping(192)
    surface, extra = m192[:N_VERTICES], m192[N_VERTICES:]
    assert len(extra) == 116 and np.unique(m192).size == 192
    np.testing.assert_array_equal(np.sort(extra), np.setdiff1d(np.arange(192), surface))   # one per subcortical
    lf = leadfield.tvb_eeg65(192)
    zero = np.flatnonzero(~np.any(lf.matrix, axis=0))
    np.testing.assert_array_equal(zero, np.sort(extra))


def test_sum_equals_the_vertex_sum_and_mean_divides_by_the_vertex_count():
    p = np.load(TVB / "projectionMatrix" / "projection_eeg_65_surface_16k.npy")
    names, _ = _raw_sensors()
    m = _mapping(76)
    total, mean = leadfield.tvb_eeg65(76, "sum"), leadfield.tvb_eeg65(76, reduce="mean")
    rows = [names.index(s) for s in total.sensors]
    for j in (0, 35, 73):                                                  # rA1, rV1, lV1
        np.testing.assert_allclose(total.matrix[:, j], p[np.ix_(rows, np.flatnonzero(m == j))].sum(axis=1),
                                   rtol=1e-12)
    counts = np.array([np.sum(m == j) for j in range(76)])
    np.testing.assert_allclose(mean.matrix, total.matrix / counts, rtol=1e-12)


def test_the_192_lead_field_is_the_76_one_relabelled():
    small, big = leadfield.tvb_eeg65(76), leadfield.tvb_eeg65(192)
    pairs = set(zip(_mapping(76).tolist(), _mapping(192)[:N_VERTICES].tolist()))
    assert len(pairs) == 76                                                # the same 76 patches of cortex
    for i, j in pairs:
        np.testing.assert_allclose(big.matrix[:, j], small.matrix[:, i], rtol=1e-12)


@pytest.mark.parametrize("region", ["lV1", "rV1", "lV2", "rV2"])
def test_occipital_regions_project_to_occipital_sensors(region):
    lf = leadfield.tvb_eeg65()
    col = np.abs(lf.matrix[:, lf.regions.index(region)])
    at = {s: col[lf.sensors.index(s)] for s in ("O1", "O2", "Oz", "Fp1", "Fp2")}
    assert max(at["O1"], at["O2"], at["Oz"]) > 2 * max(at["Fp1"], at["Fp2"])
    assert lf.sensors[int(np.argmax(col))] in OCCIPITAL


def test_lateral_regions_project_to_their_own_side():
    lf = leadfield.tvb_eeg65()
    a = lambda region, sensor: abs(lf.matrix[lf.sensors.index(sensor), lf.regions.index(region)])   # noqa: E731
    assert a("lV2", "O1") > a("lV2", "O2") and a("rV2", "O2") > a("rV2", "O1")
    assert lf.sensors[int(np.argmax(np.abs(lf.matrix[:, lf.regions.index("lPFCPOL")])))] == "Fp1"
    assert lf.sensors[int(np.argmax(np.abs(lf.matrix[:, lf.regions.index("rPFCPOL")])))] == "Fp2"


def test_select_subsets_and_reorders_sensors():
    lf = leadfield.tvb_eeg65()
    sub = lf.select(["Oz", "Fp1"])
    assert sub.sensors == ("Oz", "Fp1") and sub.n_sensors == 2 and sub.regions == lf.regions
    np.testing.assert_array_equal(sub.matrix, lf.matrix[[lf.sensors.index("Oz"), lf.sensors.index("Fp1")]])
    np.testing.assert_array_equal(sub.positions[1], lf.positions[lf.sensors.index("Fp1")])
    with pytest.raises(ValueError, match=r"unknown \['IO1', 'XX'\]"):
        lf.select(["Oz", "IO1", "XX"])


def test_network_takes_a_lead_field_and_keeps_its_sensor_names():
    con, lf = connectome.tvb(76), leadfield.tvb_eeg65()
    net = network.network(con, coupling=0.1, lead_field=lf)
    assert net.sensor_names == lf.sensors
    np.testing.assert_allclose(np.asarray(net.lead_field), lf.matrix, rtol=1e-6)      # float32 unless x64
    leaves, tree = jax.tree_util.tree_flatten(net)
    assert jax.tree_util.tree_unflatten(tree, leaves).sensor_names == lf.sensors
    assert net.sensors(u.Quantity(jax.numpy.ones((3, 76)), unit=u.mV)).shape == (3, 63)
    assert network.network(con, lead_field=lf.matrix).sensor_names is None


def test_network_refuses_a_lead_field_of_other_regions():
    con, lf = connectome.tvb(76), leadfield.tvb_eeg65()
    swapped = leadfield.LeadField(lf.matrix, lf.sensors, lf.positions, lf.regions[1::-1] + lf.regions[2:])
    with pytest.raises(ValueError, match="index 0, 'rA2' in the lead field, 'rA1' in the connectome"):
        network.network(con, lead_field=swapped)
    with pytest.raises(ValueError, match="lead_field has 192 regions; the connectome has 76"):
        network.network(con, lead_field=leadfield.tvb_eeg65(192))
    bad = np.array(lf.matrix)
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="lead_field must be finite"):
        network.network(con, lead_field=bad)


def test_lead_field_checks_its_fields():
    m, pos = np.ones((2, 3)), np.zeros((2, 3))
    bad = m.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="first for sensor 'b' and region 'z'"):
        leadfield.LeadField(bad, ("a", "b"), pos, ("x", "y", "z"))
    with pytest.raises(ValueError, match=r"sensors must be unique; got \['a'\]"):
        leadfield.LeadField(m, ("a", "a"), pos, ("x", "y", "z"))
    with pytest.raises(ValueError, match="regions must hold 3 names"):
        leadfield.LeadField(m, ("a", "b"), pos, ("x", "y"))
    with pytest.raises(ValueError, match=r"positions must be finite \(M, 3\)"):
        leadfield.LeadField(m, ("a", "b"), np.zeros((3, 3)), ("x", "y", "z"))


def test_unknown_sizes_and_reductions_are_refused():
    with pytest.raises(ValueError, match=r"n_regions must be one of .*\(66, 68, 76, 96, 192\); got 70"):
        connectome.tvb(70)
    with pytest.raises(ValueError, match=r"n_regions must be one of \(76, 192\).*got 68"):
        leadfield.tvb_eeg65(68)
    with pytest.raises(ValueError, match=r"reduce must be one of \('sum', 'mean'\); got 'median'"):
        leadfield.tvb_eeg65(76, reduce="median")


def test_a_mapping_that_disagrees_with_the_connectome_is_an_error(monkeypatch):
    p = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"regions \[2\] have no entry"):
        leadfield.reduce_to_regions(p, [0, 1, 1, 3], 4)
    with pytest.raises(ValueError, match=r"indices in \[0, 3\).*\[0, 3\]"):
        leadfield.reduce_to_regions(p, [0, 1, 2, 3], 3)
    with pytest.raises(ValueError, match="one region index per vertex"):
        leadfield.reduce_to_regions(p, [0, 1, 2], 3)
    monkeypatch.setattr(leadfield.connectomes, "tvb", lambda n: connectome.example(74))
    with pytest.raises(ValueError, match="regionMapping_16k_76.txt and connectivity_76.zip disagree"):
        leadfield.tvb_eeg65(76)


def test_missing_tvb_data_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tvb_data", None)                     # as if not installed
    for call in (lambda: connectome.tvb(76), leadfield.tvb_eeg65):
        with pytest.raises(ImportError, match=r'pip install "jr_jax\[tvb\]"'):
            call()


def test_load_tvb_reads_bz2_members_and_refuses_bad_ones(tmp_path):
    w = "0 1\n2 0\n"

    def zipped(name, members):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            for member, raw in members.items():
                z.writestr(member, raw)
        return path

    con = connectome.load_tvb(zipped("ok.zip", {"c/weights.txt.bz2": bz2.compress(w.encode()),
                                                "c/centres.txt": "a 1 2 3 None\nb 4 5 6 None\n"}))
    np.testing.assert_array_equal(con.weights, [[0, 1], [2, 0]])
    assert con.labels == ("a", "b")                    # a fifth column (TVB's connectivity_66) is ignored
    with pytest.raises(ValueError, match="weights.txt.bz2: not readable bz2 data"):
        connectome.load_tvb(zipped("bad.zip", {"weights.txt.bz2": b"BZh9 not bz2"}))
    with pytest.raises(ValueError, match="weights.txt.bz2: truncated bz2 data"):
        connectome.load_tvb(zipped("cut.zip", {"weights.txt.bz2": bz2.compress(w.encode() * 50)[:-10]}))
    with pytest.raises(ValueError, match="holds weights.txt twice"):
        connectome.load_tvb(zipped("two.zip", {"weights.txt": w, "weights.txt.bz2": bz2.compress(w.encode())}))


def test_a_bz2_bomb_is_cut_at_the_size_limit(tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights.txt.bz2", bz2.compress(b"0 " * 5000))   # 10 000 bytes from about 50
    monkeypatch.setattr(connectome, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(ValueError, match="weights.txt.bz2: more than 1000 bytes uncompressed, over the limit"):
        connectome.load_tvb(path)
