"""Backend selection and its errors: explicit names, auto by measurement, clear errors for what is missing."""

from __future__ import annotations

import importlib.util
import logging
import time

import pytest
import torch

from video_policy_ros.runtime.backends import (BackendSettings, BackendUnavailable, DenoiserBackend, OnnxRuntimeBackend,
                                               TorchBackend, build_backend, resolve_backend, select_fastest)
from video_policy_ros.runtime.export import denoiser_example

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
NO_TENSORRT = "TensorRT + a CUDA GPU are not installed here (its wheels come only from NVIDIA's index)"


class SleepingBackend(DenoiserBackend):
    """Isolates select_fastest from real networks: a backend whose only property is its speed."""

    name = "sleeping"

    def __init__(self, seconds: float):
        self.seconds = seconds

    def denoise(self, x_video, x_action, *rest):
        time.sleep(self.seconds)
        return x_video, x_action

    def decode(self, latents):
        return latents


def test_auto_keeps_the_fastest_and_reports_unavailable_ones(tiny_model):
    def unavailable():
        raise BackendUnavailable("no such hardware")

    inputs = denoiser_example(tiny_model, guided=True)
    best, timings = select_fastest({"slow": lambda: SleepingBackend(0.05), "fast": lambda: SleepingBackend(0.005),
                                    "missing": unavailable}, inputs, repeats=2)
    assert best.seconds == 0.005
    by_name = {t.name: t for t in timings}
    assert by_name["slow"].ms_per_call >= 50 > by_name["fast"].ms_per_call
    assert by_name["missing"].ms_per_call is None and "no such hardware" in str(by_name["missing"])
    with pytest.raises(BackendUnavailable, match="no inference backend can run here: missing unavailable"):
        select_fastest({"missing": unavailable}, inputs)


def test_auto_on_the_real_backends_logs_the_figures_it_chose_by(tiny_model, shipped_checkpoint, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="video_policy_ros.runtime.backends"):
        backend = resolve_backend("auto", tiny_model, shipped_checkpoint, BackendSettings(device="cpu", cache_dir=tmp_path))
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("backend auto:"))
    print(line)
    assert "torch" in line and "onnxruntime" in line and "ms/step" in line and line.endswith(f"-> {backend.name}")
    assert ("tensorrt unavailable" in line) != HAS_TENSORRT
    assert isinstance(backend, (TorchBackend, OnnxRuntimeBackend))


def test_explicit_choices_and_their_errors(tiny_model, shipped_checkpoint, tmp_path):
    settings = BackendSettings(device="cpu", cache_dir=tmp_path)
    assert isinstance(build_backend("torch", tiny_model, shipped_checkpoint, settings), TorchBackend)
    with pytest.raises(BackendUnavailable, match="unknown backend 'tensorflow'"):
        build_backend("tensorflow", tiny_model, shipped_checkpoint, settings)
    with pytest.raises(BackendUnavailable, match="precision fp16 is a CUDA autocast mode.*set precision: fp32"):
        TorchBackend(tiny_model, torch.device("cpu"), "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="torch sees no CUDA GPU.*set device: cpu or auto"):
            BackendSettings(device="cuda").torch_device


def test_onnxruntime_without_a_gpu_provider_says_what_to_install(exported):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(BackendUnavailable, match="has no CUDAExecutionProvider.*install onnxruntime-gpu"):
        OnnxRuntimeBackend(exported, "cuda")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the error path cannot happen here")
def test_asking_for_tensorrt_without_it_is_one_clear_error(tiny_model, shipped_checkpoint, tmp_path):
    with pytest.raises(BackendUnavailable) as error:
        build_backend("tensorrt", tiny_model, shipped_checkpoint, BackendSettings(cache_dir=tmp_path))
    assert "tensorrt" in str(error.value).lower() and ("not installed" in str(error.value) or "CUDA GPU" in str(error.value))
    assert not (tmp_path / "onnx").exists(), "nothing is exported before the missing dependency is reported"


@pytest.mark.skipif(not HAS_TENSORRT, reason=NO_TENSORRT)
def test_tensorrt_engine_is_cached_and_matches_torch(tiny_model, shipped_checkpoint, tmp_path):
    settings = BackendSettings(device="cuda", cache_dir=tmp_path)
    model = tiny_model.to("cuda")
    trt_backend = build_backend("tensorrt", model, shipped_checkpoint, settings)
    engines = sorted((tmp_path / "engines").glob("*.plan"))
    assert len(engines) == 2
    build_backend("tensorrt", model, shipped_checkpoint, settings)
    assert sorted((tmp_path / "engines").glob("*.plan")) == engines, "the second start reuses the cached engines"
    inputs = {k: v.cuda() for k, v in denoiser_example(model, guided=True).items()}
    args = [inputs[k] for k in ("x_video", "x_action", "sigma", "cond", "text", "proprio", "uncond")]
    reference = TorchBackend(model, torch.device("cuda")).denoise(*args)
    errors = [float((a - b).abs().max()) for a, b in zip(trt_backend.denoise(*args), reference)]
    print(f"tensorrt fp16 vs torch fp32 max abs error: {errors}")
    assert max(errors) < 5e-2


def test_build_engine_command_without_tensorrt_prints_one_error_line(shipped_checkpoint, tmp_path, capsys):
    if HAS_TENSORRT:
        pytest.skip("TensorRT is installed")
    from video_policy_ros.cli import main as cli

    assert cli(["build-engine", str(shipped_checkpoint), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: backend tensorrt needs"), err
