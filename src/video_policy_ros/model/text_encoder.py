"""Instruction → cross-attention tokens ``(B, L, cross_attention_dim)``.

``bytes``: a small trainable transformer over UTF-8 bytes (no tokenizer files to
ship, fine for a handful of task strings). ``clip``: a CLIP text tower loaded from a
local folder (needs ``transformers``, imported lazily). Both end in a linear
projection to the U-Net's cross-attention width, which always trains: SVD's
cross-attention was trained on CLIP *image* embeddings, not text.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from video_policy_ros.model.config import TextEncoderConfig

_PAD = 256  # byte values are 0..255


class BytesTextEncoder(nn.Module):
    def __init__(self, cfg: TextEncoderConfig, out_dim: int) -> None:
        super().__init__()
        self.max_length = cfg.max_length
        self.embed = nn.Embedding(257, cfg.width, padding_idx=_PAD)
        self.pos = nn.Parameter(torch.randn(cfg.max_length, cfg.width) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.width, nhead=4, dim_feedforward=2 * cfg.width, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.proj = nn.Linear(cfg.width, out_dim)

    def tokenize(self, texts: list[str], device) -> torch.Tensor:
        ids = torch.full((len(texts), self.max_length), _PAD, dtype=torch.long)
        for i, text in enumerate(texts):
            data = list(text.encode("utf-8")[: self.max_length])
            ids[i, : len(data)] = torch.tensor(data, dtype=torch.long)
        return ids.to(device)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """``B`` strings → ``(B, max_length, out_dim)``; padding positions are zero."""
        ids = self.tokenize(texts, self.pos.device)
        pad = ids == _PAD
        h = self.embed(ids) + self.pos
        # An empty instruction would mask every key; let it attend to its padding instead.
        h = self.encoder(h, src_key_padding_mask=pad & ~pad.all(dim=1, keepdim=True))
        return self.proj(h) * (~pad)[..., None]


class CLIPTextEncoder(nn.Module):
    """CLIP text tower (transformers ``CLIPTextModel`` + ``CLIPTokenizer``).

    ``folder`` holds the model's ``config.json`` and tokenizer files (``vocab.json``,
    ``merges.txt``); weights come from a checkpoint or ``pretrained.load_pretrained``. Without a folder the
    architecture is CLIP ViT-L/14's text tower with random weights and no tokenizer
    (for meta-device size benchmarks).
    """

    def __init__(self, cfg: TextEncoderConfig, out_dim: int, folder: str | Path | None = None) -> None:
        super().__init__()
        transformers = _import_transformers()
        self.max_length = cfg.max_length
        self.tokenizer = None
        if folder is None:
            conf = transformers.CLIPTextConfig(hidden_size=cfg.width, intermediate_size=4 * cfg.width,
                                               num_attention_heads=12, num_hidden_layers=12,
                                               max_position_embeddings=cfg.max_length)
            self.model = transformers.CLIPTextModel(conf)
        else:
            folder = str(folder)
            self.model = transformers.CLIPTextModel(transformers.CLIPTextConfig.from_pretrained(folder))
            self.tokenizer = transformers.CLIPTokenizer.from_pretrained(folder, local_files_only=True)
            if self.model.config.hidden_size != cfg.width:
                raise ValueError(f"text.width is {cfg.width} but the CLIP model in {folder} has hidden size "
                                 f"{self.model.config.hidden_size}: set text.width to match")
        self.proj = nn.Linear(cfg.width, out_dim)

    def save_description(self, folder: Path) -> None:
        """Write what rebuilds this encoder without its weights: config.json + tokenizer files."""
        self.model.config.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))

    def forward(self, texts: list[str]) -> torch.Tensor:
        """``B`` strings → ``(B, max_length, out_dim)``."""
        if self.tokenizer is None:
            raise RuntimeError("this CLIP text encoder has no tokenizer: build it from a local CLIP folder")
        tok = self.tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                             return_tensors="pt")
        h = self.model(input_ids=tok.input_ids.to(self.proj.weight.device)).last_hidden_state
        return self.proj(h)


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ImportError("the 'clip' text encoder needs transformers: pip install transformers==5.23.0") from exc
    return transformers


def build_text_encoder(cfg: TextEncoderConfig, out_dim: int, clip_folder: str | Path | None = None) -> nn.Module:
    """The encoder ``cfg`` names; a CLIP encoder takes its config and tokenizer from ``clip_folder``."""
    if cfg.kind == "bytes":
        return BytesTextEncoder(cfg, out_dim)
    return CLIPTextEncoder(cfg, out_dim, clip_folder)
