"""``video-policy dagger``: a learned policy drives the sim episodes, the privileged expert labels them.

DAgger (Ross et al. 2011): behaviour cloning only ever sees the states the expert visits, so a
policy that drifts off them meets states it never learned. Here the policy (``--policy bc`` or
``video_policy``) acts, in process as ``video-policy demos`` runs it, and at every recorded frame
the scripted expert (which can plan from any state: it reads the scene layout) writes down the
chunk it would have sent. Training on the demonstrations plus these episodes (``--data DEMOS
ROUND1 ...``) teaches the policy to recover from its own mistakes; repeat with the new checkpoint.

    video-policy dagger --policy bc --model runs/bc --out data/dagger1 --episodes 40 --first-seed 1000

``--expert-share p`` lets the expert drive a fraction ``p`` of the chunks (DAgger's beta), so the
first round's states stay closer to the task. Seeds from 10000 are the evaluation's: keep clear.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from video_policy_ros.config import ControllerConfig, InferenceConfig, SimWorldConfig, default_config_path, load_yaml
from video_policy_ros.errors import StackError
from video_policy_ros.evaluation.evaluate import HELD_OUT_FIRST_SEED
from video_policy_ros.sim.demos import DemoAborted, Pacing, record_episode
from video_policy_ros.types import Observation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", choices=["bc", "video_policy"], required=True)
    parser.add_argument("--model", type=Path, required=True, help="the checkpoint that drives")
    parser.add_argument("--out", type=Path, required=True, help="folder for the labelled episode files")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1000, help="episode i uses seed first_seed + i")
    parser.add_argument("--task", choices=["touch", "place", "mixed"], default="mixed")
    parser.add_argument("--expert-share", type=float, default=0.0, help="fraction of chunks the expert sends (beta)")
    parser.add_argument("--fps", type=float, default=10.0, help="recording rate (the policy's)")
    parser.add_argument("--timeout", type=float, help="seconds per episode (default: the sim world YAML's task timeout)")
    parser.add_argument("--num-steps", type=int, help="video_policy: sampler steps")
    parser.add_argument("--robot-ip", default="127.0.0.1")


def policy_actor(policy, instruction: str, expert, expert_share: float, rng: np.random.Generator):
    """The policy's chunk for each state (or, with probability ``expert_share``, the expert's)."""

    def act(state, frames):
        if rng.random() < expert_share:
            return expert.plan(state.tcp_pose, state.gripper, state.stamp)
        observation = Observation({c: frames[c] for c in policy.camera_names}, state.tcp_pose, state.gripper,
                                  instruction, stamp=state.stamp)
        return policy.predict(observation).chunk

    return act


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from video_policy_ros.policies import build_policy
    from video_policy_ros.sim.expert import make_expert

    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.first_seed + args.episodes > HELD_OUT_FIRST_SEED and args.first_seed < HELD_OUT_FIRST_SEED + 100_000:
        raise StackError(f"--first-seed {args.first_seed}: seeds from {HELD_OUT_FIRST_SEED} are held out for "
                         "video-policy eval; pick seeds below it")
    if not 0.0 <= args.expert_share <= 1.0:
        raise StackError(f"--expert-share {args.expert_share}: a fraction, 0 to 1")
    inference = InferenceConfig(policy=args.policy, model=args.model.resolve(), num_steps=args.num_steps,
                                publish_predicted_video=False)
    policy = build_policy(inference)
    timing = policy.timing
    period = timing.execute_s if timing is not None else None  # BC: half its chunk, as the inference node runs it
    base = load_yaml(SimWorldConfig, default_config_path("sim_world"),
                     {"robot_ip": args.robot_ip, "record_camera": None})
    task = {"kind": args.task} | ({"timeout_s": args.timeout} if args.timeout else {})
    base = base.model_copy(update={"task": base.task.model_copy(update=task)})
    controller = load_yaml(ControllerConfig, default_config_path("controller"), {"robot_ip": args.robot_ip})
    rng = np.random.default_rng(args.first_seed)
    successes = 0
    for i in tqdm(range(args.episodes), desc="dagger", unit="episode"):
        seed = args.first_seed + i
        world = base.model_copy(update={"seed": seed})

        def make_actor(layout):
            policy.reset()
            return policy_actor(policy, layout.instruction, make_expert(layout), args.expert_share, rng)

        if period is None:
            chunk = policy.predict(_probe_observation(policy)).chunk
            period = len(chunk) * chunk.dt / 2
        try:
            episode = record_episode(world, controller, args.fps, make_actor, Pacing(period_s=period))
        except DemoAborted as exc:
            tqdm.write(f"seed {seed}: aborted, not saved: {exc}")
            continue
        successes += bool(episode.success)
        path = episode.save(args.out / f"dagger_{seed:05d}.npz")
        tqdm.write(f"{path}: {len(episode)} labelled steps, {episode.instruction}, policy success={episode.success}")
    print(f"the policy succeeded in {successes}/{args.episodes} episodes; labelled episodes in {args.out.resolve()}")
    return 0


def _probe_observation(policy) -> Observation:
    from video_policy_ros.runtime.realtime import warmup_observation

    return warmup_observation(policy, policy.camera_names, "touch the red cube", 0.0)
