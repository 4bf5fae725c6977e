"""``video-policy collect``: unattended scripted-expert demonstrations, recorded as bags.

Each episode runs the graph of ``video-policy run`` (the sim world in a child process;
controller and inference, here with the scripted expert, composed in this one) plus
the recorder node. The sim world announces the episode on ``/episode/events``, the
recorder opens a bag, the expert drives the arm through the controller, the sim world
publishes the verdict and the recorder closes the bag. Episode ``i`` uses seed
``first_seed + i``. Convert the bags with ``video-policy convert``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from video_policy_ros.config import RecorderConfig, default_config_path, load_yaml
from video_policy_ros.errors import StackError
from video_policy_ros.nodes import graph

VERDICT_WAIT_S = 5.0  # after the sim world exits, how long its verdict may take to reach the recorder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=10, help="how many episodes to record")
    parser.add_argument("--first-seed", type=int, default=0, help="episode i uses seed first_seed + i")
    parser.add_argument("--out", type=Path, help="folder for the bags (default: config/recorder.yaml's output_dir)")
    parser.add_argument("--image-encoding", choices=["raw", "jpeg", "png"], help="override the recorder YAML")
    parser.add_argument("--robot-ip", help="loopback address the simulated FR3 serves on (default 127.0.0.1)")
    parser.add_argument("--config-dir", type=Path, help="folder with the nodes' YAML files (default: installed)")
    parser.add_argument("--timeout", type=float, help="seconds per episode before it counts as a failure")


def _graph_args(args: argparse.Namespace, seed: int) -> argparse.Namespace:
    """The arguments ``video-policy run`` would get for one scripted-expert episode in sim."""
    return argparse.Namespace(use_sim=True, robot_ip=args.robot_ip, policy="scripted_expert", model=None, cameras=None,
                              num_steps=None, guidance=None, seed=seed, config_dir=args.config_dir, output_dir=None,
                              timeout=args.timeout)


def record_episode(configs: dict, recorder_config: RecorderConfig, executor_threads: int = 4):
    """Run one episode; returns ``(bag path, EpisodeInfo)`` of the recorded episode, or None."""
    from rclpy.executors import MultiThreadedExecutor

    from video_policy_ros.nodes.controller_node import ControllerNode
    from video_policy_ros.nodes.inference_node import InferenceNode
    from video_policy_ros.nodes.recorder_node import RecorderNode

    with contextlib.ExitStack() as cleanup:  # undone in reverse: nodes (newest first), then the sim world
        sim = graph.start_sim_world(configs["sim_world"])
        cleanup.callback(_stop_process, sim)
        if not sim.ready.wait(timeout=60) or sim.exitcode is not None:
            raise StackError("the sim world failed to start (see its error above)")
        executor = MultiThreadedExecutor(num_threads=executor_threads)
        nodes = []
        for build in (lambda: RecorderNode(recorder_config), lambda: ControllerNode(configs["controller"]),
                      lambda: InferenceNode(configs["inference"])):
            node = build()
            cleanup.callback(node.destroy_node)
            cleanup.callback(node.close)
            executor.add_node(node)
            nodes.append(node)
        recorder = nodes[0]
        deadline = time.monotonic() + configs["sim_world"].task.timeout_s + 60
        sim_gone_at = None
        while not recorder.core.finished and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if sim_gone_at is None and not sim.is_alive():
                sim_gone_at = time.monotonic()
            awaiting_verdict = recorder.core.recording and recorder.core.info.success is None
            if awaiting_verdict and sim_gone_at is None and any(n.exit_code is not None for n in nodes[1:]):
                # e.g. the controller lost the robot mid-episode: a failed episode, the collection goes on.
                recorder.operator("failure", "a node of the graph stopped mid-episode (see its error above)")
            elif sim_gone_at is not None and time.monotonic() - sim_gone_at > VERDICT_WAIT_S:
                # (once the sim world has gone, the controller losing the robot is expected)
                if not recorder.core.recording:
                    raise StackError(f"the sim world exited ({sim.exitcode}) before the recorder saw the episode start")
                if awaiting_verdict:  # its verdict event never arrived: the exit code is the verdict
                    recorder.operator("success" if sim.exitcode == 0 else "failure",
                                      f"sim world exited with {sim.exitcode}")
        return recorder.core.finished[0] if recorder.core.finished else None


def _stop_process(process) -> None:
    if process.is_alive():
        process.terminate()
    process.join(timeout=10)


def collect(args: argparse.Namespace, recorder_config: RecorderConfig) -> int:
    """Record the episodes (rclpy already initialised); returns how many succeeded."""
    from tqdm import tqdm

    successes = 0
    bar = tqdm(range(args.episodes), desc="episodes", unit="episode")
    for i in bar:
        seed = args.first_seed + i
        configs = graph.load_configs(_graph_args(args, seed))
        # The bag holds the cameras: no separate mp4 from the sim world.
        configs["sim_world"] = configs["sim_world"].model_copy(update={"record_camera": None})
        recorded = record_episode(configs, recorder_config)
        if recorded is None:
            tqdm.write(f"seed {seed}: no episode recorded (timed out)", file=sys.stderr)
            continue
        path, info = recorded
        successes += bool(info.success)
        bar.set_postfix(successes=successes)
        tqdm.write(f"{path}: seed {seed}, {info.task!r}, success={info.success}")
    return successes


def run(args: argparse.Namespace) -> int:
    import os

    import rclpy

    from video_policy_ros.nodes.base import configure_process

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "egl")
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s: %(message)s")
    configure_process()
    rclpy.init()
    try:
        if args.episodes < 1:
            raise StackError(f"--episodes must be at least 1, got {args.episodes}")
        recorder_path = args.config_dir / "recorder.yaml" if args.config_dir else default_config_path("recorder")
        recorder_config = load_yaml(RecorderConfig, recorder_path,
                                    {"output_dir": args.out and args.out.resolve(), "image_encoding": args.image_encoding})
        graph.load_configs(_graph_args(args, args.first_seed))  # a bad YAML fails before anything starts
        successes = collect(args, recorder_config)
    except KeyboardInterrupt:
        return 130
    finally:
        rclpy.try_shutdown()
    print(f"{successes}/{args.episodes} successful episodes recorded in {recorder_config.output_dir.resolve()}; "
          f"convert them with: video-policy convert {recorder_config.output_dir} --out <dataset folder>")
    return 0 if successes == args.episodes else 1
