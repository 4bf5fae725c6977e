import numpy as np
import pytest

from video_policy_ros.model.checkpoint import CheckpointError
from video_policy_ros.policies.base import Policy
from video_policy_ros.policies.video_policy import VideoPolicy
from video_policy_ros.types import CameraFrame, Observation

from test_checkpoint import _save


def _observation(cameras, stamp=12.5):
    frames = {c: CameraFrame(c, stamp + 0.01 * i, np.full((48, 64, 3), 30 * i, np.uint8)) for i, c in enumerate(cameras)}
    pose = np.array([0.4, 0.1, 0.3, 1.0, 0.0, 0.0, 0.0])
    return Observation(frames, pose, 0.04, "stack the cubes")


@pytest.mark.parametrize("representation", ["delta", "step_delta", "absolute"])
def test_policy_returns_absolute_chunk(tmp_path, representation):
    _, folder = _save(tmp_path, representation=representation)
    policy = VideoPolicy.from_checkpoint(folder, num_steps=2, return_frames=True)
    assert isinstance(policy, Policy) and policy.camera_names == ("front", "wrist")
    obs = _observation(("wrist", "front"))
    out = policy.predict(obs)
    chunk = out.chunk
    assert chunk.stamp == obs.stamp == 12.5 and chunk.dt == pytest.approx(0.1) and len(chunk) == 32
    assert np.allclose(np.linalg.norm(chunk.poses[:, 3:], axis=1), 1.0)
    # the stats span the synthetic episode's moves (a few cm), so targets stay near the current pose
    reference = obs.tcp_pose[:3] if representation == "delta" else np.array([0.4, 0.0, 0.3])
    assert np.all(np.abs(chunk.poses[:, :3] - reference) < 0.3)
    assert np.all((chunk.gripper >= -1e-9) & (chunk.gripper <= 0.04 + 1e-9))
    video = out.decode_video()  # decoded on demand, off the chunk's critical path
    assert set(video) == {"front", "wrist"}
    assert video["front"].shape == (4, 32, 32, 3) and video["front"].dtype == np.uint8
    assert "2 steps" in policy.description


def test_policy_rejects_missing_camera(tmp_path):
    _, folder = _save(tmp_path)
    policy = VideoPolicy(folder, num_steps=1)
    with pytest.raises(CheckpointError, match=r"lacks cameras \['wrist'\]"):
        policy.predict(_observation(("front",)))
