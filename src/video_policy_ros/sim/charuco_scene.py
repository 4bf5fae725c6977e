"""A MuJoCo scene with a ChArUco board, rendered offscreen from any camera pose: the sim ground
truth for hand-eye calibration (the board is textured on a plane at the world origin).

Camera poses are given for the camera's *optical* frame (x right, y down, z forward), the
frame OpenCV and ROS images use; MuJoCo cameras look down their -z with y up, a 180 deg turn
about x away.
"""

from __future__ import annotations

import cv2
import mujoco
import numpy as np

from video_policy_ros.geometry import matrix_to_quat
from video_policy_ros.sensors.calibration import Intrinsics
from video_policy_ros.sensors.hand_eye import CharucoBoard

OPTICAL_TO_MUJOCO_CAMERA = np.diag([1.0, -1.0, -1.0])

SCENE_XML = """
<mujoco>
  <visual><global offwidth="{width}" offheight="{height}"/><quality shadowsize="0"/>
    <headlight ambient="0.6 0.6 0.6" diffuse="0.4 0.4 0.4" specular="0 0 0"/></visual>
  <asset>
    <texture name="board" type="2d" file="board.png"/>
    <material name="board" texture="board" specular="0" shininess="0" reflectance="0"/>
  </asset>
  <worldbody>
    <geom type="plane" size="{half_x} {half_y} 0.01" material="board"/>
    <camera name="eye" pos="0 0 1" fovy="{fovy}"/>
  </worldbody>
</mujoco>
"""


class CharucoScene:
    def __init__(self, board: CharucoBoard, width: int = 640, height: int = 480, fovy_deg: float = 50.0):
        image = board.image(pixels_per_square=120)
        _, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        half_x = 0.5 * board.square_m * image.shape[1] / 120
        half_y = 0.5 * board.square_m * image.shape[0] / 120
        xml = SCENE_XML.format(width=width, height=height, half_x=half_x, half_y=half_y, fovy=fovy_deg)
        self.model = mujoco.MjModel.from_xml_string(xml, {"board.png": png.tobytes()})
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, height, width)
        f = 0.5 * height / np.tan(np.radians(fovy_deg) / 2)
        # OpenCV puts pixel centres on integers, OpenGL half a pixel further: the centre is (w - 1) / 2.
        k = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
        self.intrinsics = Intrinsics(width, height, k, [0.0] * 5)

    def render(self, camera_in_world: np.ndarray) -> np.ndarray:
        """RGB image (H, W, 3) from the optical-frame pose ``camera_in_world`` (4x4)."""
        self.model.cam_pos[0] = camera_in_world[:3, 3]
        x, y, z, w = matrix_to_quat(camera_in_world[:3, :3] @ OPTICAL_TO_MUJOCO_CAMERA)
        self.model.cam_quat[0] = (w, x, y, z)  # MuJoCo quaternions are scalar-first
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera="eye")
        return self.renderer.render()

    def close(self) -> None:
        self.renderer.close()
