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
        future_frames=1,
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
    cond = model.encode_condition(model.current_frames(frames))
    assert cond.shape == (1, cfg.num_frames, 4, 16, 16)
    text = model.encode_text(["pick the cube"])
    assert text.shape == (1, 16, 64)
    video, actions = model.sample(cond, text, num_steps=2, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert model.decode(video).shape == (1, cfg.num_frames - 1, 3, 32, 32) and actions.shape == (1, 32, 7)

    # the checkpoint carries the CLIP config + tokenizer, so it loads without the original folders
    meta = CheckpointMeta(dt=0.1, data_fingerprint="x", step=0, mode="joint", cameras=cfg.cameras,
                          image_size=cfg.image_size, action_representation=cfg.action.representation, action_horizon=32)
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


def _write_open_clip(folder, width=32, layers=2, embed=64, context=16):
    """An OpenCLIP-format folder (open_clip_config.json + open_clip_model.safetensors in OpenCLIP's
    tensor names, image tower included) with tiny random weights, plus the CLIP tokenizer files."""
    from safetensors.torch import save_file

    _write_clip(folder)
    (folder / "config.json").unlink()
    (folder / "model.safetensors").unlink()
    vocab = len(json.loads((folder / "vocab.json").read_text()))
    g = torch.Generator().manual_seed(3)

    def rand(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    weights = {"token_embedding.weight": rand(vocab, width), "positional_embedding": rand(context, width),
               "ln_final.weight": 1 + rand(width), "ln_final.bias": rand(width), "text_projection": rand(width, embed),
               "logit_scale": torch.ones(()), "visual.proj": rand(48, embed)}
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        weights |= {p + "ln_1.weight": 1 + rand(width), p + "ln_1.bias": rand(width),
                    p + "attn.in_proj_weight": rand(3 * width, width), p + "attn.in_proj_bias": rand(3 * width),
                    p + "attn.out_proj.weight": rand(width, width), p + "attn.out_proj.bias": rand(width),
                    p + "ln_2.weight": 1 + rand(width), p + "ln_2.bias": rand(width),
                    p + "mlp.c_fc.weight": rand(4 * width, width), p + "mlp.c_fc.bias": rand(4 * width),
                    p + "mlp.c_proj.weight": rand(width, 4 * width), p + "mlp.c_proj.bias": rand(width)}
    save_file(weights, str(folder / "open_clip_model.safetensors"))
    config = {"model_cfg": {"embed_dim": embed, "vision_cfg": {"width": 48},
                            "text_cfg": {"context_length": context, "vocab_size": vocab, "width": width, "heads": 4,
                                         "layers": layers}}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return weights


def _open_clip_text_reference(w, ids, eot, layers, heads=4):
    """OpenCLIP's text forward written out on its own tensors: causal pre-LN transformer, exact GELU,
    the end-of-text token's features times text_projection."""
    x = w["token_embedding.weight"][ids] + w["positional_embedding"]
    n = x.shape[1]
    mask = torch.full((n, n), float("-inf")).triu(1)
    ln = torch.nn.functional.layer_norm
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        h = ln(x, x.shape[-1:], w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        q, k, v = (h @ w[p + "attn.in_proj_weight"].T + w[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask, dim=-1) @ v
        x = x + att.transpose(1, 2).flatten(2) @ w[p + "attn.out_proj.weight"].T + w[p + "attn.out_proj.bias"]
        h = ln(x, x.shape[-1:], w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        h = torch.nn.functional.gelu(h @ w[p + "mlp.c_fc.weight"].T + w[p + "mlp.c_fc.bias"])
        x = x + h @ w[p + "mlp.c_proj.weight"].T + w[p + "mlp.c_proj.bias"]
    x = ln(x, x.shape[-1:], w["ln_final.weight"], w["ln_final.bias"])
    return x[torch.arange(len(ids)), eot] @ w["text_projection"]


def test_pooled_text_token_from_a_local_open_clip_folder(tmp_path):
    weights = _write_open_clip(tmp_path / "open_clip")
    cfg = VideoPolicyConfig.tiny(text=TextEncoderConfig(kind="clip", max_length=16, width=64, trainable=False,
                                                        pooled=True))
    model = load_pretrained(cfg, None, tmp_path / "open_clip").eval()
    text = model.encode_text(["pick the cube", "stack"])
    assert text.shape == (2, 1, 64)  # one token, SVD's image-embedding slot, no extra projection
    tok = model.text_encoder.tokenizer(["pick the cube", "stack"], padding="max_length", max_length=16,
                                       return_tensors="pt").input_ids
    eot = (tok == model.text_encoder.tokenizer.eos_token_id).int().argmax(dim=1)
    with torch.no_grad():
        expected = _open_clip_text_reference(weights, tok, eot, layers=2)
    assert torch.allclose(text[:, 0], expected, atol=1e-5)

    meta = CheckpointMeta(dt=0.1, data_fingerprint="x", step=0, mode="video", cameras=cfg.cameras,
                          image_size=cfg.image_size, action_representation=cfg.action.representation, action_horizon=32)
    folder = save_checkpoint(tmp_path / "ckpt", model, meta, None)
    assert torch.equal(load_checkpoint(folder).model.encode_text(["pick the cube", "stack"]), text)
