"""``to_xarray``: simulation and sweep results as labelled Datasets whose numbers, coordinates and units are the
result's own."""

import builtins

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import connectome, network

xr = pytest.importorskip("xarray")

DUR = 0.05 * u.second


def _mant(q, unit=None):
    return np.asarray(q.mantissa if unit is None else q.to_decimal(unit))


def test_one_column_has_a_time_dim_units_and_the_run_settings():
    rec = jr.Record(variables=("eeg", "y0", "y3"), every=2, reduce="mean")
    res = jr.simulate(jr.JRParams(), duration=DUR, record=rec, method="heun")
    ds = res.to_xarray()
    assert set(ds.data_vars) == {"eeg", "y0", "y3"}
    for name in ds.data_vars:
        assert ds[name].dims == ("time",)
        np.testing.assert_array_equal(ds[name].values, _mant(res.variables[name]))
    assert ds["eeg"].attrs["units"] == "mV" and ds["y0"].attrs["units"] == "mV" and ds["y3"].attrs["units"] == "mV/s"
    np.testing.assert_array_equal(ds["time"].values, _mant(res.time, u.second))
    assert ds["time"].attrs["units"] == "s"
    assert ds.attrs == {"dt_s": pytest.approx(5e-4), "method": "heun", "record_variables": "eeg,y0,y3",
                        "record_every": 2, "record_reduce": "mean"}


def test_a_batch_has_a_set_dim():
    params = jr.JRParams(A=jnp.array([3.0, 3.25, 3.5]) * u.mV)
    res = jr.simulate(params, duration=DUR, record=("eeg", "y4"))
    ds = res.to_xarray()
    assert ds["eeg"].dims == ("time", "set") and ds["eeg"].shape == (100, 3)
    np.testing.assert_array_equal(ds["set"].values, [0, 1, 2])
    np.testing.assert_array_equal(ds["y4"].values, _mant(res.y4))
    assert ds["y4"].attrs["units"] == "mV/s"
    named = res.to_xarray(labels=["lo", "mid", "hi"])
    np.testing.assert_array_equal(named["eeg"].sel(set="mid").values, _mant(res.eeg)[:, 1])
    with pytest.raises(ValueError, match="one name per set"):
        res.to_xarray(labels=["a", "b"])


def test_a_traced_batch_converts_too():
    params = jr.JRParams(A=jnp.array([3.0, 3.5]) * u.mV)
    res = jax.jit(lambda p: jr.trace(p, duration=DUR))(params)
    ds = res.to_xarray()
    assert ds["eeg"].dims == ("time", "set")
    np.testing.assert_array_equal(ds["eeg"].values, _mant(res.eeg))


def test_a_network_has_a_region_dim_labelled_by_the_connectome():
    net = network.network(connectome.example(4), coupling=0.5)
    res = jr.simulate(jr.JRParams(), duration=DUR, network=net, record=("eeg", "y1"))
    ds = res.to_xarray()
    assert ds["eeg"].dims == ("time", "region") and ds["eeg"].shape == (100, 4)
    np.testing.assert_array_equal(ds["region"].values, np.arange(4))
    labelled = res.to_xarray(labels=net.labels)
    np.testing.assert_array_equal(labelled["region"].values, np.asarray(net.labels))
    np.testing.assert_array_equal(labelled["y1"].sel(region=net.labels[2]).values, _mant(res.y1)[:, 2])


def _grid_sweep():
    design = jr.grid(A=np.array([3.0, 3.5, 4.0]) * u.mV, b=np.array([45.0, 55.0]) * u.Hz)
    return jr.sweep(design, duration=0.5 * u.second, transient=0.1 * u.second,
                    features=jr.monitors.Features(segment=0.25 * u.second))


def test_a_grid_sweep_is_labelled_by_its_axes():
    res = _grid_sweep()
    ds = res.to_xarray()
    assert ds["mean"].dims == ("A", "b") and ds["mean"].shape == (3, 2)
    assert ds["psd"].dims == ("A", "b", "frequency")
    np.testing.assert_array_equal(ds["A"].values, [3.0, 3.5, 4.0])
    np.testing.assert_array_equal(ds["b"].values, [45.0, 55.0])
    assert ds["A"].attrs["units"] == "mV" and ds["b"].attrs["units"] == "Hz"
    np.testing.assert_array_equal(ds["frequency"].values, _mant(res.freqs, u.Hz))
    assert ds["frequency"].attrs["units"] == "Hz"
    units = {"mean": "mV", "psd": "mV^2/Hz", "dominant_frequency": "Hz", "skewness": "1", "power_alpha": "mV^2"}
    assert {k: ds[k].attrs["units"] for k in units} == units
    assert ds["diverged"].dtype == bool and ds["computed"].dtype == bool and "units" not in ds["diverged"].attrs
    assert bool(ds["computed"].all())
    assert set(res.features) <= set(ds.data_vars)
    for i, a in enumerate([3.0, 3.5, 4.0]):
        for j, b in enumerate([45.0, 55.0]):
            point = ds.sel(A=a, b=b)
            for name in ("mean", "std", "dominant_frequency", "psd"):
                np.testing.assert_array_equal(point[name].values, _mant(res.grid(name))[i, j])
            assert bool(point["diverged"]) == bool(res.grid("diverged")[i, j])


def test_a_random_design_sweep_has_a_set_dim_with_its_values_as_coordinates():
    design = jr.random_design(3, key=jax.random.key(0), A=(3.0 * u.mV, 4.0 * u.mV))
    assert not design.is_grid
    res = jr.sweep(design, duration=0.25 * u.second, transient=0.1 * u.second,
                   features=jr.monitors.Features(segment=0.25 * u.second))
    ds = res.to_xarray()
    assert ds["mean"].dims == ("set",) and ds["psd"].dims == ("set", "frequency")
    np.testing.assert_array_equal(ds["A"].values, _mant(design.axes["A"]))
    assert ds["A"].dims == ("set",) and ds["A"].attrs["units"] == "mV"
    np.testing.assert_array_equal(ds["mean"].values, _mant(res.features["mean"]))


def test_a_missing_xarray_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_xarray(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError("no xarray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xarray)
    res = jr.simulate(jr.JRParams(), duration=DUR)
    with pytest.raises(ImportError, match=r"pip install jr_jax\[xarray\]"):
        res.to_xarray()
