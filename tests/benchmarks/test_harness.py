"""The benchmark harness: child-process measurement, memory guard, result tables."""

from __future__ import annotations

import time

import numpy as np
import pytest

import benchmarks.run as run
from benchmarks import harness
from benchmarks.harness import StepResult, run_step

STEPS = "tests.benchmarks.steps_for_tests"


def test_run_step_returns_the_child_figures():
    result = run_step("ok", STEPS, {"kind": "ok"}, max_rss_mb=10_000)
    assert result.info == {"core_s": 0.25, "rows": 3}
    assert result.name == "ok"
    assert 0 <= result.seconds < 5
    assert 10 < result.peak_rss_mb < 10_000  # an interpreter with numpy loaded


def test_run_step_reports_a_failing_child():
    with pytest.raises(
        RuntimeError, match=r"(?s)step bad failed \(exit status 1\).*ValueError: asked to fail"
    ):
        run_step("bad", STEPS, {"kind": "fail"})


def test_run_step_says_when_the_child_was_killed_from_outside():
    with pytest.raises(RuntimeError, match=r"step gone failed \(killed by signal 9\)"):
        run_step("gone", STEPS, {"kind": "killed"})


def test_memory_guard_kills_a_child_above_the_limit():
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"step big stopped: resident memory .* 150 MB guard"):
        run_step("big", STEPS, {"kind": "alloc", "mb": 400}, max_rss_mb=150, poll_s=0.1)
    # Killed as soon as it was seen, not after the child's 5-second sleep.
    assert time.perf_counter() - t0 < 4.5


def test_timeout_kills_the_child():
    with pytest.raises(RuntimeError, match="still running after"):
        run_step("slow", STEPS, {"kind": "alloc", "mb": 1}, timeout=0.5, poll_s=0.1)


def _fake_results(results: dict):
    def fake_run_step(name, module, params, max_rss_mb=None, **_):
        assert module == "benchmarks.pipeline" and params == {"step": name, "size": "federation"}
        assert max_rss_mb == run.GUARD_RSS_MB == 20480
        outcome = results[name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return fake_run_step


def test_run_records_ratios_load_and_stops_after_a_failed_step(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(run.os, "getloadavg", lambda: (1.25, 1.0, 1.0))
    monkeypatch.setattr(
        run,
        "run_step",
        _fake_results(
            {
                "monthly": StepResult("monthly", 1900.0, 10240.0, {"core_s": 1800.0, "n": 5}),
                "score": RuntimeError("benchmark step score stopped: too much | memory\ntrace"),
            }
        ),
    )
    called = []
    monkeypatch.setattr(run, "print", lambda *a, **k: called.append(a), raising=False)
    status = run.main(["--size", "federation", "--steps", "monthly", "score", "train"])
    assert status == 1
    text = (tmp_path / "pipeline.md").read_text()
    lines = [x for x in text.splitlines() if x.startswith("| ")]
    assert lines[0].startswith("| step | operation s |") and "load 1-min" in lines[0]
    # 1800 / 3600 s target = 0.50; 10,240 / 20,480 MB = 0.50.
    assert lines[1] == (
        "| monthly | 1800.0 | 1900.0 | 10,240 | 3600 | 0.50 | 0.50 | 1.2 / 1.2 | n=5 |"
    )
    assert lines[2].startswith("| score |") and "too much / memory" in lines[2]
    assert len(lines) == 3  # train never ran
    assert "memory guard: 20,480 MB" in text


def test_run_sends_each_step_to_its_module(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    seen = []

    def fake_run_step(name, module, params, max_rss_mb=None, **_):
        seen.append((name, module, max_rss_mb))
        return StepResult(name, 1.0, 100.0, {"core_s": 0.5})

    monkeypatch.setattr(run, "run_step", fake_run_step)
    monkeypatch.setattr(run, "print", lambda *a, **k: None, raising=False)
    assert run.main(["--size", "small", "--steps", "memory", "frame", "--max-rss-mb", "0"]) == 0
    assert seen == [
        ("memory", "benchmarks.federation", None),
        ("frame", "benchmarks.pipeline", None),
    ]
    assert "memory guard: none" in (tmp_path / "pipeline.md").read_text()


def test_memory_helpers(community):
    from benchmarks.federation import array_memory_mb, frame_memory_mb, table_memory_mb

    # 2**20 rows x (4 bytes x 3 features + 32 bytes of keys and label) = 44 MB.
    assert frame_memory_mb(2**20, 3) == 44.0

    class Holder:
        def __init__(self):
            self.a = np.zeros(2**17)  # 1 MB of float64
            self.b = np.zeros(2**18, dtype=np.int32)  # 1 MB
            self.c = "not an array"

    assert array_memory_mb(Holder()) == 2.0
    mb = table_memory_mb(community)
    assert set(mb) == {"members", "activities", "roles"}  # the fixture has no chapters table
    assert mb["activities"] * 2**20 >= len(community.activities) * 8 * 4  # 4 numeric columns+
