"""Typed configuration: one pydantic model per node, mirrored 1:1 by a YAML file in config/.

Defaults run the simulated world. Every model forbids unknown keys, and
:func:`load_yaml` turns any validation problem into a one-line :class:`ConfigError`
that names the file and the key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from video_policy_ros.errors import StackError

PACKAGE = "video_policy_ros"
REPO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

PositiveFloat = Annotated[float, Field(gt=0)]


class ConfigError(StackError, ValueError):
    """A configuration file or parameter is wrong; the message says which and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sim world


class SimCameraConfig(_Strict):
    name: str = Field(description="publishes /cameras/<name>/image_raw and camera_info")
    width: int = Field(320, ge=16, le=1920, description="pixels")
    height: int = Field(240, ge=16, le=1080, description="pixels")
    fps: PositiveFloat = Field(15.0, description="render rate")
    fovy_deg: float = Field(50.0, gt=5, lt=170, description="vertical field of view, degrees")
    mount: Literal["world", "hand"] = Field("world", description="world: fixed; hand: moves with the FR3's hand")
    position: tuple[float, float, float] = Field(
        (1.0, 0.0, 0.55), description="m, in fr3_link0 (world) or in the hand's frame (hand)"
    )
    look_at: tuple[float, float, float] = Field(
        (0.45, 0.0, 0.10), description="world mount: the point the camera looks at (fr3_link0, m)"
    )


class TaskConfig(_Strict):
    kind: Literal["touch", "place", "mixed"] = Field(
        "touch", description="touch: touch the named cube; place: put it in the bowl (needs the gripper); "
        "mixed: one of the two per episode, picked from the seed"
    )
    colors: tuple[str, ...] = Field(("red", "green", "blue"), description="one cube per colour")
    target: str | None = Field(None, description="cube colour the task names; None picks one per episode from the seed")
    success_distance: PositiveFloat = Field(0.03, description="touch: m, TCP to the target cube's top face centre")
    timeout_s: PositiveFloat = Field(60.0, description="the episode fails when it is not solved after this long")

    @model_validator(mode="after")
    def _target_is_a_cube(self) -> "TaskConfig":
        if self.target is not None and self.target not in self.colors:
            raise ValueError(f"task.target '{self.target}' is not one of colors {list(self.colors)}")
        return self


class SimWorldConfig(_Strict):
    seed: int = 0
    robot_ip: str = "127.0.0.1"
    cameras: tuple[SimCameraConfig, ...] = (
        SimCameraConfig(name="front"),
        SimCameraConfig(name="wrist", mount="hand", fovy_deg=75.0, position=(0.06, 0.0, 0.02)),
    )
    shadows: bool = False
    task: TaskConfig = TaskConfig()
    record_camera: str | None = "front"
    output_dir: Path = Path("outputs")
    exit_on_done: bool = False
    publish_task: bool = True

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: tuple[SimCameraConfig, ...]) -> tuple[SimCameraConfig, ...]:
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        return cameras


# --------------------------------------------------------------------------- controller


class WorkspaceConfig(_Strict):
    """Axis-aligned box in fr3_link0 that the TCP target is clamped into."""

    min: tuple[float, float, float] = (0.25, -0.45, 0.02)
    max: tuple[float, float, float] = (0.80, 0.45, 0.70)

    @model_validator(mode="after")
    def _ordered(self) -> "WorkspaceConfig":
        if any(lo >= hi for lo, hi in zip(self.min, self.max)):
            raise ValueError(f"workspace.min {self.min} must be below workspace.max {self.max} on every axis")
        return self


class ControllerConfig(_Strict):
    robot_ip: str = "127.0.0.1"
    loop_rate_hz: float = Field(200.0, ge=100.0, le=1000.0, description="state publishing + command rate")
    max_linear_speed: float = Field(0.25, gt=0, le=3.0, description="m/s, TCP")
    max_angular_speed: float = Field(0.6, gt=0, le=2.5, description="rad/s, TCP")
    position_gain: float = Field(4.0, gt=0, le=20.0, description="1/s, feedback on TCP pose error")
    command_timeout_s: float = Field(0.1, gt=0, le=1.0, description="no fresh command for this long → smooth halt")
    relative_dynamics_factor: float = Field(0.3, gt=0, le=1.0)
    workspace: WorkspaceConfig = WorkspaceConfig()
    connect_timeout_s: PositiveFloat = 5.0
    realtime: bool = Field(False, description="real FR3 on a PREEMPT_RT kernel: run the libfranka loop at RT priority")
    gripper_speed: float = Field(0.1, gt=0, le=0.2, description="m/s finger opening speed")


# --------------------------------------------------------------------------- inference


class InferenceConfig(_Strict):
    policy: Literal["scripted_expert", "video_policy", "bc"] = "scripted_expert"
    model: Path | None = Field(None, description="checkpoint folder for policy=video_policy or policy=bc")
    cameras: tuple[str, ...] = ("front", "wrist")
    rate_hz: float = Field(2.0, gt=0, le=50.0, description="how often a new chunk is requested")
    publish_predicted_video: bool = Field(True, description="video_policy: decode and publish the predicted frames")
    num_steps: int | None = Field(None, ge=1, le=200, description="video_policy: sampler steps (None: the checkpoint's)")
    guidance: float | None = Field(None, ge=1.0, le=20.0, description="video_policy: CFG scale, 1 = off (None: the checkpoint's)")
    max_observation_age_s: PositiveFloat = 0.5
    default_instruction: str = ""
    sim_world_config: Path | None = Field(
        None, description="scripted expert only: the sim world's YAML (None: the installed sim_world.yaml)"
    )
    sim_seed: int | None = Field(None, description="scripted expert only: overrides the seed in sim_world_config")

    def load_sim_world(self) -> SimWorldConfig:
        """The sim world's config as the scripted expert must see it (privileged, sim only)."""
        path = self.sim_world_config or default_config_path("sim_world")
        return load_yaml(SimWorldConfig, path, {"seed": self.sim_seed})

    @model_validator(mode="after")
    def _model_for_video_policy(self) -> "InferenceConfig":
        if self.policy in ("video_policy", "bc"):
            if self.model is None:
                raise ValueError(f"policy '{self.policy}' needs model: <checkpoint folder>")
            if not self.model.exists():
                raise ValueError(f"model checkpoint folder not found: {self.model}")
        return self


# --------------------------------------------------------------------------- camera driver


class CameraDriverConfig(_Strict):
    name: str = "front"
    backend: Literal["opencv"] = "opencv"
    device: int | str = 0
    width: int = Field(640, ge=16)
    height: int = Field(480, ge=16)
    fps: PositiveFloat = 30.0
    calibration_file: Path | None = None
    reconnect_period_s: PositiveFloat = 1.0


NODE_CONFIGS: dict[str, type[_Strict]] = {
    "sim_world": SimWorldConfig,
    "controller": ControllerConfig,
    "inference": InferenceConfig,
    "camera": CameraDriverConfig,
}

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_validation_error(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (check the spelling; see config/ for the valid keys)"
    return f"{source}: invalid value for '{key}': {first['msg']} (got {first.get('input')!r})"


def build_config(model: type[ModelT], values: dict[str, Any], source: str) -> ModelT:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values")
    return data


def load_yaml(model: type[ModelT], path: str | Path | None, overrides: dict[str, Any] | None = None) -> ModelT:
    """Validate ``path`` (or the defaults when None) with ``overrides`` applied on top."""
    values = read_yaml(path) if path is not None else {}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return build_config(model, values, str(path) if path is not None else model.__name__)


def default_config_path(node: str) -> Path:
    """The node's YAML: the source tree's config/ when running from a checkout, else the
    installed share/ (this interpreter's prefix, then the ament index)."""
    for candidate in (
        REPO_CONFIG_DIR / f"{node}.yaml",
        Path(sys.prefix) / "share" / PACKAGE / "config" / f"{node}.yaml",
    ):
        if candidate.is_file():
            return candidate
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "config" / f"{node}.yaml"
    except (ImportError, PackageNotFoundError, OSError):
        raise ConfigError(
            f"cannot find {node}.yaml: not in a source checkout, not installed under {sys.prefix}, and package "
            f"'{PACKAGE}' is not in the ament index (set AMENT_PREFIX_PATH to the install prefix, or pass config_file)"
        ) from None
