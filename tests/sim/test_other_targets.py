"""Other-target variants: one episode's states, instructed for each other cube and labelled by the expert for it."""

import numpy as np

from video_policy_ros.config import TaskConfig
from video_policy_ros.data.episode import Episode
from video_policy_ros.sim.demos import label_episode, other_target_episodes
from video_policy_ros.sim.scene import sample_layout
from video_policy_ros.types import FINGERS_CLOSED, FINGERS_OPEN


def recorded(layout, steps=10):
    """Frames and states of an arm moving towards the layout's target (as a recorded demo would)."""
    start = np.array([0.45, 0.0, 0.45, 1.0, 0.0, 0.0, 0.0])
    goal = np.concatenate([layout.cube_positions[layout.target] + [0, 0, 0.03], start[3:]])
    poses = np.stack([start + (goal - start) * t / (steps - 1) for t in range(steps)])
    frames = {c: np.random.default_rng(1).integers(0, 255, (steps, 24, 32, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return label_episode(Episode(layout.instruction, 10.0, frames, poses, np.full(steps, FINGERS_OPEN)), layout)


def test_each_other_cube_gets_the_same_states_and_the_experts_plan_for_it():
    layout = sample_layout(3, TaskConfig(kind="touch"))
    episode = recorded(layout)
    variants = other_target_episodes(episode, layout)
    others = sorted(c for c in layout.cube_positions if c != layout.target)
    assert sorted(variants) == others
    assert not episode.relabelled
    for colour, variant in variants.items():
        assert variant.relabelled  # its frames show the demonstrated cube's approach: never a video to learn
        assert variant.instruction == f"touch the {colour} cube"
        assert np.array_equal(variant.tcp_poses, episode.tcp_poses)
        assert all(np.array_equal(variant.frames[c], episode.frames[c]) for c in episode.frames)
        # Every label heads for the instructed cube, none for the demonstrated one
        cube_top = layout.cube_positions[colour][:2]
        assert np.allclose(variant.expert_poses[:, -1, :2], cube_top, atol=1e-6)
        assert not np.allclose(variant.expert_poses[:, -1, :2], episode.expert_poses[:, -1, :2], atol=0.01)


def test_place_variants_stop_before_the_fingers_close_on_the_demonstrated_cube():
    layout = sample_layout(3, TaskConfig(kind="place"))
    episode = recorded(layout)
    episode.expert_gripper[6:] = FINGERS_CLOSED  # the demonstration grasps at frame 6
    variants = other_target_episodes(episode, layout)
    assert len(variants) == len(layout.cube_positions) - 1
    for variant in variants.values():
        assert len(variant) == 6 and variant.instruction.startswith("put the ")
        assert np.all(variant.expert_gripper[:, 0] != FINGERS_CLOSED)  # still on the way to the other cube
