"""The simulated world: franky-sim's FR3 over the real libfranka protocol, the scene, the cameras.

It plays the physical world: the controller connects to it like to a real FR3 at
``robot_ip``, and it produces camera frames like real cameras. Physics steps at
1 kHz in franky-sim's thread; cameras render in a thread of their own from a
copy of ``qpos`` taken in a post-step callback, because rendering inside the
step would stall the protocol (libfranka: UDP receive: Timeout).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import mujoco
import numpy as np

from video_policy_ros.config import SimWorldConfig
from video_policy_ros.errors import StackError
from video_policy_ros.sim.render_model import pose, simplified_render_model
from video_policy_ros.sim.scene import FINGER_JOINT, HAND_BODY, TCP_OFFSET_IN_HAND, SceneLayout, add_scene, sample_layout
from video_policy_ros.sim.task import SceneState, TaskResult, check
from video_policy_ros.types import CameraFrame

log = logging.getLogger(__name__)
logging.getLogger("franky_sim").setLevel(logging.WARNING)  # it logs every protocol message at INFO

FrameCallback = Callable[[CameraFrame], None]

# franky-sim applies its joint PD as an explicit torque; with its default kv the
# light wrist joints (armature ~0.074) exceed the explicit-damping stability bound
# kv * dt / inertia < 2 at 1 kHz and chatter at +-0.08 rad/s while "at rest".
SIM_JOINT_DAMPING_GAINS = (450.0, 450.0, 350.0, 350.0, 100.0, 100.0, 60.0)
OCCLUDER_GREY = 128  # what an occluded camera sees: a flat, mid-grey card filling the image
STALLED_PHYSICS_WAIT_S = 0.002  # re-check for a new physics state this often when it has not stepped


class SimWorldError(StackError):
    """The simulated world could not start (address in use, rendering unavailable, ...)."""


@dataclass
class _Snapshot:
    stamp: float  # wall-clock time of the physics step the state belongs to
    qpos: np.ndarray


class SimWorld:
    """Use as a context manager; frames go to ``on_frame`` from the render thread."""

    def __init__(self, config: SimWorldConfig, on_frame: FrameCallback | None = None):
        self.config = config
        self.layout: SceneLayout = sample_layout(config.seed, config.task)
        self._on_frame = on_frame or (lambda frame: None)
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._stop = threading.Event()
        self._render_thread: threading.Thread | None = None
        self._render_error: BaseException | None = None
        self._sim = None
        self._server = None
        self._start_time = 0.0
        self._result: TaskResult | None = None
        self.done = threading.Event()
        # An intervention a person can make: something (a hand, a card) held in front of every lens.
        self.cameras_occluded = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "SimWorld":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        import franky_sim
        from franky_sim.mujoco_simulator import MujocoSimulator

        self._sim = MujocoSimulator()
        self._sim.add_robot(kv=SIM_JOINT_DAMPING_GAINS)
        add_scene(self._sim.worldbody, self.layout, self.config.cameras)
        self._sim.init()
        self._server = franky_sim.SimulationServer(self._sim, hostname_candidates=[self.config.robot_ip])
        try:
            self._server.init()
        except OSError as exc:
            raise SimWorldError(
                f"cannot serve the simulated FR3 on {self.config.robot_ip}: {exc} "
                "(another sim world running? pick another loopback robot_ip such as 127.0.0.2)"
            ) from None
        self._render_model = simplified_render_model(self._sim.scene, self._sim.model, self.config.render_mesh_faces)
        self._sim.register_post_step_callback(self._after_step)
        self._start_time = time.time()
        self._server.run_async()
        self._render_thread = threading.Thread(target=self._render_loop, name="sim-render", daemon=True)
        self._render_thread.start()
        log.info("sim world serving an FR3 on %s; task: %s", self.config.robot_ip, self.layout.instruction)

    def close(self) -> None:
        """Bounded: the node must be gone within its shutdown deadline (nodes/params.py) even when a thread hangs."""
        self._stop.set()
        if self._render_thread is not None:
            self._render_thread.join(timeout=1.5)
            if self._render_thread.is_alive():
                log.warning("the render thread did not stop within 1.5 s; leaving it behind (a daemon thread)")
        if self._server is not None:
            self._server.running = False  # franky-sim's own cleanup() joins its loop without a timeout
            loop = getattr(self._server, "async_thread", None)
            if loop is not None:
                loop.join(timeout=1.5)
            if loop is not None and loop.is_alive():
                log.warning("the simulated FR3's server loop did not stop within 1.5 s; leaving it behind")
            else:
                self._server.cleanup()
            self._server = None

    # ------------------------------------------------------------------ physics side

    def _after_step(self, sim) -> None:
        # Runs inside the 1 kHz step: copy, nothing else.
        snapshot = _Snapshot(time.time(), sim.data.qpos.copy())
        with self._lock:
            self._snapshot = snapshot

    def latest_state(self) -> _Snapshot | None:
        with self._lock:
            return self._snapshot

    # ------------------------------------------------------------------ render side

    def _render_loop(self) -> None:
        try:
            self._render_forever()
        except BaseException as exc:  # surfaced by check() in the owner's thread
            self._render_error = exc
            log.error("sim render thread stopped: %s", exc)

    def check(self) -> None:
        """Re-raise an error from the render thread, if any."""
        if self._render_error is not None:
            raise SimWorldError(f"rendering failed: {self._render_error}") from self._render_error

    def _render_forever(self) -> None:
        model = self._render_model
        if not self.config.shadows:  # shadows dominate CPU render time
            model.light_castshadow[:] = 0
        model.vis.quality.offsamples = 0  # no multisampling: 2-3x faster on llvmpipe
        data = mujoco.MjData(model)
        renderers = {c.name: mujoco.Renderer(model, c.height, c.width) for c in self.config.cameras}
        periods = {c.name: 1.0 / c.fps for c in self.config.cameras}
        due = {name: time.time() for name in renderers}
        shown = dict.fromkeys(renderers, -math.inf)  # per camera: the physics time of its last frame
        hand_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, HAND_BODY)
        cube_ids = {c: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"cube_{c}") for c in self.layout.cube_positions}
        finger_qpos = model.jnt_qposadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, FINGER_JOINT)]
        task_period, task_due = 0.05, time.time()
        try:
            while not self._stop.is_set():
                name = min(due, key=due.get)
                next_due = min(due[name], task_due)
                wait = next_due - time.time()
                if wait > 0:
                    self._stop.wait(wait)
                    continue
                snapshot = self.latest_state()
                if snapshot is None:
                    self._stop.wait(0.005)
                    continue
                pose(model, data, snapshot.qpos)
                if task_due <= next_due:
                    self._evaluate_task(data, hand_id, cube_ids, finger_qpos, snapshot.stamp)
                    task_due += task_period
                    continue
                if snapshot.stamp <= shown[name]:
                    # The physics has not stepped since this camera's last frame (a loaded machine starves it):
                    # a camera takes no second picture of the same instant, so wait for the next state.
                    due[name] = time.time() + STALLED_PHYSICS_WAIT_S
                    continue
                shown[name] = snapshot.stamp
                renderer = renderers[name]
                renderer.update_scene(data, camera=name)
                image = renderer.render()
                if self.cameras_occluded.is_set():
                    image = np.full_like(image, OCCLUDER_GREY)
                self._on_frame(CameraFrame(name, snapshot.stamp, image))
                # Skip missed slots rather than bursting to catch up.
                due[name] = max(due[name] + periods[name], time.time())
        finally:
            for r in renderers.values():
                r.close()

    def _evaluate_task(self, data: mujoco.MjData, hand_id: int, cube_ids: dict[str, int], finger_qpos: int,
                       stamp: float) -> None:
        if self.done.is_set():
            return
        tcp = data.xpos[hand_id] + data.xmat[hand_id].reshape(3, 3)[:, 2] * TCP_OFFSET_IN_HAND
        cubes = {c: data.xpos[i].copy() for c, i in cube_ids.items()}
        outcome = check(self.layout, SceneState(tcp, cubes, float(data.qpos[finger_qpos])), self.config.task.success_distance)
        elapsed = stamp - self._start_time
        if outcome.success or elapsed > self.config.task.timeout_s:
            self._result = TaskResult(outcome.success, elapsed, self.layout.instruction, outcome.distance_m)
            self.done.set()

    @property
    def result(self) -> TaskResult | None:
        return self._result
