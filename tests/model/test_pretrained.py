"""Initialisation from local diffusers / transformers folders, with tiny random models saved here."""

import json

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

from video_policy_ros.model.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from video_policy_ros.model.config import TextEncoderConfig, UNetConfig, VAEConfig, VideoPolicyConfig
from video_policy_ros.model.pretrained import PretrainedError, load_pretrained

transformers = pytest.importorskip("transformers")


def _config() -> VideoPolicyConfig:
    return VideoPolicyConfig.tiny(
        image_size=(32, 32),
        future_frames=2,
        vae=VAEConfig(kind="svd", latent_channels=4, block_out_channels=(32, 32), layers_per_block=1),
        unet=UNetConfig(block_out_channels=(32, 64), layers_per_block=1, num_attention_heads=(2, 4),
                        cross_attention_dim=64, addition_time_embed_dim=8),
        text=TextEncoderConfig(kind="clip", max_length=16, width=32, trainable=False),
    )


def _write_svd(folder):
    UNetSpatioTemporalConditionModel(
        sample_size=16, in_channels=8, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=24, layers_per_block=1,
        cross_attention_dim=64, num_attention_heads=(2, 4), num_frames=3,
    ).save_pretrained(folder / "unet")
    AutoencoderKLTemporalDecoder(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                                 layers_per_block=1, latent_channels=4).save_pretrained(folder / "vae")


def _write_clip(folder):
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters])}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    conf = transformers.CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                       num_hidden_layers=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1)
    transformers.CLIPTextModel(conf).save_pretrained(folder)


def test_init_from_local_svd_and_clip_folders_then_checkpoint(tmp_path):
    torch.manual_seed(1)
    _write_svd(tmp_path / "svd")
    _write_clip(tmp_path / "clip")
    cfg = _config()
    model = load_pretrained(cfg, tmp_path / "svd", tmp_path / "clip")
    ref_unet = UNetSpatioTemporalConditionModel.from_pretrained(tmp_path / "svd" / "unet")
    ref_clip = transformers.CLIPTextModel.from_pretrained(tmp_path / "clip")
    assert torch.equal(model.unet.conv_in.weight, ref_unet.conv_in.weight)
    assert torch.equal(model.text_encoder.model.get_input_embeddings().weight, ref_clip.get_input_embeddings().weight)

    model.eval()
    frames = torch.rand(1, cfg.num_frames, 3, 32, 32) * 2 - 1
    cond = model.encode_condition(frames[:, :: cfg.frames_per_camera])
    assert cond.shape == (1, cfg.num_frames, 4, 16, 16)
    text = model.encode_text(["pick the cube"])
    assert text.shape == (1, 16, 64)
    video, actions = model.sample(cond, text, num_steps=2, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert model.decode(video).shape == (1, cfg.num_frames, 3, 32, 32) and actions.shape == (1, 32, 7)

    # the checkpoint carries the CLIP config + tokenizer, so it loads without the original folders
    meta = CheckpointMeta(dt=0.1, data_fingerprint="x", step=0, mode="joint", cameras=cfg.cameras,
                          image_size=cfg.image_size, action_representation="delta", action_horizon=32)
    folder = save_checkpoint(tmp_path / "ckpt", model, meta, None)
    loaded = load_checkpoint(folder).model
    assert torch.equal(loaded.encode_text(["pick the cube"]), text)


def test_mismatched_pretrained_folder_is_rejected(tmp_path):
    _write_svd(tmp_path / "svd")
    cfg = _config().model_copy(update={"text": TextEncoderConfig(kind="bytes")})
    wrong = cfg.model_copy(update={"unet": cfg.unet.model_copy(update={"cross_attention_dim": 32})})
    with pytest.raises(PretrainedError, match="does not match the config"):
        load_pretrained(wrong, tmp_path / "svd")
    with pytest.raises(PretrainedError, match="config.json not found"):
        load_pretrained(cfg, tmp_path / "missing")
    with pytest.raises(PretrainedError, match="text.kind is 'clip'"):
        load_pretrained(_config(), tmp_path / "svd")
