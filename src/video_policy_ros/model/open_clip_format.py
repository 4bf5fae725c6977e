"""Read an OpenCLIP-format folder (the format of ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``'s
``open_clip_*`` files) as a transformers ``CLIPTextModelWithProjection``.

Folder: ``open_clip_config.json`` (``{"model_cfg": {"embed_dim", "text_cfg": {...}}}``),
``open_clip_model.safetensors`` (or ``open_clip_pytorch_model.bin``), and the CLIP BPE
tokenizer files ``vocab.json`` + ``merges.txt`` (identical for every CLIP model). Only the
text tower is read; the image tower's weights are ignored.

Why not the ``open_clip_torch`` package: it imports torchvision, whose wheels here are
CUDA builds that replace the CPU torch. The text tower is a plain CLIP text transformer
(causal attention, GELU, pooled at the end-of-text token, ``x @ text_projection``), which
transformers implements; this module only renames and splits the tensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

CONFIG = "open_clip_config.json"
WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_LAYER = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
          "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


class OpenCLIPFormatError(ValueError):
    """An OpenCLIP folder is incomplete or describes a text tower this reader does not support."""


@dataclass
class OpenCLIPText:
    config: object  # transformers.CLIPTextConfig
    folder: Path

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The text tower's weights under ``CLIPTextModelWithProjection``'s names."""
        return convert_state_dict(_load_weights(self.folder), self.config.num_hidden_layers)


def is_open_clip_folder(folder: Path) -> bool:
    return (folder / CONFIG).is_file()


def read_open_clip(folder: Path) -> OpenCLIPText:
    import transformers

    cfg = json.loads((folder / CONFIG).read_text())
    model_cfg = cfg.get("model_cfg", cfg)
    text = model_cfg.get("text_cfg", {})
    unsupported = sorted(set(text) & {"hf_model_name", "hf_tokenizer_name", "proj_type", "pool_type", "no_causal_mask"})
    if unsupported or "embed_dim" not in model_cfg:
        raise OpenCLIPFormatError(f"{folder / CONFIG}: only OpenCLIP's own text transformer is supported (needs "
                                  f"model_cfg.embed_dim, no {unsupported}); use a transformers CLIP folder instead")
    width = text.get("width", 512)
    conf = transformers.CLIPTextConfig(
        vocab_size=text.get("vocab_size", 49408), hidden_size=width, intermediate_size=int(width * text.get("mlp_ratio", 4.0)),
        num_attention_heads=text.get("heads", 8), num_hidden_layers=text.get("layers", 12),
        max_position_embeddings=text.get("context_length", 77), projection_dim=model_cfg["embed_dim"],
        hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=0, **_special_tokens(folder))
    return OpenCLIPText(conf, folder)


def _special_tokens(folder: Path) -> dict[str, int]:
    """The tokenizer's start/end-of-text ids: the text tower pools at the end-of-text token."""
    vocab_path = folder / "vocab.json"
    if not vocab_path.is_file():
        raise OpenCLIPFormatError(f"{vocab_path} missing: copy the CLIP tokenizer files (vocab.json, merges.txt) "
                                  "into the OpenCLIP folder; every CLIP model uses the same BPE")
    vocab = json.loads(vocab_path.read_text())
    return {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHTS:
        path = folder / name
        if path.is_file():
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)
    raise OpenCLIPFormatError(f"{folder}: no OpenCLIP weights ({' or '.join(WEIGHTS)})")


def convert_state_dict(source: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """OpenCLIP text-tower tensors → ``CLIPTextModelWithProjection`` tensors."""
    try:
        out = {
            "text_model.embeddings.token_embedding.weight": source["token_embedding.weight"],
            "text_model.embeddings.position_embedding.weight": source["positional_embedding"],
            "text_model.final_layer_norm.weight": source["ln_final.weight"],
            "text_model.final_layer_norm.bias": source["ln_final.bias"],
            "text_projection.weight": source["text_projection"].t().contiguous(),  # OpenCLIP: x @ P
        }
        for i in range(num_layers):
            src, dst = f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
            for kind in ("weight", "bias"):
                # OpenCLIP packs q, k, v into one in_proj tensor
                for name, part in zip(("q_proj", "k_proj", "v_proj"), source[f"{src}attn.in_proj_{kind}"].chunk(3)):
                    out[f"{dst}self_attn.{name}.{kind}"] = part.contiguous()
                for old, new in _LAYER.items():
                    out[f"{dst}{new}.{kind}"] = source[f"{src}{old}.{kind}"]
    except KeyError as exc:
        raise OpenCLIPFormatError(f"OpenCLIP weights lack {exc}: not an OpenCLIP text transformer") from exc
    return out
