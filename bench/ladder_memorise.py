"""Rung b of the learning ladder: a policy trained on 4 seeds (2 per task) solves those seeds in closed loop.

One command runs the rung end to end, each step through the user's own commands (so it checks them too), and
all four seeds are trained on (``--val-episodes 0``; by default both trainers hold their last episodes out):

1. ``video-policy demos --task mixed`` from seed 0 until two demonstrations of each task are saved (kept in
   ``--demos``, by default ``OUT/demos``; a rerun reuses them), and the four linked into ``OUT/train``;
2. ``video-policy train`` (the Video Policy: two stages, or ``--init`` a stage-1 checkpoint and train the head
   alone) or ``video-policy train-bc``, into ``OUT/model``;
3. ``video-policy eval --seeds <the four> --task mixed`` on that checkpoint.

It prints the success count with its 95 % Wilson interval, PASS (at least 3 of 4) or NOT PASSED, and writes
``OUT/memorise.json``. Takes 25-40 minutes on the 2-core CPU, most of it training:

    python bench/ladder_memorise.py --policy video_policy --out runs/memorise_vp --config models/recipes/sim_cpu.yaml
    python bench/ladder_memorise.py --policy video_policy --out runs/memorise_vp2 --demos runs/memorise_vp/demos \\
        --init runs/memorise_vp/model/stage1 --config my_head.yaml      # another stage 2 on the same stage 1
    python bench/ladder_memorise.py --policy bc --out runs/memorise_bc --steps 3000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from video_policy_ros.data.episode import Episode
from video_policy_ros.evaluation.stats import SuccessRate
from video_policy_ros.sim.demos import demo_file_name
from video_policy_ros.sim.scene import task_of

PER_TASK = 2
PASS_AT = 3


def video_policy_command(args: argparse.Namespace) -> list[str]:
    common = ["--batch-size", str(args.batch_size), "--threads", str(args.threads), "--eval-every", "0",
              "--val-episodes", "0"]
    if args.config:
        common += ["--config", str(args.config)]
    if args.init:
        return ["train", "--mode", "head", "--init", str(args.init), "--steps", str(args.head_steps), *common]
    return ["train", "--steps", str(args.steps), "--head-steps", str(args.head_steps), *common]


def bc_command(args: argparse.Namespace) -> list[str]:
    return ["train-bc", "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--threads", str(args.threads), "--val-episodes", "0"]


def cli(*arguments: str, ok: tuple[int, ...] = (0,)) -> None:
    """``video-policy arguments...``; an exit code outside ``ok`` ends this script with one error line."""
    command = [sys.executable, "-m", "video_policy_ros.cli", *arguments]
    print("$ video-policy " + " ".join(arguments), flush=True)
    if subprocess.run(command).returncode not in ok:
        raise SystemExit(f"error: `video-policy {arguments[0]}` failed (its output is above)")


def success_rate(summary: Path) -> SuccessRate:
    """The successes among the episodes of a ``video-policy eval`` summary."""
    episodes = json.loads(summary.read_text())["episodes"]
    return SuccessRate(sum(e["success"] for e in episodes), len(episodes))


def collect(demos: Path, max_seeds: int) -> list[int]:
    """The first ``PER_TASK`` demonstrations of each task from seed 0 on, recording the missing ones (a seed
    whose demonstration aborts is skipped)."""
    by_task: dict[str, list[int]] = {"touch": [], "place": []}
    for seed in range(max_seeds):
        path = demos / demo_file_name(seed)
        if not path.exists():
            cli("demos", "--out", str(demos), "--episodes", "1", "--first-seed", str(seed), "--task", "mixed")
        if not path.exists():
            continue
        task = task_of(Episode.load(path).instruction)
        if len(by_task[task]) < PER_TASK:
            by_task[task].append(seed)
        if all(len(seeds) == PER_TASK for seeds in by_task.values()):
            return sorted(by_task["touch"] + by_task["place"])
    raise SystemExit(f"error: seeds 0-{max_seeds - 1} gave fewer than {PER_TASK} demonstrations of each task")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", choices=("video_policy", "bc"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--demos", type=Path,
                        help="folder of the demonstrations, reused when there (default: OUT/demos)")
    parser.add_argument("--config", type=Path, help="video_policy: a --config YAML for `video-policy train`")
    parser.add_argument("--init", type=Path, help="video_policy: a stage-1 checkpoint; train only the head on it")
    parser.add_argument("--steps", type=int, default=800, help="stage-1 steps (video_policy) or BC steps")
    parser.add_argument("--head-steps", type=int, default=2400, help="video_policy: stage-2 steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--guidance", type=float, default=1.0, help="video_policy: guidance at evaluation")
    parser.add_argument("--timeout", type=float, default=40.0, help="seconds per evaluation episode")
    args = parser.parse_args()

    started = time.monotonic()
    demos = args.demos or args.out / "demos"
    seeds = collect(demos, max_seeds=12)
    train_dir = args.out / "train"
    train_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        link = train_dir / demo_file_name(seed)
        if not link.exists():
            link.symlink_to((demos / demo_file_name(seed)).resolve())
    model = args.out / "model"
    command = video_policy_command(args) if args.policy == "video_policy" else bc_command(args)
    cli(*command, "--data", str(train_dir), "--out", str(model))
    evaluation = ["eval", "--policy", args.policy, "--model", str(model), "--seeds", *map(str, seeds),
                  "--task", "mixed", "--timeout", str(args.timeout), "--out", str(args.out / "eval")]
    if args.policy == "video_policy":
        evaluation += ["--guidance", str(args.guidance)]
    cli(*evaluation)

    episodes = json.loads((args.out / "eval" / "summary.json").read_text())["episodes"]
    rate = success_rate(args.out / "eval" / "summary.json")
    verdict = "PASS" if rate.successes >= PASS_AT else "NOT PASSED"
    result = {"policy": args.policy, "seeds": seeds, "training": command, "success_rate": rate.to_dict(),
              "verdict": verdict, "per_seed": {e["seed"]: e["success"] for e in episodes},
              "minutes": round((time.monotonic() - started) / 60, 1)}
    (args.out / "memorise.json").write_text(json.dumps(result, indent=2))
    print(f"memorise ({args.policy}, seeds {seeds}): {rate}: {verdict} (needs {PASS_AT} of {rate.episodes})")
    print(f"result: {(args.out / 'memorise.json').resolve()}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
