"""Instruction → cross-attention tokens ``(B, L, cross_attention_dim)``.

``bytes``: a small trainable transformer over UTF-8 bytes (no tokenizer files to
ship, fine for a handful of task strings). ``clip``: a CLIP text tower loaded from a
local folder (needs ``transformers``, imported lazily).

``pooled: true`` (official) gives ONE token, in the slot where SVD expects its CLIP
image embedding: the projected end-of-text token of the CLIP text tower (OpenCLIP
ViT-H's is 1024-d, SVD's width, so it enters unprojected), or the bytes encoder's mean.
``pooled: false`` gives every token through a trainable projection.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from video_policy_ros.model.config import TextEncoderConfig
from video_policy_ros.model.open_clip_format import is_open_clip_folder, read_open_clip

_PAD = 256  # byte values are 0..255


class BytesTextEncoder(nn.Module):
    def __init__(self, cfg: TextEncoderConfig, out_dim: int) -> None:
        super().__init__()
        self.max_length = cfg.max_length
        self.pooled = cfg.pooled
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
        """``B`` strings → ``(B, max_length, out_dim)`` (padding positions zero), or ``(B, 1, out_dim)``
        when pooled (the mean over the instruction's bytes)."""
        ids = self.tokenize(texts, self.pos.device)
        pad = ids == _PAD
        h = self.embed(ids) + self.pos
        # An empty instruction would mask every key; let it attend to its padding instead.
        h = self.encoder(h, src_key_padding_mask=pad & ~pad.all(dim=1, keepdim=True))
        if self.pooled:
            keep = (~pad).to(h.dtype)[..., None]
            return self.proj((h * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp(min=1))
        return self.proj(h) * (~pad)[..., None]


class CLIPTextEncoder(nn.Module):
    """CLIP text tower (transformers ``CLIPTextModel``, or ``CLIPTextModelWithProjection`` when pooled).

    ``folder`` holds the model's ``config.json`` (transformers format) or ``open_clip_config.json``
    (OpenCLIP format), and the CLIP tokenizer files (``vocab.json``, ``merges.txt``); weights come
    from a checkpoint or ``pretrained.load_pretrained``. Without a folder the architecture is
    OpenCLIP ViT-H/14's text tower when pooled, CLIP ViT-L/14's otherwise, with random weights
    and no tokenizer (for meta-device size checks).
    """

    def __init__(self, cfg: TextEncoderConfig, out_dim: int, folder: str | Path | None = None) -> None:
        super().__init__()
        transformers = _import_transformers()
        self.max_length = cfg.max_length
        self.pooled = cfg.pooled
        self.tokenizer = None
        model_cls = transformers.CLIPTextModelWithProjection if cfg.pooled else transformers.CLIPTextModel
        if folder is None:
            heads, layers, hidden = (16, 24, 1024) if cfg.pooled else (12, 12, cfg.width)
            conf = transformers.CLIPTextConfig(hidden_size=hidden, intermediate_size=4 * hidden, projection_dim=cfg.width,
                                               num_attention_heads=heads, num_hidden_layers=layers, hidden_act="gelu",
                                               max_position_embeddings=cfg.max_length)
        elif is_open_clip_folder(Path(folder)):
            conf = read_open_clip(Path(folder)).config
        else:
            conf = transformers.CLIPTextConfig.from_pretrained(str(folder))
        self.model = model_cls(conf)
        if folder is not None:
            self.tokenizer = transformers.CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
            have = conf.projection_dim if cfg.pooled else conf.hidden_size
            if have != cfg.width:
                raise ValueError(f"text.width is {cfg.width} but the CLIP model in {folder} gives {have}-d "
                                 f"{'pooled tokens' if cfg.pooled else 'tokens'}: set text.width to {have}")
        # official: OpenCLIP ViT-H's pooled token is already SVD's 1024-d embedding, nothing to learn
        self.proj = nn.Identity() if cfg.pooled and cfg.width == out_dim else nn.Linear(cfg.width, out_dim)

    def save_description(self, folder: Path) -> None:
        """Write what rebuilds this encoder without its weights: config.json + tokenizer files."""
        self.model.config.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))

    def forward(self, texts: list[str]) -> torch.Tensor:
        """``B`` strings → ``(B, max_length, out_dim)``, or ``(B, 1, out_dim)`` when pooled."""
        if self.tokenizer is None:
            raise RuntimeError("this CLIP text encoder has no tokenizer: build it from a local CLIP folder")
        tok = self.tokenizer(texts, padding="max_length", max_length=self.max_length, truncation=True,
                             return_tensors="pt")
        ids = tok.input_ids.to(self.model.device)
        if self.pooled:
            return self.proj(self.model(input_ids=ids).text_embeds[:, None])
        return self.proj(self.model(input_ids=ids).last_hidden_state)


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
