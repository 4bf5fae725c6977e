"""ONNX export of a checkpoint: the guided denoiser step and the VAE decoder, plus a manifest.

    video-policy export models/video_policy_tiny --out exported/tiny

Graphs (float32, static shapes; ``N`` = 2 when guided — conditional then unconditional
branch in one batch — or 1 with guidance off; ``F`` frames, ``C`` latent channels,
``h x w`` latent grid, ``K`` action steps, ``L x D`` text tokens):

``denoiser.onnx`` — one EDM denoiser call ``D(x; sigma)`` of the video U-Net + action head
    inputs   x_video (N, F, C, h, w)  x_action (N, K, 7)  sigma (N,)  cond (N, F, C, h, w)
             text (N, L, D)  [proprio (N, 7), only for checkpoints trained with it]
             uncond (N,) bool: true drops every condition (the guidance's unconditional branch)
    outputs  d_video (N, F, C, h, w)  d_action (N, K, 7)
``vae_decoder.onnx`` — latents (1, F, C, h, w) → frames (1, F, 3, H, W) in [-1, 1]

``manifest.json`` names the checkpoint (sha256 of its files), every graph's sha256 and its
inputs/outputs with shapes and dtypes, so a backend can refuse files that do not match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from video_policy_ros.errors import StackError

DENOISER, DECODER, MANIFEST = "denoiser.onnx", "vae_decoder.onnx", "manifest.json"
MANIFEST_VERSION = 1
OPSET = 17
CHECKPOINT_FILES = ("config.json", "meta.json", "model.safetensors", "normalization.json")


class ExportError(StackError):
    """Exported files are missing, stale or do not fit the checkpoint; the message says how to re-export."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name


@dataclass(frozen=True)
class GraphSpec:
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Manifest:
    checkpoint: str
    checkpoint_sha256: str
    guided: bool
    opset: int
    torch_version: str
    denoiser: GraphSpec
    decoder: GraphSpec
    version: int = MANIFEST_VERSION

    def save(self, folder: Path) -> Path:
        path = folder / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "Manifest":
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise ExportError(f"{path} not found: export the checkpoint first (video-policy export CHECKPOINT --out {folder})")
        data = json.loads(path.read_text())
        if data.get("version") != MANIFEST_VERSION:
            raise ExportError(f"{path}: manifest version {data.get('version')}, this code reads {MANIFEST_VERSION}; re-export")

        def graph(g: dict) -> GraphSpec:
            specs = {k: tuple(TensorSpec(t["name"], tuple(t["shape"]), t["dtype"]) for t in g[k]) for k in ("inputs", "outputs")}
            return GraphSpec(g["file"], g["sha256"], specs["inputs"], specs["outputs"])

        return cls(**{**data, "denoiser": graph(data["denoiser"]), "decoder": graph(data["decoder"])})


def sha256_file(path: Path, progress=None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
            if progress is not None:
                progress.update(len(block))
    return digest.hexdigest()


def checkpoint_sha256(folder: str | Path) -> str:
    """One hash over the files that define the model's outputs (config, weights, statistics)."""
    from tqdm import tqdm

    folder = Path(folder)
    files = [folder / name for name in CHECKPOINT_FILES if (folder / name).is_file()]
    digest = hashlib.sha256()
    with tqdm(total=sum(f.stat().st_size for f in files), unit="B", unit_scale=True, desc="hashing checkpoint",
              leave=False) as bar:
        for f in files:
            digest.update(f.name.encode() + sha256_file(f, bar).encode())
    return digest.hexdigest()


def denoiser_example(model, guided: bool, seed: int = 0) -> dict[str, "object"]:
    """Inputs of the right shapes for one denoiser call (also the warm-up/benchmark inputs)."""
    import torch

    cfg = model.cfg
    n = 2 if guided else 1
    g = torch.Generator().manual_seed(seed)
    video = (n, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
    inputs = {
        "x_video": torch.randn(video, generator=g),
        "x_action": torch.randn((n, cfg.action.horizon, 7), generator=g),
        "sigma": torch.full((n,), 2.5),
        "cond": torch.randn(video, generator=g),
        "text": model.encode_text(["touch the red cube"]).detach().expand(n, -1, -1).contiguous(),
    }
    if cfg.proprio:
        inputs["proprio"] = torch.rand((n, 7), generator=g) * 2 - 1
    inputs["uncond"] = torch.tensor([False, True][:n]) if guided else torch.tensor([False])
    return inputs


def _denoiser_module(model):
    import torch

    class DenoiserStep(torch.nn.Module):
        """``VideoPolicyModel.denoise`` with positional inputs in the graph's order."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x_video, x_action, sigma, cond, text, *rest):
            proprio, uncond = rest if len(rest) == 2 else (None, rest[0])
            return self.model.denoise(x_video, x_action, sigma, cond, text, proprio, uncond)

    return DenoiserStep()


def _decoder_module(model):
    import torch

    class DecoderStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, latents):
            return self.model.decode(latents)

    return DecoderStep()


def _export_graph(module, inputs: dict, output_names: tuple[str, ...], path: Path) -> GraphSpec:
    import torch

    with torch.no_grad():
        outputs = module(*inputs.values())
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        # The TorchScript exporter: the dynamo exporter needs onnxscript, which this stack does not pin.
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=list(output_names), opset_version=OPSET, dynamo=False)

    def spec(name, t):
        return TensorSpec(name, tuple(t.shape), str(t.numpy().dtype))

    return GraphSpec(path.name, sha256_file(path), tuple(spec(k, v) for k, v in inputs.items()),
                     tuple(spec(k, v) for k, v in zip(output_names, outputs)))


def export_checkpoint(checkpoint: str | Path, out: str | Path, guidance: float | None = None) -> Manifest:
    """Write ``denoiser.onnx``, ``vae_decoder.onnx`` and ``manifest.json`` into ``out``.

    ``guidance`` (default: the checkpoint's) decides the denoiser's batch: 2 when guided, 1 when off.
    """
    import warnings

    import torch
    from rich.progress import Progress

    from video_policy_ros.model.checkpoint import load_checkpoint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(transient=False) as progress:
        task = progress.add_task("loading checkpoint", total=4)
        loaded = load_checkpoint(checkpoint, "cpu")
        model = loaded.model.float().eval()
        guided = (loaded.config.edm.guidance if guidance is None else guidance) != 1.0
        progress.update(task, advance=1, description="hashing checkpoint")
        ckpt_hash = checkpoint_sha256(checkpoint)
        progress.update(task, advance=1, description="exporting denoiser (U-Net + action head)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer warns about every Python-side shape assertion
            denoiser = _export_graph(_denoiser_module(model), denoiser_example(model, guided),
                                     ("d_video", "d_action"), out / DENOISER)
            progress.update(task, advance=1, description="exporting VAE decoder")
            latents = denoiser_example(model, False)["x_video"]
            decoder = _export_graph(_decoder_module(model), {"latents": latents}, ("frames",), out / DECODER)
        progress.update(task, advance=1, description="done")
    manifest = Manifest(str(Path(checkpoint).resolve()), ckpt_hash, guided, OPSET, torch.__version__, denoiser, decoder)
    manifest.save(out)
    return manifest


def load_exported(folder: str | Path, checkpoint: str | Path | None = None) -> Manifest:
    """The manifest of an export, checked against the files on disk (and the checkpoint when given)."""
    folder = Path(folder)
    manifest = Manifest.load(folder)
    for graph in (manifest.denoiser, manifest.decoder):
        path = folder / graph.file
        if not path.is_file() or sha256_file(path) != graph.sha256:
            raise ExportError(f"{path} is missing or does not match {folder / MANIFEST}; re-run video-policy export")
    if checkpoint is not None and checkpoint_sha256(checkpoint) != manifest.checkpoint_sha256:
        raise ExportError(f"{folder} was exported from another checkpoint than {checkpoint}; "
                          f"re-run: video-policy export {checkpoint} --out {folder}")
    return manifest


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder written by video-policy train")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <checkpoint>/onnx)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance the graph is exported for: 1.0 exports batch 1, anything else batch 2 "
                             "(default: the checkpoint's)")


def run(args: argparse.Namespace) -> int:
    import sys

    from video_policy_ros.model.checkpoint import CheckpointError

    out = args.out or args.checkpoint / "onnx"
    try:
        manifest = export_checkpoint(args.checkpoint, out, args.guidance)
    except (CheckpointError, StackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for graph in (manifest.denoiser, manifest.decoder):
        print(f"wrote {out / graph.file}: " + ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in graph.inputs)
              + " -> " + ", ".join(f"{t.name} {list(t.shape)}" for t in graph.outputs))
    print(f"wrote {out / MANIFEST} (checkpoint sha256 {manifest.checkpoint_sha256[:16]}...)")
    return 0
