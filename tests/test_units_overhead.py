"""Units are resolved at trace time: the unit-aware RK4 step traces to the same program as a bare-array transcription."""

import importlib.util
import pathlib


def _benchmark_module():
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "units_overhead.py"
    spec = importlib.util.spec_from_file_location("units_overhead", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_unit_aware_step_traces_to_the_bare_program():
    unit_aware, bare = _benchmark_module().step_primitives()
    assert sum(bare.values()) > 100            # the transcription is a whole RK4 step
    assert unit_aware == bare                  # no unit conversions or checks left at run time
