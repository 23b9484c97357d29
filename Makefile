# Two commands do all the set-up on a fresh clone:  `make demo`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: demo test bench
demo: $(VENV)/.installed          ## the main job: all regimes, one figure each, a table (md + csv) in regimes_out/
	$(VENV)/bin/jr-jax regimes --out regimes_out

test: $(VENV)/.installed          ## the test suite (the same command CI runs), on two worker processes
	$(PY) -m pytest -n 2 --durations=10

bench: $(VENV)/.installed         ## the benchmarks whose numbers the README reports
	$(PY) benchmarks/integrator_accuracy.py
	$(PY) benchmarks/units_overhead.py
	$(PY) benchmarks/sweep_throughput.py
	$(PY) benchmarks/fit_horizon.py
	$(PY) benchmarks/peers.py
