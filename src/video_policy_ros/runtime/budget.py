"""The latency budget checked at start: can the policy's chunks land before the arm needs them?

``measure(steps)`` runs one warm-up call (with that sampler step count, None for policies
without one) and returns its seconds. A chunk fits when its p95 latency plus the margin is
within the execution horizon; between the horizon and the chunk's whole duration the arm
keeps moving but runs more of each chunk than intended (WARN); beyond the duration chunks
arrive stale and the arm waits (ERROR). ``num_steps: auto`` fits ``a + b * steps`` to two
step counts and takes the largest count whose predicted latency fits, up to the checkpoint's
own count (more steps than it was tuned for would only add latency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class BudgetReport:
    steps: int | None
    p50_s: float
    p95_s: float
    horizon_s: float
    duration_s: float
    margin_s: float
    level: str  # ok | warn | error
    message: str


def assess(steps: int | None, latencies: list[float], horizon_s: float, duration_s: float, margin_s: float,
           guidance: float | None = None, sampler: str | None = None) -> BudgetReport:
    p50, p95 = (float(np.percentile(latencies, q)) for q in (50, 95))
    what = "the policy"
    if steps:
        what = (f"{steps} steps" + (f" ({sampler} sampler)" if sampler else "")
                + (f", guidance {guidance}" if guidance is not None else ""))
    figures = f"{what}: {p50:.2f} s p50 / {p95:.2f} s p95 per chunk (+{margin_s:.2f} s margin)"
    if p95 + margin_s <= horizon_s:
        return BudgetReport(steps, p50, p95, horizon_s, duration_s, margin_s, "ok",
                            f"latency budget met: {figures} within the {horizon_s:.2f} s execution horizon")
    fix = "lower num_steps, set guidance 1.0, use a faster backend/device, or set num_steps: auto"
    if p95 + margin_s < duration_s:
        return BudgetReport(steps, p50, p95, horizon_s, duration_s, margin_s, "warn",
                            f"latency budget exceeded: {figures} > {horizon_s:.2f} s execution horizon (the arm runs "
                            f"more of each {duration_s:.2f} s chunk than planned); {fix}")
    return BudgetReport(steps, p50, p95, horizon_s, duration_s, margin_s, "error",
                        f"latency budget missed: {figures} >= the whole {duration_s:.2f} s chunk, so chunks arrive "
                        f"stale and the arm waits; {fix}")


def check_budget(measure: Callable[[int | None], float], steps: int | None, calls: int, horizon_s: float,
                 duration_s: float, margin_s: float, auto_steps: bool = False,
                 guidance: float | None = None, sampler: str | None = None) -> BudgetReport:
    """Warm up with ``calls`` calls and assess; with ``auto_steps`` first pick the count (at most
    ``steps``) that fits."""
    if auto_steps and steps is not None and steps > 1:  # policies without a step count have nothing to fit
        steps = fit_steps(measure, horizon_s - margin_s, max_steps=steps, probe=steps)
    measure(steps)  # the first call pays one-off costs (allocation, lazy initialisation)
    return assess(steps, [measure(steps) for _ in range(calls)], horizon_s, duration_s, margin_s, guidance, sampler)


def fit_steps(measure: Callable[[int | None], float], budget_s: float, max_steps: int, probe: int) -> int:
    """Largest step count with ``a + b * steps <= budget_s`` from calls at 1 and ``probe`` steps (at least 1)."""
    measure(1)  # warm-up
    one = max(measure(1), measure(1))
    many = max(measure(probe), measure(probe))
    per_step = max((many - one) / (probe - 1), 1e-6)
    fixed = one - per_step
    return int(np.clip(np.floor((budget_s - fixed) / per_step), 1, max_steps))
