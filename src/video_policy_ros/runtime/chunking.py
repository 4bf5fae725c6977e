"""Real-time chunking: when to take the next observation so that its chunk lands in time.

A chunk computed from an observation stamped ``t`` reaches the controller at ``t + L``
(``L``: the measured stamp → published latency). With real-time chunking the next
observation is taken at ``last.stamp + H - L95 - margin`` so that the new chunk lands
after the arm has run the execution horizon ``H`` of the current one, while the arm is
still moving; the controller then splices it in from the current time (points already
due are dropped there). Without it (stop and go, as the paper runs) the next observation
is taken only when the current chunk has run out, so the arm waits ``L`` every chunk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from video_policy_ros.policies.base import ChunkTiming
from video_policy_ros.types import ActionChunk


class LatencyWindow:
    """The last ``size`` latencies in seconds, with percentiles."""

    def __init__(self, size: int = 50):
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self._values, q)) if self._values else None


def timing_of(chunk: ActionChunk) -> ChunkTiming:
    """For policies that do not announce their timing: run half of each chunk, as the paper does (16 of 32)."""
    return ChunkTiming(chunk.dt, len(chunk), max(1, len(chunk) // 2))


@dataclass(frozen=True)
class ChunkScheduler:
    realtime: bool
    margin_s: float
    execute_horizon_s: float | None = None  # overrides the policy's timing

    def horizon_s(self, timing: ChunkTiming) -> float:
        return min(self.execute_horizon_s or timing.execute_s, timing.duration_s)

    def next_start(self, last: ActionChunk | None, timing: ChunkTiming | None, latency_s: float | None) -> float:
        """Wall-clock time at which the next observation should be taken (-inf: now)."""
        if last is None:
            return float("-inf")
        timing = timing or timing_of(last)
        if not self.realtime:
            return float(last.times[-1])
        return last.stamp + self.horizon_s(timing) - (latency_s or 0.0) - self.margin_s

    def due(self, now: float, last: ActionChunk | None, timing: ChunkTiming | None, latency_s: float | None) -> bool:
        return now >= self.next_start(last, timing, latency_s)
