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
    assert cfg.num_frames == f + 1  # the lead frame: the wrist (or last) camera's current frame once more
    video = torch.rand(b, f + 1, 3, *cfg.image_size) * 2 - 1
    video[:, 0] = video[:, 1 + cfg.cameras.index(cfg.lead_camera) * cfg.frames_per_camera]
    cond = model.encode_condition(model.current_frames(video))
    latent = (cfg.vae.latent_channels, *cfg.latent_size)  # 2x2 pixels folded into the channels
    assert cond.shape == (b, f + 1, *latent) and latent == (12, 16, 16)
    # camera c's condition is its own current frame (+ 0.02 noise), on all of its frames and on the lead frame
    expected = torch.cat([video[:, :1], model.current_frames(video).repeat_interleave(cfg.frames_per_camera, 1)], 1)
    assert (cond - model.encode_video(expected)).std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(model.decode(model.encode_video(video)), video[:, 1:])  # the pixel 'latent' is lossless
    video = model.encode_video(video)
    text = model.encode_text(["pick up the cube", ""])
    assert text.shape == (b, 1, cfg.unet.cross_attention_dim)  # one pooled token
    proprio_t = torch.zeros(b, 7) if proprio else None
    d_v, d_a = model.denoise(video, torch.zeros(b, 32, 7), torch.tensor([0.5, 3.0]), cond, text, proprio_t)
    assert d_v.shape == video.shape and d_a.shape == (b, 32, 7)
    loss, logs = model.training_loss(video, cond, text, torch.zeros(b, 32, 7), None, proprio_t, "joint")
    assert torch.isfinite(loss) and set(logs) == {"video", "action", "loss"}
    loss.backward()
    assert model.head.fusion.towers[-1].stages[0][0].conv1[0].weight.grad is not None
    assert model.unet.conv_in.weight.grad is not None
    v, a = model.sample(cond[:1], text[:1], None if proprio_t is None else proprio_t[:1], num_steps=2, guidance=2.0)
    assert v.shape == (1, f + 1, *latent) and a.shape == (1, 32, 7)
    assert model.decode(v).shape == (1, f, 3, *cfg.image_size)  # camera by camera, without the lead frame


def test_head_mode_builds_no_graph_through_the_unet():
    cfg = VideoPolicyConfig.tiny()
    model = VideoPolicyModel(cfg)
    video = torch.zeros(2, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
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
    bad = cfg.model_copy(update={"head": cfg.head.model_copy(update={"feature_blocks": (
        "up_blocks.1.attentions.1", "up_blocks.0.resnets.5", "down_blocks.0.downsamplers.0")})})
    with pytest.raises(ValueError, match="has no module 'up_blocks.0.resnets.5'"):
        VideoPolicyModel(bad)


def test_config_rejects_unknown_fields_and_bad_sizes():
    with pytest.raises(ValueError, match="extra"):
        VideoPolicyConfig.tiny(cameraz=("a",))
    with pytest.raises(ValueError, match="divisible"):
        VideoPolicyConfig.tiny(image_size=(17, 16))


