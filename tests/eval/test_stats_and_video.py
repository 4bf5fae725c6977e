"""Wilson intervals and the side-by-side evaluation frame (pure functions)."""

import numpy as np
import pytest

from video_policy_ros.evaluation.episode_video import prediction_grid, side_by_side
from video_policy_ros.evaluation.stats import SuccessRate, success_rates, wilson_interval


@pytest.mark.parametrize("successes, trials, expected", [
    (0, 10, (0.0, 0.2775)),  # reference values of the Wilson score interval, z = 1.96
    (5, 10, (0.2366, 0.7634)),
    (10, 10, (0.7225, 1.0)),
    (18, 20, (0.6990, 0.9721)),
])
def test_wilson_interval_matches_reference_values(successes, trials, expected):
    assert wilson_interval(successes, trials) == pytest.approx(expected, abs=1e-4)


def test_wilson_interval_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes must be in"):
        wilson_interval(3, 2)


def test_success_rates_per_task_and_overall():
    rates = success_rates([("touch", True), ("place", False), ("touch", True), ("place", True)])
    assert rates["touch"] == SuccessRate(2, 2) and rates["place"] == SuccessRate(1, 2) and rates["all"] == SuccessRate(3, 4)
    summary = rates["place"].to_dict()
    assert summary["rate"] == 0.5 and summary["wilson95"] == pytest.approx(list(wilson_interval(1, 2)))
    assert str(rates["all"]).startswith("3/4 = 75% (95 % CI")


def test_prediction_panel_shows_every_predicted_frame_beside_the_camera():
    frames = [np.full((16, 16, 3), 30 * (i + 1), np.uint8) for i in range(5)]
    strip = np.concatenate(frames, axis=1)
    camera = np.full((240, 320, 3), 7, np.uint8)
    out = side_by_side(camera, strip, frames=5)
    assert out.shape == (240, 640, 3) and np.array_equal(out[:, :320], camera)
    colours = set(np.unique(out[:, 320:].reshape(-1, 3), axis=0)[:, 0].tolist())
    assert colours == {0} | {30 * (i + 1) for i in range(5)}  # each frame visible, black around them
    assert side_by_side(camera, None, frames=5)[:, 320:].max() == 0  # before the first prediction
    assert side_by_side(camera, None, frames=None) is camera  # a policy that predicts no video
    with pytest.raises(ValueError, match="cannot hold 3 equal frames"):
        prediction_grid(strip, 3, 240, 320)
