"""The sim world's cameras, rendered for real (MuJoCo EGL) while franky-sim steps the FR3.

The projection test ties three things together: the scene layout, the camera pose
in the MJCF, and the intrinsics published as camera_info. Each cube's centre,
projected with those intrinsics, must land on pixels of the cube's colour.
"""

import threading
import time

import mujoco
import numpy as np
import pytest

from video_policy_ros.config import SimWorldConfig
from video_policy_ros.sim.scene import COLORS_RGBA, camera_intrinsics
from video_policy_ros.sim.world import SimWorld, SimWorldError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def frames_and_world(tmp_path_factory):
    from video_policy_ros.preflight.processes import robot_ip_for_this_process

    frames: dict[str, list] = {}
    lock = threading.Lock()

    def on_frame(frame):
        with lock:
            frames.setdefault(frame.camera, []).append(frame)

    config = SimWorldConfig(seed=7, robot_ip=robot_ip_for_this_process())
    with SimWorld(config, on_frame) as world:
        time.sleep(2.0)
        world.check()
        model = world._sim.model
        data = mujoco.MjData(model)
        data.qpos[:] = world.latest_state().qpos
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "front")
        extrinsics = (data.cam_xpos[cam].copy(), data.cam_xmat[cam].reshape(3, 3).copy())
        yield frames, world, config, extrinsics


def test_every_camera_streams_rgb_with_increasing_measurement_stamps(frames_and_world):
    frames, _, config, _ = frames_and_world
    for cam in config.cameras:
        got = frames[cam.name]
        assert len(got) >= 10, f"{cam.name}: only {len(got)} frames in 2 s"
        assert got[0].image.shape == (cam.height, cam.width, 3)
        stamps = np.array([f.stamp for f in got])
        assert np.all(np.diff(stamps) > 0)
        assert got[-1].image.std() > 10, f"{cam.name}: the image is flat"
    assert not np.array_equal(frames["front"][-1].image, frames["wrist"][-1].image)


def test_cubes_project_onto_their_colour_with_the_published_intrinsics(frames_and_world):
    frames, world, config, (position, rotation) = frames_and_world
    front = next(c for c in config.cameras if c.name == "front")
    k = camera_intrinsics(front)
    image = frames["front"][-1].image.astype(float)
    for color, centre in world.layout.cube_positions.items():
        p = rotation.T @ (centre - position)  # MuJoCo camera frame: x right, y up, looking along -z
        u = k[0, 0] * p[0] / -p[2] + k[0, 2]
        v = k[1, 1] * -p[1] / -p[2] + k[1, 2]
        patch = image[int(v) - 1:int(v) + 2, int(u) - 1:int(u) + 2].reshape(-1, 3).mean(axis=0)
        expected = int(np.argmax(COLORS_RGBA[color][:3]))
        assert np.argmax(patch) == expected and patch[expected] > 1.5 * np.delete(patch, expected).max(), (
            f"{color} cube should be at pixel ({u:.0f}, {v:.0f}) but the colour there is {patch.round()}"
        )


def test_a_second_world_on_the_same_address_fails_clearly(frames_and_world):
    _, _, config, _ = frames_and_world
    with pytest.raises(SimWorldError, match="another sim world running"):
        SimWorld(config).start()


def test_the_cameras_simplified_fr3_looks_like_the_full_one(frames_and_world):
    """The cameras render a copy of the model with the FR3's visual meshes simplified (a CPU renderer is
    vertex-bound): same joints, same pose, and at the policy's resolution the same picture."""
    from video_policy_ros.sim.render_model import pose, simplified_render_model

    _, world, config, _ = frames_and_world
    scene, physics = world._sim.scene, world._sim.model
    full, simplified = (simplified_render_model(scene, physics, faces) for faces in (0, config.render_mesh_faces))
    assert simplified.nmeshface < 0.5 * full.nmeshface
    qpos = world.latest_state().qpos
    for cam in config.cameras:
        images = []
        for model in (full, simplified):
            data = mujoco.MjData(model)
            pose(model, data, qpos)
            with mujoco.Renderer(model, cam.height, cam.width) as renderer:
                renderer.update_scene(data, camera=cam.name)
                images.append(renderer.render().astype(float))
        # Block-average to the policy's 64x48: what the models see.
        small = [im.reshape(48, cam.height // 48, 64, cam.width // 64, 3).mean(axis=(1, 3)) for im in images]
        difference = np.abs(small[0] - small[1]).mean()
        print(f"{cam.name}: mean difference at 64x48 {difference:.2f} grey levels")
        assert difference < 2.0, f"{cam.name}: the simplified FR3 looks different ({difference:.1f} grey levels)"
