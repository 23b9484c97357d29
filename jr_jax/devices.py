"""Which device the runs use: what JAX sees (:func:`describe`), and a warning when the GPU extra is installed but the
runs still go to the CPU (:func:`check_gpu_extra`).

``pip install -e ".[cuda12]"`` installs JAX's CUDA 12 plugin; whether JAX then uses the GPU depends on the machine
(a GPU, its driver). Without this check a missing driver shows only as runs that are slower than expected.
Nothing here runs at import: the plugin is looked up in the installed distributions' metadata, not imported.
"""

from __future__ import annotations

import importlib.metadata as metadata
import warnings

import jax

CUDA_PLUGIN_DISTRIBUTIONS = ("jax-cuda12-plugin", "jax_cuda12_plugin", "jax-cuda13-plugin", "jax_cuda13_plugin")
"""The distribution names of JAX's CUDA plugins: the ``[cuda12]`` extra's, and CUDA 13's (``jax[cuda13]``)."""

_checked = False


class GPUNotUsedWarning(UserWarning):
    """JAX's CUDA plugin (the ``[cuda12]`` extra) is installed, but JAX runs on another backend (the CPU)."""


def cuda_plugin() -> str | None:
    """``"name version"`` of the installed JAX CUDA plugin distribution, or None where none is installed."""
    for name in CUDA_PLUGIN_DISTRIBUTIONS:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def describe() -> dict:
    """JAX's default backend, its devices' count and kinds, and each device's memory where the backend reports it
    (a GPU: its allocator's limit and what is in use, in bytes; a CPU reports none: None)."""
    devices = []
    for d in jax.devices():
        try:
            stats = d.memory_stats() or {}
        except Exception:           # a backend without memory statistics
            stats = {}
        devices.append({"id": d.id, "platform": d.platform, "kind": d.device_kind,
                        "bytes_limit": stats.get("bytes_limit"), "bytes_in_use": stats.get("bytes_in_use")})
    return {"backend": jax.default_backend(), "count": len(devices),
            "kinds": sorted({d["kind"] for d in devices}), "devices": devices}


def check_gpu_extra(stacklevel: int = 2) -> bool:
    """Warn (:class:`GPUNotUsedWarning`) when JAX's CUDA plugin (the ``[cuda12]`` extra) is installed but JAX's
    default backend is not the GPU; True when it warned. Silent without the plugin. It looks once per process (the
    lookup reads the installed distributions' metadata), so :func:`jr_jax.simulate` and :func:`jr_jax.sweep` call
    it on every run at no cost; ``stacklevel`` as in :func:`warnings.warn`."""
    global _checked
    if _checked:
        return False
    _checked = True
    plugin = cuda_plugin()
    if plugin is None:
        return False
    backend = jax.default_backend()
    if backend == "gpu":
        return False
    warnings.warn(GPUNotUsedWarning(
        f"{plugin} (JAX for NVIDIA GPUs; the [cuda12] extra installs it) is installed, so a GPU was expected, "
        f"but JAX's default backend is {backend!r}: the runs go to the CPU. Check that `nvidia-smi` lists a GPU and "
        f"a driver for its CUDA version, and see why JAX did not load it with "
        f"`JAX_PLATFORMS=cuda python -c \"import jax; print(jax.devices())\"`."),
        stacklevel=stacklevel)
    return True
