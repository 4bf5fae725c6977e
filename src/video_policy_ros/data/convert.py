"""``video-policy convert``: recorded bags (and plain mp4 videos) → the training dataset.

    video-policy convert data/bags --out data/demos --model-config tiny.yaml
    video-policy convert data/bags/episode_X --videos-dir clips/ --out data/demos --size 64 64

Inputs may be bag folders, ``.mcap`` files, folders of bags (``discarded/`` is skipped),
folders of ``.mp4`` files (action-free videos; the instruction is read from a
``<name>.txt`` beside each video, else ``--instruction``) and episode ``.npz`` files
(e.g. ``video-policy demos`` output recorded at camera resolution, to resize or to
drop cameras or actions). Each input becomes
``<out>/<name>.npz`` (data/episode.py), written whole or not at all; existing files are
kept unless ``--overwrite``. ``<out>/stats.json`` holds the normalisation statistics.
Warnings (dropped frames, clock jumps, truncated bags) are printed per input; an input
that cannot be converted is reported and the others are still written.
"""

from __future__ import annotations

import dataclasses

import argparse
import sys
from pathlib import Path

import numpy as np

from video_policy_ros.data.bag_reader import BagReadError, read_bag
from video_policy_ros.data.converter import ConversionError, ConvertOptions, convert_bag
from video_policy_ros.data.frames import resize
from video_policy_ros.data.episode import Episode, EpisodeError
from video_policy_ros.data.recording import DISCARDED_FOLDER
from video_policy_ros.data.stats import write_stats
from video_policy_ros.errors import StackError


def _is_bag(path: Path) -> bool:
    return path.suffix == ".mcap" or (path.is_dir() and ((path / "metadata.yaml").is_file() or any(path.glob("*.mcap"))))


FILE_INPUTS = (".mcap", ".mp4", ".npz")


def find_inputs(paths: list[Path]) -> list[Path]:
    """Bags, mp4 and episode files named by ``paths``, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ConversionError(f"input not found: {path}")
        if _is_bag(path) or path.suffix in FILE_INPUTS:
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.name != DISCARDED_FOLDER and (_is_bag(p) or p.suffix in FILE_INPUTS))
        else:
            raise ConversionError(f"{path}: not a bag folder, .mcap, .mp4 or episode .npz file")
    if not found:
        raise ConversionError(f"no bags, .mp4 videos or episode .npz files in {', '.join(map(str, paths))}")
    return found


def video_to_episode(path: Path, opts: ConvertOptions, camera: str) -> Episode:
    """An mp4 → an action-free episode resampled to ``opts.fps``."""
    import imageio.v2 as imageio

    try:
        with imageio.get_reader(path) as reader:
            source_fps = float(reader.get_meta_data().get("fps") or 0)
            images = [resize(np.asarray(f, np.uint8)[..., :3], opts.image_size) for f in reader]
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConversionError(f"cannot read video {path}: {exc}") from None
    if source_fps <= 0 or len(images) < 2:
        raise ConversionError(f"{path}: {len(images)} frame(s) at {source_fps} fps; a video needs 2 frames and a frame rate")
    steps = int(np.floor((len(images) - 1) / source_fps * opts.fps)) + 1
    picks = np.minimum(np.round(np.arange(steps) / opts.fps * source_fps).astype(int), len(images) - 1)
    text_file = path.with_suffix(".txt")
    instruction = opts.instruction if opts.instruction is not None else (
        text_file.read_text().strip() if text_file.is_file() else "")
    return Episode(instruction, opts.fps, {camera: np.stack([images[i] for i in picks])})


def reshape_episode(path: Path, opts: ConvertOptions) -> Episode:
    """An episode file → the same episode with ``opts``' cameras and frame size."""
    episode = Episode.load(path)
    if abs(episode.fps - opts.fps) > 1e-6:
        raise ConversionError(f"{path}: recorded at {episode.fps:g} fps, not --fps {opts.fps:g}; an episode file is "
                              "not resampled (record it at the policy rate, or convert its bag)")
    cameras = opts.cameras or episode.camera_names
    missing = [c for c in cameras if c not in episode.frames]
    if missing:
        raise ConversionError(f"{path}: no camera(s) {missing} (it has {list(episode.frames)})")
    frames = {c: np.stack([resize(f, opts.image_size) for f in episode.frames[c]]) for c in cameras}
    instruction = opts.instruction if opts.instruction is not None else episode.instruction
    return dataclasses.replace(episode, instruction=instruction, frames=frames)


def convert_one(path: Path, opts: ConvertOptions, video_camera: str) -> tuple[Episode, list[str]]:
    if path.suffix == ".npz":
        return reshape_episode(path, opts), []
    if path.suffix == ".mp4":
        episode = video_to_episode(path, opts, video_camera)
        return episode, ([] if episode.instruction else [f"no instruction ({path.with_suffix('.txt').name} or --instruction)"])
    result = convert_bag(read_bag(path), opts)
    return result.episode, result.warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", type=Path, nargs="+", help="bag folders, .mcap files, folders of bags or of .mp4 videos")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (Episode .npz files + stats.json)")
    parser.add_argument("--fps", type=float, default=10.0, help="policy rate: steps per second in the episodes")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="frame size (default: --model-config's)")
    parser.add_argument("--model-config", type=Path, help="Video Policy config YAML: frame size and cameras")
    parser.add_argument("--cameras", help="comma-separated cameras to keep (default: the model config's, or all)")
    parser.add_argument("--instruction", help="task text for every input (default: the recorded one)")
    parser.add_argument("--video-camera", default="front", help="camera name given to mp4 videos")
    parser.add_argument("--action-free", action="store_true",
                        help="drop the actions: video-only episodes (stage 1 / the action-free ablation)")
    parser.add_argument("--include-failures", action="store_true", help="keep episodes recorded as failures")
    parser.add_argument("--overwrite", action="store_true", help="replace existing episode files")


def _options(args: argparse.Namespace) -> ConvertOptions:
    size = tuple(args.size) if args.size else None
    cameras = tuple(c.strip() for c in args.cameras.split(",")) if args.cameras else None
    if args.model_config is not None:
        from video_policy_ros.model.config import VideoPolicyConfig

        try:
            model = VideoPolicyConfig.from_yaml(args.model_config)
        except (OSError, ValueError) as exc:
            raise ConversionError(f"--model-config {args.model_config}: {str(exc).splitlines()[0]}") from None
        size, cameras = size or tuple(model.image_size), cameras or tuple(model.cameras)
    if args.fps <= 0 or (size is not None and min(size) < 1):
        raise ConversionError(f"--fps and --size must be positive (got {args.fps}, {size})")
    return ConvertOptions(fps=args.fps, image_size=size, cameras=cameras, instruction=args.instruction)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        opts = _options(args)
        inputs = find_inputs(args.inputs)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written, failed = 0, []
    for path in tqdm(inputs, desc="converting", unit="input"):
        target = args.out / f"{path.stem if path.suffix in FILE_INPUTS else path.name}.npz"
        if target.exists() and not args.overwrite:
            tqdm.write(f"warning: {target} exists, kept (pass --overwrite to replace it)", file=sys.stderr)
            continue
        try:
            episode, warnings = convert_one(path, opts, args.video_camera)
            if args.action_free:
                episode = episode.without_actions()
        except (BagReadError, ConversionError, EpisodeError) as exc:
            failed.append(f"{path}: {exc}")
            tqdm.write(f"warning: {path}: not converted: {exc}", file=sys.stderr)
            continue
        for warning in warnings:
            tqdm.write(f"warning: {path}: {warning}", file=sys.stderr)
        if episode.success is False and not args.include_failures:
            tqdm.write(f"warning: {path}: recorded as a failure, skipped (pass --include-failures)", file=sys.stderr)
            continue
        episode.save(target)
        written += 1
        tqdm.write(f"{target}: {len(episode)} steps, {list(episode.frames)}, actions={episode.has_actions}, "
                   f"{episode.instruction!r}")
    if any(args.out.glob("*.npz")):
        print(f"{written} episode(s) written; normalisation stats: {write_stats(args.out).resolve()}")
    if failed:
        print(f"error: {len(failed)} of {len(inputs)} input(s) could not be converted (episodes already written are "
              f"kept in {args.out}): {failed[0]}", file=sys.stderr)
        return 1
    return 0
