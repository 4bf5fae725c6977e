"""Real-time chunking schedule, the start-up latency budget and the diagnostics levels (pure cores)."""

from __future__ import annotations

import numpy as np
import pytest

from video_policy_ros.policies.base import ChunkTiming
from video_policy_ros.runtime.budget import check_budget, fit_steps
from video_policy_ros.runtime.chunking import ChunkScheduler
from video_policy_ros.runtime.health import HealthInputs, assess_health
from video_policy_ros.types import ActionChunk

TIMING = ChunkTiming(dt=0.1, horizon_steps=32, execute_steps=16)  # 3.2 s chunks, 1.6 s executed


def chunk(stamp: float) -> ActionChunk:
    return ActionChunk(stamp, 0.1, np.tile([0.5, 0, 0.3, 0, 0, 0, 1.0], (32, 1)), np.zeros(32))


def test_realtime_schedule_lands_the_next_chunk_at_the_execution_horizon():
    realtime = ChunkScheduler(realtime=True, margin_s=0.2)
    last = chunk(100.0)
    start = realtime.next_start(last, TIMING, latency_s=0.9)
    assert start == pytest.approx(100.0 + 1.6 - 0.9 - 0.2)
    assert start + 0.9 < last.times[-1], "the new chunk lands while the arm still has points to run"
    assert realtime.due(start, last, TIMING, 0.9) and not realtime.due(start - 0.01, last, TIMING, 0.9)
    assert realtime.due(0.0, None, TIMING, None), "the first chunk is due at once"
    # A slower policy starts earlier; one slower than the horizon starts at once (back to back).
    assert realtime.next_start(last, TIMING, 1.4) < start
    assert realtime.next_start(last, TIMING, 2.0) < 100.0


def test_stop_and_go_waits_for_the_chunk_to_run_out():
    stop_and_go = ChunkScheduler(realtime=False, margin_s=0.2)
    assert stop_and_go.next_start(chunk(100.0), TIMING, 0.9) == pytest.approx(103.2)


def test_execution_horizon_override_is_capped_by_the_chunk():
    assert ChunkScheduler(True, 0.0, execute_horizon_s=1.0).horizon_s(TIMING) == 1.0
    assert ChunkScheduler(True, 0.0, execute_horizon_s=9.0).horizon_s(TIMING) == pytest.approx(3.2)


def linear_latency(fixed: float, per_step: float):
    calls = []

    def measure(steps):
        calls.append(steps)
        return fixed + per_step * steps

    return measure, calls


@pytest.mark.parametrize("per_step, level", [(0.1, "ok"), (0.2, "warn"), (0.5, "error")])
def test_budget_levels_follow_latency_against_horizon_and_chunk(per_step, level):
    measure, calls = linear_latency(0.1, per_step)
    report = check_budget(measure, steps=10, calls=3, horizon_s=1.6, duration_s=3.2, margin_s=0.3, guidance=2.0)
    assert report.level == level and calls == [10] * 4  # one warm-up call, then three timed
    assert report.p95_s == pytest.approx(0.1 + 10 * per_step)
    assert "10 steps, guidance 2.0" in report.message
    if level != "ok":
        assert "num_steps: auto" in report.message


def test_auto_steps_picks_the_largest_count_that_fits():
    measure, _ = linear_latency(0.1, 0.19)  # (1.6 - 0.3 - 0.1) / 0.19 = 6.3: 6 steps fit
    report = check_budget(measure, steps=10, calls=2, horizon_s=1.6, duration_s=3.2, margin_s=0.3, auto_steps=True)
    assert report.steps == 6 and report.level == "ok"
    assert fit_steps(linear_latency(5.0, 1.0)[0], budget_s=1.3, max_steps=50, probe=10) == 1  # nothing fits: the least
    assert fit_steps(linear_latency(0.0, 0.001)[0], budget_s=1.3, max_steps=10, probe=10) == 10  # the checkpoint's
    measure, _ = linear_latency(0.0, 0.001)
    assert check_budget(measure, steps=10, calls=1, horizon_s=1.6, duration_s=3.2, margin_s=0.3, auto_steps=True).steps == 10


def healthy(**overrides) -> HealthInputs:
    values = dict(horizon_s=1.6, duration_s=3.2, margin_s=0.3, latency_p50_s=0.8, latency_p95_s=1.0, chunks=10)
    return HealthInputs(**{**values, **overrides})


def test_health_levels_come_from_the_measurements():
    level, message, values = assess_health(healthy(), now=100.0, started=True)
    assert level == "ok" and "keeping up" in message and values["latency_ms_p95"] == "1000"
    assert assess_health(healthy(latency_p95_s=1.5), 100.0, True)[0] == "warn"
    level, message, _ = assess_health(healthy(latency_p50_s=3.5, latency_p95_s=4.0), 100.0, True)
    assert level == "error" and "stale" in message
    level, message, _ = assess_health(healthy(last_error="RuntimeError: boom", last_error_at=95.0), 100.0, True)
    assert level == "error" and "boom" in message
    assert assess_health(healthy(last_error="old", last_error_at=50.0), 100.0, True)[0] == "ok"
    assert assess_health(healthy(input_problem="camera stalled"), 100.0, True)[0] == "warn"
    assert assess_health(healthy(), 100.0, started=False)[0] == "warn"


def test_rejected_share_counts_from_the_first_counters_seen():
    h = healthy()
    h.downstream.update(accepted=50, rejected=40)  # before this node started: not ours
    h.downstream.update(accepted=70, rejected=40)
    assert h.downstream.rejected_share == 0.0 and assess_health(h, 100.0, True)[0] == "ok"
    h.downstream.update(accepted=78, rejected=42)
    level, message, values = assess_health(h, 100.0, True)
    assert level == "warn" and "rejected 2 of 30 chunks" in message and values["downstream_rejected"] == 2
