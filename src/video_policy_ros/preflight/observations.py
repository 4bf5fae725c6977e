"""What an outside observer of the controller recorded, and the queries the checks make of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from video_policy_ros.control.arm import MAX_STAMP_LAG_S, TIME_FACTOR_WINDOW_S


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


# A report of the robot's time factor covers the window before it, and the controller's /diagnostics come every
# 0.5 s: a report up to window + 1 s after a moment still speaks of it.
TIME_FACTOR_REPORT_S = TIME_FACTOR_WINDOW_S + 1.0
# The controller's stamps may run up to MAX_STAMP_LAG_S behind the wall clock while a simulated robot runs slower
# than real time: a window that ends where the next step starts moving the arm ends twice that earlier, so it
# holds only states measured before that step.
STAMP_LAG_S = 2 * MAX_STAMP_LAG_S


@dataclass
class Observations:
    """Everything the observer saw, as (receive time[, header stamp], value)."""

    poses: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    # header stamp (the robot's state time, not delivery: an observer on a loaded machine receives late), joint
    # positions, joint velocities: the TCP speed from them is per second of the robot's clock, which a simulated FR3
    # on a loaded machine runs slower than the wall clock that the stamps follow
    joint_states: list[tuple[float, np.ndarray, np.ndarray]] = field(default_factory=list)
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

    def joint_speed_now(self) -> float:
        """The fastest joint's speed in the latest state (rad/s)."""
        return float(np.max(np.abs(self.joint_states[-1][2])))

    def max_joint_speed(self, t0: float, t1: float) -> float:
        return max((float(np.max(np.abs(dq))) for r, _, dq in self.joint_states if t0 <= r <= t1), default=float("nan"))

    def max_tcp_speed(self, t0: float, t1: float, window_s: float = 0.05) -> float:
        """The highest TCP speed averaged over ``window_s`` of stamps, as a speed from two poses that far apart
        would read (a single state's velocity carries the simulation's step-to-step noise)."""
        from video_policy_ros.control.kinematics import FR3Kinematics  # MuJoCo, only where speeds are checked

        kept = [(r, q, dq) for r, q, dq in self.joint_states if t0 <= r <= t1]
        if not kept:
            return float("nan")
        kinematics = FR3Kinematics()
        stamps = np.array([r for r, _, _ in kept])
        speed = np.array([np.linalg.norm(kinematics.jacobian(q)[:3] @ dq) for _, q, dq in kept])
        start, end = np.arange(len(stamps)), np.maximum(np.searchsorted(stamps, stamps + window_s), np.arange(len(stamps)) + 1)
        sums = np.concatenate([[0.0], np.cumsum(speed)])
        return float(np.max((sums[end] - sums[start]) / (end - start)))

    def robot_time_factor(self, t0: float, t1: float) -> float:
        """Robot seconds per wall second during [t0, t1]: the slowest the controller reported (each report covers
        about the second before it), at most 1 (a real FR3 keeps time; a simulated one on a loaded machine runs
        slower, so its halts take that much longer in wall time and its speeds per stamp second read that much
        lower)."""
        reported = [float(v["robot_time_factor"]) for r, _, v in self.diagnostics
                    if t0 <= r <= t1 + TIME_FACTOR_REPORT_S and v.get("robot_time_factor")]
        return min([1.0, *reported])

    def after_robot_seconds(self, t0: float, seconds: float) -> float:
        """The wall time at which the robot's clock has run ``seconds`` past ``t0``: each stretch of wall time counts
        at the time factor of the first report received after it (1 where none has come yet, so a deadline asked
        for early only grows as reports arrive)."""
        reports = sorted((r, max(min(float(v["robot_time_factor"]), 1.0), 0.05)) for r, _, v in self.diagnostics
                         if r > t0 and v.get("robot_time_factor"))
        t, left = t0, seconds
        for received, factor in reports:
            if left <= (received - t) * factor:
                break
            left -= (received - t) * factor
            t = received
        else:
            return t + left
        return t + left / factor


