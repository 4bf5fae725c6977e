"""``video-policy train`` under ``torchrun`` with two CPU processes (gloo, DistributedDataParallel) on
tiny data: at the same global batch it follows the one-process loss curve, its checkpoint runs in the
policy, and a one-process run resumes it (another world size)."""

import os
import subprocess
import sys

import numpy as np

from tests.repo import REPO
from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.policies.video_policy import VideoPolicy
from video_policy_ros.types import CameraFrame, Observation

STEPS = 40
# The two runs draw different noise (each rank its own), so their curves differ by sampling noise;
# the mean loss of the last 10 steps agrees within this fraction (measured: see the README).
LOSS_TOLERANCE = 0.25
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")


def train(out, data, *launcher, steps=STEPS, extra=()):
    args = [*launcher, "-m", "video_policy_ros.cli", "train", "--data", str(data), "--out", str(out), "--mode", "joint",
            "--steps", str(steps), "--batch-size", "4", "--eval-every", "0", "--save-every", "1000", "--device", "cpu",
            "--threads", "1", *extra]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=REPO,
                            env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def losses(out):
    rows = (out / "loss.csv").read_text().split()[1:]
    return np.array([float(row.split(",")[1]) for row in rows])


def test_two_gloo_processes_follow_the_one_process_loss_curve(episodes_dir, tmp_path):
    data = episodes_dir(4, length=12)
    train(tmp_path / "one", data)
    two = train(tmp_path / "two", data, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    assert two.stdout.count("checkpoint: ") + two.stderr.count("checkpoint: ") == 1  # rank 0 alone reports
    one_loss, two_loss = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one_loss) == len(two_loss) == STEPS
    gap = abs(two_loss[-10:].mean() - one_loss[-10:].mean()) / one_loss[-10:].mean()
    print(f"loss, first 5 / last 10 steps: one process {one_loss[:5].mean():.4f} / {one_loss[-10:].mean():.4f}, "
          f"two processes {two_loss[:5].mean():.4f} / {two_loss[-10:].mean():.4f}; gap {gap:.1%}")
    assert two_loss[-10:].mean() < two_loss[:5].mean(), "the two-process run did not learn"
    assert gap < LOSS_TOLERANCE

    policy = VideoPolicy(tmp_path / "two", device="cpu", num_steps=2)
    obs = Observation({"front": CameraFrame("front", 1.0, np.zeros((32, 32, 3), np.uint8))},
                      np.array([0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]), 0.04, "task 0", stamp=1.0)
    chunk = policy.predict(obs).chunk
    assert np.isfinite(chunk.poses).all() and len(chunk.poses) == policy.config.action.horizon

    train(tmp_path / "two", data, steps=STEPS + 4, extra=("--resume",))  # resumed by one process
    assert load_checkpoint(tmp_path / "two").meta.step == STEPS + 4
    assert len(losses(tmp_path / "two")) == STEPS + 4


def test_a_global_batch_that_does_not_split_is_one_error_line(episodes_dir, tmp_path):
    data = episodes_dir(2, length=12)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "video_policy_ros.cli", "train", "--data", str(data), "--out", str(tmp_path / "o"),
                             "--mode", "joint", "--steps", "2", "--batch-size", "3", "--device", "cpu", "--threads", "1"],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=ENV)
    assert result.returncode != 0
    assert "error: the global batch of 3 does not split over 2 processes" in result.stderr
    assert result.stderr.count("error: the global batch") == 2  # one line per rank
    # torchrun reports a failed child with a traceback of its own; none of ours
    assert str(REPO / "src") not in result.stderr

