"""Rung c of the learning ladder: the Video Policy and BC, trained on the same demonstrations, on held-out seeds.

One command runs the rung through the user's own commands, and a rerun goes on where the last one stopped (each
step checks what is already on disk), so it can be spread over several sittings of a 2-core machine:

1. ``video-policy demos --task mixed --other-targets`` until seeds ``0 .. --episodes - 1`` are recorded (in
   ``--demos``; a cut-off run goes on from the seed after the last one saved);
2. the Video Policy's stage 1 (``--mode video``: the relabelled variants are left out by the trainer) and stage 2
   (``--mode head``, on every episode) into ``OUT/video_policy``, each resumed until its steps are done;
3. BC (``train-bc``) on the same folder into ``OUT/bc``;
4. ``video-policy eval`` of each policy on ``--eval-episodes`` held-out seeds per task (from 10000, never trained or
   tuned on), into ``OUT/eval_<policy>_<task>``.

``--max-minutes`` bounds one sitting: the trainings get what is left of it and save before it ends; then the
command stops and says so. It prints each policy's success per task with its 95 % Wilson interval and writes
``OUT/generalise.json``:

    python bench/ladder_generalise.py --out runs/generalise --demos data/demos --config models/recipes/sim_cpu.yaml \\
        --max-minutes 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ladder_memorise import cli, success_rate

from video_policy_ros.evaluation.stats import SuccessRate
from video_policy_ros.sim.demos import demo_seed

TASKS = ("touch", "place")
BC_MINUTES = 30.0  # issue 19: BC trains in at most 30 minutes on this CPU


class Sitting:
    """The minutes left of this sitting's ``--max-minutes``."""

    def __init__(self, max_minutes: float | None):
        self.deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes

    def minutes_left(self) -> float | None:
        return None if self.deadline is None else (self.deadline - time.monotonic()) / 60

    def over(self) -> bool:
        left = self.minutes_left()
        return left is not None and left < 1


def record_demos(demos: Path, episodes: int, sitting: Sitting, robot_ip: str, batch: int = 10) -> bool:
    """Seeds from the one after the last saved, ``batch`` at a time while the sitting lasts; True when done.
    (A seed whose demonstration failed is not retried: ``demos`` exits 1 and says which.)"""
    while True:
        saved = [demo_seed(p) for p in demos.glob("episode_*.npz") if "_as_" not in p.name] if demos.exists() else []
        first = max(saved, default=-1) + 1
        if first >= episodes:
            return True
        if sitting.over():
            return False
        cli("demos", "--out", str(demos), "--episodes", str(min(batch, episodes - first)), "--first-seed", str(first),
            "--task", "mixed", "--other-targets", "--robot-ip", robot_ip, ok=(0, 1))


def trained_steps(folder: Path) -> int:
    meta = folder / "meta.json"
    return json.loads(meta.read_text())["step"] if meta.exists() else 0


def train_stage(out: Path, steps: int, mode: str, common: list[str], sitting: Sitting, init: Path | None = None) -> bool:
    """One stage to ``steps`` (resumed when started); True when done."""
    done = trained_steps(out)
    if done >= steps:
        return True
    start = ["--resume"] if done else (["--init", str(init)] if init else [])
    budget = sitting.minutes_left()
    cli("train", "--mode", mode, "--out", str(out), "--steps", str(steps), *start, *common,
        *(["--max-minutes", f"{budget:.1f}"] if budget is not None else []))
    return trained_steps(out) >= steps


def train_bc(out: Path, args: argparse.Namespace, sitting: Sitting) -> bool:
    """BC in one go (it has no --resume): within 30 minutes, and only when the sitting has them; True when done.
    A finished run leaves ``OUT/bc/finished.json`` (a run cut off mid-way leaves its last save, not that)."""
    finished = out / "finished.json"
    if finished.exists():
        return True
    left = sitting.minutes_left()
    if left is not None and left < BC_MINUTES:
        return False
    started = time.monotonic()
    cli("train-bc", "--data", str(args.demos), "--out", str(out), "--steps", str(args.bc_steps),
        "--threads", str(args.threads), "--max-minutes", str(BC_MINUTES))
    steps = json.loads((out / "bc_config.json").read_text())["trained_steps"]
    finished.write_text(json.dumps({"steps": steps, "minutes": round((time.monotonic() - started) / 60, 1)}))
    return True


def evaluate(policy: str, model: Path, task: str, args: argparse.Namespace) -> SuccessRate:
    out = args.out / f"eval_{policy}_{task}"
    summary = out / "summary.json"
    if not summary.exists() or not complete(json.loads(summary.read_text()), args.eval_episodes):
        command = ["eval", "--policy", policy, "--model", str(model), "--task", task,
                   "--episodes", str(args.eval_episodes), "--out", str(out), "--robot-ip", args.robot_ip]
        command += ["--guidance", str(args.guidance)] if policy == "video_policy" else []
        cli(*command, *(["--timeout", str(args.timeout)] if args.timeout else []))
    return success_rate(summary)


def complete(summary: dict, episodes: int) -> bool:
    """All episodes ran, none ended in an error of the stack (a failed task is a result, an error is not)."""
    return len(summary["episodes"]) >= episodes and not any(e.get("error") for e in summary["episodes"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--demos", type=Path, required=True, help="folder of the demonstrations (recorded if missing)")
    parser.add_argument("--episodes", type=int, default=200, help="training seeds 0 .. N-1")
    parser.add_argument("--config", type=Path, required=True, help="the Video Policy's --config YAML")
    parser.add_argument("--video-steps", type=int, default=2700, help="stage 1 steps")
    parser.add_argument("--head-steps", type=int, default=4800, help="stage 2 steps")
    parser.add_argument("--batch-size", type=int, default=16, help="the Video Policy's batch")
    parser.add_argument("--bc-steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-episodes", type=int, default=20, help="held-out seeds per task")
    parser.add_argument("--guidance", type=float, default=1.0, help="the Video Policy's guidance at evaluation")
    parser.add_argument("--timeout", type=float, help="seconds per evaluation episode (default: the YAML's)")
    parser.add_argument("--robot-ip", default="127.0.0.1",
                        help="loopback address of the sim world (another one for a second sim world beside it)")
    parser.add_argument("--max-minutes", type=float, help="stop this sitting after about this long; rerun to go on")
    args = parser.parse_args()

    sitting = Sitting(args.max_minutes)
    common = ["--data", str(args.demos), "--config", str(args.config), "--batch-size", str(args.batch_size),
              "--threads", str(args.threads), "--eval-every", "0"]
    video_policy, stage1, bc = args.out / "video_policy", args.out / "video_policy" / "stage1", args.out / "bc"
    ready = (record_demos(args.demos, args.episodes, sitting, args.robot_ip)
             and not sitting.over() and train_stage(stage1, args.video_steps, "video", common, sitting)
             and not sitting.over() and train_stage(video_policy, args.head_steps, "head", common, sitting, init=stage1)
             and train_bc(bc, args, sitting))
    if not ready:
        print(f"stopped after --max-minutes {args.max_minutes:g}: rerun this command to go on where it stopped")
        return 3

    results = {}
    for policy, model in (("video_policy", video_policy), ("bc", bc)):
        for task in TASKS:
            rate = evaluate(policy, model, task, args)
            results.setdefault(policy, {})[task] = rate.to_dict()
            print(f"{policy:13s} {task:6s} {rate}")
    summary = {"demos": str(args.demos), "episodes": args.episodes, "config": str(args.config),
               "video_steps": args.video_steps, "head_steps": args.head_steps, "bc_steps": args.bc_steps,
               "guidance": args.guidance, "success_rate": results}
    (args.out / "generalise.json").write_text(json.dumps(summary, indent=2))
    print(f"result: {(args.out / 'generalise.json').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
