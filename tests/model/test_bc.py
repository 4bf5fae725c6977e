"""The behaviour-cloning baseline: shapes, gradients, checkpoint round trip, and that training
on demonstrations that differ only by their instruction learns to follow the instruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from video_policy_ros.config import InferenceConfig
from video_policy_ros.data.episode import Episode
from video_policy_ros.model.bc import BCConfig, BCModel, load_bc, save_bc, word_ids
from video_policy_ros.model.bc_train import train_bc
from video_policy_ros.model.checkpoint import CheckpointError
from video_policy_ros.model.normalization import ActionNormalizer
from video_policy_ros.policies import build_policy
from video_policy_ros.types import CameraFrame, Observation

TINY = BCConfig(cameras=("front", "wrist"), image_size=(16, 24), channels=(8, 16), hidden=32, word_dim=8,
                vocabulary=("go", "left", "right"), horizon=4)
START = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def _batch(b: int = 3):
    images = torch.rand(b, 2, 3, *TINY.image_size) * 2 - 1
    return images, torch.rand(b, 7) * 2 - 1, word_ids(TINY, ["go left"] * b)


def test_forward_shape_and_every_parameter_gets_a_gradient():
    model = BCModel(TINY)
    out = model(*_batch())
    assert out.shape == (3, TINY.horizon, 7)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
               if not n.startswith("word_embedding")), "some parameter does not reach the output"
    with pytest.raises(ValueError, match="expected 2 cameras"):
        model(_batch()[0][:, :1], *_batch()[1:])


def test_unknown_words_are_ignored_and_known_words_matter():
    ids = word_ids(TINY, ["Go LEFT now", "go right"])
    assert ids[0, :3].tolist() == [1, 2, 0] and ids[1, :2].tolist() == [1, 3]
    model = BCModel(TINY)
    assert not torch.allclose(model.encode_text(ids[:1]), model.encode_text(ids[1:]))


def test_checkpoint_round_trip(tmp_path):
    model = BCModel(TINY).eval()
    normalizer = ActionNormalizer("delta", -np.ones(7), np.ones(7), -np.ones(7), np.ones(7), np.array([1.0, 0, 0, 0]))
    save_bc(tmp_path / "bc", model, normalizer)
    loaded, loaded_normalizer = load_bc(tmp_path / "bc")
    batch = _batch()
    assert loaded.cfg == TINY and torch.equal(loaded(*batch), model(*batch))
    assert np.array_equal(loaded_normalizer.action_max, normalizer.action_max)
    (tmp_path / "bc" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_bc(tmp_path / "bc")


def _episode(direction: str, seed: int, length: int = 20) -> Episode:
    """The same scene for both instructions; only the instruction says which way the TCP goes."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if direction == "left" else 1.0
    t = np.arange(length)[:, None]
    poses = np.concatenate([START[:3] + t * [0.0, sign * 0.01, 0.0], np.broadcast_to(START[3:], (length, 4))], axis=1)
    frames = {c: rng.integers(0, 255, (length, 24, 32, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return Episode(f"go {direction}", 10.0, frames, poses, np.full(length, 0.04))


def test_training_learns_to_follow_the_instruction_through_the_policy_port(tmp_path, capsys):
    torch.manual_seed(0)
    for i in range(6):
        _episode("left" if i % 2 else "right", i).save(tmp_path / "data" / f"episode_{i:05d}.npz")
    untrained = TINY.model_copy(update={"vocabulary": ()})
    path = train_bc(tmp_path / "data", tmp_path / "bc", untrained, steps=150, max_minutes=5, batch_size=16,
                    val_episodes=2, save_every=100)
    out = capsys.readouterr().out
    assert "validation MSE" in out and str(path.resolve()) in out
    assert "held out for validation (--val-episodes): episode_00004.npz, episode_00005.npz" in out
    policy = build_policy(InferenceConfig(policy="bc", model=path))
    assert policy.cfg.vocabulary == ("go", "left", "right") and policy.cfg.trained_steps == 150
    frames = {c: CameraFrame(c, 5.0, np.full((240, 320, 3), 128, np.uint8)) for c in ("front", "wrist")}
    left = policy.predict(Observation(frames, START, 0.04, "go left")).chunk
    right = policy.predict(Observation(frames, START, 0.04, "go right")).chunk
    assert left.stamp == 5.0 and len(left) == TINY.horizon and left.dt == pytest.approx(0.1)
    assert left.poses[-1, 1] < START[1] - 0.01 and right.poses[-1, 1] > START[1] + 0.01
    assert set(left.gripper) == {0.04}  # the demonstrations keep the fingers open: a binary "open" command


def test_gripper_command_is_binary_with_hysteresis(tmp_path):
    from video_policy_ros.policies.bc import BCPolicy

    normalizer = ActionNormalizer("delta", -np.ones(7), np.ones(7), -np.ones(7), np.ones(7), np.array([1.0, 0, 0, 0]))
    policy = BCPolicy(save_bc(tmp_path / "bc", BCModel(TINY), normalizer))
    commands = [policy._gripper_command(np.full(4, level)) for level in (0.04, 0.035, 0.034, 0.03, 0.035, 0.036, 0.039)]
    assert commands == [0.04, 0.04, 0.04, 0.0, 0.0, 0.0, 0.04]
    policy.reset()
    assert policy._gripper_command(np.full(4, 0.02)) == 0.0


def test_a_crop_given_to_train_bc_is_kept_in_the_checkpoint_and_cut_at_inference(tmp_path, capsys):
    from video_policy_ros.cli import main

    for i in range(3):
        _episode("left" if i % 2 else "right", i).save(tmp_path / "data" / f"episode_{i:05d}.npz")
    args = ["train-bc", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "bc"), "--steps", "2",
            "--image-size", "16", "24", "--val-episodes", "1"]
    assert main([*args, "--crop", "front=0.5,0,1,1"]) == 0
    policy = build_policy(InferenceConfig(policy="bc", model=tmp_path / "bc"))
    assert policy.cfg.crops == {"front": (0.5, 0.0, 1.0, 1.0)}

    def chunk(front: np.ndarray) -> np.ndarray:
        frames = {"front": CameraFrame("front", 5.0, front), "wrist": CameraFrame("wrist", 5.0, np.full_like(front, 128))}
        return policy.predict(Observation(frames, START, 0.04, "go left")).chunk.poses

    scene = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    above, below = scene.copy(), scene.copy()
    above[:100], below[140:] = 0, 0
    assert np.array_equal(chunk(scene), chunk(above)), "pixels above the crop reached the model"
    assert not np.array_equal(chunk(scene), chunk(below))

    capsys.readouterr()
    assert main([*args, "--crop", "front=0.9,0,0.5,1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: train-bc: crop of camera 'front' is [0.9, 0.0, 0.5, 1.0]: it must be [top, left, bottom, right] as "
        "fractions of the frame, with 0 <= top < bottom <= 1 and 0 <= left < right <= 1"]
    assert main([*args, "--crop", "front"]) == 2
    assert "error: crop 'front' is not CAMERA=TOP,LEFT,BOTTOM,RIGHT" in capsys.readouterr().err
