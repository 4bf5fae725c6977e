import numpy as np
import pytest

from video_policy_ros.model.normalization import ActionNormalizer

from conftest import make_episode


@pytest.mark.parametrize("representation", ["delta", "absolute"])
def test_chunk_encode_decode_roundtrip(representation):
    ep = make_episode(3, length=40)
    norm = ActionNormalizer.fit(representation, [(ep.tcp_poses, ep.gripper)], horizon=32)
    t = 5
    actions = norm.encode_chunk(ep.tcp_poses, ep.gripper, t=t, horizon=32)
    assert actions.shape == (32, 7) and actions.min() >= -1 - 1e-6 and actions.max() <= 1 + 1e-6
    poses, gripper = norm.decode_chunk(actions, ep.tcp_poses[t])
    expected = ep.tcp_poses[t + 1 : t + 33]  # step k is the pose at frame t + k + 1
    assert np.allclose(poses[:, :3], expected[:, :3], atol=1e-5)
    dots = np.abs(np.sum(poses[:, 3:] * expected[:, 3:], axis=1))
    assert np.all(dots > 1 - 1e-9)  # same rotation (q and -q are equal)
    assert np.allclose(gripper, ep.gripper[t + 1 : t + 33], atol=1e-6)


def test_delta_chunk_is_relative_to_the_current_pose_and_pads_at_the_end():
    ep = make_episode(1, length=10)
    norm = ActionNormalizer.fit("delta", [(ep.tcp_poses, ep.gripper)], horizon=4)
    raw = norm.raw_chunk(ep.tcp_poses, ep.gripper, t=7, horizon=4)
    assert np.allclose(raw[0, :3], ep.tcp_poses[8, :3] - ep.tcp_poses[7, :3])
    assert np.allclose(raw[2:, :3], ep.tcp_poses[9, :3] - ep.tcp_poses[7, :3])  # the last frame repeats


def test_stats_roundtrip_and_validation(tmp_path):
    ep = make_episode(0)
    norm = ActionNormalizer.fit("delta", [(ep.tcp_poses, ep.gripper)], horizon=8)
    norm.save(tmp_path / "n.json")
    back = ActionNormalizer.load(tmp_path / "n.json")
    assert np.array_equal(back.action_min, norm.action_min) and back.representation == "delta"
    bad = norm.to_dict() | {"action_min": [0.0] * 6}
    with pytest.raises(ValueError, match="wrong shapes"):
        ActionNormalizer.from_dict(bad)


def test_official_step_delta_encoding():
    ep = make_episode(2, length=12)
    norm = ActionNormalizer.fit("step_delta", [(ep.tcp_poses, ep.gripper)], horizon=8)
    raw = norm.raw_chunk(ep.tcp_poses, ep.gripper, t=6, horizon=8)
    # each step relative to the previous pose; gripper +1 open (0.04) / -1 closed (0.0)
    assert np.allclose(raw[0, :3], ep.tcp_poses[7, :3] - ep.tcp_poses[6, :3])
    assert np.allclose(raw[2, :3], ep.tcp_poses[9, :3] - ep.tcp_poses[8, :3])
    assert np.array_equal(raw[:5, 6], np.where(ep.gripper[7:12] > 0.02, 1.0, -1.0))
    assert np.all(raw[5:] == 0)  # zeros past the end of the episode
    poses, gripper = norm.decode_chunk(norm.encode_chunk(ep.tcp_poses, ep.gripper, t=6, horizon=8), ep.tcp_poses[6])
    assert np.allclose(poses[:5, :3], ep.tcp_poses[7:12, :3], atol=1e-6)
    assert np.allclose(poses[5:, :3], ep.tcp_poses[11, :3], atol=1e-6)  # zero steps: the arm holds
    assert np.allclose(gripper[:5], ep.gripper[7:12])
    # stats saved before step_delta existed carry no gripper_open
    legacy = {k: v for k, v in norm.to_dict().items() if k != "gripper_open"}
    assert ActionNormalizer.from_dict(legacy).gripper_open == 0.04


@pytest.mark.parametrize("representation", ["step_delta", "delta"])
def test_expert_labels_replace_the_recorded_future(representation):
    """DAgger: a frame's chunk is the one the expert planned from there, not where the arm went next."""
    ep = make_episode(4, length=12)
    rng = np.random.default_rng(0)
    expert_poses = ep.tcp_poses[:, None, :].repeat(6, axis=1)
    expert_poses[..., :3] += np.cumsum(rng.normal(0, 0.01, (12, 6, 3)), axis=1)  # a path of 6 steps per frame
    expert_gripper = np.full((12, 6), 0.0)
    labels = (expert_poses, expert_gripper)
    norm = ActionNormalizer.fit(representation, [(ep.tcp_poses, ep.gripper, labels)], horizon=8)
    t = 3
    poses, gripper = norm.decode_chunk(norm.encode_chunk(ep.tcp_poses, ep.gripper, labels, t=t, horizon=8), ep.tcp_poses[t])
    assert np.allclose(poses[:6, :3], expert_poses[t, :, :3], atol=1e-6)
    assert np.allclose(poses[6:, :3], expert_poses[t, -1, :3], atol=1e-6)  # held past the label's end
    assert np.allclose(gripper, 0.0, atol=1e-6)
