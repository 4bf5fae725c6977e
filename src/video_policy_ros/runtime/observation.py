"""Collects the latest inputs from many callbacks into one consistent Observation.

Frame sync: each camera keeps its last few frames, and an observation uses the newest set
of frames (one per camera) whose stamps agree within ``sync_tolerance_s``, so a policy never
sees the front camera "now" and the wrist camera a quarter of a second ago. What sync
costs is reported by :meth:`ObservationAssembler.sync_statistics`.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from video_policy_ros.types import CameraFrame, Observation

DEFAULT_SYNC_TOLERANCE_S = 0.05
HISTORY_FRAMES = 16  # per camera: ~0.5 s at 30 fps, as old as an observation may be by default
# A frame stamped this far ahead of our clock, or one that arrived within max_age_s but whose stamp is
# older than that, was stamped by another clock: the host that stamps the cameras is not in sync with this one.
CLOCK_AHEAD_TOLERANCE_S = 0.05
CLOCK_PROBLEM = "clock offset:"


@dataclass
class _Received:
    frame: CameraFrame
    at: float | None  # this host's clock when it arrived (None: not known, nothing judged from it)
    matched: bool = False  # had a partner within tolerance from every other camera


@dataclass(frozen=True)
class FrameSyncStats:
    """Frame-sync health, for /diagnostics.

    ``frames_dropped``: frames that left the history without a partner within tolerance from
    every other camera (they could never be used); ``sets_rejected``: observations refused
    because no such set existed; ``lag_s``: age of the last observation's oldest frame when
    it was assembled; ``skew_s``: its newest minus its oldest frame stamp.
    """

    tolerance_s: float
    sets_assembled: int
    sets_rejected: int
    frames_dropped: int
    lag_s: float | None
    skew_s: float | None
    max_skew_s: float

    def as_diagnostic_values(self) -> dict[str, str]:
        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 1e3:.1f}"

        return {
            "sync_tolerance_ms": ms(self.tolerance_s),
            "sync_sets_assembled": str(self.sets_assembled),
            "sync_sets_rejected": str(self.sets_rejected),
            "sync_frames_dropped": str(self.frames_dropped),
            "sync_lag_ms": ms(self.lag_s),
            "sync_skew_ms": ms(self.skew_s),
            "sync_max_skew_ms": ms(self.max_skew_s),
        }


class ObservationAssembler:
    def __init__(
        self,
        cameras: tuple[str, ...],
        max_age_s: float,
        default_instruction: str = "",
        sync_tolerance_s: float = DEFAULT_SYNC_TOLERANCE_S,
    ):
        if sync_tolerance_s < 0:
            raise ValueError(f"sync_tolerance_s must be >= 0, got {sync_tolerance_s}")
        self.cameras = cameras
        self.max_age_s = max_age_s
        self.sync_tolerance_s = sync_tolerance_s
        self._lock = threading.Lock()
        self._history: dict[str, deque[_Received]] = defaultdict(lambda: deque(maxlen=HISTORY_FRAMES))
        self._tcp: tuple[float, np.ndarray] | None = None
        self._gripper = 0.0
        self._instruction = default_instruction
        self._assembled = self._rejected = self._dropped = 0
        self._lag: float | None = None
        self._skew: float | None = None
        self._max_skew = 0.0

    # ---------------------------------------------------------------- inputs

    def add_frame(self, frame: CameraFrame, received_at: float | None = None) -> None:
        with self._lock:
            history = self._history[frame.camera]
            if len(history) == history.maxlen and not history[0].matched:
                self._dropped += 1
            received = _Received(frame, received_at)
            history.append(received)
            partners = [self._nearest(c, frame.stamp) for c in self.cameras if c != frame.camera]
            if frame.camera in self.cameras and all(p is not None for p in partners):
                for r in (received, *partners):
                    r.matched = True

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

    # ---------------------------------------------------------------- assembly

    def build(self, now: float) -> tuple[Observation | None, str]:
        """The observation, or None and what is missing or too old."""
        with self._lock:
            missing = [c for c in self.cameras if not self._history[c]]
            if missing:
                return None, f"no image yet from camera(s) {missing}"
            newest = {c: self._history[c][-1].frame for c in self.cameras}
            problem = self._clock_offset(now)
            if problem:
                return None, problem
            problem = self._too_old(newest, now, "camera image(s) too old")
            if problem:
                return None, f"{problem}: camera stalled or disconnected?"
            frames = self._newest_synchronised_set()
            if frames is None:
                self._rejected += 1
                stamps = ", ".join(f"{c} {f.stamp:.3f}" for c, f in newest.items())
                return None, (
                    f"no set of camera frames whose stamps agree within {self.sync_tolerance_s * 1e3:.0f} ms "
                    f"(newest: {stamps}): a camera lags, or its clock is not the host's"
                )
            problem = self._too_old(frames, now, "newest synchronised frames too old")
            if problem:
                return None, f"{problem}: one camera delivers late"
            if self._tcp is None:
                return None, "no /ee_pose yet (is the controller running?)"
            if now - self._tcp[0] > self.max_age_s:
                return None, f"/ee_pose is {now - self._tcp[0]:.2f} s old"
            if not self._instruction:
                return None, "no task instruction yet (publish one on /task)"
            observation = Observation(frames, self._tcp[1], self._gripper, self._instruction)
            self._record_set(frames, now)
            return observation, ""

    def sync_statistics(self) -> FrameSyncStats:
        with self._lock:
            return FrameSyncStats(
                self.sync_tolerance_s, self._assembled, self._rejected, self._dropped, self._lag, self._skew, self._max_skew
            )

    def clock_offsets(self) -> dict[str, float]:
        """Per camera: arrival minus stamp of its newest frame (transport latency plus the offset between
        the clock that stamps it and this host's), for /diagnostics."""
        with self._lock:
            return {c: h[-1].at - h[-1].frame.stamp for c, h in self._history.items() if h and h[-1].at is not None}

    def _clock_offset(self, now: float) -> str:
        """A clock problem, said as one: frames that arrive in time but carry stamps that cannot be right."""
        for camera in self.cameras:
            newest = self._history[camera][-1]
            if newest.at is None:
                continue
            offset = newest.at - newest.frame.stamp
            arrived_in_time = now - newest.at <= self.max_age_s
            fix = "synchronise the clocks (chrony or PTP, README 'Across machines')"
            if offset < -CLOCK_AHEAD_TOLERANCE_S:  # no frame arrives before it was taken
                return (f"{CLOCK_PROBLEM} camera '{camera}' frames are stamped {-offset:.2f} s ahead of this host's "
                        f"clock: the clock of the host that stamps them (the robot PC) is ahead of this one; {fix}")
            if arrived_in_time and offset > self.max_age_s:
                return (f"{CLOCK_PROBLEM} camera '{camera}' frames keep arriving, each stamped {offset:.2f} s before it "
                        f"arrives: the clock of the host that stamps them (the robot PC) is behind this host's, or the "
                        f"link delays them that long; {fix}, or relieve the link (image_transport: compressed)")
        return ""

    def _too_old(self, frames: dict[str, CameraFrame], now: float, what: str) -> str:
        stale = {c: now - f.stamp for c, f in frames.items() if now - f.stamp > self.max_age_s}
        if not stale:
            return ""
        ages = ", ".join(f"{c} {age:.2f} s" for c, age in stale.items())
        return f"{what} ({ages} > {self.max_age_s} s)"

    def _nearest(self, camera: str, stamp: float) -> _Received | None:
        """The frame of ``camera`` nearest ``stamp``, if it is within tolerance."""
        best = min(self._history[camera], key=lambda r: abs(r.frame.stamp - stamp), default=None)
        return best if best is not None and abs(best.frame.stamp - stamp) <= self.sync_tolerance_s else None

    def _newest_synchronised_set(self) -> dict[str, CameraFrame] | None:
        """Each received frame anchors a candidate set; the valid set whose oldest frame is newest wins."""
        best, best_oldest = None, -np.inf
        for anchor_camera in self.cameras:
            for anchor in self._history[anchor_camera]:
                chosen = {c: self._nearest(c, anchor.frame.stamp) for c in self.cameras}
                if any(r is None for r in chosen.values()):
                    continue
                oldest = min(r.frame.stamp for r in chosen.values())
                if oldest > best_oldest and max(r.frame.stamp for r in chosen.values()) - oldest <= self.sync_tolerance_s:
                    best, best_oldest = {c: r.frame for c, r in chosen.items()}, oldest
        return best

    def _record_set(self, frames: dict[str, CameraFrame], now: float) -> None:
        stamps = [f.stamp for f in frames.values()]
        self._assembled += 1
        self._lag, self._skew = now - min(stamps), max(stamps) - min(stamps)
        self._max_skew = max(self._max_skew, self._skew)
