"""Video Policy on a Franka FR3: sim world (or camera drivers), inference, controller, RViz.

    ros2 launch video_policy_ros franka.launch.py                       # simulated FR3 + cameras
    ros2 launch video_policy_ros franka.launch.py use_sim:=false robot_ip:=172.16.0.2 \\
        policy:=video_policy model:=/path/to/checkpoint cameras:=front,wrist

Every node reads its YAML from <config_dir>/<node>.yaml (the same files
``video-policy run`` reads); the arguments below override single keys.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
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
    "rviz": ("false", "start RViz with the predicted video and path"),
    "seed": ("0", "sim scene seed"),
    "config_dir": ("", "folder with sim_world/controller/inference/camera.yaml (default: installed config/)"),
}


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    share = FindPackageShare(PACKAGE).perform(context)
    config_dir = arg["config_dir"] or f"{share}/config"

    def config(node: str) -> dict:
        return {"config_file": f"{config_dir}/{node}.yaml"}

    cameras = [c.strip() for c in arg["cameras"].split(",") if c.strip()]
    inference_params = {**config("inference"), "policy": arg["policy"], "cameras": cameras}
    if arg["model"]:
        inference_params["model"] = arg["model"]
    actions = []
    if _is_true(arg["use_sim"]):
        inference_params["sim_seed"] = int(arg["seed"])
        inference_params["sim_world_config"] = f"{config_dir}/sim_world.yaml"
        actions.append(
            Node(
                package=PACKAGE, executable="sim_world", name="sim_world", output="screen",
                parameters=[{**config("sim_world"), "seed": int(arg["seed"]), "robot_ip": arg["robot_ip"]}],
                additional_env={"MUJOCO_GL": "egl"},
            )
        )
    else:
        for camera in cameras:
            actions.append(
                Node(
                    package=PACKAGE, executable="camera", name=f"camera_{camera}", output="screen",
                    parameters=[{**config("camera"), "name": camera}],
                )
            )
    actions.append(
        Node(
            package=PACKAGE, executable="controller", name="controller", output="screen",
            parameters=[{**config("controller"), "robot_ip": arg["robot_ip"]}],
        )
    )
    actions.append(
        Node(package=PACKAGE, executable="inference", name="inference", output="screen", parameters=[inference_params])
    )
    if _is_true(arg["rviz"]):
        actions.append(
            Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", f"{share}/rviz/video_policy.rviz"])
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)]
    )
