"""Nothing silent: every public entry point refuses a bad input before it compiles anything, with an error that names
the argument and what it got; runs beyond the budget are refused up front, and ``check_budget=False`` lets them
through."""

import os
import tempfile

import brainunit as u
import jax
import numpy as np
import pytest

import jr_jax as jr
from jr_jax import checks, connectome, data, drives, monitors
from jr_jax.checks import BudgetError
from jr_jax.model import STATE_UNITS
from jr_jax.network import network
from jr_jax.units import UnitError

P = jr.JRParams()
MS, S, HZ = u.ms, u.second, u.Hz
NAN, INF = float("nan"), float("inf")
NOISY = drives.white_noise(200 * HZ, 10 * HZ * S ** 0.5)
KEY = jax.random.key(0)
KEYS3 = jax.random.split(KEY, 3)
REC = data.recording(np.sin(np.linspace(0, 20, 2000)), 500 * HZ, u.mV)
PULSE = drives.constant(60 * HZ) + drives.pulse(1.05 * S, 200 * HZ)
CON = connectome.example(4)
NET = network(CON, coupling=1.0)
NET_L = network(CON, lead_field=np.ones((2, 4)))
DESIGN = jr.grid(A=np.linspace(3, 4, 2) * u.mV)
FOLDER = os.path.join(tempfile.gettempdir(), "jr_jax_never_written")     # every row fails before it is touched

# The functions that simulate, sweep and fit compile; a bad input must be refused before any of them is traced.
RUNS = {"run_chunk", "sweep_chunk", "update"}
TRACED = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, _, **kw: TRACED.append(kw.get("fun_name")) if event.endswith("jaxpr_trace_duration") else None)


def state(**fields):
    """A JRState of zeros with some fields replaced."""
    zero = {n: 0.0 * unit for n, unit in zip(jr.JRState._fields, STATE_UNITS)}
    return jr.JRState(**(zero | fields))


def sim(**kw):
    return jr.simulate(P, **({"duration": 10 * MS} | kw))


def trace(**kw):
    return jr.trace(P, **({"duration": 10 * MS} | kw))


def sweep(**kw):
    return jr.sweep(DESIGN, **({"duration": 0.1 * S, "transient": 0 * S} | kw))


def quad(p):
    return (p.A.to_decimal(u.mV) - 3.0) ** 2


def fit(**kw):
    return jr.fit(quad, **({"free": ("A",)} | kw))


def spec(**kw):
    return jr.spectrum_target(REC, NOISY, **({"key": KEY} | kw))


ROWS = [
    # -- JRParams
    ("params C string", lambda: jr.JRParams(C="135"), TypeError, ["JRParams.C", "'135'"]),
    ("params C bool", lambda: jr.JRParams(C=True), TypeError, ["JRParams.C", "True"]),
    ("params A complex", lambda: jr.JRParams(A=(3 + 1j) * u.mV), TypeError, ["JRParams.A", "complex"]),
    ("params A complex array", lambda: jr.JRParams(A=np.array([3 + 1j, 2]) * u.mV), TypeError,
     ["JRParams.A", "complex"]),
    ("params A bool quantity", lambda: jr.JRParams(A=True * u.mV), TypeError, ["JRParams.A", "bool"]),
    ("params A NaN", lambda: jr.JRParams(A=NAN * u.mV), ValueError, ["JRParams.A", "finite"]),
    ("params b negative", lambda: jr.JRParams(b=-1 * HZ), ValueError, ["JRParams.b", "> 0.0", "-1"]),
    ("params A unit", lambda: jr.JRParams(A=3.25 * S), UnitError, ["JRParams.A", "mV"]),
    ("params unknown field", lambda: jr.JRParams(Q=1.0), TypeError, ["unknown field", "Q"]),
    ("params replace string", lambda: P.replace(c1="1"), TypeError, ["JRParams.c1", "'1'"]),
    ("params brainmass r string", lambda: jr.JRParams.from_brainmass(r="0.56"), TypeError, ["r", "'0.56'"]),
    # -- drives
    ("constant NaN", lambda: drives.constant(NAN * HZ), ValueError, ["constant(p)", "finite", "nan"]),
    ("constant string", lambda: drives.constant("220"), UnitError, ["constant(p)", "'220'"]),
    ("constant complex", lambda: drives.constant((1 + 2j) * HZ), TypeError, ["constant(p)", "complex"]),
    ("white noise sigma < 0", lambda: drives.white_noise(200 * HZ, -1 * HZ * S ** 0.5), ValueError,
     ["white_noise(sigma)", ">= 0"]),
    ("white noise mean inf", lambda: drives.white_noise(INF * HZ, 1 * HZ * S ** 0.5), ValueError,
     ["white_noise(mean)", "finite"]),
    ("uniform NaN", lambda: drives.uniform(NAN * HZ, 100 * HZ), ValueError, ["uniform(low)", "finite"]),
    ("uniform order", lambda: drives.uniform(np.array([1.0, 300.0]) * HZ, 200 * HZ), ValueError, ["low <= high"]),
    ("sinusoid phase NaN", lambda: drives.sinusoid(1 * HZ, 1 * HZ, 10 * HZ, phase=NAN), ValueError,
     ["sinusoid(phase)", "finite"]),
    ("sinusoid phase string", lambda: drives.sinusoid(1 * HZ, 1 * HZ, 10 * HZ, phase="1"), TypeError,
     ["sinusoid(phase)", "'1'"]),
    ("sinusoid frequency inf", lambda: drives.sinusoid(1 * HZ, 1 * HZ, INF * HZ), ValueError,
     ["sinusoid(frequency)", "finite"]),
    ("pulse onset NaN", lambda: drives.pulse(NAN * S, 100 * HZ), ValueError, ["pulse(onset)", "finite"]),
    ("pulse peak NaN", lambda: drives.pulse(0.1 * S, NAN * HZ), ValueError, ["pulse(peak)", "finite"]),
    ("pulse order 0", lambda: drives.pulse(0.1 * S, 100 * HZ, order=0), ValueError, ["pulse(order)", "> 0"]),
    ("pulse order bool", lambda: drives.pulse(0.1 * S, 100 * HZ, order=True), TypeError, ["pulse(order)", "True"]),
    ("ramp start NaN", lambda: drives.ramp(NAN * HZ, 1 * HZ, 0 * S, 1 * S), ValueError, ["ramp(start)", "finite"]),
    ("ramp t_stop NaN", lambda: drives.ramp(1 * HZ, 2 * HZ, 0 * S, NAN * S), ValueError, ["ramp(t_stop)", "finite"]),
    ("ramp backwards", lambda: drives.ramp(1 * HZ, 2 * HZ, 1 * S, 0.5 * S), ValueError, ["t_stop > t_start"]),
    ("chirp f_stop NaN", lambda: drives.chirp(1 * HZ, 1 * HZ, 1 * HZ, NAN * HZ, 1 * S), ValueError,
     ["chirp(f_stop)", "finite"]),
    ("array NaN", lambda: drives.array(np.array([1.0, NAN]) * HZ, 1 * MS), ValueError, ["array(values)", "finite"]),
    ("array dt 0", lambda: drives.array(np.ones(3) * HZ, 0 * MS), ValueError, ["array(dt)", "> 0"]),
    ("drive + number", lambda: drives.constant(1 * HZ) + 5, TypeError, ["drive", "5"]),
    ("number + drive", lambda: 5 + drives.constant(1 * HZ), TypeError, ["drive", "5"]),
    ("drive + quantity", lambda: drives.constant(1 * HZ) + 5 * HZ, TypeError, ["drive", "Hz"]),
    # -- simulate
    ("simulate params", lambda: jr.simulate("P", duration=1 * S), TypeError, ["params", "str"]),
    ("simulate drive", lambda: sim(drive=220), TypeError, ["drive must be built"]),
    ("simulate duration inf", lambda: sim(duration=INF * S), ValueError, ["duration", "finite", "inf"]),
    ("simulate duration shape", lambda: sim(duration=np.ones(2) * S), ValueError, ["duration", "shape (2,)"]),
    ("simulate duration < 1 step", lambda: sim(duration=1e-12 * S), ValueError, ["duration", "whole number"]),
    ("simulate transient NaN", lambda: sim(transient=NAN * S), ValueError, ["transient", "finite", "nan"]),
    ("simulate dt NaN", lambda: sim(dt=NAN * MS), ValueError, ["dt", "finite"]),
    ("simulate dt 0", lambda: sim(dt=0 * MS), ValueError, ["dt", "positive"]),
    ("simulate float16", lambda: sim(dtype="float16"), ValueError, ["dtype", "float16"]),
    ("simulate int32", lambda: sim(dtype="int32"), ValueError, ["dtype", "int32"]),
    ("simulate dtype name", lambda: sim(dtype="foo"), TypeError, ["dtype", "'foo'"]),
    ("simulate chunk 2.5", lambda: sim(chunk_steps=2.5), ValueError, ["chunk_steps", "2.5"]),
    ("simulate chunk bool", lambda: sim(chunk_steps=True), TypeError, ["chunk_steps", "True"]),
    ("simulate state NaN", lambda: sim(initial_state=state(y0=NAN * u.mV)), ValueError,
     ["initial_state.y0", "finite"]),
    ("simulate state 3-vector", lambda: sim(initial_state=state(y1=np.zeros(3) * u.mV)), ValueError,
     ["initial_state.y1", "shape (3,)"]),
    ("simulate state unit", lambda: sim(initial_state=state(y3=0.0 * u.mV)), UnitError, ["initial_state.y3"]),
    ("simulate state type", lambda: sim(initial_state="zeros"), TypeError, ["initial_state", "str"]),
    ("simulate 3 keys", lambda: sim(drive=NOISY, key=KEYS3), ValueError, ["key", "shape (3,)"]),
    ("simulate key int", lambda: sim(drive=NOISY, key=0), TypeError, ["key", "int 0"]),
    ("simulate method", lambda: sim(method="leapfrog"), ValueError, ["method", "leapfrog"]),
    ("simulate record type", lambda: sim(record=5), TypeError, ["record", "int 5"]),
    ("simulate record every", lambda: sim(record=jr.Record(every=3)), ValueError, ["Record.every = 3"]),
    ("simulate check_finite", lambda: sim(check_finite="yes"), TypeError, ["check_finite", "'yes'"]),
    ("simulate check_budget", lambda: sim(check_budget=None), TypeError, ["check_budget", "None"]),
    ("simulate progress", lambda: sim(progress=5), TypeError, ["progress"]),
    ("simulate out_dir", lambda: sim(out_dir=5), TypeError, ["out_dir", "int 5"]),
    ("simulate network type", lambda: sim(network="net"), TypeError, ["network", "str"]),
    ("simulate params NaN past the constructor", lambda: jr.simulate(jax.tree.map(lambda x: x * NAN, P),
                                                                     duration=10 * MS), ValueError,
     ["params.A", "finite"]),
    ("simulate budget: steps (duration)", lambda: sim(duration=1e7 * S), BudgetError,
     ["simulate", "20,000,000,000 steps", "MAX_STEPS", "check_budget=False"]),
    ("simulate budget: steps (dt)", lambda: sim(duration=1 * S, dt=1e-300 * S), BudgetError,
     ["simulate", "steps per column", "check_budget=False"]),
    ("simulate budget: records", lambda: jr.simulate(jr.JRParams(A=np.full(10 ** 6, 3.25) * u.mV),
                                                       duration=1e5 * S), BudgetError,
     ["simulate", "of records", "200,000,000 records", "record=()", "Record(every=n)", "check_budget=False"]),
    # -- trace
    ("trace params", lambda: jr.trace("P", duration=1 * S), TypeError, ["params", "str"]),
    ("trace drive", lambda: trace(drive=220), TypeError, ["drive must be built"]),
    ("trace duration inf", lambda: trace(duration=INF * S), ValueError, ["duration", "finite"]),
    ("trace state NaN", lambda: trace(initial_state=state(y4=NAN * u.mV / S)), ValueError,
     ["initial_state.y4", "finite"]),
    ("trace state type", lambda: trace(initial_state=np.zeros(6)), TypeError, ["initial_state", "ndarray"]),
    ("trace state shapes", lambda: trace(initial_state=state(y0=np.zeros(3) * u.mV),
                                         drive=drives.constant(np.ones(2) * HZ)), ValueError,
     ["initial_state", "set axis", "(3,)", "(2,)"]),
    ("trace 3 keys", lambda: trace(drive=NOISY, key=KEYS3), ValueError, ["key", "shape (3,)"]),
    ("trace budget: steps", lambda: trace(duration=1 * S, dt=1e-300 * S), BudgetError,
     ["trace", "MAX_STEPS", "check_budget=False"]),
    # -- sweep
    ("sweep design", lambda: jr.sweep("design", duration=1 * S), TypeError, ["design", "str"]),
    ("sweep keys", lambda: sweep(keys="same"), ValueError, ["keys", "'same'"]),
    ("sweep max_chunks -1", lambda: sweep(max_chunks=-1, out_dir=FOLDER), ValueError, ["max_chunks", "-1"]),
    ("sweep max_chunks bool", lambda: sweep(max_chunks=True, out_dir=FOLDER), TypeError, ["max_chunks", "True"]),
    ("sweep chunk_size bool", lambda: sweep(chunk_size=True), TypeError, ["chunk_size", "True"]),
    ("sweep chunk_size 2.5", lambda: sweep(chunk_size=2.5), ValueError, ["chunk_size", "2.5"]),
    ("sweep features", lambda: sweep(features="psd"), TypeError, ["features", "str"]),
    ("sweep dtype", lambda: sweep(dtype="int32"), ValueError, ["dtype", "int32"]),
    ("sweep transient NaN", lambda: sweep(transient=NAN * S), ValueError, ["transient", "finite"]),
    ("sweep state NaN", lambda: sweep(initial_state=state(y2=np.array([0.0, NAN]) * u.mV)), ValueError,
     ["initial_state.y2", "finite"]),
    ("sweep 3 keys", lambda: sweep(key=KEYS3), ValueError, ["key", "shape (3,)"]),
    ("sweep out_dir", lambda: sweep(out_dir=3.5), TypeError, ["out_dir", "3.5"]),
    ("sweep budget: steps", lambda: sweep(duration=1e7 * S), BudgetError, ["sweep", "MAX_STEPS", "check_budget=False"]),
    ("sweep design params NaN", lambda: jr.sweep(DESIGN._replace(params=jax.tree.map(lambda x: x * NAN, P)),
                                                 duration=1 * S), ValueError, ["params.A", "finite"]),
    # -- designs
    ("grid no axis", lambda: jr.grid(), ValueError, ["grid() needs at least one axis"]),
    ("grid strings", lambda: jr.grid(C=np.array(["a", "b"])), TypeError, ["axis 'C'", "<U1"]),
    ("grid NaN", lambda: jr.grid(A=np.array([1.0, NAN]) * u.mV), ValueError, ["axis 'A'", "finite"]),
    ("grid 2-D", lambda: jr.grid(A=np.ones((2, 2)) * u.mV), ValueError, ["axis 'A'", "1-D"]),
    ("grid unit", lambda: jr.grid(A=np.ones(2) * HZ), UnitError, ["axis 'A'", "mV"]),
    ("grid unknown axis", lambda: jr.grid(Q=np.ones(2)), ValueError, ["unknown sweep axis 'Q'"]),
    ("grid base", lambda: jr.grid(base="P", A=np.ones(2) * u.mV), TypeError, ["base", "str"]),
    ("grid drive", lambda: jr.grid(drive=220, p=np.ones(2) * HZ), TypeError, ["drive", "220"]),
    ("random n float", lambda: jr.random_design(2.5, key=KEY, A=(1 * u.mV, 2 * u.mV)), ValueError,
     ["random_design(n)", "2.5"]),
    ("random n bool", lambda: jr.random_design(True, key=KEY, A=(1 * u.mV, 2 * u.mV)), TypeError,
     ["random_design(n)", "True"]),
    ("random key", lambda: jr.random_design(4, key=0, A=(1 * u.mV, 2 * u.mV)), TypeError,
     ["random_design(key)", "int 0"]),
    ("random bounds not a pair", lambda: jr.random_design(4, key=KEY, A=1 * u.mV), ValueError,
     ["bounds for 'A'", "pair"]),
    ("random bounds unit", lambda: jr.random_design(4, key=KEY, A=(1 * HZ, 2 * HZ)), UnitError,
     ["bounds for 'A'", "mV"]),
    ("random bounds inf", lambda: jr.random_design(4, key=KEY, A=(1 * u.mV, INF * u.mV)), ValueError,
     ["bounds for 'A'", "finite"]),
    ("random bounds order", lambda: jr.random_design(4, key=KEY, A=(2 * u.mV, 1 * u.mV)), ValueError,
     ["bounds for 'A'", "low < high"]),
    ("random log bounds", lambda: jr.random_design(4, key=KEY, v0=(-1 * u.mV, 2 * u.mV), log="v0"), ValueError,
     ["log-uniform 'v0'", "positive"]),
    # -- targets
    ("erp data", lambda: jr.erp_target(np.zeros(10), PULSE), TypeError, ["data", "ndarray"]),
    ("erp drive", lambda: jr.erp_target(REC, 60), TypeError, ["drive", "60"]),
    ("erp dt NaN", lambda: jr.erp_target(REC, PULSE, dt=NAN * MS), ValueError, ["dt", "finite"]),
    ("erp transient inf", lambda: jr.erp_target(REC, PULSE, transient=INF * S), ValueError, ["transient", "finite"]),
    ("erp scale", lambda: jr.erp_target(REC, PULSE, scale="yes"), TypeError, ["scale", "'yes'"]),
    ("erp baseline", lambda: jr.erp_target(REC, PULSE, baseline=1), TypeError, ["baseline", "int 1"]),
    ("erp budget: steps", lambda: jr.erp_target(REC, PULSE, transient=1e7 * S), BudgetError,
     ["erp_target", "MAX_STEPS", "check_budget=False"]),
    ("spectrum band unit", lambda: spec(band=(2, 40)), UnitError, ["band", "Hz"]),
    ("spectrum band order", lambda: spec(band=(40 * HZ, 2 * HZ)), ValueError, ["band", "0 < low < high"]),
    ("spectrum band pair", lambda: spec(band=40 * HZ), ValueError, ["band", "pair"]),
    ("spectrum realisations bool", lambda: spec(realisations=True), TypeError, ["realisations", "True"]),
    ("spectrum realisations 0", lambda: spec(realisations=0), ValueError, ["realisations", "0"]),
    ("spectrum segment NaN", lambda: spec(segment=NAN * S), ValueError, ["segment", "finite"]),
    ("spectrum decimate unit", lambda: spec(decimate=2), UnitError, ["decimate", "plain number 2"]),
    ("spectrum key", lambda: spec(key=7), TypeError, ["key", "int 7"]),
    ("spectrum budget: steps", lambda: spec(duration=1e7 * S), BudgetError,
     ["spectrum_target", "MAX_STEPS", "check_budget=False"]),
    # -- fit
    ("fit objective", lambda: jr.fit(5), TypeError, ["objective", "5"]),
    ("fit start", lambda: fit(start="P"), TypeError, ["start", "str"]),
    ("fit free type", lambda: fit(free=5), TypeError, ["free", "5"]),
    ("fit free unknown", lambda: fit(free=("A", "Q")), ValueError, ["free", "unknown: ['Q']"]),
    ("fit bounds type", lambda: fit(bounds=[(1 * u.mV, 5 * u.mV)]), TypeError, ["bounds", "list"]),
    ("fit bounds pair", lambda: fit(bounds={"A": 5 * u.mV}), ValueError, ["bounds['A']", "pair"]),
    ("fit bounds inf", lambda: fit(bounds={"A": (1 * u.mV, INF * u.mV)}), ValueError, ["bounds['A']", "finite"]),
    ("fit bounds unit", lambda: fit(bounds={"A": (1 * HZ, 5 * HZ)}), UnitError, ["bounds['A']", "mV"]),
    ("fit steps bool", lambda: fit(steps=True), TypeError, ["steps", "True"]),
    ("fit steps float", lambda: fit(steps=2.5), ValueError, ["steps", "2.5"]),
    ("fit steps 0", lambda: fit(steps=0), ValueError, ["steps", "0"]),
    ("fit starts bool", lambda: fit(starts=True), TypeError, ["starts", "True"]),
    ("fit starts 0", lambda: fit(starts=0), ValueError, ["starts", "0"]),
    ("fit optimizer name", lambda: fit(optimizer="sgd"), ValueError, ["optimizer", "'sgd'"]),
    ("fit optimizer type", lambda: fit(optimizer=5), TypeError, ["optimizer", "int"]),
    ("fit learning rate", lambda: fit(learning_rate=-0.1), ValueError, ["learning_rate", "> 0"]),
    ("fit learning rate string", lambda: fit(learning_rate="0.1"), TypeError, ["learning_rate", "'0.1'"]),
    ("fit spread string", lambda: fit(spread="2"), TypeError, ["spread", "'2'"]),
    ("fit rtol NaN", lambda: fit(rtol=NAN), ValueError, ["rtol", "finite"]),
    ("fit patience bool", lambda: fit(patience=True), TypeError, ["patience", "True"]),
    ("fit save_every 0", lambda: fit(save_every=0), ValueError, ["save_every", "0"]),
    ("fit key", lambda: fit(key=1), TypeError, ["key", "int 1"]),
    ("fit laplace", lambda: fit(laplace="no"), TypeError, ["laplace", "'no'"]),
    ("fit callback", lambda: fit(callback=5), TypeError, ["callback", "5"]),
    # -- network
    ("network connectome", lambda: network("con"), TypeError, ["connectome", "str"]),
    ("network coupling string", lambda: network(CON, coupling="1"), TypeError, ["coupling", "'1'"]),
    ("network coupling NaN", lambda: network(CON, coupling=NAN), ValueError, ["coupling", "finite"]),
    ("network coupling shape", lambda: network(CON, coupling=np.ones(4)), ValueError, ["coupling", "shape (4,)"]),
    ("network field_gain bool", lambda: network(CON, field_gain=True), TypeError, ["field_gain", "True"]),
    ("network delays NaN", lambda: network(CON, delays=np.full((4, 4), NAN) * MS), ValueError, ["delays", "finite"]),
    ("network delays complex", lambda: network(CON, delays=np.ones((4, 4), complex) * MS), TypeError,
     ["delays", "complex"]),
    ("network max_delay NaN", lambda: network(CON, max_delay=NAN * MS), ValueError, ["max_delay", "finite"]),
    ("network field shape", lambda: network(CON, field=np.ones((3, 3))), ValueError, ["field", "(4, 4)"]),
    ("network lead field NaN", lambda: network(CON, lead_field=np.full((2, 4), NAN)), ValueError,
     ["lead_field", "finite"]),
    ("network lead field string", lambda: network(CON, lead_field=[["a"] * 4]), TypeError, ["lead_field"]),
    ("network params shape", lambda: jr.simulate(jr.JRParams(A=np.ones(3) * u.mV), duration=10 * MS, network=NET),
     ValueError, ["shape (4,)", "'A': (3,)"]),
    ("network state shape", lambda: sim(network=NET, initial_state=state(y0=np.zeros(3) * u.mV)), ValueError,
     ["initial_state.y0", "(4,)", "shape (3,)"]),
    ("network state without network", lambda: sim(initial_state=jr.NetworkState(state(), np.zeros((3, 4)))),
     TypeError, ["NetworkState", "network="]),
    ("network sensor noise", lambda: NET_L.sensors(np.zeros((2, 4)) * u.mV, noise=-1 * u.mV), ValueError,
     ["noise", ">= 0"]),
    # -- Record and Features
    ("Record every bool", lambda: jr.Record(every=True), TypeError, ["Record.every", "True"]),
    ("Record every 0", lambda: jr.Record(every=0), ValueError, ["Record.every", "0"]),
    ("Record every float", lambda: jr.Record(every=2.5), ValueError, ["Record.every", "2.5"]),
    ("Record variables type", lambda: jr.Record(variables=5), TypeError, ["Record.variables", "int 5"]),
    ("Record variables name", lambda: jr.Record(variables=("v",)), ValueError, ["Record.variables", "'v'"]),
    ("Record reduce", lambda: jr.Record(reduce="max"), ValueError, ["Record.reduce", "'max'"]),
    ("Features decimate NaN", lambda: monitors.Features(decimate=NAN * MS), ValueError,
     ["Features.decimate", "finite"]),
    ("Features segment < 0", lambda: monitors.Features(segment=-1 * S), ValueError, ["Features.segment", "> 0"]),
    ("Features band", lambda: monitors.Features(bands=(("alpha", 8.0),)), ValueError, ["Features.bands", "alpha"]),
]


@pytest.mark.parametrize("call, exc, words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_a_bad_input_is_a_named_error(call, exc, words):
    TRACED.clear()
    with pytest.raises(exc) as err:
        call()
    for w in words:
        assert w in str(err.value), (w, str(err.value))
    assert not RUNS & set(TRACED), TRACED


def test_the_guard_sees_a_run():
    TRACED.clear()
    jr.trace(P, duration=8.5 * MS, record=jr.Record(every=17))       # steps no other test uses: traced afresh
    assert "run_chunk" in TRACED


def test_the_table_is_wide():
    assert len(ROWS) >= 60


# -- the budget ---------------------------------------------------------------------------------------------------

def test_the_step_budget_refuses_and_check_budget_false_runs(monkeypatch):
    monkeypatch.setattr(checks, "MAX_STEPS", 15)
    with pytest.raises(BudgetError, match=r"simulate would run 20 steps per column .*MAX_STEPS = 15"):
        sim()
    with pytest.raises(BudgetError, match=r"trace would run 20 steps"):
        trace()
    assert sim(check_budget=False).eeg.shape == (20,)
    assert trace(check_budget=False).eeg.shape == (20,)


def test_the_record_budget_refuses_and_check_budget_false_runs(monkeypatch):
    monkeypatch.setattr(checks, "available_memory", lambda where="host": 100)
    monkeypatch.setattr(checks, "SMALL_RECORDS", 0)          # read the memory even for small records
    with pytest.raises(BudgetError) as err:
        sim()
    msg = str(err.value)
    for w in ["160 bytes of records", "20 records of 1 variable(s)", "0.5 of the 100 bytes", "record=()",
              "check_budget=False"]:
        assert w in msg, (w, msg)
    assert sim(record=()).variables == {}                     # keeping nothing is always within the budget
    assert sim(check_budget=False).eeg.shape == (20,)


def test_the_sweep_budget_refuses_and_check_budget_false_runs(monkeypatch):
    monkeypatch.setattr(checks, "MAX_STEPS", 100)
    with pytest.raises(BudgetError, match=r"sweep would run 200 steps per column"):
        sweep()
    res = sweep(check_budget=False)
    assert res.complete and res.features["mean"].shape == (2,)


def test_available_memory_is_read():
    host = checks.available_memory()
    assert host is None or host > 0
