"""Frame sync in the ObservationAssembler: the newest set of frames whose stamps agree, and its statistics."""

from __future__ import annotations

import numpy as np
import pytest

from video_policy_ros.runtime.observation import HISTORY_FRAMES, ObservationAssembler
from video_policy_ros.types import CameraFrame

POSE = np.array([0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def frame(camera: str, stamp: float) -> CameraFrame:
    return CameraFrame(camera, stamp, np.zeros((4, 4, 3), np.uint8))


def ready(tolerance_s: float = 0.02, max_age_s: float = 0.5) -> ObservationAssembler:
    a = ObservationAssembler(("front", "wrist"), max_age_s=max_age_s, default_instruction="touch", sync_tolerance_s=tolerance_s)
    a.set_tcp_pose(100.0, POSE)
    return a


def test_the_newest_set_within_tolerance_is_used_not_the_newest_frames():
    a = ready()
    for i in range(6):  # front at 30 fps; the wrist lags 100 ms behind, its newest frame is 0.1 s older
        a.add_frame(frame("front", 99.8 + i / 30))
    for stamp in (99.80, 99.833, 99.866):
        a.add_frame(frame("wrist", stamp + 0.001))
    observation, problem = a.build(100.0)
    assert problem == ""
    assert observation.frames["wrist"].stamp == pytest.approx(99.867)
    assert observation.frames["front"].stamp == pytest.approx(99.8 + 2 / 30), "the front frame matching the newest wrist frame"
    stats = a.sync_statistics()
    assert stats.skew_s == pytest.approx(99.867 - (99.8 + 2 / 30)) and stats.lag_s == pytest.approx(100.0 - 99.8 - 2 / 30)
    assert (stats.sets_assembled, stats.sets_rejected) == (1, 0)


def test_no_set_within_tolerance_is_refused_and_counted():
    a = ready(tolerance_s=0.02)
    a.add_frame(frame("front", 99.90))
    a.add_frame(frame("wrist", 99.95))
    observation, problem = a.build(100.0)
    assert observation is None
    assert "within 20 ms" in problem and "front 99.900" in problem and "wrist 99.950" in problem
    assert a.sync_statistics().sets_rejected == 1 and a.sync_statistics().sets_assembled == 0


def test_a_synchronised_set_that_is_too_old_is_refused():
    a = ready(max_age_s=0.2)
    a.add_frame(frame("front", 99.70))
    a.add_frame(frame("wrist", 99.70))
    a.add_frame(frame("front", 99.90))  # newest frames are fresh, but the only matching set is 0.3 s old
    a.add_frame(frame("wrist", 99.95))
    observation, problem = a.build(100.0)
    assert observation is None and "newest synchronised frames too old" in problem


def test_frames_that_never_had_a_partner_are_counted_as_dropped_when_they_leave_the_history():
    a = ready(tolerance_s=0.01)
    for i in range(HISTORY_FRAMES + 5):
        a.add_frame(frame("front", 90.0 + i * 0.1))
        a.add_frame(frame("wrist", 90.0 + i * 0.1 + (0.05 if i % 2 else 0.0)))  # every other wrist frame is off
    # Evicted so far: 5 frames per camera; of those, the odd-numbered pairs (i = 1, 3) never matched.
    assert a.sync_statistics().frames_dropped == 4


def test_statistics_are_diagnostic_strings_in_milliseconds():
    a = ready()
    assert a.sync_statistics().as_diagnostic_values()["sync_lag_ms"] == "n/a"
    a.add_frame(frame("front", 99.90))
    a.add_frame(frame("wrist", 99.91))
    a.build(100.0)
    values = a.sync_statistics().as_diagnostic_values()
    assert values["sync_skew_ms"] == "10.0" and values["sync_lag_ms"] == "100.0" and values["sync_tolerance_ms"] == "20.0"


def test_a_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="sync_tolerance_s"):
        ObservationAssembler(("front",), max_age_s=0.5, sync_tolerance_s=-0.1)


@pytest.mark.parametrize("offset, said", [(-2.0, "stamped 2.00 s ahead of this host's clock"),
                                          (1.5, "each stamped 1.50 s before it arrives")])
def test_frames_that_arrive_in_time_with_impossible_stamps_name_the_clocks(offset, said):
    """Frames stamped by a robot PC whose clock is 2 s ahead of (or 1.5 s behind) this host's."""
    a = ready()
    for camera in ("front", "wrist"):
        a.add_frame(frame(camera, 99.96 - offset), received_at=99.96)
    observation, problem = a.build(100.0)
    assert observation is None and problem.startswith("clock offset: camera 'front'") and said in problem
    assert "synchronise the clocks (chrony or PTP" in problem
    assert a.clock_offsets()["wrist"] == pytest.approx(offset)


def test_frames_that_stopped_arriving_are_too_old_not_a_clock_problem():
    a = ready()
    for camera in ("front", "wrist"):
        a.add_frame(frame(camera, 98.0), received_at=98.01)
    observation, problem = a.build(100.0)
    assert observation is None and "camera image(s) too old" in problem and "clock" not in problem
