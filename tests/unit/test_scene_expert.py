import numpy as np
import pytest

from video_policy_ros.config import TaskConfig
from video_policy_ros.sim.expert import ExpertParams, ScriptedExpert
from video_policy_ros.sim.scene import CUBE_HALF_SIZE, sample_layout
from video_policy_ros.sim.task import is_success, touch_distance


def test_layout_is_a_function_of_the_seed():
    a, b, c = sample_layout(3, TaskConfig()), sample_layout(3, TaskConfig()), sample_layout(4, TaskConfig())
    assert a.target == b.target and all(np.array_equal(a.cube_positions[k], b.cube_positions[k]) for k in a.cube_positions)
    assert any(not np.array_equal(a.cube_positions[k], c.cube_positions[k]) for k in a.cube_positions)


def test_cubes_do_not_overlap_and_target_is_honoured():
    for seed in range(50):
        layout = sample_layout(seed, TaskConfig(target="blue"))
        xy = np.array([p[:2] for p in layout.cube_positions.values()])
        gaps = [np.linalg.norm(xy[i] - xy[j]) for i in range(3) for j in range(i + 1, 3)]
        assert min(gaps) >= 0.1 and layout.target == "blue"
        assert layout.instruction == "touch the blue cube"


def test_unknown_colour_is_refused():
    with pytest.raises(ValueError, match="unknown colour"):
        sample_layout(0, TaskConfig(colors=("red", "mauve")))


def test_expert_reaches_the_target_at_its_speed():
    layout = sample_layout(5, TaskConfig())
    expert = ScriptedExpert(layout, ExpertParams())
    pose = np.array([0.55, 0.0, 0.52, 1.0, 0.0, 0.0, 0.0])
    t = 0.0
    for _ in range(20):  # follow the plans open-loop, 0.5 s at a time, as the inference node would
        chunk = expert.plan(pose, t)
        steps = np.linalg.norm(np.diff(np.vstack([pose[:3], chunk.poses[:, :3]]), axis=0), axis=1)
        assert steps.max() <= ExpertParams().speed * chunk.dt + 1e-9
        pose, t = chunk.poses[4], t + 0.5
    distance = touch_distance(layout, layout.cube_positions, pose[:3])
    assert is_success(distance, 0.03) and pose[2] < layout.cube_positions[layout.target][2] + CUBE_HALF_SIZE
