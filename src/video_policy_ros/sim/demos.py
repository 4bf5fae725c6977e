"""``video-policy demos``: scripted-expert demonstrations in the sim world → Episode files.

Each episode runs the real path minus ROS: the sim world serves the FR3 over the
libfranka protocol, the controller core drives it through franky, the expert
plans chunks, and frames + TCP poses are sampled at a fixed rate. Episodes are
written as ``episode_<seed>.npz`` (see data/episode.py) for ``video-policy train``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from video_policy_ros.config import ControllerConfig, SimWorldConfig, default_config_path, load_yaml
from video_policy_ros.data.episode import Episode
from video_policy_ros.errors import StackError
from video_policy_ros.sim.scene import SceneLayout, sample_layout
from video_policy_ros.types import FINGERS_CLOSED, ActionChunk, ArmState, CameraFrame

log = logging.getLogger(__name__)

SETTLE_AFTER_DONE_S = 1.0  # keep recording after success so episodes show the touch itself
GIVE_UP_AFTER_TIMEOUT_S = 15.0  # wall-clock slack past the task's own timeout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for the episode files")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="episode i uses seed first_seed + i")
    parser.add_argument("--fps", type=float, default=10.0, help="recording rate (frames and poses)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="camera resolution to record")
    parser.add_argument("--robot-ip", default="127.0.0.1")
    parser.add_argument("--task", choices=["touch", "place", "mixed"], help="override task.kind of sim_world.yaml")
    parser.add_argument("--other-targets", action="store_true",
                        help="also save each episode's states instructed for the other cubes (episode_<seed>_as_<colour>)")


class DemoAborted(StackError):
    """A demonstration stopped before its end (the controller refused the expert's chunks)."""


@dataclass(frozen=True)
class Pacing:
    """How chunks reach the controller: a new one every ``period_s``, each ``latency_s`` after the
    observation it was computed from (a learned policy's measured latency; the expert's is ~0)."""

    period_s: float = 0.5
    latency_s: float = 0.0


# Who drives an episode: (state, latest frame per camera) → the next chunk, stamped at ``state.stamp``.
Actor = Callable[[ArmState, dict[str, CameraFrame]], ActionChunk]


def record_episode(world_config: SimWorldConfig, controller: ControllerConfig, fps: float,
                   make_actor: Callable[[SceneLayout], Actor] | None = None, pacing: Pacing = Pacing()) -> Episode:
    """One sim episode driven by ``make_actor(layout)`` (default: the scripted expert), sampled at ``fps``
    and labelled by the expert (:func:`label_episode`).

    The expert's demonstrations end when the controller refuses one of its chunks (the demo is lost);
    another actor's refused chunk is skipped, as the inference node goes on after a rejection.
    """
    from video_policy_ros.control.watchdog import ChunkRejected
    from video_policy_ros.nodes.controller_node import build_control_loop  # noqa: PLC0415 (franky on demand)
    from video_policy_ros.sim.expert import make_expert
    from video_policy_ros.sim.world import SimWorld

    latest: dict[str, CameraFrame] = {}
    frames: dict[str, list[np.ndarray]] = {c.name: [] for c in world_config.cameras}
    poses, gripper = [], []
    with SimWorld(world_config, on_frame=lambda f: latest.__setitem__(f.camera, f)) as world:
        loop = build_control_loop(controller, on_state=lambda state: None)
        loop.start()
        try:
            if not loop.wait_until_running(controller.connect_timeout_s):
                raise DemoAborted(f"seed {world_config.seed}: no robot state from the sim world ({loop.fatal})")
            actor = make_actor(world.layout) if make_actor else _expert_actor(make_expert(world.layout))
            while len(latest) < len(frames):
                world.check()
                time.sleep(0.01)
            next_sample = next_plan = time.monotonic()
            pending: list[tuple[float, ActionChunk]] = []  # (when it reaches the controller, chunk)
            rejected = 0
            end = float("inf")
            give_up = next_sample + world_config.task.timeout_s + GIVE_UP_AFTER_TIMEOUT_S
            while time.monotonic() < end:
                now = time.monotonic()
                if now > give_up:  # the sim world never judged the episode (its clock stalled)
                    raise DemoAborted(f"seed {world_config.seed}: no verdict from the sim world "
                                      f"{world_config.task.timeout_s + GIVE_UP_AFTER_TIMEOUT_S:g} s after the start")
                if world.done.is_set() and end == float("inf"):
                    end = now + SETTLE_AFTER_DONE_S
                current = loop.latest_state
                if now >= next_plan:
                    pending.append((now + pacing.latency_s, actor(current, dict(latest))))
                    next_plan += pacing.period_s
                while pending and pending[0][0] <= time.monotonic():
                    try:
                        loop.submit_chunk(pending.pop(0)[1])
                    except ChunkRejected as exc:  # e.g. a robot fault latched a stop: this demonstration is lost
                        if make_actor is None:
                            raise DemoAborted(f"seed {world_config.seed}: {exc}") from None
                        rejected += 1
                if now >= next_sample:
                    for cam in frames:
                        frames[cam].append(latest[cam].image)
                    poses.append(current.tcp_pose)
                    gripper.append(current.gripper)
                    next_sample += 1.0 / fps
                world.check()
                time.sleep(0.002)
        finally:
            loop.close()
        result, layout = world.result, world.layout
    if rejected:
        log.info("seed %d: the controller refused %d of the actor's chunks", world_config.seed, rejected)
    episode = Episode(instruction=layout.instruction, fps=fps, frames={cam: np.stack(f) for cam, f in frames.items()},
                      tcp_poses=np.stack(poses), gripper=np.array(gripper), success=result.success)
    return label_episode(episode, layout, relabelled=make_actor is not None)


def demo_file_name(seed: int, as_colour: str | None = None) -> str:
    """``episode_<seed>.npz``, or ``episode_<seed>_as_<colour>.npz`` for an other-target variant."""
    return f"episode_{seed:05d}.npz" if as_colour is None else f"episode_{seed:05d}_as_{as_colour}.npz"


def demo_seed(path: Path) -> int:
    """The scene seed of a :func:`demo_file_name` file."""
    return int(path.stem.split("_")[1])


def label_episode(episode: Episode, layout: SceneLayout, relabelled: bool = False) -> Episode:
    """``episode`` with the chunk the scripted expert plans from each recorded state as its actions
    (``expert_poses``/``expert_gripper``): the commanded targets, as datasets of real robots record the
    command beside the measured state. They carry no tracking lag (the arm trails its set-point), and
    the gripper label is the command (open or closed), not the fingers' width on their way there.
    The expert is replayed over the recorded states in order, so its memory (has it grasped?) follows
    the episode; for the expert's own demonstrations these are the plans it made while recording.
    ``relabelled``: another actor or instruction made the states (see :class:`Episode`)."""
    from video_policy_ros.sim.expert import make_expert

    expert = make_expert(layout)
    chunks = [expert.plan(pose, width, t / episode.fps)
              for t, (pose, width) in enumerate(zip(episode.tcp_poses, episode.gripper))]
    return dataclasses.replace(episode, expert_poses=np.stack([c.poses for c in chunks]),
                               expert_gripper=np.stack([c.gripper for c in chunks]), relabelled=relabelled)


def other_target_episodes(episode: Episode, layout: SceneLayout) -> dict[str, Episode]:
    """Per other cube's colour, the episode's recorded states instructed to use that cube, labelled by the expert for it.

    With one instruction per scene a network can read the demonstrated target off the layout in the
    image and never learn the colour word (the first BC baseline's chunks hardly changed with it). The
    same states under every instruction make the word the only way to the label: at the start the
    scenes are identical, later the arm is heading for the wrong cube and the label turns it round.
    Place episodes keep only the frames before the fingers first close (from a grasp of the wrong cube
    on, the expert would carry that cube)."""
    variants = {}
    for colour in layout.cube_positions:
        if colour == layout.target:
            continue
        other = dataclasses.replace(layout, target=colour)
        end = len(episode)
        if layout.task == "place":
            closing = np.flatnonzero(episode.expert_gripper[:, 0] == FINGERS_CLOSED)
            end = int(closing[0]) if len(closing) else end
        if end < 2:
            continue
        cut = Episode(other.instruction, episode.fps, {c: f[:end] for c, f in episode.frames.items()},
                      episode.tcp_poses[:end], episode.gripper[:end])
        variants[colour] = label_episode(cut, other, relabelled=True)
    return variants


def _expert_actor(expert) -> Actor:
    return lambda state, frames: expert.plan(state.tcp_pose, state.gripper, state.stamp)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    os.environ.setdefault("MUJOCO_GL", "egl")
    base = load_yaml(SimWorldConfig, default_config_path("sim_world"), {"robot_ip": args.robot_ip, "record_camera": None})
    if args.task:
        base = base.model_copy(update={"task": base.task.model_copy(update={"kind": args.task})})
    if args.size:
        w, h = args.size
        base = base.model_copy(update={"cameras": tuple(c.model_copy(update={"width": w, "height": h}) for c in base.cameras)})
    controller = load_yaml(ControllerConfig, default_config_path("controller"), {"robot_ip": args.robot_ip})
    successes = 0
    for i in tqdm(range(args.episodes), desc="demonstrations", unit="episode"):
        seed = args.first_seed + i
        try:
            episode = record_episode(base.model_copy(update={"seed": seed}), controller, args.fps)
        except DemoAborted as exc:  # not saved: an aborted demo is no demonstration; the others go on
            tqdm.write(f"aborted, not saved: {exc}")
            continue
        successes += bool(episode.success)
        path = episode.save(args.out / demo_file_name(seed))
        tqdm.write(f"{path}: {len(episode)} steps, {episode.instruction}, success={episode.success}")
        if args.other_targets:
            layout = sample_layout(seed, base.task)
            for colour, variant in other_target_episodes(episode, layout).items():
                variant.save(args.out / demo_file_name(seed, colour))
    print(f"{successes}/{args.episodes} successful demonstrations in {args.out.resolve()}")
    return 0 if successes == args.episodes else 1
