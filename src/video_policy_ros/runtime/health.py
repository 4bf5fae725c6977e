"""The inference node's diagnostics, from measurements only: OK, WARN or ERROR and why.

Inputs: the stamp → published latency (p50/p95) against the execution horizon and the
chunk's duration, the share of chunks the controller rejected since this node started
(its ``chunks_accepted`` / ``chunks_rejected`` counters), how old the inputs were, how long
the arm waited for chunks, the start-up latency budget, and the last policy error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from video_policy_ros.runtime.budget import BudgetReport

LEVEL_ORDER = {"ok": 0, "warn": 1, "error": 2}
REJECTED_SHARE_WARN = 0.05
ERROR_MEMORY_S = 10.0  # a policy error keeps the status at ERROR this long


@dataclass
class DownstreamCounters:
    """The controller's cumulative counters, read relative to their first value this node saw."""

    baseline: tuple[int, int] | None = None
    latest: tuple[int, int] = (0, 0)

    def update(self, accepted: int, rejected: int) -> None:
        if self.baseline is None:
            self.baseline = (accepted, rejected)
        self.latest = (accepted, rejected)

    @property
    def accepted(self) -> int:
        return self.latest[0] - (self.baseline or self.latest)[0]

    @property
    def rejected(self) -> int:
        return self.latest[1] - (self.baseline or self.latest)[1]

    @property
    def rejected_share(self) -> float | None:
        total = self.accepted + self.rejected
        return self.rejected / total if total else None


@dataclass
class HealthInputs:
    horizon_s: float | None = None
    duration_s: float | None = None
    margin_s: float = 0.0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    model_p50_s: float | None = None
    model_p95_s: float | None = None
    chunks: int = 0
    arm_waits: int = 0
    arm_wait_s: float = 0.0
    input_problem: str = ""  # why the last observation could not be built ("" when it could)
    input_age_s: float | None = None  # age of the last observation when it was submitted
    max_input_age_s: float = 0.5
    last_error: str = ""
    last_error_at: float = float("-inf")
    budget: BudgetReport | None = None
    downstream: DownstreamCounters = field(default_factory=DownstreamCounters)


def _fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.0f}"


def assess_health(h: HealthInputs, now: float, started: bool) -> tuple[str, str, dict[str, object]]:
    """→ (level, one-line message, key values for /diagnostics)."""
    problems: list[tuple[str, str]] = []
    if not started:
        problems.append(("warn", "warming up (measuring latency)"))
    if now - h.last_error_at < ERROR_MEMORY_S:
        problems.append(("error", f"policy failed: {h.last_error}"))
    if h.budget is not None and h.budget.level != "ok" and h.chunks == 0:
        problems.append((h.budget.level, h.budget.message))
    if h.latency_p95_s is not None and h.horizon_s is not None:
        if h.latency_p50_s >= h.duration_s:
            problems.append(("error", f"chunks arrive {h.latency_p50_s:.2f} s after their observation (p50), "
                                      f"after the whole {h.duration_s:.2f} s chunk: they are stale"))
        elif h.latency_p95_s + h.margin_s > h.horizon_s:
            problems.append(("warn", f"latency p95 {h.latency_p95_s:.2f} s + margin exceeds the "
                                     f"{h.horizon_s:.2f} s execution horizon"))
    share = h.downstream.rejected_share
    if share is not None and share > REJECTED_SHARE_WARN:
        problems.append(("warn", f"controller rejected {h.downstream.rejected} of "
                                 f"{h.downstream.accepted + h.downstream.rejected} chunks ({share:.0%})"))
    if h.input_problem:
        problems.append(("warn", f"waiting for input: {h.input_problem}"))
    elif h.input_age_s is not None and h.input_age_s > h.max_input_age_s / 2:
        problems.append(("warn", f"inputs {h.input_age_s:.2f} s old when used"))
    level = max((lvl for lvl, _ in problems), key=LEVEL_ORDER.get, default="ok")
    message = "; ".join(text for _, text in problems) or (
        f"keeping up: latency p95 {h.latency_p95_s:.2f} s within the {h.horizon_s:.2f} s execution horizon"
        if h.latency_p95_s is not None else "running")
    values = {
        "chunks": h.chunks,
        "latency_ms_p50": _fmt(h.latency_p50_s),
        "latency_ms_p95": _fmt(h.latency_p95_s),
        "model_ms_p50": _fmt(h.model_p50_s),
        "model_ms_p95": _fmt(h.model_p95_s),
        "execute_horizon_ms": _fmt(h.horizon_s),
        "chunk_duration_ms": _fmt(h.duration_s),
        "downstream_accepted": h.downstream.accepted,
        "downstream_rejected": h.downstream.rejected,
        "arm_waits": h.arm_waits,
        "arm_wait_s": f"{h.arm_wait_s:.2f}",
        "input_age_ms": _fmt(h.input_age_s),
        "budget": h.budget.message if h.budget else "not checked yet",
        "last_error": h.last_error or "none",
    }
    return level, message, values
