"""Rung a of the learning ladder: the demonstrations' actions, sent through a policy's action codec at the
policy's rate, solve their scenes again.

For each recorded demonstration (``episode_<seed>.npz`` from ``video-policy demos``) the same seed runs again in
the sim world, in process as ``demos`` runs it (franky-sim FR3, the controller core through franky). Every
``--period`` seconds (the execution horizon) a chunk is built, encoded with the checkpoint's action normaliser
(``--model``; without one, a ``step_delta`` normaliser fitted on the demonstrations, 32 steps, the tiny
preset's), decoded from the *measured* TCP pose exactly as a policy's output is, stamped with the observation's
time and handed to the controller ``--latency`` seconds later. Two sources of chunks:

- ``recorded``: the demonstration's own action at that moment of the episode (its frame ``round(t * fps)``),
  open loop. A recorded episode has no latency, and a delayed time-indexed replay drifts by construction
  (each chunk starts from where the demonstration was, not from where the arm is), so use ``--latency 0``:
  this checks the encoding and decoding, the chunk period and the controller's acceptance.
- ``expert``: the chunk a perfect policy would send, the expert's plan from the observed state, with the
  latency a learned policy has: this checks that the chunk timing and real-time splicing carry a policy that
  is ``--latency`` seconds late.

    python bench/ladder_replay.py --demos data/demos_raw --episodes 20 --source recorded --latency 0 --period 1.6
    python bench/ladder_replay.py --demos data/demos_raw --episodes 20 --source expert --latency 1.5 --period 1.6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from video_policy_ros.config import ControllerConfig, SimWorldConfig, default_config_path, load_yaml
from video_policy_ros.data.episode import Episode, list_episodes
from video_policy_ros.evaluation.stats import wilson_interval
from video_policy_ros.model.normalization import ActionNormalizer, Trajectory
from video_policy_ros.sim.demos import DemoAborted, Pacing, demo_seed, record_episode
from video_policy_ros.sim.scene import task_of
from video_policy_ros.types import ActionChunk


def _trajectory(demo: Episode) -> Trajectory:
    labels = (demo.expert_poses, demo.expert_gripper) if demo.expert_poses is not None else None
    return Trajectory(demo.tcp_poses, demo.gripper, labels)


def expert_actor(layout, normalizer: ActionNormalizer, horizon: int, dt: float):
    """The expert's plan from the observed state, through the codec (a perfect policy's chunk)."""
    from video_policy_ros.sim.expert import make_expert

    expert = make_expert(layout)

    def act(state, frames) -> ActionChunk:
        plan = expert.plan(state.tcp_pose, state.gripper, state.stamp)
        encoded = normalizer.encode_chunk(state.tcp_pose[None], np.array([state.gripper]),
                                          (plan.poses[None], plan.gripper[None]), t=0, horizon=horizon)
        poses, gripper = normalizer.decode_chunk(encoded, state.tcp_pose)
        return ActionChunk(stamp=state.stamp, dt=dt, poses=poses, gripper=gripper)

    return act


def replay_actor(demo: Episode, normalizer: ActionNormalizer, horizon: int):
    """An actor that sends, at episode time ``t``, the demonstration's chunk from frame ``round(t * fps)``."""
    started: list[float] = []
    trajectory = _trajectory(demo)  # the actions training uses
    dt = 1.0 / demo.fps

    def act(state, frames) -> ActionChunk:
        if not started:
            started.append(state.stamp)
        t = min(int(round((state.stamp - started[0]) * demo.fps)), len(demo) - 1)
        encoded = normalizer.encode_chunk(*trajectory, t=t, horizon=horizon)
        poses, gripper = normalizer.decode_chunk(encoded, state.tcp_pose)
        return ActionChunk(stamp=state.stamp, dt=dt, poses=poses, gripper=gripper)

    return act


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=Path, required=True, help="folder of episode_<seed>.npz (video-policy demos)")
    parser.add_argument("--model", type=Path, help="Video Policy checkpoint whose action codec to use")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--source", choices=["recorded", "expert"], default="recorded")
    parser.add_argument("--latency", type=float, default=0.0, help="s from observation to the controller")
    parser.add_argument("--period", type=float, default=1.6, help="s between chunks (the execution horizon)")
    parser.add_argument("--robot-ip", default="127.0.0.1")
    parser.add_argument("--out", type=Path, help="write the per-seed results here as JSON")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")

    files = list_episodes(args.demos)[: args.episodes]
    if args.model is not None:
        from video_policy_ros.model.checkpoint import load_checkpoint

        loaded = load_checkpoint(args.model)
        normalizer, horizon = loaded.normalizer, loaded.config.action.horizon
    else:
        demos = [Episode.load(f) for f in files]
        horizon = 32
        normalizer = ActionNormalizer.fit("step_delta", [_trajectory(d) for d in demos], horizon)
    base = load_yaml(SimWorldConfig, default_config_path("sim_world"), {"robot_ip": args.robot_ip, "record_camera": None})
    controller = load_yaml(ControllerConfig, default_config_path("controller"), {"robot_ip": args.robot_ip})
    results = []
    for path in files:
        demo = Episode.load(path)
        seed, kind = demo_seed(path), task_of(demo.instruction)
        world = base.model_copy(update={"seed": seed, "task": base.task.model_copy(update={"kind": kind})})
        started = time.monotonic()
        try:
            if args.source == "recorded":
                def make_actor(layout):
                    return replay_actor(demo, normalizer, horizon)
            else:
                def make_actor(layout):
                    return expert_actor(layout, normalizer, horizon, 1.0 / demo.fps)
            episode = record_episode(world, controller, demo.fps, make_actor,
                                     Pacing(period_s=args.period, latency_s=args.latency))
            success, error = bool(episode.success), None
        except DemoAborted as exc:
            success, error = False, str(exc)
        results.append({"seed": seed, "task": kind, "success": success, "error": error,
                        "wall_s": round(time.monotonic() - started, 1)})
        print(f"seed {seed} {kind}: {'success' if success else 'FAILURE'}{f' ({error})' if error else ''}", flush=True)
    for kind in ("touch", "place"):
        runs = [r for r in results if r["task"] == kind]
        if runs:
            k = sum(r["success"] for r in runs)
            lo, hi = wilson_interval(k, len(runs))
            print(f"{args.source} {kind}: {k}/{len(runs)} (95 % CI {lo:.0%}-{hi:.0%}), latency {args.latency:g} s, "
                  f"period {args.period:g} s")
    if args.out:
        args.out.write_text(json.dumps({"source": args.source, "latency_s": args.latency, "period_s": args.period,
                                        "results": results}, indent=2))
        print(f"results: {args.out.resolve()}")
    return 0 if all(r["success"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
