"""How far the world has drifted from what the policy predicted: each predicted future frame against
the camera frame observed at the time it predicts, at the model's resolution.

The measure is the mean squared error of RGB in [0, 1] (``divergence``), averaged over one
prediction's future frames of every camera; frame 0 (the current frame, which the model is
conditioned on) is skipped. A prediction arrives after its inference latency, when some of the
frames it predicts may already have been seen, so the monitor keeps the last ``history_s`` of
camera frames (cut to the model's crop and resolution: a few kB each). A prediction's divergence is final once
every one of its future frames has been compared, or once every camera has passed its last frame's
time (frames never seen are left out). The controller acts on it (``control/watchdog.py``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from video_policy_ros.data.frames import Crop, resize


def divergence(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Mean squared error between two ``(H, W, 3)`` uint8 frames, in [0, 1] RGB units."""
    return float(np.mean(((predicted.astype(np.float32) - observed.astype(np.float32)) / 255.0) ** 2))


@dataclass
class _Prediction:
    stamp: float  # the observation the prediction starts from
    period_s: float  # between predicted frames
    frames: dict[str, np.ndarray]  # camera → (T, H, W, 3) uint8; frame j is due at stamp + j * period_s
    errors: list[float] = field(default_factory=list)
    pending: set[tuple[str, int]] = field(default_factory=set)

    def due(self, j: int) -> float:
        return self.stamp + j * self.period_s


class DivergenceMonitor:
    """Thread-safe: predictions arrive from the decoder thread, camera frames from the executor."""

    def __init__(self, size: tuple[int, int], crops: Mapping[str, Crop] | None = None, tolerance_s: float = 0.04,
                 history_s: float = 10.0):
        self.size = tuple(size)  # the model's (H, W)
        self.crops = dict(crops or {})  # the model's regions of interest: a prediction shows only its camera's crop
        self.tolerance_s = tolerance_s  # a camera frame this close to a predicted frame's time is its observation
        self.history_s = history_s
        self._seen: dict[str, deque[tuple[float, np.ndarray]]] = {}
        self._predictions: list[_Prediction] = []
        self._lock = threading.Lock()

    def add_prediction(self, stamp: float, period_s: float, frames_by_camera: dict[str, np.ndarray]) -> list[tuple[float, float]]:
        """Register a prediction; returns ``(stamp, divergence)`` at once if every frame it predicts was seen already."""
        if period_s <= 0:
            raise ValueError(f"predicted frames need a positive period, got {period_s}")
        pending = {(cam, j) for cam, frames in frames_by_camera.items() for j in range(1, len(frames))}
        with self._lock:
            self._predictions.append(_Prediction(stamp, period_s, dict(frames_by_camera), pending=pending))
            return self._compare()

    def add_frame(self, camera: str, stamp: float, image: np.ndarray) -> list[tuple[float, float]]:
        """Keep a camera frame; returns ``(prediction stamp, divergence)`` for each prediction it completes."""
        small = resize(image, self.size, self.crops.get(camera))
        with self._lock:
            seen = self._seen.setdefault(camera, deque())
            seen.append((stamp, small))
            while seen and seen[0][0] < stamp - self.history_s:
                seen.popleft()
            return self._compare()

    def _compare(self) -> list[tuple[float, float]]:
        done = []
        for prediction in self._predictions:
            for cam, j in sorted(prediction.pending):
                seen = self._seen.get(cam)
                if not seen:
                    continue
                stamps = np.array([s for s, _ in seen])
                nearest = int(np.argmin(np.abs(stamps - prediction.due(j))))
                if abs(stamps[nearest] - prediction.due(j)) <= self.tolerance_s:
                    predicted = prediction.frames[cam][j]
                    prediction.errors.append(divergence(predicted, resize(seen[nearest][1], predicted.shape[:2])))
                    prediction.pending.discard((cam, j))
                elif stamps[-1] > prediction.due(j) + self.tolerance_s:  # passed, never seen: left out
                    prediction.pending.discard((cam, j))
            if not prediction.pending:
                done.append(prediction)
        self._predictions = [p for p in self._predictions if all(p is not d for d in done)]
        return [(p.stamp, float(np.mean(p.errors))) for p in done if p.errors]
