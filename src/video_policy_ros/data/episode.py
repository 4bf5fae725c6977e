"""One demonstration (or action-free video) as arrays, saved as a compressed ``.npz``.

This is the training-side format: bags are converted into it and the sim world's
demonstration generator writes it directly. Episodes without actions (``tcp_poses``
is None) are action-free videos, usable for video-only training.

Sim episodes (the expert's demonstrations, and DAgger episodes a learned policy drove)
also carry, per frame, the chunk the privileged expert plans from that state
(``expert_poses``/``expert_gripper``): the commanded actions. Training takes its actions
from those labels when present, else from where the arm went next (recorded bags).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_policy_ros.errors import StackError

FORMAT_VERSION = 1
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class EpisodeError(StackError, ValueError):
    """An episode file is missing, truncated or inconsistent."""


@dataclass
class Episode:
    """``frames[cam]`` is ``(T, H, W, 3)`` uint8; ``tcp_poses`` ``(T, 7)``; ``gripper`` ``(T,)``;
    expert labels (optional) ``expert_poses`` ``(T, K, 7)`` and ``expert_gripper`` ``(T, K)``, due ``1 / fps`` apart.

    ``relabelled``: the labels are the expert's for states that another actor or instruction produced (DAgger
    rollouts, other-target variants), so the frames do not show the labelled motion. Such an episode teaches
    actions only: a video model trained on it would learn futures that contradict its instruction."""

    instruction: str
    fps: float
    frames: dict[str, np.ndarray]
    tcp_poses: np.ndarray | None = None
    gripper: np.ndarray | None = None
    success: bool | None = None
    expert_poses: np.ndarray | None = None
    expert_gripper: np.ndarray | None = None
    relabelled: bool = False

    def __post_init__(self) -> None:
        if not self.frames:
            raise EpisodeError("an episode needs at least one camera")
        lengths = {cam: f.shape[0] for cam, f in self.frames.items()}
        if len(set(lengths.values())) != 1:
            raise EpisodeError(f"cameras have different frame counts: {lengths}")
        for cam, f in self.frames.items():
            if f.ndim != 4 or f.shape[3] != 3 or f.dtype != np.uint8:
                raise EpisodeError(f"frames['{cam}'] must be (T, H, W, 3) uint8, got {f.shape} {f.dtype}")
        if (self.tcp_poses is None) != (self.gripper is None):
            raise EpisodeError("tcp_poses and gripper must be given together (or both omitted)")
        if self.tcp_poses is not None:
            if self.tcp_poses.shape != (len(self), 7) or self.gripper.shape != (len(self),):
                raise EpisodeError(
                    f"tcp_poses {self.tcp_poses.shape} / gripper {self.gripper.shape} "
                    f"do not match {len(self)} frames"
                )
        if (self.expert_poses is None) != (self.expert_gripper is None) or (
                self.expert_poses is not None and not self.has_actions):
            raise EpisodeError("expert_poses and expert_gripper go together, and with tcp_poses")
        if self.relabelled and self.expert_poses is None:
            raise EpisodeError("a relabelled episode needs its labels (expert_poses, expert_gripper)")
        if self.expert_poses is not None:
            t, k = len(self), self.expert_poses.shape[1] if self.expert_poses.ndim == 3 else -1
            if self.expert_poses.shape != (t, k, 7) or self.expert_gripper.shape != (t, k):
                raise EpisodeError(f"expert_poses {self.expert_poses.shape} / expert_gripper "
                                   f"{self.expert_gripper.shape} must be ({t}, K, 7) / ({t}, K)")

    def __len__(self) -> int:
        return next(iter(self.frames.values())).shape[0]

    @property
    def has_actions(self) -> bool:
        return self.tcp_poses is not None

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self.frames)

    def without_actions(self) -> "Episode":
        """The same frames as an action-free (video-only) episode."""
        return Episode(self.instruction, self.fps, self.frames, success=self.success)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "instruction": self.instruction,
            "fps": self.fps,
            "cameras": list(self.frames),
            "success": self.success,
        }
        if self.relabelled:  # only then, so that the files of other episodes stay byte for byte as before
            meta["relabelled"] = True
        arrays = {"meta": np.array(json.dumps(meta)), **{f"frames_{cam}": f for cam, f in self.frames.items()}}
        if self.has_actions:
            arrays["tcp_poses"] = self.tcp_poses.astype(np.float64)
            arrays["gripper"] = self.gripper.astype(np.float64)
        if self.expert_poses is not None:
            arrays["expert_poses"] = self.expert_poses.astype(np.float64)
            arrays["expert_gripper"] = self.expert_gripper.astype(np.float64)
        _write_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Episode":
        path = Path(path)
        if not path.is_file():
            raise EpisodeError(f"episode file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                frames = {cam: z[f"frames_{cam}"] for cam in meta["cameras"]}
                tcp = z["tcp_poses"] if "tcp_poses" in z.files else None
                grip = z["gripper"] if "gripper" in z.files else None
                labels = {k: z[k] for k in ("expert_poses", "expert_gripper") if k in z.files}
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise EpisodeError(f"cannot read episode {path}: {exc} (re-create or delete the file)") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise EpisodeError(f"{path}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
        return cls(meta["instruction"], float(meta["fps"]), frames, tcp, grip, meta.get("success"), **labels,
                   relabelled=bool(meta.get("relabelled", False)))


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so equal episodes are equal files
    (conversion is deterministic, and :func:`fingerprint` hashes bytes). Written to a
    temporary name first: an interrupted save never leaves a half-written episode."""
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    os.replace(partial, path)


def list_episodes(*folders: str | Path) -> list[Path]:
    """The episode files of one or more folders (e.g. demonstrations + DAgger rounds), folder by folder."""
    files = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise EpisodeError(f"dataset folder not found: {folder}")
        found = sorted(folder.glob("*.npz"))
        if not found:
            raise EpisodeError(f"no episode files (*.npz) in {folder}")
        files += found
    return files


def fingerprint(files: list[Path]) -> str:
    """Content hash of a set of episode files (names and bytes), for checkpoints."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: (f.name, str(f))):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
