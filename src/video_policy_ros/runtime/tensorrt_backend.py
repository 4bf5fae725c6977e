"""TensorRT backend: FP16 engines built from the exported ONNX graphs, replayed as CUDA graphs.

    video-policy build-engine models/video_policy_tiny     # export (if needed) + build, cached

Engines are cached as ``<cache>/engines/<onnx sha256>-<GPU>-sm<cc>-trt<version>.plan``: a new
export, another GPU model or another TensorRT version builds a new engine, anything else
reuses the file. TensorRT's wheels come only from NVIDIA's index; where it (or a CUDA GPU)
is missing, asking for this backend raises :class:`BackendUnavailable` naming what is missing.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import torch

from video_policy_ros.errors import StackError
from video_policy_ros.runtime.backends import BackendSettings, BackendUnavailable, DenoiserBackend, exported_folder
from video_policy_ros.runtime.export import DECODER, DENOISER, load_exported, sha256_file

log = logging.getLogger(__name__)
INSTALL_HINT = ("pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12 (or use the docker/ GPU image), "
                "or set backend: onnxruntime or torch")


def require_tensorrt(settings: BackendSettings | None = None):
    """The ``tensorrt`` module, or one error naming what is missing (the package, or a CUDA GPU)."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(f"backend tensorrt needs NVIDIA's TensorRT Python package, which is not installed "
                                 f"({exc}); {INSTALL_HINT}") from None
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"backend tensorrt needs a CUDA GPU; torch {torch.__version__} sees none "
                                 "(CPU build of torch, no driver, or CUDA_VISIBLE_DEVICES is empty); set backend: onnxruntime")
    if settings is not None and settings.torch_device.type != "cuda":
        raise BackendUnavailable("backend tensorrt runs on the GPU but device is 'cpu'; set device: cuda or auto")
    return tensorrt


def engine_path(onnx_path: Path, engines_dir: Path, trt) -> Path:
    """Cache key: the ONNX file's hash, the GPU model and compute capability, the TensorRT version."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "_", torch.cuda.get_device_name()).strip("_")
    major, minor = torch.cuda.get_device_capability()
    return engines_dir / f"{sha256_file(onnx_path)[:20]}-{gpu}-sm{major}{minor}-trt{trt.__version__}.plan"


def build_engine(onnx_path: Path, engines_dir: Path) -> Path:
    """Build (or reuse) the FP16 engine of ``onnx_path``; returns the cached ``.plan``."""
    trt = require_tensorrt()
    path = engine_path(onnx_path, engines_dir, trt)
    if path.is_file():
        log.info("TensorRT engine cache hit: %s", path)
        return path
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode of TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise StackError(f"TensorRT cannot parse {onnx_path}: {problems}; re-export with video-policy export")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    print(f"building TensorRT FP16 engine for {onnx_path.name} (minutes for the paper config) ...", flush=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StackError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    engines_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(path)  # a crash mid-write never leaves a truncated engine under the cache key
    return path


class _Engine:
    """One deserialised engine with static device buffers, replayed through a CUDA graph when capturable."""

    def __init__(self, trt, plan: Path):
        self._trt = trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(plan.read_bytes())
        if self.engine is None:
            raise StackError(f"TensorRT cannot load {plan} (built by another TensorRT version?); delete it and rebuild")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.buffers: dict[str, torch.Tensor] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bool: torch.bool,
                     trt.int32: torch.int32, trt.int64: torch.int64}[self.engine.get_tensor_dtype(name)]
            self.buffers[name] = torch.zeros(tuple(self.engine.get_tensor_shape(name)), dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
        self.graph = self._capture()

    def _launch(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise StackError("TensorRT execution failed (see its log)")

    def _capture(self) -> torch.cuda.CUDAGraph | None:
        """Static shapes and buffers make one launch replayable; fall back to plain launches if capture fails."""
        with torch.cuda.stream(self.stream):
            self._launch()  # the first launch does TensorRT's lazy set-up, which must not be captured
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.stream):
                self._launch()
        except RuntimeError as exc:
            log.warning("TensorRT: CUDA graph capture failed (%s); using plain launches", exc)
            return None
        return graph

    def __call__(self, values: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        with torch.cuda.stream(self.stream):
            for name in self.inputs:
                self.buffers[name].copy_(values[name], non_blocking=True)
            self.graph.replay() if self.graph is not None else self._launch()
            outputs = [self.buffers[name].float().clone() for name in self.outputs]
        self.stream.synchronize()
        return outputs


class TensorRTBackend(DenoiserBackend):
    name = "tensorrt"

    def __init__(self, denoiser_plan: Path, decoder_plan: Path):
        trt = require_tensorrt()
        self._denoiser = _Engine(trt, denoiser_plan)
        self._decoder = _Engine(trt, decoder_plan)
        self._plan = denoiser_plan

    @classmethod
    def from_export(cls, export_dir: Path, engines_dir: Path) -> "TensorRTBackend":
        load_exported(export_dir)
        return cls(build_engine(export_dir / DENOISER, engines_dir), build_engine(export_dir / DECODER, engines_dir))

    @property
    def description(self) -> str:
        return f"tensorrt fp16 ({self._plan.name}, CUDA graph {'on' if self._denoiser.graph is not None else 'off'})"

    def denoise(self, x_video, x_action, sigma, cond, text, proprio=None, drop=None):
        if drop is None:
            drop = torch.zeros(x_video.shape[0], dtype=torch.bool, device=x_video.device)
        values = {"x_video": x_video, "x_action": x_action, "sigma": sigma, "cond": cond, "text": text,
                  "proprio": proprio, "uncond": drop}
        d_video, d_action = self._denoiser(values)
        return d_video, d_action

    def decode(self, latents):
        return self._decoder({"latents": latents})[0]


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder (exported to ONNX first if needed)")
    parser.add_argument("--cache-dir", type=Path, default=BackendSettings().cache_dir,
                        help="where ONNX exports and engines are cached (default: %(default)s)")
    parser.add_argument("--guidance", type=float, default=2.0, help="1.0 builds the unguided (batch 1) engine")


def run(args: argparse.Namespace) -> int:
    from video_policy_ros.model.checkpoint import CheckpointError

    settings = BackendSettings(device="cuda", cache_dir=args.cache_dir, guided=args.guidance != 1.0)
    try:
        require_tensorrt(settings)
        folder = exported_folder(args.checkpoint, settings)
        for graph in (DENOISER, DECODER):
            print(f"engine: {build_engine(folder / graph, args.cache_dir / 'engines')}")
    except (StackError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
