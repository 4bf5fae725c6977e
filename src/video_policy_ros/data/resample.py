"""Time-series helpers for conversion: resampling onto a fixed-rate grid and finding timing faults."""

from __future__ import annotations

import numpy as np

from video_policy_ros.geometry import slerp


def latest_before(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the latest sample measured at or before each time (the first one before it starts)."""
    return np.clip(np.searchsorted(stamps, times, side="right") - 1, 0, len(stamps) - 1)


def interpolate_poses(stamps: np.ndarray, poses: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``(N, 7)`` poses at sorted ``stamps`` → ``(T, 7)`` at ``times``: linear position, slerp orientation.

    Times outside the recorded span take the first / last pose.
    """
    times = np.clip(times, stamps[0], stamps[-1])
    upper = np.clip(np.searchsorted(stamps, times, side="left"), 1, len(stamps) - 1) if len(stamps) > 1 else None
    out = np.empty((len(times), 7))
    if upper is None:
        out[:] = poses[0]
        return out
    lower = upper - 1
    span = stamps[upper] - stamps[lower]
    s = np.where(span > 0, (times - stamps[lower]) / np.where(span > 0, span, 1.0), 0.0)
    out[:, :3] = poses[lower, :3] + s[:, None] * (poses[upper, :3] - poses[lower, :3])
    for i, (lo, hi, frac) in enumerate(zip(lower, upper, s)):
        out[i, 3:] = slerp(poses[lo, 3:], poses[hi, 3:], float(frac))
    return out


def gaps(stamps: np.ndarray, max_gap_s: float) -> list[tuple[float, float]]:
    """``(start, length)`` of every interval between consecutive stamps longer than ``max_gap_s``."""
    d = np.diff(stamps)
    return [(float(stamps[i]), float(d[i])) for i in np.flatnonzero(d > max_gap_s)]


def clock_jumps(stamps: np.ndarray, receive: np.ndarray, max_jump_s: float) -> np.ndarray:
    """Indices ``i`` (in receive order) where the measurement clock jumps between samples ``i - 1`` and ``i``.

    A jump is a stamp that goes backwards, or one that advances more than ``max_jump_s``
    beyond the time that passed at the receiver. A stalled publisher or network delays
    the receive time instead (the stamps advance less than the receiver's clock), and
    a pause in the data advances both alike: those are gaps, reported elsewhere.
    """
    d_stamp, d_receive = np.diff(stamps), np.diff(receive)
    return np.flatnonzero((d_stamp < 0) | (d_stamp - d_receive > max_jump_s)) + 1
