import jax
import pytest


@pytest.fixture
def x64():
    """Run a test in 64-bit JAX (needed to see high convergence orders), restoring the setting afterwards."""
    with jax.enable_x64(True):
        yield
