"""Camera render cost in the sim world: the full FR3 meshes vs the simplified ones the cameras use.

    python bench/bench_render.py [--frames 40] [--stress 2]

Both models render the same state, side by side in one run; prints ms per frame and the ratio.
"""

from __future__ import annotations

import argparse
import time

import mujoco

from cpu_load import cpu_stress
from video_policy_ros.config import SimWorldConfig
from video_policy_ros.sim.render_model import pose, simplified_render_model
from video_policy_ros.sim.world import SimWorld


def ms_per_frame(model: mujoco.MjModel, qpos, camera, frames: int) -> float:
    model.light_castshadow[:] = 0
    model.vis.quality.offsamples = 0
    data = mujoco.MjData(model)
    pose(model, data, qpos)
    with mujoco.Renderer(model, camera.height, camera.width) as renderer:
        renderer.update_scene(data, camera=camera.name)
        renderer.render()  # first frame uploads the meshes
        start = time.perf_counter()
        for _ in range(frames):
            renderer.update_scene(data, camera=camera.name)
            renderer.render()
    return (time.perf_counter() - start) / frames * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--stress", type=int, default=0, help="stress-ng --cpu workers beside it")
    parser.add_argument("--robot-ip", default="127.0.0.66")
    args = parser.parse_args()
    config = SimWorldConfig(robot_ip=args.robot_ip, record_camera=None)
    with SimWorld(config) as world:
        time.sleep(1.0)
        qpos = world.latest_state().qpos
        models = {faces: simplified_render_model(world._sim.scene, world._sim.model, faces)
                  for faces in (0, config.render_mesh_faces)}
    print(f"triangles: full {models[0].nmeshface}, simplified {models[config.render_mesh_faces].nmeshface}")
    with cpu_stress(args.stress):
        for camera in config.cameras:
            full, simplified = (ms_per_frame(models[f], qpos, camera, args.frames) for f in models)
            print(f"{camera.name} {camera.width}x{camera.height}: full {full:.1f} ms, simplified {simplified:.1f} ms "
                  f"per frame, {full / simplified:.2f}x faster (stress-ng --cpu {args.stress})")


if __name__ == "__main__":
    main()
