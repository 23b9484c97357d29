"""jr_jax.devices: what JAX runs on, and one warning when the GPU extra is installed but the runs go to the CPU.

This machine has no GPU, so JAX's backend here is the CPU; the installed CUDA plugin is faked by answering the
metadata lookup for its distribution.
"""

import importlib.metadata
import subprocess
import sys
import warnings

import jax
import pytest

from jr_jax import devices

FAKE_PLUGIN_VERSION = "0.10.2"


def _fake_metadata(monkeypatch, installed: bool):
    real = importlib.metadata.version

    def version(name):
        if "cuda1" in name:                      # every CUDA plugin's name: none is installed here
            if installed and name == "jax-cuda12-plugin":
                return FAKE_PLUGIN_VERSION
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(devices.metadata, "version", version)
    monkeypatch.setattr(devices, "_checked", False)          # a fresh process's state


def _warnings_of(calls: int) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")          # Python's own once-per-place filter must not be what dedups
        for _ in range(calls):
            devices.check_gpu_extra()
    return [w for w in caught if issubclass(w.category, devices.GPUNotUsedWarning)]


def test_this_machine_runs_on_the_cpu():
    assert jax.default_backend() == "cpu"


def test_plugin_without_a_gpu_warns_once_and_names_the_cpu(monkeypatch):
    _fake_metadata(monkeypatch, installed=True)
    caught = _warnings_of(3)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "CPU" in text and "'cpu'" in text and "nvidia-smi" in text
    assert f"jax-cuda12-plugin {FAKE_PLUGIN_VERSION}" in text
    assert issubclass(devices.GPUNotUsedWarning, UserWarning)


def test_no_plugin_is_silent(monkeypatch):
    _fake_metadata(monkeypatch, installed=False)
    assert devices.cuda_plugin() is None
    assert _warnings_of(2) == []


def test_plugin_on_a_gpu_is_silent(monkeypatch):
    _fake_metadata(monkeypatch, installed=True)
    monkeypatch.setattr(devices.jax, "default_backend", lambda: "gpu")
    assert _warnings_of(2) == []


def test_describe_reports_the_cpu():
    d = devices.describe()
    assert d["backend"] == "cpu"
    assert d["count"] == len(jax.devices()) >= 1
    assert d["kinds"] == ["cpu"]
    assert [x["platform"] for x in d["devices"]] == ["cpu"] * d["count"]
    assert all(x["bytes_limit"] is None for x in d["devices"])     # a CPU reports no allocator limit


def test_import_runs_nothing():
    """Importing jr_jax and jr_jax.devices with the plugin faked as installed warns nothing: the check runs only
    when called."""
    code = ("import importlib.metadata as m, warnings\n"
            "real = m.version\n"
            "m.version = lambda n: '0.10.2' if n == 'jax-cuda12-plugin' else real(n)\n"
            "warnings.simplefilter('error')\n"
            "import jr_jax, jr_jax.devices\n"
            "assert jr_jax.devices.cuda_plugin() == 'jax-cuda12-plugin 0.10.2'\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    jr_jax.devices.check_gpu_extra()\n"
            "assert len(w) == 1, w\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("name", ["jax-cuda12-plugin", "jax_cuda12_plugin", "jax-cuda13-plugin"])
def test_either_spelling_of_the_distribution_is_found(monkeypatch, name):
    real = importlib.metadata.version

    def version(asked):
        if asked == name:
            return FAKE_PLUGIN_VERSION
        if "cuda1" in asked:
            raise importlib.metadata.PackageNotFoundError(asked)
        return real(asked)

    monkeypatch.setattr(devices.metadata, "version", version)
    assert devices.cuda_plugin() == f"{name} {FAKE_PLUGIN_VERSION}"


def test_simulate_and_sweep_say_it_once_at_the_callers_line(monkeypatch):
    """A run is where a user meets the CPU fallback: jr.simulate warns, at the user's line, and jr.sweep after it
    does not repeat it."""
    import brainunit as u

    import jr_jax as jr
    _fake_metadata(monkeypatch, installed=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jr.simulate(jr.JRParams(), duration=10 * u.ms)
        jr.sweep(jr.grid(A=[3.0, 3.5] * u.mV), duration=0.1 * u.second, transient=0 * u.second)
    ours = [w for w in caught if issubclass(w.category, devices.GPUNotUsedWarning)]
    assert len(ours) == 1 and ours[0].filename == __file__
