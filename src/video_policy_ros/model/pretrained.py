"""Initialise the paper config from local diffusers / transformers folders (nothing is downloaded).

``svd_folder`` is a diffusers Stable Video Diffusion (XT) pipeline folder: ``unet/`` and
``vae/``, each with ``config.json`` and weights. ``clip_folder`` is a transformers
CLIPTextModel(WithProjection) folder or an OpenCLIP-format folder (open_clip_format.py),
with the CLIP tokenizer files.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from video_policy_ros.errors import StackError
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.open_clip_format import is_open_clip_folder, read_open_clip
from video_policy_ros.model.video_policy import VideoPolicyModel


class PretrainedError(StackError, ValueError):
    """A pretrained folder is missing or does not match the config."""


def _copy(target: nn.Module, source: nn.Module, what: str, folder: Path) -> None:
    want, have = target.state_dict(), source.state_dict()
    wrong = [k for k in want if k not in have or have[k].shape != want[k].shape]
    if wrong or set(have) - set(want):
        raise PretrainedError(f"{folder} ({what}) does not match the config: {len(wrong)} missing or mis-shaped "
                              f"tensors, e.g. {wrong[:3]}; set the config's {what} sizes to the folder's config.json")
    target.load_state_dict(have)


def _folder(path: Path, what: str) -> Path:
    if not ((path / "config.json").is_file() or is_open_clip_folder(path)):
        raise PretrainedError(f"{path}/config.json not found: {what} must be a local folder saved with "
                              "save_pretrained (nothing is downloaded)")
    return path


def load_pretrained(cfg: VideoPolicyConfig, svd_folder: str | Path | None = None,
                    clip_folder: str | Path | None = None) -> VideoPolicyModel:
    """Build the model and copy the U-Net and VAE from ``svd_folder``, CLIP from ``clip_folder``.

    The action head (and the text projection) stay randomly initialised.
    """
    if cfg.text.kind == "clip" and clip_folder is None:
        raise PretrainedError("text.kind is 'clip': pass the local CLIP text model folder (--clip-folder)")
    clip = None if clip_folder is None else _folder(Path(clip_folder), "the CLIP text encoder")
    if clip is not None and cfg.text.kind != "clip":
        raise PretrainedError("a CLIP folder was given but text.kind is not 'clip'")
    model = VideoPolicyModel(cfg, clip_folder=clip)
    if svd_folder is not None:
        from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel

        svd = Path(svd_folder)
        unet = UNetSpatioTemporalConditionModel.from_pretrained(
            _folder(svd / "unet", "the SVD U-Net"), local_files_only=True, low_cpu_mem_usage=False)
        _copy(model.unet, unet, "unet", svd / "unet")
        if cfg.vae.kind == "svd":
            vae = AutoencoderKLTemporalDecoder.from_pretrained(
                _folder(svd / "vae", "the SVD VAE"), local_files_only=True, low_cpu_mem_usage=False)
            _copy(model.vae.vae, vae, "vae", svd / "vae")
    if clip is not None:
        target = model.text_encoder.model
        if is_open_clip_folder(clip):
            source = type(target)(target.config)
            try:
                source.load_state_dict(read_open_clip(clip).state_dict())
            except RuntimeError as exc:
                raise PretrainedError(f"{clip}: the OpenCLIP weights do not fit open_clip_config.json: {exc}") from exc
        else:
            source = type(target).from_pretrained(str(clip), local_files_only=True)
        _copy(target, source, "text", clip)
    return model
