"""Video Policy on a Franka FR3: sim world (or camera drivers), inference, controller, RViz.

    ros2 launch video_policy_ros franka.launch.py                       # simulated FR3 + cameras
    ros2 launch video_policy_ros franka.launch.py exit_on_done:=true    # one sim episode; exit status = result
    ros2 launch video_policy_ros franka.launch.py use_sim:=false robot_ip:=172.16.0.2 \\
        policy:=video_policy model:=/path/to/checkpoint cameras:=front,wrist
    ros2 launch video_policy_ros franka.launch.py role:=robot static_peers:=192.0.2.2 ...       # two hosts: the robot PC
    ros2 launch video_policy_ros franka.launch.py role:=inference static_peers:=192.0.2.1 ...   # and the inference host

Every node reads its YAML from <config_dir>/<node>.yaml (the same files
``video-policy run`` reads); the arguments below override single keys. Nodes start
at the same instant in no particular order and wait for each other. Every node is
required: when one dies, the launch names it and its last error line and stops the
rest. Relative paths (``model``, ``output_dir``) resolve against the data home,
``$VIDEO_POLICY_ROS_HOME`` (default ``~/.ros/video_policy_ros``); shipped
checkpoints (``models/...``) are found in the package.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown, TimerAction
from launch.event_handlers import OnProcessExit, OnProcessIO
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "video_policy_ros"

ARGUMENTS = {
    "use_sim": ("true", "run the simulated FR3 and cameras instead of camera drivers"),
    "robot_ip": ("127.0.0.1", "FR3 FCI address (the sim world serves 127.0.0.1)"),
    "policy": ("scripted_expert", "scripted_expert (sim only) or video_policy"),
    "model": ("", "checkpoint folder for policy:=video_policy"),
    "cameras": ("front,wrist", "comma-separated camera names the policy reads"),
    "num_steps": ("", "video_policy: sampler steps, or auto: the most that fit the chunk horizon (empty: the YAML's)"),
    "guidance": ("", "video_policy: classifier-free guidance, 1.0 = off (empty: the checkpoint's)"),
    "rviz": ("false", "start RViz with the predicted video and path (needs rviz2)"),
    "view": ("false", "serve the operator's browser view (Rerun web viewer) on view_port; the address is printed"),
    "view_port": ("9090", "the browser view's port"),
    "seed": ("0", "sim scene seed"),
    "exit_on_done": ("false", "sim: end the launch when the episode ends, exit status 0 on success"),
    "output_dir": ("", "sim: where episode videos go (empty: the YAML's; relative: under the data home)"),
    "log_level": ("info", "debug, info, warn, error or fatal, for every node"),
    "config_dir": ("", "folder with sim_world/controller/inference/camera(/recorder, /view).yaml (default: installed config/)"),
    # across two hosts (README "Across machines")
    "role": ("all", "all: every node here; robot: the robot PC's nodes (sim world or camera drivers, controller, the "
                    "recorder with record:=true); inference: the inference node alone (the GPU host)"),
    "record": ("false", "also run the recorder (episodes as MCAP bags, config/recorder.yaml)"),
    "image_transport": ("raw", "raw, or compressed: the cameras also publish JPEG and the inference node reads it"),
    "static_peers": ("", "the other host's address(es), ';'-separated: unicast discovery (ROS_STATIC_PEERS)"),
    "discovery_server": ("", "Fast DDS discovery server(s), e.g. 192.0.2.1:11811 (ROS_DISCOVERY_SERVER)"),
}
ROLES = {"all": {"sim_world", "camera", "controller", "recorder", "inference"},
         "robot": {"sim_world", "camera", "controller", "recorder"}, "inference": {"inference"}}


class NodeDied(RuntimeError):
    """Raised inside launch's event loop: launch logs it, stops every node and exits 1."""


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _without_empty(values: dict) -> dict:
    return {k: v for k, v in values.items() if v not in ("", None)}


def _parameters(arg: dict, config_dir: str) -> dict[str, dict]:
    """Per node: its config file plus the launch arguments that override its keys."""
    cameras = [c.strip() for c in arg["cameras"].split(",") if c.strip()]
    use_sim = _is_true(arg["use_sim"])
    numeric = {"num_steps": lambda v: v if v == "auto" else int(v), "guidance": float}
    transport = arg["image_transport"]
    inference = {
        "use_sim": use_sim, "policy": arg["policy"], "model": arg["model"], "cameras": cameras, "image_transport": transport,
        **{k: cast(arg[k]) for k, cast in numeric.items() if arg[k]},
    }
    if use_sim:
        inference.update(sim_seed=int(arg["seed"]), sim_world_config=f"{config_dir}/sim_world.yaml")
    nodes = {
        "controller": {"robot_ip": arg["robot_ip"]},
        "inference": inference,
    }
    if use_sim:
        nodes["sim_world"] = {
            "seed": int(arg["seed"]), "robot_ip": arg["robot_ip"], "output_dir": arg["output_dir"],
            "exit_on_done": _is_true(arg["exit_on_done"]), "image_transport": transport,
        }
    else:
        nodes.update({f"camera_{name}": {"name": name, "image_transport": transport} for name in cameras})
    if _is_true(arg["record"]):
        nodes["recorder"] = {}
    if arg["role"] not in ROLES:
        raise RuntimeError(f"role:={arg['role']}: must be one of {', '.join(ROLES)}")
    return {name: _without_empty(values) for name, values in nodes.items() if _kind(name) in ROLES[arg["role"]]}


def _kind(node_name: str) -> str:
    return "camera" if node_name.startswith("camera_") else node_name


def _discovery_env(arg: dict) -> dict[str, str]:
    """Every node's DDS discovery: unicast to the other host, or through a discovery server."""
    env = {"ROS_STATIC_PEERS": arg["static_peers"], "ROS_DISCOVERY_SERVER": arg["discovery_server"]}
    return {key: value for key, value in env.items() if value}


def _check_configs(parameters: dict[str, dict], config_dir: str) -> None:
    """Refuse a bad configuration before anything starts (each node checks again on its own)."""
    try:
        from video_policy_ros.config import NODE_CONFIGS, load_yaml
    except ImportError:  # launch runs under a Python without this package's dependencies
        return
    for name, overrides in parameters.items():
        kind = _kind(name)
        load_yaml(NODE_CONFIGS[kind], f"{config_dir}/{kind}.yaml", overrides)


def _check_rviz() -> None:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        raise RuntimeError(
            "rviz:=true but rviz2 is not installed here (no package 'rviz2' on AMENT_PREFIX_PATH): install "
            "ros-kilted-rviz2, or run rviz2 -d <share>/rviz/video_policy.rviz on a machine with the same ROS_DOMAIN_ID"
        ) from None


class _LastErrorLines:
    """Per node, the last stderr line that reads like an error (else its last line), for the death notice."""

    MARKERS = ("error", "fatal", "exception")

    def __init__(self):
        self.errors: dict[str, str] = {}
        self.last: dict[str, str] = {}

    def on_stderr(self, event) -> None:
        for line in filter(None, map(str.strip, event.text.decode(errors="replace").splitlines())):
            self.last[event.process_name] = line
            if any(marker in line.lower() for marker in self.MARKERS):
                self.errors[event.process_name] = line

    def of(self, process_name: str) -> str:
        return self.errors.get(process_name) or self.last.get(process_name) or "no output on stderr"


# A terminal's Ctrl-C reaches every process of the group at once, and a node can be gone before launch
# has handled its own SIGINT (seen under CPU load: "required node 'inference' died (exit code 0)" after a
# Ctrl-C). So an exit is judged once launch's own signal has had time to land.
EXIT_VERDICT_DELAY_S = 1.0


def _on_exit(node_name: str, last_errors: _LastErrorLines, episode_node: str | None):
    def handler(event, context):
        if context.is_shutdown:
            return None  # stopping on purpose (Ctrl-C or another node's death)
        if node_name == episode_node and event.returncode == 0:
            return [Shutdown(reason="the episode ended: SUCCESS")]
        if node_name == episode_node:
            death = f"the episode ended without success (sim_world exit code {event.returncode})"
        else:
            death = f"required node '{node_name}' died (exit code {event.returncode}): {last_errors.of(event.process_name)}"

        def judge(context):
            if context.is_shutdown:
                return None  # the exit was part of a Ctrl-C that launch has handled since
            raise NodeDied(death)

        return [TimerAction(period=EXIT_VERDICT_DELAY_S, actions=[OpaqueFunction(function=judge)])]

    return handler


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    share = FindPackageShare(PACKAGE).perform(context)
    config_dir = arg["config_dir"] or f"{share}/config"
    parameters = _parameters(arg, config_dir)
    _check_configs(parameters, config_dir)
    if _is_true(arg["rviz"]):
        _check_rviz()

    ros_arguments = ["--log-level", arg["log_level"]]
    last_errors = _LastErrorLines()
    episode_node = "sim_world" if _is_true(arg["exit_on_done"]) and "sim_world" in parameters else None
    discovery = _discovery_env(arg)
    actions = []
    for name, values in parameters.items():
        kind = _kind(name)
        node = Node(
            package=PACKAGE, executable=kind, name=name, output="screen", ros_arguments=ros_arguments,
            parameters=[{"config_file": f"{config_dir}/{kind}.yaml", **values}],
            additional_env={**discovery, **({"MUJOCO_GL": "egl"} if kind == "sim_world" else {})} or None,
        )
        actions += [
            RegisterEventHandler(OnProcessIO(target_action=node, on_stderr=last_errors.on_stderr)),
            RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_on_exit(name, last_errors, episode_node))),
            node,
        ]
    if _is_true(arg["rviz"]):
        actions.append(
            Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", f"{share}/rviz/video_policy.rviz"])
        )
    if _is_true(arg["view"]):  # only watches: its exit is logged and stops nothing
        actions.append(Node(
            package=PACKAGE, executable="view", name="view", output="screen", ros_arguments=ros_arguments,
            parameters=[{"config_file": f"{config_dir}/view.yaml", "web_port": int(arg["view_port"]),
                         "cameras": [c.strip() for c in arg["cameras"].split(",") if c.strip()]}],
        ))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)]
    )
