"""The operator's view, logged to Rerun (its web viewer ships in the ``rerun-sdk`` wheel and runs offline).

``OperatorView`` is a pure core: it takes what the graph publishes (camera frames, predicted
filmstrips, chunks, the measured TCP pose, diagnostics) as plain values and logs them on one
``stamp`` timeline, so the live graph and a recorded bag give the same view. Each camera pane
has a predicted-video pane beside it that shows, at every camera frame, the frame the latest
prediction made *for that moment*: the two panes are time-aligned, live and when scrubbing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

TIMELINE = "stamp"
PREDICTED_COLOR, EXECUTED_COLOR, WORKSPACE_COLOR = (255, 140, 0), (40, 160, 255), (90, 90, 90)
LEVELS = {"ok": rr.TextLogLevel.INFO, "warn": rr.TextLogLevel.WARN, "error": rr.TextLogLevel.ERROR,
          "stale": rr.TextLogLevel.WARN}
EYE, LOOK_AT = (1.4, -0.9, 0.8), (0.45, 0.0, 0.15)  # fr3_link0: in front of the arm, to its right, above the table
LATENCY_KEYS = ("latency_ms_p50", "latency_ms_p95", "model_ms_p50", "execute_horizon_ms")


def split_filmstrip(filmstrip: np.ndarray, frame_size: tuple[int, int]) -> list[np.ndarray]:
    """A filmstrip (frames of ``frame_size`` (H, W) left to right, each enlarged by one integer factor,
    as the inference node publishes it) → its frames."""
    (height, width), (strip_h, strip_w) = frame_size, filmstrip.shape[:2]
    scale = strip_h // height
    step = width * scale
    if scale < 1 or strip_h % height or strip_w % step:
        raise ValueError(f"a {strip_w}x{strip_h} filmstrip is not made of {width}x{height} frames")
    return [filmstrip[:, i * step:(i + 1) * step] for i in range(strip_w // step)]


@dataclass
class Prediction:
    """One predicted video of one camera: frame ``k`` shows the moment ``stamp + k * period``."""

    stamp: float
    period: float
    frames: list[np.ndarray]

    def index_at(self, t: float) -> int | None:
        """The frame predicted for time ``t`` (nearest), or None when ``t`` is outside the prediction."""
        k = round((t - self.stamp) / self.period)
        return k if t >= self.stamp and k < len(self.frames) else None


def blueprint(cameras: list[str]) -> rrb.Blueprint:
    pairs = [rrb.Horizontal(rrb.Spatial2DView(origin=f"cameras/{c}", name=f"{c} camera"),
                            rrb.Spatial2DView(origin=f"predicted/{c}", name=f"{c} predicted")) for c in cameras]
    return rrb.Blueprint(
        rrb.Vertical(
            rrb.Horizontal(*pairs),
            rrb.Horizontal(
                rrb.Spatial3DView(origin="path", name="TCP path: predicted (orange) vs executed (blue)",
                                  eye_controls=rrb.EyeControls3D(position=EYE, look_target=LOOK_AT, eye_up=(0, 0, 1))),
                rrb.Vertical(rrb.TextDocumentView(origin="controller/state", name="controller"),
                             rrb.TextDocumentView(origin="inference/budget", name="latency budget")),
                rrb.Vertical(rrb.TimeSeriesView(origin="latency", name="latency (ms)"),
                             rrb.TextLogView(origin="log", name="chunks and stops")),
            ),
            row_shares=[3, 2],
        ),
        collapse_panels=True,
    )


class OperatorView:
    def __init__(self, recording: rr.RecordingStream, cameras: list[str], executed_path_s: float = 20.0,
                 camera_rate_hz: float = 5.0, jpeg_quality: int = 80):
        self.rec = recording
        self.cameras = list(cameras)
        # A browser that renders on the CPU cannot take 2 cameras of raw RGB at 15 Hz (7 MB/s): Rerun's log
        # server then blocks the sender. Frames go as JPEG, at most camera_rate_hz per camera.
        self._camera_period = 1.0 / camera_rate_hz
        self._jpeg_quality = jpeg_quality
        self._last_camera: dict[str, float] = {}
        self._predictions: dict[str, Prediction] = {}
        self._shown: dict[str, tuple[float, int]] = {}  # camera -> (prediction stamp, frame index) on screen
        self._executed: deque[tuple[float, np.ndarray]] = deque()
        self._executed_path_s = executed_path_s
        self._video_shape: tuple[tuple[int, int], float] | None = None  # ((H, W) of a frame, period s), from /diagnostics
        self._pending: dict[str, tuple[float, np.ndarray]] = {}  # filmstrips that came before their shape
        self._controller: dict[str, str] = {}

    def _at(self, stamp: float) -> None:
        self.rec.set_time(TIMELINE, timestamp=stamp)

    # ---------------------------------------------------------------- what the policy sees and predicts

    def camera(self, name: str, stamp: float, image: np.ndarray) -> None:
        if stamp - self._last_camera.get(name, -np.inf) < self._camera_period - 1e-3:  # 1 ms: stamps' jitter
            return
        self._last_camera[name] = stamp
        self._at(stamp)
        self.rec.log(f"cameras/{name}", self._image(image))
        prediction = self._predictions.get(name)
        k = prediction.index_at(stamp) if prediction else None
        if k is not None and self._shown.get(name) != (prediction.stamp, k):
            self._shown[name] = (prediction.stamp, k)
            self.rec.log(f"predicted/{name}", self._image(prediction.frames[k]))

    def _image(self, image: np.ndarray) -> rr.EncodedImage:
        return rr.Image(image).compress(jpeg_quality=self._jpeg_quality)

    def predicted_video(self, name: str, stamp: float, filmstrip: np.ndarray) -> None:
        """A predicted filmstrip; it is shown once the inference node has said how many frames it holds."""
        if self._video_shape is None:
            self._pending[name] = (stamp, filmstrip)
            return
        frame_size, period = self._video_shape
        self._predictions[name] = Prediction(stamp, period, split_filmstrip(filmstrip, frame_size))

    def video_shape(self, frame_size: tuple[int, int], period: float) -> None:
        self._video_shape = (frame_size, period)
        pending, self._pending = self._pending, {}
        for name, (stamp, filmstrip) in pending.items():
            self.predicted_video(name, stamp, filmstrip)

    def chunk(self, stamp: float, positions: np.ndarray) -> None:
        """The TCP path a chunk asks for, from the observation it was computed from."""
        self._at(stamp)
        self.rec.log("path/predicted", rr.LineStrips3D([positions], colors=[PREDICTED_COLOR], radii=0.003))

    def tcp(self, stamp: float, position: np.ndarray) -> None:
        """The measured TCP: the last ``executed_path_s`` of it as a line, and where it is now."""
        self._executed.append((stamp, np.asarray(position, dtype=np.float32)))
        while self._executed and self._executed[0][0] < stamp - self._executed_path_s:
            self._executed.popleft()
        self._at(stamp)
        path = np.array([p for _, p in self._executed])
        self.rec.log("path/executed", rr.LineStrips3D([path], colors=[EXECUTED_COLOR], radii=0.002))
        self.rec.log("path/tcp", rr.Points3D([position], colors=[EXECUTED_COLOR], radii=0.01))

    # ---------------------------------------------------------------- what the graph says about itself

    def diagnostics(self, stamp: float, name: str, level: str, message: str, values: dict[str, str]) -> None:
        self._at(stamp)
        if name == "controller":
            self._controller_state(level, message, values)
        elif name == "inference":
            self._inference_state(level, message, values)

    def _controller_state(self, level: str, message: str, values: dict[str, str]) -> None:
        before = self._controller
        self._controller = {**values, "level": level, "message": message}
        if values.get("workspace_m") and values["workspace_m"] != before.get("workspace_m"):
            lo, hi = np.split(np.array([float(v) for v in values["workspace_m"].split(",")]), 2)
            self.rec.log("path/workspace", rr.Boxes3D(mins=[lo], sizes=[hi - lo], colors=[WORKSPACE_COLOR]), static=True)
        rejected, last = int(values.get("chunks_rejected", 0)), values.get("last_rejection", "")
        if rejected > int(before.get("chunks_rejected", 0)) and last:
            self.rec.log("log", rr.TextLog(f"chunk rejected: {last}", level=rr.TextLogLevel.WARN))
        if message != before.get("message"):
            self.rec.log("log", rr.TextLog(f"controller: {message}", level=LEVELS.get(level, rr.TextLogLevel.INFO)))
        rows = [
            ("state", f"**{level}**: {message}"),
            ("chunks", f"{values.get('chunks_accepted', 0)} accepted, {rejected} rejected"),
            ("last rejection", last or "none"),
            ("last stop", values.get("last_stop") or "none"),
            ("limits in force", values.get("limits", "")),
            ("speed scale", values.get("speed_scale", "1")),
            ("divergence", values.get("divergence") or "not measured"),
            ("control cycle", f"{values.get('cycle_ms_p50', '?')} ms p50, {values.get('cycle_ms_max', '?')} ms max"),
        ]
        self.rec.log("controller/state", rr.TextDocument(_table(rows), media_type=rr.MediaType.MARKDOWN))

    def _inference_state(self, level: str, message: str, values: dict[str, str]) -> None:
        if values.get("predicted_frame_size") and values.get("predicted_frame_period_ms"):
            height, width = (int(v) for v in values["predicted_frame_size"].split("x"))
            self.video_shape((height, width), float(values["predicted_frame_period_ms"]) / 1e3)
        for key in LATENCY_KEYS:
            if _is_number(values.get(key)):
                self.rec.log(f"latency/{key}", rr.Scalars(float(values[key])))
        rows = [
            ("state", f"**{level}**: {message}"),
            ("budget", values.get("budget", "")),
            ("latency", f"{values.get('latency_ms_p50', '?')} ms p50, {values.get('latency_ms_p95', '?')} ms p95"),
            ("model", f"{values.get('model_ms_p50', '?')} ms p50"),
            ("execution horizon", f"{values.get('execute_horizon_ms', '?')} ms of a {values.get('chunk_duration_ms', '?')} ms chunk"),
            ("chunks", values.get("chunks", "0")),
            ("last error", values.get("last_error", "none")),
        ]
        self.rec.log("inference/budget", rr.TextDocument(_table(rows), media_type=rr.MediaType.MARKDOWN))


def _is_number(text: str | None) -> bool:
    try:
        return text is not None and np.isfinite(float(text))
    except ValueError:
        return False


def _table(rows: list[tuple[str, str]]) -> str:
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)


def serve(recording: rr.RecordingStream, cameras: list[str], web_port: int, grpc_port: int, memory_limit: str) -> str:
    """Start Rerun's gRPC log server and its web viewer; returns the page's address."""
    uri = recording.serve_grpc(grpc_port=grpc_port, default_blueprint=blueprint(cameras), server_memory_limit=memory_limit)
    rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=uri)
    from urllib.parse import quote

    return f"http://127.0.0.1:{web_port}/?url={quote(uri, safe='')}"
