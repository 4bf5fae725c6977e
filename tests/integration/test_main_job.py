"""The README's main job: `video-policy run` in the sim world ends in task success and an mp4."""

import os
import subprocess
import sys

import imageio.v2 as imageio
import pytest

from tests.repo import REPO
from video_policy_ros.preflight.processes import robot_ip_for_this_process

pytestmark = pytest.mark.integration


def test_run_completes_the_task_and_writes_a_video(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run(
        [sys.executable, "-m", "video_policy_ros.cli", "run", "--seed", "2", "--timeout", "60",
         "--robot-ip", robot_ip_for_this_process(), "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=180,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "SUCCESS: touch the" in out
    video = out.split("video of the front camera: ")[1].split()[0]
    assert video.startswith(str(tmp_path))
    frames = imageio.mimread(video, memtest=False)
    assert len(frames) > 30 and frames[0].shape == (240, 320, 3)
