"""ONNX export of the shipped checkpoint: parity with torch through onnxruntime, the manifest, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from video_policy_ros.cli import main as cli
from video_policy_ros.runtime.backends import OnnxRuntimeBackend, TorchBackend
from video_policy_ros.runtime.export import (DECODER, DENOISER, MANIFEST, ExportError, checkpoint_sha256,
                                             denoiser_example, load_exported)

PARITY_TOLERANCE = 1e-4  # fp32 torch vs fp32 onnxruntime; measured errors are ~1e-6


def test_denoiser_and_decoder_match_torch_through_onnxruntime(exported, tiny_model):
    ort_backend = OnnxRuntimeBackend(exported, "cpu")
    torch_backend = TorchBackend(tiny_model, torch.device("cpu"))
    for seed, sigma in ((0, 0.05), (1, 2.5), (2, 60.0)):  # low, mid and high noise: every scaling branch
        inputs = denoiser_example(tiny_model, guided=True, seed=seed)
        inputs["sigma"] = torch.full((2,), sigma)
        args = [inputs.get(k) for k in ("x_video", "x_action", "sigma", "cond", "text", "proprio", "uncond")]
        errors = [float((a - b).abs().max()) for a, b in zip(ort_backend.denoise(*args), torch_backend.denoise(*args))]
        print(f"sigma {sigma}: max abs error d_video {errors[0]:.2e}, d_action {errors[1]:.2e}")
        assert max(errors) < PARITY_TOLERANCE
    # The two branches differ (the unconditional one drops every condition), so the batch is not degenerate.
    d_video, _ = torch_backend.denoise(*args)
    assert float((d_video[0] - d_video[1]).abs().max()) > 1e-3
    latents = inputs["x_video"][:1].clamp(-2, 2)
    decode_error = float((ort_backend.decode(latents) - torch_backend.decode(latents)).abs().max())
    print(f"decoder max abs error {decode_error:.2e}")
    assert decode_error < PARITY_TOLERANCE


def test_manifest_names_the_checkpoint_and_every_tensor(exported, shipped_checkpoint, tiny_model):
    manifest = load_exported(exported, shipped_checkpoint)
    assert manifest.checkpoint_sha256 == checkpoint_sha256(shipped_checkpoint) and manifest.guided
    cfg = tiny_model.cfg
    video = (2, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
    text_tokens = 1 if cfg.text.pooled else cfg.text.max_length
    shapes = {t.name: (t.shape, t.dtype) for t in manifest.denoiser.inputs + manifest.denoiser.outputs}
    assert shapes == {
        "x_video": (video, "float32"), "x_action": ((2, 32, 7), "float32"), "sigma": ((2,), "float32"),
        "cond": (video, "float32"), "text": ((2, text_tokens, cfg.unet.cross_attention_dim), "float32"),
        "uncond": ((2,), "bool"), "d_video": (video, "float32"), "d_action": ((2, 32, 7), "float32"),
        **({"proprio": ((2, 7), "float32")} if cfg.proprio else {}),
    }
    assert [t.name for t in manifest.decoder.outputs] == ["frames"]


def test_a_changed_graph_or_another_checkpoint_is_refused(exported, tmp_path, shipped_checkpoint):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (DENOISER, DECODER, MANIFEST):
        (copy / name).write_bytes((exported / name).read_bytes())
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["checkpoint_sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="another checkpoint"):
        load_exported(copy, shipped_checkpoint)
    (copy / DECODER).write_bytes(b"not onnx")
    with pytest.raises(ExportError, match="does not match"):
        load_exported(copy)


def test_export_command_writes_the_files_and_reports_bad_input_in_one_line(tmp_path, shipped_checkpoint, capsys):
    out = tmp_path / "unguided"
    assert cli(["export", str(shipped_checkpoint), "--out", str(out), "--guidance", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert str(out / DENOISER) in printed and "checkpoint sha256" in printed
    manifest = load_exported(out, shipped_checkpoint)
    assert not manifest.guided and manifest.denoiser.inputs[0].shape[0] == 1
    capsys.readouterr()
    assert cli(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: checkpoint folder not found"), repr(err)


def test_svd_vae_decoder_of_the_paper_architecture_exports_and_matches(tmp_path):
    """The paper config decodes with SVD's temporal VAE: the same architecture, narrowed so it runs here."""
    from video_policy_ros.model.checkpoint import CheckpointMeta, save_checkpoint
    from video_policy_ros.model.config import VAEConfig, VideoPolicyConfig
    from video_policy_ros.model.video_policy import VideoPolicyModel
    from video_policy_ros.runtime.export import export_checkpoint

    cfg = VideoPolicyConfig.tiny(cameras=("front",), image_size=(32, 32),
                                 vae=VAEConfig(kind="svd", latent_channels=4, block_out_channels=(32, 64), layers_per_block=1))
    model = VideoPolicyModel(cfg).eval()
    meta = CheckpointMeta(dt=0.1, data_fingerprint="test", step=0, mode="video", cameras=cfg.cameras,
                          image_size=cfg.image_size, action_representation=cfg.action.representation,
                          action_horizon=cfg.action.horizon)
    manifest = export_checkpoint(save_checkpoint(tmp_path / "svd", model, meta, None), tmp_path / "onnx")
    frames = cfg.num_frames
    assert manifest.decoder.inputs[0].shape == (1, frames, 4, 16, 16)
    latents = torch.randn(1, frames, 4, 16, 16)
    error = float((OnnxRuntimeBackend(tmp_path / "onnx", "cpu").decode(latents) - model.decode(latents)).abs().max())
    print(f"SVD VAE decoder max abs error {error:.2e}")
    assert error < PARITY_TOLERANCE
