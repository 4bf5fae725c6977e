"""The divergence monitor: predicted frames against the camera frames seen at the predicted times."""

import numpy as np
import pytest

from video_policy_ros.runtime.divergence import DivergenceMonitor, divergence


def frames(values, size=8):
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in values])


def test_the_measure_is_the_mean_squared_rgb_error_in_unit_range():
    assert divergence(frames([0])[0], frames([0])[0]) == 0.0
    assert divergence(frames([0])[0], frames([255])[0]) == pytest.approx(1.0)
    assert divergence(frames([128])[0], frames([0])[0]) == pytest.approx((128 / 255) ** 2)


def test_each_predicted_frame_meets_the_camera_frame_of_its_time_at_the_models_resolution():
    monitor = DivergenceMonitor((8, 8), tolerance_s=0.04)
    monitor.add_prediction(10.0, 0.4, {"front": frames([0, 100, 200]), "wrist": frames([0, 50, 50])})
    # Camera frames at 15 Hz, at 4x the model's resolution: the ones near 10.4 and 10.8 s count.
    done = []
    for k in range(20):
        t = 10.0 + k / 15
        done += monitor.add_frame("front", t, np.full((32, 32, 3), 100, np.uint8))
        done += monitor.add_frame("wrist", t, np.full((32, 32, 3), 50, np.uint8))
    (stamp, value), = done
    expected = np.mean([0.0, (100 / 255) ** 2, 0.0, 0.0])  # front j=1, front j=2, wrist j=1, wrist j=2
    assert stamp == 10.0 and value == pytest.approx(expected, rel=1e-3)


def test_a_prediction_whose_frames_were_never_seen_ends_when_its_time_has_passed():
    monitor = DivergenceMonitor((8, 8))
    monitor.add_prediction(0.0, 0.5, {"front": frames([0, 0, 0])})
    assert monitor.add_frame("front", 0.52, frames([255])[0]) == []  # frame 1 seen, frame 2 still to come
    (stamp, value), = monitor.add_frame("front", 1.2, frames([0])[0])  # frame 2 (at 1.0 s) missed
    assert value == pytest.approx(1.0)
    assert monitor.add_frame("front", 1.5, frames([0])[0]) == []  # reported once
    with pytest.raises(ValueError, match="positive period"):
        monitor.add_prediction(0.0, 0.0, {"front": frames([0, 0])})


def test_a_prediction_that_arrives_after_its_frames_is_compared_with_the_frames_already_seen():
    """Inference latency: the prediction lands when the times it predicts are past."""
    monitor = DivergenceMonitor((8, 8), history_s=10.0)
    for k in range(60):
        monitor.add_frame("front", 100.0 + k / 15, np.full((24, 32, 3), 200 if k > 10 else 0, np.uint8))
    (stamp, value), = monitor.add_prediction(100.0, 0.4, {"front": frames([0, 200, 0])})
    # predicted 200 at 0.4 s (the camera saw 0), 0 at 0.8 s (it saw 200): both frames off by 200 grey levels
    assert stamp == 100.0 and value == pytest.approx((200 / 255) ** 2, rel=1e-3)


def test_a_camera_frame_is_cut_to_the_models_crop_before_it_meets_the_prediction():
    """A model that sees only the table predicts only the table: the sky above it must not count as divergence."""
    camera = np.zeros((32, 32, 3), np.uint8)
    camera[16:] = 200  # the table, below a black sky
    monitor = DivergenceMonitor((8, 8), crops={"front": (0.5, 0.0, 1.0, 1.0)})
    monitor.add_prediction(0.0, 0.5, {"front": frames([200, 200])})
    (_, value), = monitor.add_frame("front", 0.5, camera)
    assert value == 0.0
    uncropped = DivergenceMonitor((8, 8))
    uncropped.add_prediction(0.0, 0.5, {"front": frames([200, 200])})
    (_, value), = uncropped.add_frame("front", 0.5, camera)
    assert value == pytest.approx(0.5 * (200 / 255) ** 2, rel=0.1)  # half the frame is sky (blurred at its edge)
