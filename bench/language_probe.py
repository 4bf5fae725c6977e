"""Does a checkpoint's chunk follow the colour word? Offline, on recorded episodes' states.

    PYTHONPATH=src python bench/language_probe.py --policy bc --model runs/bc --data data/probe [--at 0 0.25] [--guidance 1]

For each episode (``episode_<seed>.npz`` from ``video-policy demos``; the seed gives the scene layout) and each
``--at`` fraction of its length, the policy is asked for a chunk from the recorded frames and state under the
instruction for *every* cube of the scene (same task). Printed per instruction kind (the demonstrated one and
the others): the distance of the chunk's last TCP target to the scripted expert's for that instruction (mm),
and how often the chunk heads for the named cube (its displacement points closer to the named cube's direction
than to any other cube's). A policy that ignores the word heads for the demonstrated cube under every
instruction: "named cube" near 100 % for the demonstrated instruction and near 0 % for the others.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from video_policy_ros.config import InferenceConfig, TaskConfig
from video_policy_ros.data.episode import Episode
from video_policy_ros.policies import build_policy
from video_policy_ros.sim.expert import make_expert
from video_policy_ros.sim.demos import demo_seed
from video_policy_ros.sim.scene import sample_layout, task_of
from video_policy_ros.types import CameraFrame, Observation


def heads_for(start: np.ndarray, end: np.ndarray, cubes: dict[str, np.ndarray]) -> str:
    """The cube whose direction (in the table plane) is closest to the chunk's displacement."""
    move = end[:2] - start[:2]
    def cosine(c):
        to_cube = cubes[c][:2] - start[:2]
        return float(move @ to_cube / (np.linalg.norm(move) * np.linalg.norm(to_cube) + 1e-9))
    return max(cubes, key=cosine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", choices=["bc", "video_policy"], required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="folder of episode_<seed>.npz (video-policy demos)")
    parser.add_argument("--at", type=float, nargs="+", default=[0.0, 0.25], help="fractions of each episode to probe")
    parser.add_argument("--num-steps", type=int, help="video_policy: sampler steps")
    parser.add_argument("--guidance", type=float, help="video_policy: CFG scale (1 = the conditional model alone; "
                        "default: the checkpoint's)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    policy = build_policy(InferenceConfig(policy=args.policy, model=args.model, num_steps=args.num_steps,
                                          guidance=args.guidance, publish_predicted_video=False, backend="torch"))
    rows = {"demonstrated": [], "other": []}
    files = sorted(p for p in args.data.glob("episode_*.npz") if "_as_" not in p.stem)  # not the variants
    for path in files:
        episode = Episode.load(path)
        layout = sample_layout(demo_seed(path), TaskConfig(kind=task_of(episode.instruction)))
        for fraction in args.at:
            t = int(fraction * (len(episode) - 1))
            pose, width = episode.tcp_poses[t], float(episode.gripper[t])
            frames = {c: CameraFrame(c, t / episode.fps + 1.0, f[t]) for c, f in episode.frames.items()}
            for colour in layout.cube_positions:
                instructed = dataclasses.replace(layout, target=colour)
                policy.reset()
                chunk = policy.predict(Observation(frames, pose, width, instructed.instruction, t / episode.fps + 1.0)).chunk
                expert = make_expert(instructed).plan(pose, width, t / episode.fps).poses[-1, :3]
                kind_row = "demonstrated" if instructed.instruction == episode.instruction else "other"
                rows[kind_row].append((1000 * np.linalg.norm(chunk.poses[-1, :3] - expert),
                                       heads_for(pose, chunk.poses[-1], layout.cube_positions) == colour))
    print(f"{args.model} ({args.policy}), {len(files)} episodes at {args.at} of their length:")
    for kind_row, values in rows.items():
        error, named = np.array(values).T
        print(f"  {kind_row:>12} instruction: last target {np.median(error):6.1f} mm from the expert's (median), "
              f"heads for the named cube {named.mean():5.0%} of {len(values)}")


if __name__ == "__main__":
    main()
