import pytest
import torch

from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.video_policy import VideoPolicyModel


@pytest.mark.parametrize("cameras", [("front",), ("front", "wrist"), ("front", "side", "wrist")])
@pytest.mark.parametrize("proprio", [False, True])
def test_shapes_for_1_2_3_cameras(cameras, proprio):
    cfg = VideoPolicyConfig.tiny(cameras=cameras, proprio=proprio)
    model = VideoPolicyModel(cfg)
    b, f = 2, len(cameras) * cfg.frames_per_camera
    assert cfg.num_frames == f
    video = torch.rand(b, f, 3, 16, 16) * 2 - 1
    cond = model.encode_condition(video[:, :: cfg.frames_per_camera])
    assert cond.shape == (b, f, 3, 16, 16)
    # camera c's condition is its own current frame, on all of its frames
    assert torch.equal(cond[:, cfg.frames_per_camera - 1], video[:, 0])
    text = model.encode_text(["pick up the cube", ""])
    assert text.shape == (b, cfg.text.max_length, cfg.unet.cross_attention_dim)
    proprio_t = torch.zeros(b, 7) if proprio else None
    d_v, d_a = model.denoise(video, torch.zeros(b, 32, 7), torch.tensor([0.5, 3.0]), cond, text, proprio_t)
    assert d_v.shape == video.shape and d_a.shape == (b, 32, 7)
    loss, logs = model.training_loss(video, cond, text, torch.zeros(b, 32, 7), None, proprio_t, "joint")
    assert torch.isfinite(loss) and set(logs) == {"video", "action", "loss"}
    loss.backward()
    assert model.head.fusion[0].out.weight.grad is not None and model.unet.conv_in.weight.grad is not None
    v, a = model.sample(cond[:1], text[:1], None if proprio_t is None else proprio_t[:1], num_steps=2, guidance=2.0)
    assert v.shape == (1, f, 3, 16, 16) and a.shape == (1, 32, 7)
    assert model.decode(v).shape == (1, f, 3, 16, 16)


def test_head_mode_builds_no_graph_through_the_unet():
    cfg = VideoPolicyConfig.tiny()
    model = VideoPolicyModel(cfg)
    video = torch.zeros(2, cfg.num_frames, 3, 16, 16)
    text = model.encode_text(["a", "b"]).detach()
    loss, logs = model.training_loss(video, video, text, torch.zeros(2, 32, 7), None, None, "head")
    loss.backward()
    assert "video" not in logs
    assert model.unet.conv_in.weight.grad is None and model.head.final[-1].weight.grad is not None


def test_unknown_feature_block_is_rejected():
    cfg = VideoPolicyConfig.tiny()
    bad = cfg.model_copy(update={"head": cfg.head.model_copy(update={"feature_blocks": ("up_blocks.7",)})})
    with pytest.raises(ValueError, match="unknown U-Net block 'up_blocks.7'"):
        VideoPolicyModel(bad)


def test_config_rejects_unknown_fields_and_bad_sizes():
    with pytest.raises(ValueError, match="extra"):
        VideoPolicyConfig.tiny(cameraz=("a",))
    with pytest.raises(ValueError, match="divisible"):
        VideoPolicyConfig.tiny(image_size=(17, 16))


def test_paper_config_on_meta_device_is_svd_xt_sized():
    cfg = VideoPolicyConfig.paper()
    assert cfg.num_frames == 27 and cfg.latent_size == (32, 32)
    with torch.device("meta"):
        model = VideoPolicyModel(cfg)
    unet = sum(p.numel() for p in model.unet.parameters())
    assert 1.5e9 < unet < 1.55e9  # SVD-XT's U-Net: 1.52 B
    # everything but a few scalar blend factors (diffusers creates those with torch.Tensor([x])) is on meta
    assert sum(p.numel() for p in model.parameters() if p.device.type != "meta") < 100
