"""Inference backends behind one small interface: the EDM denoiser call and the VAE decoder.

The sampler (``VideoPolicyModel.sample``) stays in torch and calls ``backend.denoise``
once per step with both guidance branches in one batch; only the network runs elsewhere.

    backend = build_backend("onnxruntime", model, checkpoint, BackendSettings())
    latents, actions = model.sample(cond, text, proprio, steps, guidance, denoiser=backend.denoise)

Registry (explicit, no name guessing): ``torch`` (eager, optional ``torch.compile``,
fp16/bf16 autocast on CUDA), ``onnxruntime`` (CPU, CUDA or TensorRT execution provider,
on the graphs of :mod:`runtime.export`), ``tensorrt`` (FP16 engine, :mod:`runtime.tensorrt_backend`).
``auto`` times every available one on the model's own inputs and keeps the fastest.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import torch

from video_policy_ros.errors import StackError
from video_policy_ros.runtime.export import (DECODER, DENOISER, ExportError, checkpoint_sha256, denoiser_example,
                                             export_checkpoint, load_exported)

log = logging.getLogger(__name__)

BACKEND_NAMES = ("torch", "onnxruntime", "tensorrt")
DEFAULT_CACHE = Path.home() / ".cache" / "video_policy_ros"


class BackendUnavailable(StackError):
    """The requested backend cannot run here; the message names what is missing and the alternative."""


@dataclass(frozen=True)
class BackendSettings:
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # torch on CUDA: fp16 | bf16 autocast; tensorrt always builds FP16
    torch_compile: bool = False
    onnxruntime_provider: str = "auto"  # auto | cpu | cuda | tensorrt
    cache_dir: Path = DEFAULT_CACHE  # exported ONNX graphs and TensorRT engines, keyed by hashes
    guided: bool = True  # the denoiser batch holds both guidance branches

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("device 'cuda' asked for, but torch sees no CUDA GPU "
                                     f"(torch {torch.__version__}); set device: cpu or auto")
        return torch.device(self.device)


class DenoiserBackend(ABC):
    """One network call of the sampler. Inputs/outputs are torch tensors on the caller's device.

    ``denoise`` has the signature of ``VideoPolicyModel.denoise`` (shapes in runtime/export.py);
    ``decode`` maps latents ``(1, F, C, h, w)`` to frames ``(1, F, 3, H, W)`` in ``[-1, 1]``.
    """

    name: ClassVar[str]

    @abstractmethod
    def denoise(self, x_video, x_action, sigma, cond, text, proprio=None, drop=None) -> tuple[torch.Tensor, torch.Tensor]:
        ...

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        ...

    @property
    def description(self) -> str:
        return self.name


class TorchBackend(DenoiserBackend):
    name = "torch"
    DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}

    def __init__(self, model, device: torch.device, precision: str = "fp32", compile: bool = False):
        if precision not in self.DTYPES:
            raise BackendUnavailable(f"precision must be one of {list(self.DTYPES)}, got {precision!r}")
        if precision != "fp32" and device.type != "cuda":
            raise BackendUnavailable(f"precision {precision} is a CUDA autocast mode and the device is {device}; "
                                     "set precision: fp32 on the CPU")
        self.model, self.device, self.precision = model, device, precision
        self._dtype = self.DTYPES[precision]
        self._denoise = torch.compile(model.denoise) if compile else model.denoise
        self._compiled = compile

    @property
    def description(self) -> str:
        return f"torch {self.precision} on {self.device}{' (torch.compile)' if self._compiled else ''}"

    def _autocast(self):
        return torch.autocast("cuda", dtype=self._dtype, enabled=self._dtype is not None)

    @torch.no_grad()
    def denoise(self, x_video, x_action, sigma, cond, text, proprio=None, drop=None):
        with self._autocast():
            d_video, d_action = self._denoise(x_video, x_action, sigma, cond, text, proprio, drop)
        return d_video.float(), d_action.float()

    @torch.no_grad()
    def decode(self, latents):
        with self._autocast():
            return self.model.decode(latents).float()


class OnnxRuntimeBackend(DenoiserBackend):
    name = "onnxruntime"
    PROVIDERS = {
        "cpu": ["CPUExecutionProvider"],
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    }

    def __init__(self, export_dir: str | Path, provider: str = "cpu", threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(f"backend onnxruntime needs the onnxruntime package ({exc}); "
                                     "pip install onnxruntime (CPU) or onnxruntime-gpu") from None
        available = ort.get_available_providers()
        wanted = self.PROVIDERS[provider]
        if wanted[0] not in available:
            raise BackendUnavailable(f"onnxruntime {ort.__version__} has no {wanted[0]} (available: {available}); "
                                     "install onnxruntime-gpu on a CUDA machine, or set onnxruntime_provider: cpu")
        self.export_dir = Path(export_dir)
        self.manifest = load_exported(export_dir)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.provider = provider
        self._denoiser = ort.InferenceSession(str(self.export_dir / DENOISER), options, providers=wanted)
        self._decoder = ort.InferenceSession(str(self.export_dir / DECODER), options, providers=wanted)
        self._inputs = [t.name for t in self.manifest.denoiser.inputs]
        self._batch = self.manifest.denoiser.inputs[0].shape[0]

    @property
    def description(self) -> str:
        return f"onnxruntime {self.provider} ({self.export_dir})"

    def denoise(self, x_video, x_action, sigma, cond, text, proprio=None, drop=None):
        if x_video.shape[0] != self._batch:
            raise ExportError(f"{self.export_dir} was exported for batch {self._batch} (guidance "
                              f"{'on' if self.manifest.guided else 'off'}) but the sampler sends {x_video.shape[0]}; "
                              "re-export with the guidance you run")
        if drop is None:
            drop = torch.zeros(x_video.shape[0], dtype=torch.bool)
        values = {"x_video": x_video, "x_action": x_action, "sigma": sigma, "cond": cond, "text": text,
                  "proprio": proprio, "uncond": drop}
        feeds = {name: values[name].detach().float().cpu().numpy() if name != "uncond" else values[name].cpu().numpy()
                 for name in self._inputs}
        d_video, d_action = self._denoiser.run(None, feeds)
        return torch.from_numpy(d_video).to(x_video.device), torch.from_numpy(d_action).to(x_video.device)

    def decode(self, latents):
        (frames,) = self._decoder.run(None, {"latents": latents.detach().float().cpu().numpy()})
        return torch.from_numpy(frames).to(latents.device)


def exported_folder(checkpoint: str | Path, settings: BackendSettings) -> Path:
    """The checkpoint's ONNX export in the cache (made on first use), keyed by the checkpoint's hash."""
    key = f"{checkpoint_sha256(checkpoint)[:20]}-{'guided' if settings.guided else 'unguided'}"
    folder = settings.cache_dir / "onnx" / key
    try:
        load_exported(folder)
    except ExportError:
        log.info("exporting %s to ONNX in %s (once per checkpoint)", checkpoint, folder)
        # Into a folder of this process first: two nodes starting at once never read a half-written export.
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        export_checkpoint(checkpoint, partial, guidance=2.0 if settings.guided else 1.0)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    return folder


def _onnxruntime_provider(settings: BackendSettings) -> str:
    if settings.onnxruntime_provider != "auto":
        return settings.onnxruntime_provider
    import onnxruntime

    # auto: the GPU where this onnxruntime build can use it (onnxruntime-gpu), else the CPU.
    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    return "cuda" if settings.torch_device.type == "cuda" and has_cuda else "cpu"


def build_backend(name: str, model, checkpoint: str | Path, settings: BackendSettings) -> DenoiserBackend:
    """The named backend for ``model`` (already on its device), built from ``checkpoint``."""
    if name == "torch":
        return TorchBackend(model, settings.torch_device, settings.precision, settings.torch_compile)
    if name == "onnxruntime":
        return OnnxRuntimeBackend(exported_folder(checkpoint, settings), _onnxruntime_provider(settings))
    if name == "tensorrt":
        from video_policy_ros.runtime.tensorrt_backend import TensorRTBackend, require_tensorrt

        require_tensorrt(settings)  # before exporting anything: say what is missing first
        return TensorRTBackend.from_export(exported_folder(checkpoint, settings), settings.cache_dir / "engines")
    raise BackendUnavailable(f"unknown backend {name!r}; use one of {list(BACKEND_NAMES)} or auto")


@dataclass(frozen=True)
class BackendTiming:
    name: str
    ms_per_call: float | None  # None: the backend could not run here
    note: str  # its description, or why it is unavailable

    def __str__(self) -> str:
        return f"{self.name} {self.ms_per_call:.1f} ms/step" if self.ms_per_call is not None else f"{self.name} unavailable ({self.note})"


def time_backend(backend: DenoiserBackend, inputs: dict[str, torch.Tensor], repeats: int = 3) -> float:
    """Median seconds per denoiser call after one warm-up call."""
    args = [inputs[k] for k in ("x_video", "x_action", "sigma", "cond", "text")]
    extra = (inputs.get("proprio"), inputs["uncond"])
    backend.denoise(*args, *extra)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.denoise(*args, *extra)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def select_fastest(builders: dict[str, Callable[[], DenoiserBackend]], inputs: dict[str, torch.Tensor],
                   repeats: int = 3) -> tuple[DenoiserBackend, list[BackendTiming]]:
    """Build and time every candidate on ``inputs``; the fastest wins. Unavailable ones are reported, not fatal."""
    timings, best = [], None
    for name, build in builders.items():
        try:
            backend = build()
        except StackError as exc:
            timings.append(BackendTiming(name, None, str(exc)))
            continue
        seconds = time_backend(backend, inputs, repeats)
        timings.append(BackendTiming(name, seconds * 1e3, backend.description))
        if best is None or seconds < best[0]:
            best = (seconds, backend)
    if best is None:
        raise BackendUnavailable("no inference backend can run here: " + "; ".join(str(t) for t in timings))
    return best[1], timings


def resolve_backend(name: str, model, checkpoint: str | Path, settings: BackendSettings) -> DenoiserBackend:
    """``name`` or, for ``auto``, the fastest available backend measured on this model; logs the figures."""
    if name != "auto":
        return build_backend(name, model, checkpoint, settings)
    inputs = {k: v.to(settings.torch_device) for k, v in denoiser_example(model, settings.guided).items()}
    builders = {n: (lambda n=n: build_backend(n, model, checkpoint, settings)) for n in BACKEND_NAMES}
    backend, timings = select_fastest(builders, inputs)
    log.info("backend auto: %s -> %s", ", ".join(str(t) for t in timings), backend.name)
    return backend
