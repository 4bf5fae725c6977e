"""What an outside observer of the controller recorded, and the queries the checks make of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Observations:
    """Everything the observer saw, as (receive time[, header stamp], value)."""

    poses: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    # header stamp (the robot's state time, not delivery: an observer on a loaded machine receives late)
    joint_speeds: list[tuple[float, float]] = field(default_factory=list)  # stamp, max |joint velocity|
    fingers: list[tuple[float, float]] = field(default_factory=list)  # receive, fr3_finger_joint1 (m)
    commands: list[tuple[float, np.ndarray]] = field(default_factory=list)  # stamp, twist
    diagnostics: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)  # receive, message, values
    chunk_arrivals: list[float] = field(default_factory=list)  # receive times on /policy/action_chunk
    divergences: list[tuple[float, float]] = field(default_factory=list)  # receive, /policy/divergence
    events: dict[str, object] = field(default_factory=dict)

    def pose_now(self) -> np.ndarray:
        return self.poses[-1][2]

    def value(self, key: str) -> str:
        """The latest value of ``key`` in the controller's diagnostics ("" if never reported)."""
        return next((values[key] for _, _, values in reversed(self.diagnostics) if key in values), "")

    def counter(self, key: str) -> int:
        return int(self.value(key) or 0)

    def poses_between(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        kept = [(s, p[:3]) for r, s, p in self.poses if t0 <= r <= t1]
        return np.array([s for s, _ in kept]), np.array([p for _, p in kept])

    def max_joint_speed(self, t0: float, t1: float) -> float:
        return max(s for r, s in self.joint_speeds if t0 <= r <= t1)


