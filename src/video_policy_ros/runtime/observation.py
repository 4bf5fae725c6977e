"""Collects the latest inputs from many callbacks into one consistent Observation."""

from __future__ import annotations

import threading

import numpy as np

from video_policy_ros.types import CameraFrame, Observation


class ObservationAssembler:
    def __init__(self, cameras: tuple[str, ...], max_age_s: float, default_instruction: str = ""):
        self.cameras = cameras
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._frames: dict[str, CameraFrame] = {}
        self._tcp: tuple[float, np.ndarray] | None = None
        self._gripper = 0.0
        self._instruction = default_instruction

    def add_frame(self, frame: CameraFrame) -> None:
        with self._lock:
            self._frames[frame.camera] = frame

    def set_tcp_pose(self, stamp: float, pose: np.ndarray) -> None:
        with self._lock:
            self._tcp = (stamp, pose)

    def set_gripper(self, position: float) -> None:
        with self._lock:
            self._gripper = position

    def set_instruction(self, instruction: str) -> bool:
        """True when the instruction changed (a new task starts)."""
        with self._lock:
            changed = instruction != self._instruction
            self._instruction = instruction
            return changed

    def build(self, now: float) -> tuple[Observation | None, str]:
        """The observation, or None and what is missing or too old."""
        with self._lock:
            missing = [c for c in self.cameras if c not in self._frames]
            if missing:
                return None, f"no image yet from camera(s) {missing}"
            stale = {c: now - self._frames[c].stamp for c in self.cameras if now - self._frames[c].stamp > self.max_age_s}
            if stale:
                ages = ", ".join(f"{c} {age:.2f} s" for c, age in stale.items())
                return None, f"camera image(s) too old ({ages} > {self.max_age_s} s): camera stalled or disconnected?"
            if self._tcp is None:
                return None, "no /ee_pose yet (is the controller running?)"
            if now - self._tcp[0] > self.max_age_s:
                return None, f"/ee_pose is {now - self._tcp[0]:.2f} s old"
            if not self._instruction:
                return None, "no task instruction yet (publish one on /task)"
            frames = {c: self._frames[c] for c in self.cameras}
            return Observation(frames, self._tcp[1], self._gripper, self._instruction), ""
