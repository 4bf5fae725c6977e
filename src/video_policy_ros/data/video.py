"""Writes frames to an mp4 in a background thread, so the producer never waits on ffmpeg."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np


class VideoRecorder:
    def __init__(self, path: str | Path, fps: float, max_queue: int = 64):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="video-recorder", daemon=True)
        self._error: BaseException | None = None
        self._thread.start()

    def add(self, image: np.ndarray) -> None:
        try:
            self._queue.put_nowait(image)
        except queue.Full:  # the producer must never wait: a dropped frame only shortens the video
            pass

    def close(self) -> Path:
        """Finish the file and return its path; raises if writing failed."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}") from self._error
        return self.path

    def _run(self) -> None:
        import imageio.v2 as imageio

        try:
            with imageio.get_writer(self.path, fps=self.fps, codec="libx264", macro_block_size=8) as writer:
                while (image := self._queue.get()) is not None:
                    writer.append_data(image)
        except BaseException as exc:  # surfaced by close()
            self._error = exc
            while self._queue.get() is not None:  # unblock the producer until close()
                pass
