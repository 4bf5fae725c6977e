"""Backend parity on whatever device this machine has; runs unchanged on a GPU machine.

    pytest -s tests/runtime/test_device_parity.py     # prints the device and every max abs error

On the CPU: torch fp32 vs onnxruntime CPU. With CUDA: also torch fp16 and bf16 autocast and
onnxruntime's CUDA provider (when onnxruntime-gpu is installed), against torch fp32 on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from video_policy_ros.policies.video_policy import VideoPolicy
from video_policy_ros.runtime.backends import BackendSettings, OnnxRuntimeBackend, TorchBackend
from video_policy_ros.runtime.export import denoiser_example
from video_policy_ros.types import CameraFrame, Observation

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# The fp32 reference must be fp32: cuDNN's default TF32 convolutions differ from it by ~3e-4.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
# fp32 backends agree to float rounding; half precision is compared against fp32 with its own resolution.
TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 2e-1}


def _onnxruntime_providers() -> list[str]:
    import onnxruntime

    return ["cpu"] + (["cuda"] if DEVICE.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers() else [])


def test_every_backend_on_this_device_matches_torch_fp32(tiny_model, exported):
    model = tiny_model.to(DEVICE)
    inputs = {k: v.to(DEVICE) for k, v in denoiser_example(model, guided=True, seed=3).items()}
    args = [inputs.get(k) for k in ("x_video", "x_action", "sigma", "cond", "text", "proprio", "uncond")]
    reference = TorchBackend(model, DEVICE).denoise(*args)
    candidates = {f"onnxruntime {p}": ("fp32", OnnxRuntimeBackend(exported, p)) for p in _onnxruntime_providers()}
    if DEVICE.type == "cuda":
        candidates.update({f"torch {p}": (p, TorchBackend(model, DEVICE, p)) for p in ("fp16", "bf16")})
    print(f"device: {torch.cuda.get_device_name() if DEVICE.type == 'cuda' else 'cpu'}")
    for name, (precision, backend) in candidates.items():
        errors = [float((a.float() - b).abs().max()) for a, b in zip(backend.denoise(*args), reference)]
        print(f"{name}: max abs error d_video {errors[0]:.2e}, d_action {errors[1]:.2e}")
        assert max(errors) < TOLERANCE[precision], name
    model.to("cpu")


def test_a_whole_chunk_is_the_same_through_torch_and_onnxruntime(shipped_checkpoint, tmp_path):
    settings = BackendSettings(device=DEVICE.type, cache_dir=tmp_path)
    observation = Observation({c: CameraFrame(c, 5.0, np.full((48, 64, 3), 100, np.uint8)) for c in ("front", "wrist")},
                              np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]), 0.04, "touch the red cube")
    chunks = {}
    for backend in ("torch", "onnxruntime"):
        policy = VideoPolicy(shipped_checkpoint, num_steps=4, backend=backend, settings=settings)
        chunks[backend] = policy.predict(observation).chunk
    error = float(np.abs(chunks["torch"].poses - chunks["onnxruntime"].poses).max())
    print(f"chunk (4 guided steps, same seed) torch vs onnxruntime: max abs pose error {error:.2e}")
    assert error < 1e-4
    assert chunks["torch"].stamp == chunks["onnxruntime"].stamp == 5.0
