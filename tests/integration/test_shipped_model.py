"""The checkpoint shipped in models/ loads through the inference node's registry and plans
absolute targets from a recorded sim observation."""

from pathlib import Path

import numpy as np
import pytest

from video_policy_ros.config import InferenceConfig
from video_policy_ros.policies import build_policy
from video_policy_ros.types import CameraFrame, Observation

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "video_policy_tiny"
TCP = np.array([0.554, 0.0, 0.521, 1.0, 0.0, 0.0, 0.0])  # the FR3's start pose in the sim world


def test_shipped_checkpoint_plans_a_chunk_near_the_arm():
    policy = build_policy(InferenceConfig(policy="video_policy", model=SHIPPED, num_steps=3, guidance=1.0, backend="torch"))
    assert policy.camera_names == ("front", "wrist")
    rng = np.random.default_rng(0)
    frames = {c: CameraFrame(c, 10.0, rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) for c in policy.camera_names}
    output = policy.predict(Observation(frames, TCP, 0.04, "touch the red cube"))
    chunk = output.chunk
    assert chunk.stamp == 10.0 and len(chunk) == 32 and chunk.dt == pytest.approx(0.1)
    assert np.all(np.isfinite(chunk.poses)) and np.all(np.isfinite(chunk.gripper))
    # The demonstrations never leave the table-top workspace; neither should the plan, by much.
    assert np.all(chunk.poses[:, 0] > 0.2) and np.all(chunk.poses[:, 0] < 0.9)
    assert np.all(chunk.poses[:, 2] > -0.05) and np.all(chunk.poses[:, 2] < 0.8)
    video = output.decode_video()  # decoded only when asked, off the chunk's critical path
    assert set(video) == {"front", "wrist"} and video["front"].shape == (4, 32, 32, 3)
