"""``video-policy run``: the franka.launch.py graph in one process (manual composition).

For machines without the ``launch`` package. It reads the same YAML files as the
launch file and the same overrides (seed, robot IP, policy, model, cameras) and
spins the controller, inference and camera nodes in one multi-threaded executor.
The simulated world is the stand-in for hardware, not part of the stack: it runs
in a child process, because its 1 kHz Python physics loop must not share a GIL
with the controller. In sim the command ends with the episode and exits 0 on
task success.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from video_policy_ros.config import (
    CameraDriverConfig,
    ControllerConfig,
    InferenceConfig,
    SimWorldConfig,
    default_config_path,
    load_yaml,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--use-sim", action=argparse.BooleanOptionalAction, default=True, help="run the sim world (default) or real camera drivers")
    parser.add_argument("--robot-ip", help="FR3 address (default: the controller YAML; the sim world serves 127.0.0.1)")
    parser.add_argument("--policy", choices=["scripted_expert", "video_policy", "bc"], help="override the inference YAML")
    parser.add_argument("--model", type=Path, help="checkpoint folder for --policy video_policy or bc")
    parser.add_argument("--cameras", help="comma-separated camera names, e.g. front,wrist")
    parser.add_argument("--num-steps", type=int, help="video_policy: sampler steps")
    parser.add_argument("--guidance", type=float, help="video_policy: classifier-free guidance (1 = off)")
    parser.add_argument("--seed", type=int, help="sim scene seed")
    parser.add_argument("--config-dir", type=Path, help="folder with sim_world/controller/inference/camera.yaml")
    parser.add_argument("--output-dir", type=Path, help="where the sim world writes its video")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds (sim: the task timeout)")


def load_configs(args: argparse.Namespace) -> dict[str, object]:
    def path(node: str) -> Path:
        return args.config_dir.resolve() / f"{node}.yaml" if args.config_dir else default_config_path(node)

    cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
    # Paths typed on this command line are relative to where it runs (config files: to the data home).
    model, output_dir = (p.resolve() if p is not None else None for p in (args.model, args.output_dir))
    configs: dict[str, object] = {
        "controller": load_yaml(ControllerConfig, path("controller"), {"robot_ip": args.robot_ip}),
        "inference": load_yaml(
            InferenceConfig, path("inference"),
            {"use_sim": args.use_sim, "policy": args.policy, "model": model, "cameras": cameras, "sim_seed": args.seed,
             "sim_world_config": path("sim_world"), "num_steps": args.num_steps, "guidance": args.guidance},
        ),
    }
    if args.use_sim:
        sim = load_yaml(SimWorldConfig, path("sim_world"), {"seed": args.seed, "output_dir": output_dir})
        if args.timeout:
            sim = sim.model_copy(update={"task": sim.task.model_copy(update={"timeout_s": args.timeout})})
        configs["sim_world"] = sim.model_copy(update={"robot_ip": configs["controller"].robot_ip})
    else:
        base = load_yaml(CameraDriverConfig, path("camera"))
        names = cameras or list(configs["inference"].cameras)
        configs["cameras"] = [base.model_copy(update={"name": n}) for n in names]
    return configs


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(levelname)s: %(message)s")
    configs = load_configs(args)  # a bad file or flag: cli.main prints the one error line

    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from video_policy_ros.nodes.base import configure_process

    configure_process()
    sim = start_sim_world(configs["sim_world"]) if "sim_world" in configs else None
    rclpy.init()
    nodes = []
    try:
        if sim is None:
            from video_policy_ros.nodes.camera_node import CameraNode

            nodes.extend(CameraNode(c) for c in configs["cameras"])
        elif not sim.ready.wait(timeout=60) or sim.exitcode is not None:
            print("error: the sim world failed to start (see its error above)", file=sys.stderr)
            return 2
        from video_policy_ros.nodes.controller_node import ControllerNode
        from video_policy_ros.nodes.inference_node import InferenceNode

        nodes.append(ControllerNode(configs["controller"]))
        nodes.append(InferenceNode(configs["inference"]))
        executor = MultiThreadedExecutor(num_threads=4)
        for node in nodes:
            executor.add_node(node)
        deadline = time.monotonic() + args.timeout + 30 if args.timeout else float("inf")
        while rclpy.ok() and time.monotonic() < deadline and all(n.exit_code is None for n in nodes):
            executor.spin_once(timeout_sec=0.1)
            if sim is not None and not sim.is_alive():
                return sim.exitcode
        return next((n.exit_code for n in nodes if n.exit_code is not None), 1 if sim is not None else 0)
    except KeyboardInterrupt:
        return 130
    finally:
        for node in reversed(nodes):
            node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        if sim is not None and sim.is_alive():
            sim.terminate()
            sim.join(timeout=10)


def _sim_world_process(config: SimWorldConfig, ready, results=None) -> None:
    from video_policy_ros.nodes.params import run_node
    from video_policy_ros.nodes.sim_world_node import SimWorldNode

    built: list[SimWorldNode] = []

    def build() -> SimWorldNode:
        built.append(SimWorldNode(config))
        ready.set()
        return built[0]

    code = run_node(build)
    if results is not None:  # the episode's TaskResult for the parent (None: it never ended)
        results.put(built[0].world.result if built else None)
    sys.exit(code)


def start_sim_world(config: SimWorldConfig, results=None):
    """The sim world node in a child process that exits when the episode ends.

    ``results``: a queue from the same (spawn) context that receives the episode's TaskResult.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no forked rclpy/mujoco state
    ready = ctx.Event()
    process = ctx.Process(
        target=_sim_world_process, args=(config.model_copy(update={"exit_on_done": True}), ready, results),
        name="sim_world",
    )
    process.start()
    process.ready = ready
    return process
