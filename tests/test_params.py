import brainunit as u
import jax
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import JRParams, UnitError


def test_defaults_are_jansen_rit_1995():
    p = JRParams()
    assert float(p.A.to_decimal(u.mV)) == 3.25 and float(p.B.to_decimal(u.mV)) == 22.0
    assert float(p.a.to_decimal(u.Hz)) == 100.0 and float(p.b.to_decimal(u.Hz)) == 50.0
    assert (p.C1, p.C2, p.C3, p.C4) == pytest.approx((135.0, 108.0, 33.75, 33.75))
    assert float(p.e0.to_decimal(u.Hz)) == 2.5 and float(p.v0.to_decimal(u.mV)) == 6.0
    assert float(p.r.to_decimal(u.mV ** -1)) == pytest.approx(0.56)


def test_other_units_are_accepted_and_equivalent():
    p = JRParams(A=0.00325 * u.volt, a=0.1 / u.ms)
    assert float(p.A.to_decimal(u.mV)) == pytest.approx(3.25)
    assert float(p.a.to_decimal(u.Hz)) == pytest.approx(100.0)


def test_from_brainmass_names():
    p = JRParams.from_brainmass(Ae=4.5 * u.mV, Ai=18 * u.mV, be=90 * u.Hz, bi=40 * u.Hz, a2=0.7, s_max=5 * u.Hz, r=0.56)
    assert float(p.A.to_decimal(u.mV)) == 4.5 and float(p.B.to_decimal(u.mV)) == 18
    assert float(p.a.to_decimal(u.Hz)) == 90 and float(p.b.to_decimal(u.Hz)) == 40
    assert p.c2 == 0.7 and float(p.e0.to_decimal(u.Hz)) == 2.5
    assert float(p.r.to_decimal(u.mV ** -1)) == pytest.approx(0.56)


@pytest.mark.parametrize("kwargs, words", [
    (dict(A=3.25 * u.second), ["JRParams.A", "mV", "3.25"]),
    (dict(A=3.25), ["JRParams.A", "mV", "plain number 3.25"]),
    (dict(a=100.0), ["JRParams.a", "Hz", "plain number 100.0"]),
    (dict(r=0.56), ["JRParams.r", "1 / mV", "plain number"]),
])
def test_wrong_unit_is_a_clear_error(kwargs, words):
    with pytest.raises(UnitError) as err:
        JRParams(**kwargs)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("kwargs, words", [
    (dict(a=-100 * u.Hz), ["JRParams.a", "> 0.0", "-100"]),
    (dict(b=0 * u.Hz), ["JRParams.b", "> 0.0"]),
    (dict(B=-1 * u.mV), ["JRParams.B", ">= 0.0"]),
    (dict(A=float("nan") * u.mV), ["JRParams.A", "finite"]),
    (dict(C=float("inf")), ["JRParams.C", "finite"]),
])
def test_out_of_range_is_a_clear_error(kwargs, words):
    with pytest.raises(ValueError) as err:
        JRParams(**kwargs)
    for w in words:
        assert w in str(err.value)


def test_unknown_field_points_to_brainmass_converter():
    with pytest.raises(TypeError, match="from_brainmass"):
        JRParams(Ae=4.5 * u.mV)


def test_is_a_pytree_usable_under_jit_and_grad():
    p = JRParams()
    leaves = jax.tree_util.tree_leaves(p)
    assert len(leaves) == 12
    f = jax.jit(lambda q: jr.sigmoid(6.0 * u.mV, q).to_decimal(u.Hz))
    assert float(f(p)) == pytest.approx(2.5)                  # S(v0) = e0
    g = jax.grad(lambda A: jr.rhs(jr.JRState.zeros(), p.replace(A=A * u.mV), 0 * u.Hz).y3.mantissa)(3.25)
    # y0'' = A a S(0) at rest, so d/dA = a S(0) (S in Hz, a in Hz -> mV/s^2 per mV)
    s0 = 5.0 / (1 + np.exp(0.56 * 6.0))
    assert float(g) == pytest.approx(100.0 * s0, rel=1e-5)
