"""Typed configuration: one pydantic model per node, mirrored 1:1 by a YAML file in config/.

Defaults run the simulated world. Every model forbids unknown keys, and
:func:`load_yaml` turns any validation problem into a one-line :class:`ConfigError`
that names the file and the key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from video_policy_ros.errors import StackError

PACKAGE = "video_policy_ros"
REPO_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

PositiveFloat = Annotated[float, Field(gt=0)]


def data_home() -> Path:
    """Where relative paths in node configuration point: ``$VIDEO_POLICY_ROS_HOME``, else
    ``$ROS_HOME/video_policy_ros`` (``~/.ros/video_policy_ros``). Nodes started by launch run
    in whatever directory the user happened to be in, so "relative to the current directory"
    would scatter outputs; command-line tools make their own path flags absolute first."""
    explicit = os.environ.get("VIDEO_POLICY_ROS_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return (Path(os.environ.get("ROS_HOME", "~/.ros")).expanduser() / PACKAGE).resolve()


def _resolve_in_data_home(path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else data_home() / path


def _resolve_input(path: Path) -> Path:
    """Like an output path, but a file the package ships (``models/...``, ``calibration/...``,
    ``config/...``) is found there when the data home has nothing of that name."""
    resolved = _resolve_in_data_home(path)
    if resolved.exists() or path.expanduser().is_absolute():
        return resolved
    for root in (REPO_CONFIG_DIR.parent, Path(sys.prefix) / "share" / PACKAGE):
        if (root / path).exists():
            return root / path
    return resolved


OutputPath = Annotated[Path, AfterValidator(_resolve_in_data_home)]
InputPath = Annotated[Path, AfterValidator(_resolve_input)]


class ConfigError(StackError, ValueError):
    """A configuration file or parameter is wrong; the message says which and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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


ImageTransport = Literal["raw", "compressed"]
IMAGE_TRANSPORT_HELP = ("raw: sensor_msgs/Image on image_raw; compressed: also JPEG sensor_msgs/CompressedImage on "
                        "image_raw/compressed (encoded only while subscribed), for an inference host over a network link")


class SimWorldConfig(_Strict):
    seed: int = Field(0, description="scene layout, target and task are a function of the seed")
    robot_ip: str = Field("127.0.0.1", description="loopback address the simulated FR3 serves libfranka on")
    cameras: tuple[SimCameraConfig, ...] = Field(
        (
            SimCameraConfig(name="front"),
            SimCameraConfig(name="wrist", mount="hand", fovy_deg=75.0, position=(0.06, 0.0, 0.02)),
        ),
        description="rendered cameras, published as /cameras/<name>/...",
    )
    shadows: bool = Field(False, description="render shadows (roughly doubles CPU render time)")
    render_mesh_faces: int = Field(
        3000, ge=0, description="cameras see the FR3's visual meshes simplified to about this many triangles each "
        "(a CPU renderer is vertex-bound: ~2x faster frames, <1 grey level apart at 64x48); 0: full meshes")
    task: TaskConfig = Field(TaskConfig(), description="the episode's task and its success check")
    record_camera: str | None = Field("front", description="camera written to output_dir as mp4 (null: none)")
    image_transport: ImageTransport = Field("raw", description=IMAGE_TRANSPORT_HELP)
    jpeg_quality: int = Field(90, ge=1, le=100, description="image_transport compressed: JPEG quality")
    output_dir: OutputPath = Field(Path("outputs"), description="episode videos; relative to the data home")
    exit_on_done: bool = Field(False, description="stop the node when the episode ends (exit 0 on success)")
    publish_task: bool = Field(True, description="act as the operator: publish the instruction on /task")

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: tuple[SimCameraConfig, ...]) -> tuple[SimCameraConfig, ...]:
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        return cameras


# --------------------------------------------------------------------------- controller


class WorkspaceConfig(_Strict):
    """Axis-aligned box in fr3_link0 that every TCP target must lie in (chunks outside are rejected).

    At start-up the controller checks with the FR3's kinematics that every corner, edge and
    face of the box is reachable with the hand tilted up to ``max_tilt_rad``.
    """

    min: tuple[float, float, float] = Field((0.32, -0.22, 0.02), description="lower corner (x, y, z), m")
    max: tuple[float, float, float] = Field((0.58, 0.22, 0.53), description="upper corner (x, y, z), m")

    @model_validator(mode="after")
    def _ordered(self) -> "WorkspaceConfig":
        if any(lo >= hi for lo, hi in zip(self.min, self.max)):
            raise ValueError(f"workspace.min {self.min} must be below workspace.max {self.max} on every axis")
        return self


FR3_JOINT_VELOCITY_LIMITS = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)  # rad/s, manufacturer (DESIGN §5)
# What franky's joint-velocity motions accept (franky 2.0): a command above these is a robot error
# ("Waypoint velocity ... exceeds maximum velocity"), not a limit, so every cap stays below them.
FRANKY_JOINT_VELOCITY_LIMITS = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
JOINT_VELOCITY_LIMITS = tuple(min(a, b) for a, b in zip(FR3_JOINT_VELOCITY_LIMITS, FRANKY_JOINT_VELOCITY_LIMITS))
RobotErrorKind = Literal[
    "reflex", "motion_planner", "motion_generator", "command", "network", "invalid_operation", "robot", "internal"
]


class DivergenceGuardConfig(_Strict):
    """The controller's answer to /policy/divergence: the camera no longer matches the predicted video."""

    threshold: float | None = Field(
        None, ge=0, description="divergence (mean squared RGB error in [0, 1]) above which a prediction counts as "
        "diverged; null: off, until calibrated on normal episodes of your policy"
    )
    predictions: int = Field(3, ge=1, le=100, description="this many diverged predictions in a row trigger the action")
    action: Literal["slow", "halt"] = Field(
        "slow", description="slow: TCP speed caps x slow_factor until a prediction matches again; halt: latch a stop "
        "(/controller/reset clears it)"
    )
    slow_factor: float = Field(0.5, gt=0, lt=1, description="fraction of the TCP speed caps while slowed")


class ControllerConfig(_Strict):
    robot_ip: str = Field("127.0.0.1", description="FR3 FCI address (the sim world serves 127.0.0.1)")
    loop_rate_hz: float = Field(200.0, ge=100.0, le=1000.0, description="state publishing + command rate, Hz")
    max_linear_speed: float = Field(0.25, gt=0, le=3.0, description="TCP speed cap, m/s")
    max_angular_speed: float = Field(0.6, gt=0, le=2.5, description="TCP rotation speed cap, rad/s")
    max_linear_acceleration: float = Field(1.0, gt=0, le=9.0, description="TCP acceleration cap, m/s^2")
    max_angular_acceleration: float = Field(3.0, gt=0, le=17.0, description="TCP angular acceleration cap, rad/s^2")
    max_joint_velocity: tuple[float, float, float, float, float, float, float] = Field(
        tuple(round(min(fr3 / 2, 0.95 * franky), 2) for fr3, franky in zip(FR3_JOINT_VELOCITY_LIMITS, FRANKY_JOINT_VELOCITY_LIMITS)),
        description="per-joint velocity cap, rad/s (FR3 limits / 2, below franky's limits)"
    )
    max_joint_acceleration: float = Field(5.0, gt=0, le=10.0, description="per-joint acceleration cap, rad/s^2")
    max_joint_jerk: float = Field(2500.0, gt=0, le=5000.0, description="per-joint jerk cap, rad/s^3")
    joint_limit_margin_rad: float = Field(0.05, ge=0, le=0.5, description="kept from every joint's position limit, rad")
    max_tilt_rad: float = Field(0.25, ge=0, le=1.5, description="max angle between the TCP z axis and straight down, rad")
    table_z: float = Field(0.0, ge=-0.5, le=1.0, description="height of the table plane in fr3_link0, m")
    table_clearance_m: float = Field(0.005, ge=0, le=0.1, description="kept between the table and the TCP/fingertips, m")
    position_gain: float = Field(4.0, gt=0, le=20.0, description="feedback on the TCP pose error, 1/s")
    max_chunk_age_s: float = Field(
        3.0, gt=0, le=30.0,
        description="chunks whose stamp is older on arrival are rejected, s (the shipped model's chunks span 3.2 s)",
    )
    max_future_stamp_s: float = Field(0.5, ge=0, le=5.0, description="tolerated clock skew: chunks stamped further ahead are rejected, s")
    max_start_jump_m: float = Field(
        0.08, gt=0, le=0.5, description="first point vs. current set-point, on top of what max_linear_speed covers between the first point's due time and now, m"
    )
    max_chunk_silence_s: float = Field(
        3.5, gt=0, le=60.0,
        description="no fresh chunk for this long → smooth halt and hold, s; longer than the shipped model's 3.2 s "
        "chunk, so its chunks always run to their end",
    )
    command_timeout_s: float = Field(0.1, gt=0, le=1.0, description="each command expires after this; then the robot halts smoothly, s")
    relative_dynamics_factor: float = Field(
        0.3, gt=0, le=1.0, description="franky's scale on the robot's own limits for velocity commands (stops use the full limits)"
    )
    auto_recover_errors: tuple[RobotErrorKind, ...] = Field(
        ("reflex", "motion_planner", "motion_generator", "command", "network"),
        description="robot error kinds cleared automatically (recover_from_errors) once at rest",
    )
    max_recovery_attempts: int = Field(3, ge=0, le=20, description="automatic recoveries per stop; then /controller/reset")
    workspace: WorkspaceConfig = Field(WorkspaceConfig(), description="box every chunk point must lie in (fr3_link0)")
    workspace_tolerance_m: float = Field(
        0.02, ge=0, le=0.1, description="a chunk point at most this far outside the workspace box is moved onto the box "
        "(counted as limited_workspace_projection); farther out, the whole chunk is rejected. 0: reject any point outside"
    )
    connect_timeout_s: float = Field(30.0, gt=0, le=600.0, description="retry the robot connection this long before exiting, s")
    realtime: bool = Field(False, description="real FR3 on a PREEMPT_RT kernel: run the libfranka loop at RT priority")
    gripper_speed: float = Field(0.1, gt=0, le=0.2, description="finger opening speed, m/s")
    divergence: DivergenceGuardConfig = Field(DivergenceGuardConfig(), description="slow down or halt on /policy/divergence")

    @field_validator("max_joint_velocity")
    @classmethod
    def _within_fr3_limits(cls, limits: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < v <= hi for v, hi in zip(limits, JOINT_VELOCITY_LIMITS)):
            raise ValueError(f"each entry must be in (0, limit]; the limits (the FR3's, capped at what franky "
                             f"accepts) are {JOINT_VELOCITY_LIMITS}")
        return limits


# --------------------------------------------------------------------------- inference


class InferenceConfig(_Strict):
    use_sim: bool = Field(True, description="the robot is the simulated FR3 (false: a real arm)")
    policy: Literal["scripted_expert", "video_policy", "bc"] = Field(
        "scripted_expert", description="scripted_expert (sim only, privileged), video_policy or bc"
    )
    model: InputPath | None = Field(None, description="checkpoint folder for policy=video_policy or policy=bc")
    cameras: tuple[str, ...] = Field(("front", "wrist"), description="cameras the policy reads, in its order")
    image_transport: ImageTransport = Field(
        "raw", description="read the cameras' image_raw (raw) or their JPEG image_raw/compressed (compressed: over a "
        "network link from the robot PC; the cameras must publish it, image_transport: compressed)")
    rate_hz: float = Field(20.0, gt=0, le=100.0, description="how often the node checks whether the next chunk is due")
    publish_predicted_video: bool = Field(True, description="video_policy: decode and publish the predicted frames")
    predicted_video_rate_hz: float = Field(
        1.0, gt=0, le=30.0, description="at most this many predicted videos per second are decoded and published"
    )
    num_steps: int | Literal["auto"] | None = Field(
        "auto", description="video_policy: sampler steps, 1..200 (None: the checkpoint's; auto, the default: the most, "
        "up to the checkpoint's, that fit the execution horizon, measured at start, so that chunks arrive in time)"
    )
    guidance: float | None = Field(None, ge=1.0, le=20.0, description="video_policy: CFG scale, 1 = off (None: the checkpoint's)")
    backend: Literal["auto", "torch", "onnxruntime", "tensorrt"] = Field(
        "auto", description="video_policy: inference backend; auto times the available ones at start and keeps the fastest"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="video_policy: auto = cuda when torch sees a GPU")
    precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32", description="torch backend on CUDA: autocast dtype (tensorrt always builds FP16 engines)"
    )
    torch_compile: bool = Field(False, description="torch backend: torch.compile the denoiser (slow first call)")
    onnxruntime_provider: Literal["auto", "cpu", "cuda", "tensorrt"] = Field(
        "auto", description="onnxruntime backend: execution provider (auto: cuda on a GPU with onnxruntime-gpu, else cpu)"
    )
    cache_dir: Path | None = Field(
        None, description="exported ONNX graphs and TensorRT engines, keyed by hashes (None: ~/.cache/video_policy_ros)"
    )
    realtime_chunking: bool = Field(
        True, description="start the next inference while the arm runs the current chunk, timed from measured "
        "latency; false: stop and go (the next observation is taken when the chunk has run out)"
    )
    execute_horizon_s: float | None = Field(
        None, gt=0, le=30.0, description="how much of a chunk the arm runs before the next one should land "
        "(None: the checkpoint's action.execute x dt; for other policies half the chunk)"
    )
    latency_margin_s: float = Field(0.3, ge=0, le=5.0, description="safety margin added to the p95 latency when scheduling")
    warmup_calls: int = Field(3, ge=1, le=20, description="policy calls at start that measure latency (budget check)")
    max_observation_age_s: PositiveFloat = Field(0.5, description="older camera images or poses count as missing, s")
    frame_sync_tolerance_s: float = Field(
        0.05, ge=0.0, le=1.0, description="the policy gets the newest set of camera frames whose stamps agree within this, s"
    )
    default_instruction: str = Field("", description="instruction used until something arrives on /task")
    sim_world_config: InputPath | None = Field(
        None, description="scripted expert only: the sim world's YAML (None: the installed sim_world.yaml)"
    )
    sim_seed: int | None = Field(None, description="scripted expert only: overrides the seed in sim_world_config")

    @field_validator("num_steps")
    @classmethod
    def _steps_in_range(cls, steps: int | str | None) -> int | str | None:
        if isinstance(steps, int) and not 1 <= steps <= 200:
            raise ValueError(f"num_steps must be 1..200 or auto, got {steps}")
        return steps

    def load_sim_world(self) -> SimWorldConfig:
        """The sim world's config as the scripted expert must see it (privileged, sim only)."""
        path = self.sim_world_config or default_config_path("sim_world")
        return load_yaml(SimWorldConfig, path, {"seed": self.sim_seed})

    @model_validator(mode="after")
    def _model_for_video_policy(self) -> "InferenceConfig":
        if self.policy == "scripted_expert" and not self.use_sim:
            raise ValueError(
                "policy 'scripted_expert' reads the simulated scene's hidden state and cannot drive a real arm "
                "(use_sim is false): use policy 'video_policy' with a model"
            )
        if self.policy in ("video_policy", "bc"):
            if self.model is None:
                raise ValueError(f"policy '{self.policy}' needs model: <checkpoint folder>")
            if not self.model.exists():
                raise ValueError(f"model checkpoint folder not found: {self.model}")
        return self


# --------------------------------------------------------------------------- camera driver


class CameraDriverConfig(_Strict):
    """One physical camera → /cameras/<name>/image_raw + camera_info (+ aligned depth, + pose)."""

    name: str = Field("front", min_length=1, description="topics are /cameras/<name>/...; frames <name>_color_optical_frame")
    backend: Literal["opencv", "realsense"] = Field(
        "opencv", description="opencv: any UVC / V4L2 device or video file; realsense: Intel RealSense via pyrealsense2"
    )
    device: int | str = Field(
        0, description="opencv: V4L2 index, /dev/video* path, video file or URL; "
        "realsense: serial number, or a librealsense recording (.db3) to play back"
    )
    width: int = Field(640, ge=16, le=4096, description="colour image width, pixels")
    height: int = Field(480, ge=16, le=4096, description="colour image height, pixels")
    fps: float = Field(30.0, gt=0, le=300, description="frame rate the device is asked for (and the pace of a video file)")
    exposure_us: int | None = Field(
        None, ge=1, le=200_000, description="realsense: manual colour exposure in microseconds (None: auto exposure)"
    )
    depth: bool = Field(False, description="realsense: also publish depth aligned to colour (16UC1, millimetres)")
    calibration_file: InputPath | None = Field(
        None, description="ROS camera_info YAML (calibration/); None: device intrinsics (realsense) or a pinhole guess"
    )
    frame_timeout_s: float = Field(
        1.0, gt=0, le=30, description="realsense: no frame for this long means the camera is gone (then reconnect)"
    )
    reconnect_period_s: float = Field(1.0, gt=0, le=60, description="retry period while the camera is gone")
    image_transport: ImageTransport = Field("raw", description=IMAGE_TRANSPORT_HELP)
    jpeg_quality: int = Field(90, ge=1, le=100, description="image_transport compressed: JPEG quality")
    connect_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="a camera not found for this long after start-up stops the node (exit 2)"
    )
    devices: tuple[str, ...] = Field(
        (), description='per camera, "<name>=<device>" (e.g. "wrist=213522251", RealSense serials), so one file '
        "serves several cameras; the entry for this node's name wins over device"
    )
    calibration_files: tuple[str, ...] = Field(
        (), description='per camera, "<name>=<calibration file>"; the entry for this node\'s name wins over calibration_file'
    )

    @model_validator(mode="before")
    @classmethod
    def _this_cameras_entries(cls, values: Any) -> Any:
        """Resolve the per-camera lists once, so backends read only ``device`` and ``calibration_file``.
        (Lists of strings, not maps: a ROS parameter cannot hold a map.)"""
        if not isinstance(values, dict):
            return values
        name = values.get("name", "front")
        for per_camera, field in (("devices", "device"), ("calibration_files", "calibration_file")):
            for entry in values.get(per_camera) or ():
                camera, separator, value = str(entry).partition("=")
                if not separator or not camera or not value:
                    raise ValueError(f"{per_camera}: entry {entry!r} must be '<camera name>=<value>'")
                if camera == name:
                    values = {**values, field: value}
        return values


class BagReplayConfig(_Strict):
    """Replays the camera topics of a recorded MCAP bag as if they were live."""

    bag: InputPath | None = Field(None, description="rosbag2 folder or .mcap file to replay (required: -p bag:=...)")
    cameras: tuple[str, ...] = Field(
        (), description="camera names to replay (/cameras/<name>/image_raw + camera_info); empty: every camera in the bag"
    )
    extra_topics: tuple[str, ...] = Field(
        (), description="other recorded topics to replay on the same clock, e.g. [/ee_pose, /joint_states, /task]"
    )
    rate: float = Field(1.0, gt=0, le=100, description="replay speed; 1 = the original rate")
    loop: bool = Field(False, description="start again at the end of the bag (otherwise the node exits 0)")


# --------------------------------------------------------------------------- recorder


class RecorderConfig(_Strict):
    output_dir: OutputPath = Field(
        Path("bags"), description="one rosbag2 (MCAP) folder per episode is created here; relative to the data home"
    )
    cameras: tuple[str, ...] = Field(("front", "wrist"), description="camera names: /cameras/<name>/... are recorded")
    image_encoding: Literal["raw", "jpeg", "png"] = Field(
        "raw",
        description="raw: sensor_msgs/Image on image_raw (lossless, replays into the graph; with zstd chunks ~15 MB "
        "per episode-minute in sim); jpeg/png: sensor_msgs/CompressedImage on image_raw/compressed (jpeg: "
        "about half of that, lossy; for noisy real cameras)",
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="image_encoding jpeg: quality (higher: larger, sharper)")
    chunk_compression: Literal["none", "zstd"] = Field("zstd", description="compression of the MCAP chunks")
    chunk_period_s: float = Field(
        1.0, ge=0.05, le=10.0, description="a chunk is written at least this often: what a crash (kill -9) can lose"
    )
    stop_delay_s: float = Field(1.0, ge=0.0, le=30.0, description="keep recording this long after success/failure")
    robot_ip: str = Field("127.0.0.1", description="the arm's address, stored in each episode's metadata")


# --------------------------------------------------------------------------- operator view


class ViewConfig(_Strict):
    """The browser view (Rerun's web viewer): cameras beside their predicted video, the TCP path,
    the controller's state and the latency budget, live or from a recorded bag."""

    cameras: tuple[str, ...] = Field(("front", "wrist"), description="camera names shown beside their predicted video")
    web_port: int = Field(9090, ge=1, le=65535, description="the page: http://<host>:<web_port>/")
    grpc_port: int = Field(9876, ge=1, le=65535, description="Rerun's log server that the page reads from")
    executed_path_s: float = Field(20.0, gt=0, le=600, description="seconds of executed TCP path drawn behind the arm")
    pose_rate_hz: float = Field(10.0, gt=0, le=200, description="the executed path is redrawn at most this often")
    camera_rate_hz: float = Field(2.0, gt=0, le=60, description="camera frames shown per second and camera, at most "
                                  "(each with the frame predicted for its moment); a CPU-rendered page beside the sim "
                                  "graph on two cores lagged 41 s behind at 5, 19 s at 2")
    jpeg_quality: int = Field(80, ge=1, le=100, description="frames go to the page as JPEG of this quality")
    flush_interval_s: float = Field(
        1.0, gt=0, le=5, description="logged data goes to the page in batches this often: the page's cost is per "
        "batch, which a browser without a GPU pays on the CPU (beside the sim graph on two cores the page lagged "
        "141-272 s behind the live data at 0.2 s, 41 s at 1 s; Rerun's default, 8 ms, left it minutes behind); "
        "a browser with a GPU keeps up with 0.2 s and updates more smoothly"
    )
    memory_limit: str = Field(
        "1GiB", pattern=r"^\d+(\.\d+)?\s*(B|KiB|MiB|GiB|KB|MB|GB|%)$",
        description="log data kept for pages that connect late and for scrubbing back (oldest dropped first)"
    )


# --------------------------------------------------------------------------- preflight


class PreflightConfig(_Strict):
    """The site's limits that ``video-policy preflight`` holds a controller configuration to, measured
    on the sim twin. They are not the configuration's own: a controller.yaml that asks for more (a
    faster cap, a workspace through the table) fails here, before the real arm moves."""

    max_tcp_speed: float = Field(0.25, gt=0, le=3.0, description="site TCP speed limit, m/s (the controller's cap, if lower, is checked instead)")
    speed_tolerance: float = Field(
        0.04, ge=0, le=0.5, description="fraction over a speed or acceleration limit that the measurement tolerates "
        "(speeds over 50 ms windows of /ee_pose header stamps)"
    )
    estop_halt_s: float = Field(0.3, gt=0, le=5.0, description="the arm is at rest this long after an e-stop, s")
    silence_halt_margin_s: float = Field(
        0.3, gt=0, le=5.0, description="the arm is at rest this long after the controller's max_chunk_silence_s, s"
    )
    max_halt_travel_m: float = Field(
        0.01, gt=0, le=0.5, description="TCP travel allowed once a halt is due (the arm settling onto its last set-point), m"
    )
    at_rest_joint_speed: float = Field(0.01, gt=0, le=0.5, description="at rest: every joint slower than this, rad/s")
    max_bad_chunk_motion_m: float = Field(0.02, gt=0, le=0.5, description="TCP travel allowed while only bad chunks arrive, m")
    max_path_deviation_m: float = Field(0.01, gt=0, le=0.5, description="TCP distance from a straight chunk's line, m")
    floor_overshoot_m: float = Field(0.0015, ge=0, le=0.05, description="TCP travel allowed below the workspace floor, m")
    floor_reach_m: float = Field(
        0.005, gt=0, le=0.1, description="the TCP must get this close to the workspace floor (else the box holds "
        "targets the arm cannot reach, e.g. below the table)"
    )
    max_state_gap_s: float = Field(0.3, gt=0, le=5.0, description="longest gap in /ee_pose while the gripper works, s")
    recovery_timeout_s: float = Field(15.0, gt=0, le=120.0, description="a robot error is recovered within this, s")
    inference_start_timeout_s: float = Field(
        120.0, gt=0, le=900.0, description="the inference node publishes its first chunk within this after it starts, s"
    )


NODE_CONFIGS: dict[str, type[_Strict]] = {
    "sim_world": SimWorldConfig,
    "controller": ControllerConfig,
    "inference": InferenceConfig,
    "camera": CameraDriverConfig,
    "bag_replay": BagReplayConfig,
    "recorder": RecorderConfig,
    "view": ViewConfig,
}
CONFIG_FILES: dict[str, type[_Strict]] = {**NODE_CONFIGS, "preflight": PreflightConfig}  # config/<name>.yaml

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_validation_error(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (check the spelling; see config/ for the valid keys)"
    if not key:  # a rule across several keys: the message names them
        return f"{source}: {message}"
    return f"{source}: invalid value for '{key}': {message} (got {first.get('input')!r})"


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
