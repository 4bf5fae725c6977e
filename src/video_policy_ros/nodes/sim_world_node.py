"""sim_world node: the simulated FR3 (served over the libfranka protocol) and its cameras.

Publishes /cameras/<name>/image_raw + camera_info and, as the episode's operator,
the /task instruction. Reports the task result when the episode ends.
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering; must precede the mujoco import

from video_policy_ros.nodes.base import StackNode  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from video_policy_ros.config import SimWorldConfig  # noqa: E402
from video_policy_ros.data.events import EVENTS_TOPIC, make_event  # noqa: E402
from video_policy_ros.data.video import VideoRecorder  # noqa: E402
from video_policy_ros.nodes import conversions as conv  # noqa: E402
from video_policy_ros.nodes.camera_topics import CameraTopics  # noqa: E402
from video_policy_ros.nodes.params import load_node_config, run_node  # noqa: E402
from video_policy_ros.nodes.qos import EVENTS_QOS, TASK_QOS  # noqa: E402
from video_policy_ros.sim.scene import camera_intrinsics  # noqa: E402
from video_policy_ros.sim.world import SimWorld  # noqa: E402
from video_policy_ros.types import CameraFrame  # noqa: E402


class SimWorldNode(StackNode):
    def __init__(self, config: SimWorldConfig | None = None, **node_kwargs):
        super().__init__("sim_world", **node_kwargs)
        self.config = config or load_node_config(self, "sim_world", SimWorldConfig)
        self._topics = {c.name: CameraTopics(self, c.name, self.config.image_transport, self.config.jpeg_quality)
                        for c in self.config.cameras}
        for c in self.config.cameras:
            self._topics[c.name].info = conv.camera_info_msg(c.name, 0.0, c.width, c.height, camera_intrinsics(c))
        self._cameras = {c.name: c for c in self.config.cameras}
        self._frame_counts = {c.name: 0 for c in self.config.cameras}
        self._task_pub = self.create_publisher(String, "/task", TASK_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._events_pub = self.create_publisher(String, EVENTS_TOPIC, EVENTS_QOS)
        self.world = SimWorld(self.config, on_frame=self._publish_frame)
        record = self.config.record_camera
        self.video_path = self.config.output_dir / f"sim_{record}_seed{self.config.seed}_{time.strftime('%Y%m%d-%H%M%S')}.mp4"
        self._recorder = (
            VideoRecorder(self.video_path, self._cameras[record].fps) if record in self._cameras else None
        )
        self.world.start()
        self.create_service(SetBool, "/sim_world/occlude_cameras", self._on_occlude)
        self._publish_event("start", task=self.world.layout.instruction, seed=self.config.seed,
                            robot={"sim": True, "robot_ip": self.config.robot_ip})
        if self.config.publish_task:
            self._task_pub.publish(String(data=self.world.layout.instruction))
        self.get_logger().info(f"serving a simulated FR3 on {self.config.robot_ip}; task: {self.world.layout.instruction}")
        if self._recorder is not None:
            self.get_logger().info(f"recording the {record} camera to {self.video_path}")
        self._last_diag = time.monotonic()
        self._timer = self.create_timer(0.2, self._tick)
        self.finished = False
        self.exit_code: int | None = None

    def _publish_frame(self, frame: CameraFrame) -> None:  # render thread
        if not self.context.ok():  # shutting down: the render thread outlives the context briefly
            return
        self._topics[frame.camera].publish(frame)
        self._frame_counts[frame.camera] += 1
        if self._recorder is not None and frame.camera == self.config.record_camera:
            self._recorder.add(frame.image)

    def _on_occlude(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """An intervention a user could cause: every lens covered (true) or uncovered (false)."""
        (self.world.cameras_occluded.set if request.data else self.world.cameras_occluded.clear)()
        response.success, response.message = True, f"cameras {'occluded' if request.data else 'clear'}"
        self.get_logger().info(response.message)
        return response

    def _tick(self) -> None:
        self.world.check()
        now = time.monotonic()
        if now - self._last_diag >= 1.0:
            rates = {f"{cam}_fps": f"{n / (now - self._last_diag):.1f}" for cam, n in self._frame_counts.items()}
            self._frame_counts = dict.fromkeys(self._frame_counts, 0)
            self._last_diag = now
            status = conv.diagnostic_status("sim_world", "sim", "ok", self.world.layout.instruction, rates)
            self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))
        if self.world.done.is_set() and not self.finished:
            self.finished = True
            self.report()
            if self.config.exit_on_done:
                self.exit_code = 0 if self.world.result.success else 1

    def report(self) -> None:
        """Print the task result and finish the video."""
        result = self.world.result
        print(result.summary(), flush=True)
        self._publish_event("success" if result.success else "failure", result.summary())
        if self._recorder is not None:
            path = self._recorder.close()
            self._recorder = None
            print(f"video of the {self.config.record_camera} camera: {path.resolve()}", flush=True)

    def _publish_event(self, kind: str, reason: str = "", **fields) -> None:
        self._events_pub.publish(String(data=json.dumps(make_event(kind, "sim_world", reason, **fields))))

    def close(self) -> None:
        self.world.close()
        if self._recorder is not None:
            self._recorder.close()


def main(args: list[str] | None = None) -> int:
    return run_node(SimWorldNode, args)
