"""The per-step random numbers: ``jax.random``'s own threefry stream, written as plain uint32 arithmetic.

Every step draws its numbers from ``fold_in(key, i)``, split in two, then one normal (or uniform) draw: three
Threefry-2x32 hashes per step. On a CPU, JAX lowers each hash to a rolled loop of small kernels, which cost more
than the Jansen–Rit step itself (README, Benchmarks). The functions here give
bit for bit the numbers of :func:`jax.random.fold_in`, :func:`jax.random.split`, :func:`jax.random.normal` and
:func:`jax.random.uniform` (``tests/test_noise_and_drives.py`` compares them), as elementwise integer operations
that XLA fuses into a few large kernels (for ``simulate``'s chunk: one each for the fold-in, the split and the
normal with its ``erf_inv``) instead of three loops of small ones.

They apply to typed threefry keys (``jax.random.key(seed)``, JAX's default) with ``jax_threefry_partitionable``
on (JAX's default); for any other key or setting they call ``jax.random`` itself, so the numbers never depend on
which path ran.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x, d):
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011, as in ``jax.random``): key words k0, k1 hash the counter
    words x0, x1 (uint32 arrays that broadcast together) into two words."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for j in range(5):
        for r in _ROTATIONS[j % 2]:
            x0 = x0 + x1
            x1 = x0 ^ _rotl(x1, r)
        x0, x1 = x0 + ks[(j + 1) % 3], x1 + ks[(j + 2) % 3] + np.uint32(j + 1)
    return x0, x1


def _fast(key) -> bool:
    return (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and str(jax.random.key_impl(key)) == "threefry2x32"
            and getattr(jax.config, "jax_threefry_partitionable", True))


def _words(key):
    d = jax.random.key_data(key)
    return d[..., 0], d[..., 1]


def _key(w0, w1):
    return jax.random.wrap_key_data(jnp.stack([w0, w1], axis=-1), impl="threefry2x32")


def fold_in(key, i):
    """``jax.random.fold_in(key, i)`` for an integer (array) ``i``."""
    if not _fast(key):
        return jax.random.fold_in(key, i)
    k0, k1 = _words(key)
    return _key(*threefry2x32(k0, k1, np.uint32(0), jnp.asarray(i).astype(jnp.uint32)))


def split(key, num: int = 2):
    """``jax.random.split(key, num)`` of one key (a leading axis of ``num`` keys)."""
    if not _fast(key) or key.ndim:
        return jax.random.split(key, num)
    k0, k1 = _words(key)
    return _key(*threefry2x32(k0, k1, np.uint32(0), jnp.arange(num, dtype=jnp.uint32)))


def _bits(key, shape, width):
    """``width``-bit random words of one key (``jax.random.bits``), counters 0, 1, … in row-major order."""
    k0, k1 = _words(key)
    counters = jnp.arange(int(np.prod(shape, dtype=np.int64)), dtype=jnp.uint32).reshape(shape)
    b0, b1 = threefry2x32(k0, k1, np.uint32(0), counters)
    if width == 32:
        return b0 ^ b1
    return (b0.astype(jnp.uint64) << np.uint64(32)) | b1.astype(jnp.uint64)


def _float_dtype(dtype):
    return jnp.dtype(jnp.result_type(float) if dtype is None else dtype)


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """``jax.random.uniform(key, shape, dtype, minval, maxval)`` of one key."""
    dtype = _float_dtype(dtype)
    if not _fast(key) or key.ndim or dtype not in (jnp.float32, jnp.float64):
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    info = jnp.finfo(dtype)
    width = info.bits
    uint = jnp.uint32 if width == 32 else jnp.uint64
    one = np.array(1.0, dtype).view(uint)
    bits = (_bits(key, tuple(shape), width) >> np.array(width - info.nmant, uint)) | one
    lo, hi = lax.convert_element_type(minval, dtype), lax.convert_element_type(maxval, dtype)
    return lax.max(lo, (lax.bitcast_convert_type(bits, dtype) - np.array(1.0, dtype)) * (hi - lo) + lo)


def normal(key, shape=(), dtype=None):
    """``jax.random.normal(key, shape, dtype)`` of one key (real dtypes)."""
    dtype = _float_dtype(dtype)
    if not _fast(key) or key.ndim or dtype not in (jnp.float32, jnp.float64):
        return jax.random.normal(key, shape, dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    return np.array(np.sqrt(2), dtype) * lax.erf_inv(uniform(key, shape, dtype, lo, np.array(1.0, dtype)))
