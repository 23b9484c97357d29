"""benchmarks/gpu_check.py, the one prepared GPU check, runs end to end at smoke sizes on this CPU-only machine (the
CPU standing in for the GPU): every step runs, the results file holds what a GPU run must report, and the
comparisons pass (on one device they are exact). Its budget and its handling of a failing step are checked in
process."""

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = ["batch", "network", "resume", "chunk", "w5_small", "w5_large", "W2", "W4", "oom"]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)     # it finds peers.py beside itself
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout, json.loads(out.read_text()), out.with_suffix(".md").read_text()


def test_smoke_says_there_is_no_gpu(smoke):
    stdout, res, md = smoke
    assert "no GPU" in stdout and "No GPU" in md
    assert res["gpu"] is False and res["device"]["backend"] == "cpu"


def test_smoke_records_what_a_gpu_run_must_report(smoke):
    _, res, md = smoke
    for key in ("command", "date", "machine", "jax", "jaxlib", "jr_jax", "device", "tolerance", "sizes", "steps"):
        assert key in res, key
    assert "--smoke" in res["command"] and res["smoke"] is True
    assert list(res["steps"]) == STEPS
    for name in STEPS:
        assert isinstance(res["steps"][name]["seconds"], float), name
        assert f"| {name} |" in md


def test_smoke_correctness_checks_pass(smoke):
    steps = smoke[1]["steps"]
    for name in ("batch", "network", "resume", "chunk"):
        assert steps[name]["status"] == "pass", (name, steps[name])
    for name in ("batch", "network"):          # one device: the same numbers; the one-ulp nudge moves them
        assert steps[name]["max_abs"] == 0.0 and steps[name]["ulp_nudge_max_abs"] > 0.0
    resume = steps["resume"]
    assert resume["cpu_rows_bitwise"] and resume["chunks_on_cpu"] == 2
    assert set(resume["resumed_vs_device_only"]["per_feature"]) >= {"mean", "std", "psd", "dominant_frequency",
                                                                   "diverged"}


def test_smoke_chunk_is_sized_by_the_stand_in_memory(smoke):
    c = smoke[1]["steps"]["chunk"]
    assert c["free_is_stand_in"] is True
    # 700 sets' worth of memory free, half of it usable: 350 sets, rounded down to a multiple of 256
    assert c["chosen_chunk"] == c["sweep_chose"] == 256
    assert c["chosen_chunk_bytes"] <= c["free_bytes"] < c["next_chunk_bytes"]
    assert c["next_chunk"] % 256 == 0 and c["next_chunk"] > c["chosen_chunk"]
    assert smoke[1]["steps"]["oom"]["status"] == "n/a"       # a CPU has no allocator limit to run into


def test_smoke_measures_w5_w2_and_w4(smoke):
    steps = smoke[1]["steps"]
    small, large = steps["w5_small"], steps["w5_large"]
    assert (small["sets"], large["sets"]) == (64, 128) and small["steps"] == 400     # 0.2 s at 0.5 ms
    assert small["column_steps_per_s"] == pytest.approx(64 * 400 / small["run_s"])
    assert set(large["goals"].values()) <= {True, False} and len(large["goals"]) == 2
    assert {"W2 EEG", "W2 features"} <= set(steps["W2"]["rows"])
    assert {"W4", "W4|jr_jax Heun"} <= set(steps["W4"]["rows"])


def test_a_step_beyond_the_budget_is_skipped_and_a_failing_step_recorded(gpu_check):
    run = types.SimpleNamespace(left=lambda: 10.0, args=types.SimpleNamespace(budget_s=450.0))
    r = gpu_check.do_step(run, "heavy", lambda run: pytest.fail("a step beyond the budget ran"), 60.0)
    assert r["status"] == "skipped" and "60 s" in r["reason"] and "10 s" in r["reason"]
    r = gpu_check.do_step(run, "broken", lambda run: 1 / 0, 0.0)
    assert r["status"] == "error" and r["error"].startswith("ZeroDivisionError")
    r = gpu_check.do_step(run, "failing", lambda run: {"passed": False}, 0.0)
    assert r["status"] == "fail"


def test_full_sizes_without_a_gpu_stop_at_once(gpu_check, tmp_path):
    out = tmp_path / "r.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    res = json.loads(out.read_text())
    assert "no GPU" in res["error"] and res["steps"] == {}
