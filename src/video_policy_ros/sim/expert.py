"""Scripted experts: solve the tasks from privileged state (the scene layout).

They are planners, not controllers: given the measured TCP pose and finger
position they return the next chunk of timed absolute targets, which the
controller tracks like any policy's chunk.

- touch: above the target cube, then straight down to its top face, fingers closed.
- place: above the cube with the fingers open, down to grasp height, close and wait
  until the fingers rest on the cube, lift, carry above the bowl, lower, open, retreat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.geometry import interpolate_pose, quat_conjugate, quat_multiply, quat_to_rotvec
from video_policy_ros.sim.scene import CUBE_HALF_SIZE, SceneLayout, bowl_floor_top
from video_policy_ros.sim.task import target_top
from video_policy_ros.types import FINGERS_CLOSED, FINGERS_OPEN, ActionChunk

# Hand pointing straight down (fr3_hand_tcp z axis along -z of fr3_link0), fingers along y.
TOP_DOWN = np.array([1.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class ExpertParams:
    speed: float = 0.15  # m/s along the path (below the controller's limit)
    # m/s of the last segment into a contact (touch, grasp, release in the bowl): a loaded machine slows the
    # simulated arm until it lags its set-point, and it runs past a stop by more the faster it arrives
    approach_speed: float = 0.05
    angular_speed: float = 0.5  # rad/s
    acceleration: float = 0.5  # m/s^2 into and out of each waypoint: half the controller's TCP cap
    hover_height: float = 0.10  # m above the cube's top face before descending
    touch_depth: float = 0.005  # m the TCP aims below the top face, so contact is certain
    grasp_offset: float = 0.005  # m the TCP stays above the cube's centre when grasping
    carry_height: float = 0.18  # m: TCP height while carrying, the cube clears the other cubes and the bowl
    release_clearance: float = 0.01  # m between the cube and the bowl floor when the fingers open
    arrived_tolerance: float = 0.006  # m: at a waypoint
    grasp_settle_s: float = 0.8  # s the fingers must have been closing before the cube counts as held
    chunk_steps: int = 32
    dt: float = 0.1


def _stop_profile(length: float, entry_speed: float, speed: float, acceleration: float):
    """Arc length travelled ``t`` s into a segment of ``length`` entered at ``entry_speed``, and its duration.

    Accelerate to ``speed``, cruise, and brake to rest at the end, all at ``acceleration``: the arm can
    follow this without running past the segment's end (an abrupt stop from speed exceeds the controller's
    acceleration cap, and the arm overshot such stops by up to 2 cm)."""
    entry = min(entry_speed, speed, np.sqrt(2 * acceleration * length))
    peak = min(speed, np.sqrt(acceleration * length + 0.5 * entry**2))
    t_up, t_down = (peak - entry) / acceleration, peak / acceleration
    s_up, s_down = (peak**2 - entry**2) / (2 * acceleration), peak**2 / (2 * acceleration)
    t_cruise = max(length - s_up - s_down, 0.0) / peak if peak > 0 else 0.0

    def travelled(t: float) -> float:
        if t < t_up:
            return entry * t + 0.5 * acceleration * t * t
        if t < t_up + t_cruise:
            return s_up + peak * (t - t_up)
        down = min(t - t_up - t_cruise, t_down)
        return min(length, s_up + peak * t_cruise + peak * down - 0.5 * acceleration * down * down)

    return travelled, t_up + t_cruise + t_down


def timed_path(start: np.ndarray, waypoints: list[np.ndarray], params: ExpertParams, approach: bool = False) -> np.ndarray:
    """``(chunk_steps, 7)`` poses every ``dt`` along start → waypoints, then holding.

    Each segment is a stop-to-stop move at ``speed`` / ``angular_speed`` with ramps at ``acceleration``;
    the first one is entered as if already moving along it, so a re-plan mid-segment continues the motion.
    With ``approach`` the last segment goes at ``approach_speed`` (a move into contact).
    Rotation is measured in metres at ``speed / angular_speed`` per radian, so one profile covers both."""
    metres_per_radian = params.speed / params.angular_speed
    profiles, segments = [], [start] + waypoints
    for i, (a, b) in enumerate(zip(segments[:-1], segments[1:])):
        angle = np.linalg.norm(quat_to_rotvec(quat_multiply(b[3:], quat_conjugate(a[3:]))))
        length = max(np.linalg.norm(b[:3] - a[:3]), angle * metres_per_radian, 1e-6)
        speed = params.approach_speed if approach and i == len(waypoints) - 1 else params.speed
        travelled, duration = _stop_profile(length, speed if i == 0 else 0.0, speed, params.acceleration)
        profiles.append((a, b, length, travelled, duration))
    ends = np.cumsum([p[-1] for p in profiles])
    poses = []
    for k in range(1, params.chunk_steps + 1):
        t = k * params.dt
        i = int(np.searchsorted(ends, t))
        if i >= len(profiles):
            poses.append(segments[-1])
            continue
        a, b, length, travelled, duration = profiles[i]
        poses.append(interpolate_pose(a, b, travelled(t - (ends[i] - duration)) / length))
    return np.array(poses)


def _pose(position: np.ndarray) -> np.ndarray:
    return np.concatenate([position, TOP_DOWN])


def _above(tcp_pose: np.ndarray, goal: np.ndarray, height: float, tolerance: float) -> bool:
    """The TCP is over ``goal`` (xy) and not higher than ``height``: the next move is straight down."""
    return bool(np.linalg.norm(tcp_pose[:2] - goal[:2]) < tolerance and tcp_pose[2] <= height + tolerance)


class TouchExpert:
    def __init__(self, layout: SceneLayout, params: ExpertParams = ExpertParams()):
        self.layout, self.params = layout, params

    def waypoints(self, tcp_pose: np.ndarray) -> list[np.ndarray]:
        """Remaining poses to visit from ``tcp_pose``: hover point, then the touch point."""
        p = self.params
        top = target_top(self.layout.cube_positions[self.layout.target])
        hover = _pose(top + [0, 0, p.hover_height])
        touch = _pose(top - [0, 0, p.touch_depth])
        return [touch] if _above(tcp_pose, top, hover[2], 0.01) else [hover, touch]

    def plan(self, tcp_pose: np.ndarray, finger_position: float, stamp: float) -> ActionChunk:
        poses = timed_path(tcp_pose, self.waypoints(tcp_pose), self.params, approach=True)
        gripper = np.full(len(poses), FINGERS_CLOSED)  # the fingertips touch the cube
        return ActionChunk(stamp=stamp, dt=self.params.dt, poses=poses, gripper=gripper)


class PlaceExpert:
    """Pick the target cube and put it in the bowl. Remembers only whether it has grasped."""

    def __init__(self, layout: SceneLayout, params: ExpertParams = ExpertParams()):
        self.layout, self.params = layout, params
        self.grasped = False
        self._closing_since: float | None = None

    def _holding(self, finger_position: float) -> bool:
        # Closed on nothing the fingers reach 0; resting on the cube they stop at its half width.
        return CUBE_HALF_SIZE - 0.008 <= finger_position <= CUBE_HALF_SIZE + 0.003

    def plan(self, tcp_pose: np.ndarray, finger_position: float, stamp: float) -> ActionChunk:
        p = self.params
        if not self.grasped and self._closing_since is not None and self._holding(finger_position):
            self.grasped = stamp - self._closing_since >= p.grasp_settle_s
        released = self.grasped and not (self._holding(finger_position) or finger_position < CUBE_HALF_SIZE)
        if not self.grasped:
            waypoints, gripper = self._pick(tcp_pose, stamp)
        elif not released:
            waypoints, gripper = self._carry(tcp_pose)
        else:  # move up and away so the cube rests in the bowl on its own
            bowl = self.layout.bowl_position
            waypoints, gripper = [_pose(np.array([bowl[0], bowl[1], p.carry_height]))], FINGERS_OPEN
        # Into the grasp and down into the bowl slowly; the retreat at full speed.
        poses = timed_path(tcp_pose, waypoints, p, approach=not released)
        return ActionChunk(stamp=stamp, dt=p.dt, poses=poses, gripper=np.full(len(poses), gripper))

    def _pick(self, tcp_pose: np.ndarray, stamp: float) -> tuple[list[np.ndarray], float]:
        p = self.params
        cube = self.layout.cube_positions[self.layout.target]
        grasp = _pose(cube + [0, 0, p.grasp_offset])
        if np.linalg.norm(tcp_pose[:3] - grasp[:3]) < p.arrived_tolerance:
            if self._closing_since is None:
                self._closing_since = stamp
            return [grasp], FINGERS_CLOSED
        self._closing_since = None
        hover = _pose(target_top(cube) + [0, 0, p.hover_height])
        return ([grasp] if _above(tcp_pose, cube, hover[2], 0.01) else [hover, grasp]), FINGERS_OPEN

    def _carry(self, tcp_pose: np.ndarray) -> tuple[list[np.ndarray], float]:
        p = self.params
        bowl = self.layout.bowl_position
        release_z = bowl_floor_top(bowl) + CUBE_HALF_SIZE + p.release_clearance + p.grasp_offset
        release = _pose(np.array([bowl[0], bowl[1], release_z]))
        if np.linalg.norm(tcp_pose[:3] - release[:3]) < p.arrived_tolerance:
            return [release], FINGERS_OPEN
        above_bowl = _pose(np.array([bowl[0], bowl[1], p.carry_height]))
        if _above(tcp_pose, bowl, p.carry_height, 0.01):
            return [release], FINGERS_CLOSED
        lift = _pose(np.array([tcp_pose[0], tcp_pose[1], p.carry_height]))
        return [lift, above_bowl, release], FINGERS_CLOSED


ScriptedExpert = TouchExpert | PlaceExpert


def make_expert(layout: SceneLayout, params: ExpertParams = ExpertParams()) -> ScriptedExpert:
    """The expert for the layout's task."""
    return PlaceExpert(layout, params) if layout.task == "place" else TouchExpert(layout, params)
