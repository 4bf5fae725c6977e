"""The shipped tiny checkpoint, exported once per test session into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "video_policy_tiny"


@pytest.fixture(scope="session")
def shipped_checkpoint() -> Path:
    return SHIPPED


@pytest.fixture(scope="session")
def exported(tmp_path_factory, shipped_checkpoint) -> Path:
    from video_policy_ros.runtime.export import export_checkpoint

    out = tmp_path_factory.mktemp("onnx")
    export_checkpoint(shipped_checkpoint, out)
    return out


@pytest.fixture(scope="session")
def tiny_model(shipped_checkpoint):
    from video_policy_ros.model.checkpoint import load_checkpoint

    return load_checkpoint(shipped_checkpoint).model
