"""The paper preset against the official implementation's figures, and old checkpoints' defaults."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from video_policy_ros.model.config import OFFICIAL_FEATURE_BLOCKS, VideoPolicyConfig
from video_policy_ros.model.video_policy import VideoPolicyModel, feature_geometry

# the config of the checkpoint shipped before the official architecture (pooled fusion, delta actions)
PRE_OFFICIAL = Path(__file__).resolve().parent / "fixtures" / "pre_official_tiny_config.json"


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sgm_block_names(levels: int, res_blocks: int, attention_levels: set[int]) -> tuple[list[str], list[str]]:
    """SGM VideoUNet's input_blocks / output_blocks, each named by the diffusers module that computes
    its output: conv_in; per level res_blocks layers (+ a downsampler but at the last level); on the way
    up res_blocks + 1 layers per level, the last one upsampling (but at level 0)."""
    inputs = ["conv_in"]
    for level in range(levels):
        layer = "attentions" if level in attention_levels else "resnets"
        inputs += [f"down_blocks.{level}.{layer}.{j}" for j in range(res_blocks)]
        inputs += [f"down_blocks.{level}.downsamplers.0"] if level < levels - 1 else []
    outputs = []
    for i, level in enumerate(reversed(range(levels))):
        layer = "attentions" if level in attention_levels else "resnets"
        outputs += [f"up_blocks.{i}.{layer}.{j}" for j in range(res_blocks + 1)]
    return inputs, outputs


def test_official_feature_blocks_are_input_9_and_output_1_4_7_10():
    # SVD-XT: 4 levels, num_res_blocks 2, attention_resolutions [4, 2, 1] = levels 0, 1, 2
    inputs, outputs = _sgm_block_names(4, 2, {0, 1, 2})
    assert len(inputs) == len(outputs) == 12
    official = [(inputs + outputs)[i] for i in (9, 13, 16, 19, 22)][::-1]  # h_pose_indicies, then reverse()
    assert tuple(official) == OFFICIAL_FEATURE_BLOCKS


def test_paper_preset_on_meta_device_matches_the_official_sizes():
    cfg = VideoPolicyConfig.paper()
    assert cfg.num_frames == 25 and cfg.latent_size == (32, 32) and cfg.lead_camera == "wrist"
    assert cfg.frames_per_camera == 8 and cfg.frame_stride == 4 and cfg.unet.added_time_ids == (6.0, 100.0, 0.02)
    with torch.device("meta"):
        model = VideoPolicyModel(cfg)
    assert 1.5e9 < _count(model.unet) < 1.55e9  # SVD-XT's U-Net: 1.52 B
    assert 3.53e8 < _count(model.text_encoder.model) < 3.55e8  # OpenCLIP ViT-H/14's text tower: 354 M
    assert isinstance(model.text_encoder.proj, nn.Identity)  # its pooled token is SVD's 1024-d embedding
    # input block 9, output blocks 1, 4, 7, 10 in diffusers terms, finest first
    assert feature_geometry(cfg) == [(320, 32), (640, 16), (1280, 8), (1280, 4), (1280, 4)]
    assert model.head.fusion.out_dim == 420 * 4 * 4  # the official 420 x 4 x 4 global condition
    assert len(model.head.fusion.towers) == 3 and len(model.head.fusion.temporal) == 3  # 8 frames → 1
    # everything but a few scalar blend factors (diffusers creates those with torch.Tensor([x])) is on meta
    assert sum(p.numel() for p in model.parameters() if p.device.type != "meta") < 100

    b = 2
    features = [torch.empty(b * 25, c, h, h, device="meta") for c, h in feature_geometry(cfg)]
    actions = torch.empty(b, 32, 7, device="meta")
    c_noise = torch.empty(b, device="meta")
    emb = model.unet.time_embedding(model.unet.time_proj(c_noise))
    assert emb.shape == (b, 1280)
    assert model.head.condition(features, None, emb).shape == (b, 6720)
    assert model.head(actions, c_noise, features, None, emb).shape == (b, 32, 7)


def test_tiny_preset_hooks_give_the_predicted_shapes():
    cfg = VideoPolicyConfig.tiny(cameras=("front", "wrist"))
    model = VideoPolicyModel(cfg)
    seen = {}

    def keep_shape(name):
        def hook(module, args, out) -> None:
            seen[name] = (out[0] if isinstance(out, tuple) else out).shape
        return hook

    modules = dict(model.unet.named_modules())
    for name in cfg.head.feature_blocks:
        modules[name].register_forward_hook(keep_shape(name))
    video = torch.zeros(1, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
    model.denoise(video, torch.zeros(1, 32, 7), torch.ones(1), video, model.encode_text(["x"]))
    assert [tuple(seen[n]) for n in cfg.head.feature_blocks] == [(cfg.num_frames, c, h, h) for c, h in feature_geometry(cfg)]


def test_old_checkpoint_configs_keep_their_architecture():
    shipped = VideoPolicyConfig.model_validate_json(PRE_OFFICIAL.read_text())
    assert "fusion" not in json.loads(PRE_OFFICIAL.read_text())["head"]
    assert (shipped.head.fusion, shipped.head.noise_embedding, shipped.head.activation) == ("pooled", "sinusoidal", "mish")
    assert shipped.lead_camera is None and not shipped.text.pooled and shipped.action.representation == "delta"
    assert (shipped.edm.dropout, shipped.edm.cond_noise_aug, shipped.edm.inference_dtype) == ("joint", 0.0, "float32")
    assert (shipped.train.optimizer, shipped.train.jitter_hue) == ("adamw", 0.0)
    assert shipped.num_frames == 10
    # the presets choose the official architecture
    assert VideoPolicyConfig.tiny().head.fusion == VideoPolicyConfig.paper().head.fusion == "resnet3d"


def test_config_rejects_an_unknown_lead_camera_and_odd_frame_counts():
    with pytest.raises(ValueError, match="lead_camera 'side'"):
        VideoPolicyConfig.tiny(lead_camera="side")
    with pytest.raises(ValueError, match="power of two"):
        VideoPolicyConfig.tiny(future_frames=2)
