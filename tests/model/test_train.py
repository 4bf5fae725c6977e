"""The training CLI end to end on tiny synthetic data, and a real learning test."""

import time

import pytest
import torch

from video_policy_ros.cli import main
from video_policy_ros.data.episode import EpisodeError
from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.model.config import TrainConfig, VideoPolicyConfig
from video_policy_ros.model.dataset import EpisodeDataset, colour_jitter, rotate_hue
from video_policy_ros.model.evaluate import evaluate
from video_policy_ros.model.train import TrainOptions, train
from video_policy_ros.model.video_policy import VideoPolicyModel


def test_stage1_on_action_free_videos_then_stage2_then_resume(episodes_dir, tmp_path, capsys):
    videos = episodes_dir(2, cameras=("front", "wrist"), actions=False, length=12)
    stage1 = tmp_path / "stage1"
    assert main(["train", "--data", str(videos), "--out", str(stage1), "--mode", "video", "--steps", "2",
                 "--batch-size", "4", "--eval-every", "0"]) == 0
    assert load_checkpoint(stage1).normalizer is None  # no actions seen yet

    demos = tmp_path / "demos"
    from conftest import make_episode
    for i in range(3):
        make_episode(i, ("front", "wrist"), length=12).save(demos / f"d{i}.npz")
    stage2 = tmp_path / "stage2"
    assert main(["train", "--data", str(demos), "--out", str(stage2), "--mode", "head", "--steps", "2",
                 "--batch-size", "4", "--eval-every", "2", "--init", str(stage1)]) == 0
    out = capsys.readouterr()
    assert "action_mse" in out.err + out.out and (stage2 / "eval" / "step_000002.mp4").stat().st_size > 0
    assert "head: 2 training episodes; held out for evaluation: d2.npz" in out.err + out.out  # train.val_episodes 1
    head = load_checkpoint(stage2)
    first = load_checkpoint(stage1)
    # stage 2 leaves the U-Net untouched and trains the head
    assert torch.equal(head.model.unet.conv_in.weight, first.model.unet.conv_in.weight)
    assert head.meta.mode == "head" and head.meta.dt == pytest.approx(0.1) and len(head.meta.data_fingerprint) == 16

    assert main(["train", "--data", str(demos), "--out", str(stage2), "--mode", "head", "--steps", "3",
                 "--batch-size", "4", "--eval-every", "0", "--resume", "--val-episodes", "0"]) == 0
    assert load_checkpoint(stage2).meta.step == 3
    out = capsys.readouterr()
    assert "head: 3 training episodes; held out for evaluation: none" in out.err + out.out  # all trained on


def test_head_mode_needs_actions(episodes_dir, tmp_path):
    videos = episodes_dir(1, actions=False, length=8)
    with pytest.raises(EpisodeError, match="needs episodes with actions"):
        train(TrainOptions(data=videos, out=tmp_path / "o", mode="head", steps=1, progress=False))


def test_colour_jitter_is_identical_across_one_cameras_frames():
    cfg = TrainConfig(jitter_brightness=0.3, jitter_contrast=0.3, jitter_saturation=0.3, jitter_hue=0.05)
    frame = torch.rand(1, 1, 3, 8, 8) * 2 - 1
    video = frame.repeat(2, 7, 1, 1, 1)  # 2 samples: a lead frame, then 2 cameras x 3 identical frames
    out = colour_jitter(video, 2, cfg, torch.Generator().manual_seed(0), lead_camera=1)
    per_cam = out[:, 1:].reshape(2, 2, 3, 3, 8, 8)
    assert torch.allclose(per_cam[:, :, :1], per_cam, atol=1e-6)  # same transform on a camera's frames
    assert torch.allclose(out[:, 0], per_cam[:, 1, 0])  # the lead frame is jittered as its camera
    assert not torch.allclose(per_cam[:, 0], per_cam[:, 1])  # cameras jitter independently
    assert not torch.allclose(out, video)


def test_hue_rotation_keeps_luma_and_grey():
    rgb = torch.rand(2, 3, 4, 4)
    turned = rotate_hue(rgb, torch.full((2, 1, 1, 1), 0.3))
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    assert torch.allclose((turned * luma).sum(1), (rgb * luma).sum(1), atol=1e-5)
    assert not torch.allclose(turned, rgb)
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(rotate_hue(grey, torch.full((1, 1, 1, 1), 1.0)), grey, atol=1e-5)
    assert torch.allclose(rotate_hue(rgb, torch.zeros(2, 1, 1, 1)), rgb, atol=1e-5)


def test_samples_tile_cameras_along_time(episodes_dir):
    folder = episodes_dir(1, cameras=("front", "wrist"), length=30)
    cfg = VideoPolicyConfig.tiny(cameras=("front", "wrist"))
    ds = EpisodeDataset(sorted(folder.glob("*.npz")), cfg, None)
    s = ds[0]
    assert s["frames"].shape == (9, 3, 32, 32) and not s["has_actions"]
    # the lead frame is the wrist's current frame, then front x 4 and wrist x 4 (different backgrounds)
    assert torch.equal(s["frames"][0], s["frames"][5])
    assert not torch.equal(s["frames"][1, :, 0, 0], s["frames"][5, :, 0, 0])
    assert torch.equal(s["frames"][1, :, 0, 0], s["frames"][4, :, 0, 0])
    assert not torch.equal(s["frames"][1], s["frames"][2])  # the square moved between t and t + 8


def test_relabelled_episodes_teach_actions_never_video(tmp_path):
    """A relabelled episode (DAgger, other-target variant) shows motion other than its labels: stage 1 leaves it
    out, joint training masks its frames' loss, stage 2 trains on it like any other."""
    import dataclasses

    from conftest import make_episode

    cfg = VideoPolicyConfig.tiny(cameras=("front",))
    own, relabelled = tmp_path / "own.npz", tmp_path / "relabelled.npz"
    make_episode(0, length=12).save(own)
    variant = make_episode(1, length=12)
    dataclasses.replace(variant, expert_poses=variant.tcp_poses[:, None].repeat(32, 1),
                        expert_gripper=variant.gripper[:, None].repeat(32, 1), relabelled=True).save(relabelled)
    assert len(EpisodeDataset([own, relabelled], cfg, None).episodes) == 2
    assert len(EpisodeDataset([own, relabelled], cfg, None, require_video=True).episodes) == 1
    with pytest.raises(EpisodeError, match="not relabelled"):
        EpisodeDataset([relabelled], cfg, None, require_video=True)
    samples = EpisodeDataset([own, relabelled], cfg, None)
    assert samples[0]["has_video"] and not samples[len(samples) - 1]["has_video"]

    # joint: the relabelled sample's frames add nothing to the video loss
    model = VideoPolicyModel(cfg)
    video = torch.randn(2, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
    changed = video.clone()
    changed[1] += 5.0
    text = model.encode_text(["a", "b"])

    def video_loss(v, mask):
        return model.training_loss(v, v, text, torch.zeros(2, cfg.action.horizon, 7), torch.ones(2, dtype=torch.bool),
                                   None, "joint", torch.Generator().manual_seed(0), video_mask=mask)[1]["video"]

    relabelled_second = torch.tensor([True, False])
    assert video_loss(changed, relabelled_second) == pytest.approx(video_loss(video, relabelled_second), rel=1e-5)
    assert video_loss(changed, None) != pytest.approx(video_loss(video, None), rel=1e-2)  # unmasked, it would count


# The official head learns more slowly than the pooled one did (which reached MSE < 0.2 here): 120 steps of
# the tiny preset reach 0.54 from 1.24 untrained (measured), so the bar is "at least halves the error".
MODE, STEPS, GAIN = "joint", 120, 0.5


def test_overfitting_two_episodes_drives_the_action_error_down(episodes_dir, tmp_path):
    """A real learning test: joint training on 2 episodes; sampled chunks must match the demos."""
    folder = episodes_dir(2, length=20)
    cfg = VideoPolicyConfig.tiny(future_frames=1, train=TrainConfig(optimizer="adam", lr=1e-3, head_lr=2e-3,
                                                                    weight_decay=0.0, warmup_steps=10,
                                                                    ema_decay=None, val_episodes=0))
    start = time.time()
    ckpt = train(TrainOptions(data=folder, out=tmp_path / "fit", mode=MODE, steps=STEPS, batch_size=8, config=cfg,
                              eval_every=0, save_every=10_000, progress=False))
    loaded = load_checkpoint(ckpt)
    ds = EpisodeDataset(sorted(folder.glob("*.npz")), loaded.config, loaded.normalizer)
    # guidance 1: the conditional model itself (its unconditional branch saw 10 % of so few steps)
    mse = evaluate(loaded.model, ds, 16, with_actions=True, guidance=1.0)["action_mse"]
    untrained = evaluate(type(loaded.model)(loaded.config), ds, 16, with_actions=True, guidance=1.0)["action_mse"]
    print(f"overfit: {STEPS} steps in {time.time() - start:.0f} s, sampled action MSE {mse:.4f} "
          f"(untrained {untrained:.4f})")
    assert mse < GAIN * untrained


def test_train_defaults_to_two_stages(episodes_dir, tmp_path):
    demos = episodes_dir(2, cameras=("front", "wrist"), length=12)
    run = tmp_path / "run"
    assert main(["train", "--data", str(demos), "--out", str(run), "--steps", "1", "--head-steps", "2",
                 "--batch-size", "2", "--eval-every", "0"]) == 0
    first, final = load_checkpoint(run / "stage1"), load_checkpoint(run)
    assert (first.meta.mode, first.meta.step, final.meta.mode, final.meta.step) == ("video", 1, "head", 2)
    assert torch.equal(first.model.unet.conv_in.weight, final.model.unet.conv_in.weight)  # stage 2 froze it
    assert not torch.equal(first.model.head.final[-1].weight, final.model.head.final[-1].weight)


@pytest.mark.parametrize("text, message", [
    ("preset: tiny\nhead:\n  bogus: 1\n", "head.bogus"),
    ("preset: huge\n", "preset must be 'tiny' or 'paper'"),
    ("preset: tiny\nimage_size: [17, 16]\n", "divisible"),
    ("preset: [tiny\n", "not valid YAML"),
])
def test_a_bad_model_config_is_one_error_line(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "Traceback" not in err, err
