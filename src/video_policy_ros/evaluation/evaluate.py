"""``video-policy eval``: closed-loop success rate of any policy on held-out sim seeds.

Every episode runs through the ROS graph that ``video-policy run`` composes (same
YAML files, same overrides): the sim world in a child process, the controller and
inference nodes in this one. It writes, under ``--out``:

- ``episode_<seed>.mp4``: the front camera beside the policy's predicted video;
- ``summary.json``: per-episode results and the success rate per task with a 95 % Wilson interval.

Demonstrations (``video-policy demos``) use seeds from 0; evaluation starts at
``--first-seed`` (10000 by default) so that its scenes are held out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from video_policy_ros.errors import StackError
from video_policy_ros.evaluation.stats import success_rates

HELD_OUT_FIRST_SEED = 10000


class EvaluationError(StackError):
    """The evaluation cannot start; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", choices=["scripted_expert", "video_policy", "bc"], default="scripted_expert")
    parser.add_argument("--model", type=Path, help="checkpoint folder for --policy video_policy or bc")
    parser.add_argument("--episodes", type=int, default=20, help="number of episodes (one seed each)")
    parser.add_argument("--first-seed", type=int, default=HELD_OUT_FIRST_SEED, help="episode i uses seed first_seed + i")
    parser.add_argument("--seeds", type=int, nargs="+", help="these seeds instead of --first-seed/--episodes (e.g. the "
                        "training seeds of a memorisation check)")
    parser.add_argument("--task", choices=["touch", "place", "mixed"], default="mixed",
                        help="task of every episode; mixed: picked per seed")
    parser.add_argument("--timeout", type=float, help="seconds before an episode counts as failed (default: the YAML's)")
    parser.add_argument("--out", type=Path, help="output folder (default: outputs/eval_<policy>_<time>)")
    parser.add_argument("--no-video", action="store_true", help="do not write the per-episode mp4s")
    parser.add_argument("--num-steps", type=int, help="video_policy: sampler steps")
    parser.add_argument("--guidance", type=float, help="video_policy: classifier-free guidance (1 = off)")
    parser.add_argument("--robot-ip", help="loopback address the sim world serves (default: the controller YAML's)")
    parser.add_argument("--config-dir", type=Path, help="folder with sim_world/controller/inference.yaml")


def _episode_configs(args: argparse.Namespace, seed: int) -> dict:
    """The configs ``video-policy run --seed <seed>`` would use, with this evaluation's task."""
    from video_policy_ros.nodes.graph import load_configs

    run_args = argparse.Namespace(
        use_sim=True, robot_ip=args.robot_ip, policy=args.policy, model=args.model, cameras=None, seed=seed,
        num_steps=args.num_steps, guidance=args.guidance, config_dir=args.config_dir, output_dir=args.out,
        timeout=args.timeout,
    )
    configs = load_configs(run_args)
    sim = configs["sim_world"]
    configs["sim_world"] = sim.model_copy(update={"task": sim.task.model_copy(update={"kind": args.task})})
    return configs


def _predicted_frames(args: argparse.Namespace, publishes_video: bool) -> int | None:
    """Frames per predicted video of the evaluated policy (None: it predicts none)."""
    if args.policy != "video_policy" or not publishes_video:
        return None
    from video_policy_ros.model.checkpoint import read_config

    return read_config(args.model)[0].frames_per_camera


def check_policy_loads(args: argparse.Namespace) -> None:
    """Fail before the first episode, with one line, when the checkpoint cannot be loaded."""
    from video_policy_ros.model.checkpoint import CheckpointError
    from video_policy_ros.policies import build_policy

    try:
        build_policy(_episode_configs(args, seeds_of(args)[0])["inference"])
    except CheckpointError as exc:
        raise EvaluationError(f"--model {args.model}: {exc}") from None


def evaluate(args: argparse.Namespace) -> Path:
    """Run the episodes; returns the path of summary.json."""
    from tqdm import tqdm

    from video_policy_ros.nodes.episode_runner import EpisodeSpec, run_episode
    from video_policy_ros.sim.scene import sample_layout

    if args.policy != "scripted_expert":
        check_policy_loads(args)
    episodes: list[dict] = []
    progress = tqdm(seeds_of(args), desc=f"eval {args.policy}", unit="episode")
    for seed in progress:
        configs = _episode_configs(args, seed)
        layout = sample_layout(seed, configs["sim_world"].task)
        spec = EpisodeSpec(
            sim_world=configs["sim_world"], controller=configs["controller"], inference=configs["inference"],
            video_path=None if args.no_video else args.out / f"episode_{seed:05d}.mp4",
            predicted_frames=_predicted_frames(args, configs["inference"].publish_predicted_video),
        )
        outcome = run_episode(spec)
        success = bool(outcome.result and outcome.result.success)
        episodes.append({
            "seed": seed, "task": layout.task, "instruction": layout.instruction, "success": success,
            "result": asdict(outcome.result) if outcome.result else None, "error": outcome.error,
            "chunks": outcome.chunks, "wall_s": round(outcome.wall_s, 2),
            "video": str(outcome.video.resolve()) if outcome.video else None,
        })
        tqdm.write(f"seed {seed}: {outcome.result.summary() if outcome.result else 'ERROR: ' + outcome.error}"
                   f" ({outcome.chunks} chunks)" + (f"; video {outcome.video.resolve()}" if outcome.video else ""))
        progress.set_postfix(successes=sum(e["success"] for e in episodes))
        path = write_summary(args, episodes)  # after every episode: an interrupted evaluation keeps what it measured
    return path


def seeds_of(args: argparse.Namespace) -> list[int]:
    return list(args.seeds) if args.seeds else list(range(args.first_seed, args.first_seed + args.episodes))


def write_summary(args: argparse.Namespace, episodes: list[dict]) -> Path:
    summary = {
        "policy": args.policy, "model": str(args.model) if args.model else None, "task": args.task,
        "seeds": seeds_of(args), "episodes_done": len(episodes),
        "success_rate": {task: rate.to_dict() for task, rate in _rates(episodes).items()},
        "episodes": episodes,
    }
    path = args.out / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    return path


def _rates(episodes: list[dict]) -> dict:
    return success_rates([(e["task"], e["success"]) for e in episodes])


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if args.episodes < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    args.out = args.out or Path("outputs") / f"eval_{args.policy}_{time.strftime('%Y%m%d-%H%M%S')}"
    args.out.mkdir(parents=True, exist_ok=True)
    from video_policy_ros.nodes.base import configure_process

    configure_process()
    try:
        path = evaluate(args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        path = args.out / "summary.json"
        print(f"interrupted; the finished episodes are in {path.resolve()}", file=sys.stderr)
        return 130
    episodes = json.loads(path.read_text())["episodes"]
    for task, rate in _rates(episodes).items():
        print(f"{args.policy} {task}: {rate}")
    print(f"summary: {path.resolve()}")
    return 1 if any(e["error"] for e in episodes) else 0
