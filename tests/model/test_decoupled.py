"""The decoupled sampler (as VPP, UVA): one U-Net pass per chunk, the actions denoised by the head alone."""

import pytest
import torch

from video_policy_ros.model.config import EDMConfig, TrainConfig, VideoPolicyConfig
from video_policy_ros.model.dataset import EpisodeDataset
from video_policy_ros.model.evaluate import evaluate
from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.model.train import TrainOptions, train
from video_policy_ros.model.video_policy import VideoPolicyModel


def decoupled(cfg: VideoPolicyConfig, **edm) -> VideoPolicyConfig:
    return cfg.model_copy(update={"edm": cfg.edm.model_copy(update={"sampler": "decoupled", **edm})})


def count_unet_calls(model: VideoPolicyModel) -> list[torch.Tensor]:
    calls: list[torch.Tensor] = []
    model.unet.register_forward_pre_hook(lambda module, args: calls.append(args[1].detach().clone()))
    return calls


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_one_unet_pass_per_chunk_at_the_feature_sigma(guidance):
    cfg = decoupled(VideoPolicyConfig.tiny(cameras=("front", "wrist"), proprio=True), feature_sigma=7.0)
    model = VideoPolicyModel(cfg).eval()
    calls = count_unet_calls(model)
    cond = model.encode_condition(torch.rand(1, 2, 3, 32, 32) * 2 - 1)
    video, actions = model.sample(cond, model.encode_text(["touch the red cube"]), torch.zeros(1, 7), num_steps=6,
                                  guidance=guidance)
    assert video.shape == (1, cfg.num_frames, 12, 16, 16) and actions.shape == (1, cfg.action.horizon, 7)
    assert len(calls) == 1  # the joint sampler would call it num_steps times
    assert torch.allclose(calls[0], torch.full_like(calls[0], 0.25 * torch.log(torch.tensor(7.0))))  # c_noise
    assert torch.isfinite(actions).all()


def test_head_training_sees_the_video_at_the_feature_sigma_and_actions_at_their_own():
    cfg = decoupled(VideoPolicyConfig.tiny(), feature_sigma=5.0)
    model = VideoPolicyModel(cfg)
    calls = count_unet_calls(model)
    b = 6
    video = torch.randn(b, cfg.num_frames, 12, 16, 16) * 0.5
    loss, logs = model.training_loss(video, torch.zeros_like(video), model.encode_text(["a"] * b),
                                     torch.rand(b, cfg.action.horizon, 7) * 2 - 1, torch.ones(b, dtype=torch.bool),
                                     None, "head", torch.Generator().manual_seed(0))
    assert torch.allclose(calls[0], torch.full((b,), 0.25 * torch.log(torch.tensor(5.0))))
    assert "action" in logs and "video" not in logs and loss.requires_grad
    with pytest.raises(ValueError, match="decoupled"):
        model.training_loss(video, torch.zeros_like(video), model.encode_text(["a"] * b),
                            torch.zeros(b, cfg.action.horizon, 7), torch.ones(b, dtype=torch.bool), None, "joint")


@pytest.mark.parametrize("sampler", ["joint", "decoupled"])
def test_the_head_learns_from_the_video_only_where_its_sampler_has_it(sampler):
    """The joint sampler denoises the video beside the actions, so its head trains on the noised true clip;
    the decoupled sampler's one U-Net pass starts from pure noise, so its head must not see the future frames
    in training either (it did: a signal inference never has, and chunks at chance on training episodes)."""
    cfg = VideoPolicyConfig.tiny(cameras=("front", "wrist"), proprio=True)
    cfg = cfg.model_copy(update={"edm": cfg.edm.model_copy(update={"sampler": sampler, "feature_sigma": 5.0})})
    model = VideoPolicyModel(cfg)
    b = 4
    cond = torch.rand(b, cfg.num_frames, 12, 16, 16) - 0.5
    text = model.encode_text(["touch the red cube"] * b)
    actions = torch.rand(b, cfg.action.horizon, 7) * 2 - 1

    def head_loss(video: torch.Tensor) -> float:
        torch.manual_seed(0)
        loss, _ = model.training_loss(video, cond, text, actions, torch.ones(b, dtype=torch.bool), torch.zeros(b, 7),
                                      "head", torch.Generator().manual_seed(1))
        return loss.item()

    one_future, another = torch.randn(b, cfg.num_frames, 12, 16, 16) * 0.5, torch.randn(b, cfg.num_frames, 12, 16, 16) * 0.5
    assert (head_loss(one_future) == head_loss(another)) == (sampler == "decoupled")


def test_a_decoupled_head_on_a_trained_video_model_fits_two_episodes(episodes_dir, tmp_path):
    """Stage 1 (video), then a decoupled stage 2 on its frozen U-Net: the sampled chunks match the demos."""
    folder = episodes_dir(2, length=20)
    train_cfg = TrainConfig(optimizer="adam", lr=1e-3, head_lr=2e-3, weight_decay=0.0, warmup_steps=10,
                            ema_decay=None, val_episodes=0)
    cfg = decoupled(VideoPolicyConfig.tiny(future_frames=1, train=train_cfg))
    opts = dict(data=folder, batch_size=8, eval_every=0, save_every=10_000, progress=False)
    stage1 = train(TrainOptions(out=tmp_path / "video", mode="video", steps=40, config=cfg, **opts))
    head = train(TrainOptions(out=tmp_path / "head", mode="head", steps=120, init=stage1, config=cfg, **opts))
    loaded = load_checkpoint(head)
    assert loaded.config.edm.sampler == "decoupled"
    ds = EpisodeDataset(sorted(folder.glob("*.npz")), loaded.config, loaded.normalizer)
    mse = evaluate(loaded.model, ds, 16, with_actions=True, guidance=1.0)["action_mse"]
    untrained_mse = evaluate(type(loaded.model)(loaded.config), ds, 16, with_actions=True, guidance=1.0)["action_mse"]
    print(f"decoupled head: sampled action MSE {mse:.4f} (untrained head {untrained_mse:.4f})")
    assert mse < 0.5 * untrained_mse


def test_the_joint_default_is_unchanged():
    assert EDMConfig().sampler == "joint" and VideoPolicyConfig.tiny().edm.sampler == "joint"


def test_the_policy_runs_a_decoupled_checkpoint_on_torch_and_refuses_an_exported_backend(tmp_path):
    import numpy as np

    from test_checkpoint import _save
    from test_policy import _observation
    from video_policy_ros.policies.video_policy import VideoPolicy
    from video_policy_ros.runtime.backends import BackendUnavailable

    _, folder = _save(tmp_path, representation="step_delta", sampler="decoupled")
    policy = VideoPolicy(folder, num_steps=4, return_frames=True, backend="auto")
    out = policy.predict(_observation(("front", "wrist")))
    assert len(out.chunk) == 32 and np.isfinite(out.chunk.poses).all()
    assert out.decode_video()["front"].shape == (4, 32, 32, 3)  # the one-step predicted video
    assert "decoupled sampler" in policy.description and policy.sampler == "decoupled"
    with pytest.raises(BackendUnavailable, match="decoupled sampler, which runs on the torch backend only"):
        VideoPolicy(folder, backend="onnxruntime")


@pytest.mark.parametrize("sampler", ["joint", "decoupled"])
def test_a_head_that_reads_the_instruction_conditions_on_it(sampler):
    """``head.text``: the same U-Net features with two instructions give the head two conditions (without
    it, one); and both samplers run such a head, the batched guidance included."""
    for reads_text in (False, True):
        cfg = VideoPolicyConfig.tiny(cameras=("front", "wrist"), proprio=True)
        cfg = cfg.model_copy(update={"head": cfg.head.model_copy(update={"text": reads_text}),
                                     "edm": cfg.edm.model_copy(update={"sampler": sampler})})
        model = VideoPolicyModel(cfg).eval()
        cond = model.encode_condition(torch.rand(1, 2, 3, 32, 32) * 2 - 1)
        text = model.encode_text(["touch the red cube", "touch the blue cube"])
        with torch.no_grad():
            _, features, c_noise = model._unet_pass(torch.zeros_like(cond), torch.tensor([1.0]), cond, text[:1])
            conditions = model.head.condition([f.repeat(2, 1, 1, 1) for f in features], torch.zeros(2, 7),
                                              model._unet_embedding(c_noise.repeat(2), cond.dtype), text)
        assert torch.equal(conditions[0], conditions[1]) != reads_text
        _, actions = model.sample(cond, text[:1], torch.zeros(1, 7), num_steps=2, guidance=2.0)
        assert torch.isfinite(actions).all()


@pytest.mark.parametrize("seed", [None, 3])
def test_a_feature_noise_seed_gives_the_head_the_same_unet_input_in_training_and_at_every_chunk(seed):
    """``edm.feature_noise_seed``: one noise draw shared by training and sampling, so the head's features depend
    on the frames and the instruction alone; without it each chunk (and each training sample) draws its own."""
    cfg = decoupled(VideoPolicyConfig.tiny(), feature_sigma=5.0, feature_noise_seed=seed)
    model = VideoPolicyModel(cfg).eval()
    inputs: list[torch.Tensor] = []
    model.unet.register_forward_pre_hook(lambda module, args: inputs.append(args[0][:, :, :12].detach().clone()))
    b = 2
    cond = torch.rand(b, cfg.num_frames, 12, 16, 16) - 0.5
    text = model.encode_text(["touch the red cube"] * b)
    model.training_loss(torch.zeros_like(cond), cond, text, torch.zeros(b, cfg.action.horizon, 7),
                        torch.ones(b, dtype=torch.bool), None, "head", torch.Generator().manual_seed(0))
    for _ in range(2):
        model.sample(cond[:1], text[:1], num_steps=2, guidance=1.0)
    trained, first, second = inputs
    same = [torch.equal(trained[0], trained[1]), torch.equal(trained[:1], first), torch.equal(first, second)]
    assert same == [seed is not None] * 3
