"""A copy of the world's MuJoCo model for the cameras, with the FR3's visual meshes simplified.

MuJoCo on a CPU renderer (llvmpipe) is vertex-bound here: the FR3's visual meshes hold ~240k
triangles, and a 320x240 frame costs about as much as a 160x120 one (15-19 ms). Simplifying each
visual mesh to a few thousand triangles halves that, and the frames change by well under one grey
level on average at the policy's resolution (tests/sim/test_render_model.py measures both).

The copy has the same bodies and joints in the same order, so the physics model's ``qpos`` drives it
unchanged; only mesh assets differ, and they are kept in memory.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import fast_simplification
import mujoco
import numpy as np

VISUAL_GEOM_GROUP = 2  # franky-sim's FR3 puts visual meshes in group 2, collision meshes in group 3


def simplified_render_model(scene: ET.Element, physics: mujoco.MjModel, max_faces: int) -> mujoco.MjModel:
    """``scene`` (the MJCF ``physics`` was compiled from) compiled again, with every visual mesh of more than
    ``max_faces`` triangles simplified to about that many; ``max_faces`` 0 keeps the meshes as they are."""
    root = ET.fromstring(ET.tostring(scene, encoding="unicode"))  # a copy: the caller's tree stays as it was
    assets: dict[str, bytes] = {}
    if max_faces > 0:
        visual = {int(physics.geom_dataid[g]) for g in range(physics.ngeom)
                  if physics.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and physics.geom_group[g] == VISUAL_GEOM_GROUP}
        for element in root.iter("mesh"):
            mesh_id = mujoco.mj_name2id(physics, mujoco.mjtObj.mjOBJ_MESH, element.get("name") or "")
            if mesh_id in visual and physics.mesh_facenum[mesh_id] > max_faces:
                asset = f"simplified_{element.get('name')}.obj"
                assets[asset] = _obj(*_simplify(*_asset_mesh(physics, mesh_id), max_faces))
                element.set("file", asset)
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"), assets)
    if (model.nq, model.nbody, model.ncam) != (physics.nq, physics.nbody, physics.ncam):
        raise ValueError("the render model's joints, bodies or cameras differ from the physics model's")
    return model


def pose(model: mujoco.MjModel, data: mujoco.MjData, qpos: np.ndarray) -> None:
    """Put ``data`` in the physics state ``qpos``, as far as the cameras need: positions and lights."""
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)


def _asset_mesh(model: mujoco.MjModel, mesh_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A compiled mesh's vertices back in its asset's frame (the compiler moved them to the mesh's
    inertial frame and kept that offset in mesh_pos/mesh_quat) and its triangles."""
    start, count = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
    vertices = model.mesh_vert[start:start + count].astype(np.float64)
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, model.mesh_quat[mesh_id])
    vertices = vertices @ rotation.reshape(3, 3).T + model.mesh_pos[mesh_id]
    start, count = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
    return vertices, model.mesh_face[start:start + count]


def _simplify(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    # Visual meshes repeat a vertex per normal; unwelded, the simplifier tears them apart.
    welded, index = np.unique(np.round(vertices, 6), axis=0, return_inverse=True)
    faces = index.reshape(-1)[faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    if len(faces) <= max_faces:
        return welded, faces
    return fast_simplification.simplify(welded.astype(np.float32), faces, target_reduction=1 - max_faces / len(faces))


def _obj(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    lines = [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return ("\n".join(lines) + "\n").encode()
