"""Every safety decision of the controller, in one place (pure Python, no ROS, no robot I/O).

- ``admit_chunk``: a chunk is executed only if all its numbers are finite, it is neither too
  old nor stamped in the future, it starts near the current set-point and every point lies in
  the workspace box with the hand within the tilt limit. Rejected, never clamped.
- ``limit``: every cycle's command passes the TCP speed/acceleration caps, the workspace box
  and the table plane (TCP and fingertips), approached no faster than the arm can brake, the joint velocity limits, the joint position margins and a
  jerk → acceleration rate limiter per joint, in that order. Speeds are only ever scaled
  down. The result is what is sent, and the twist it produces is what is reported.
- Stops: e-stop and robot errors latch one stop (``latch``), cleared by ``reset`` at rest
  or, for robot errors on the allow-list, by a bounded number of automatic recoveries.
- Silence: no fresh chunk for ``max_chunk_silence_s`` → the plan is dropped and the arm
  decelerates smoothly through ``limit`` and holds.
- Divergence: when the camera keeps disagreeing with the predicted video (``divergence``: N
  predictions in a row above a threshold), the TCP speed caps shrink to a fraction, or a stop latches.

Every decision increments a named counter (``counters``) that the node reports on /diagnostics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from video_policy_ros.control.kinematics import FR3Kinematics, adaptive_pseudo_inverse
from video_policy_ros.control.trajectory import MIN_LEAD_S, TrajectorySample
from video_policy_ros.geometry import quat_to_matrix
from video_policy_ros.types import ActionChunk, ArmState

# Below this smallest singular value of the TCP Jacobian the inverse is damped (up to JACOBIAN_DAMPING),
# which keeps joint velocities bounded near full extension; the joint caps below do the rest.
SINGULAR_THRESHOLD = 0.05
JACOBIAN_DAMPING = 0.05


@dataclass(frozen=True)
class SafetyLimits:
    max_linear_speed: float  # m/s at the TCP
    max_angular_speed: float  # rad/s
    max_linear_acceleration: float  # m/s^2
    max_angular_acceleration: float  # rad/s^2
    joint_velocity: np.ndarray  # (7,) rad/s
    joint_acceleration: float  # rad/s^2
    joint_jerk: float  # rad/s^3
    joint_limit_margin: float  # rad kept from every joint's position limit
    workspace_min: np.ndarray  # (3,)
    workspace_max: np.ndarray  # (3,)
    workspace_tolerance: float  # m: points this close outside the box are moved onto it; farther, the chunk is rejected
    max_tilt: float  # rad between the TCP z axis and straight down
    table_z: float  # m, the table plane in fr3_link0
    table_clearance: float  # m kept between the table and the TCP / fingertips
    gripper_range: tuple[float, float]  # finger joint, m
    max_chunk_age: float  # s between a chunk's stamp and its arrival
    max_future_stamp: float  # s a stamp may lie ahead of our clock (clock skew)
    max_start_jump: float  # m between the set-point and the first point, on top of what max speed covers
    max_chunk_silence: float  # s without a fresh chunk before a smooth halt
    rest_joint_speed: float = 0.01  # rad/s: below this on every joint the arm is at rest
    braking_horizon: float = 0.1  # s: limits (table, joint range) are approached no faster than this allows


@dataclass(frozen=True)
class DivergenceGuard:
    """What the watchdog does when the world stops matching the policy's predicted video."""

    threshold: float | None = None  # divergence above this counts; None: off (until calibrated)
    predictions: int = 3  # this many in a row above the threshold trigger the action
    action: str = "slow"  # "slow": speed caps x slow_factor until a prediction is below again; "halt": latch a stop
    slow_factor: float = 0.5


@dataclass(frozen=True)
class JointCommand:
    """What is sent to the arm this cycle; ``halt`` = stop at the robot's limits, ignore the rest."""

    joint_velocities: np.ndarray  # (7,) rad/s
    twist: np.ndarray  # (6,) the TCP twist these joint velocities produce, fr3_link0
    gripper: float | None  # finger joint target, None = leave the gripper alone
    halt: bool = False
    stamp: float = 0.0  # the control cycle's time

    @classmethod
    def stop(cls, stamp: float) -> "JointCommand":
        return cls(np.zeros(7), np.zeros(6), None, halt=True, stamp=stamp)


class ChunkRejected(ValueError):
    """A chunk that must not be executed: ``reason`` is the counter key, the message says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RecoveryPolicy:
    """Which robot errors are recovered automatically, and how often."""

    allowed_kinds: frozenset[str]
    max_attempts: int  # within window_s; afterwards only /controller/reset clears the stop
    window_s: float = 60.0


@dataclass
class _Stop:
    kind: str  # "estop", or the robot error kind ("reflex", "motion_planner", ...)
    message: str
    robot_error: bool
    exhausted: bool = False


def _scale_down(vector: np.ndarray, limit: float) -> float:
    norm = float(np.linalg.norm(vector))
    return limit / norm if norm > limit else 1.0


@dataclass
class Watchdog:
    limits: SafetyLimits
    kinematics: FR3Kinematics
    recovery: RecoveryPolicy
    counters: Counter = field(default_factory=Counter)
    _stop: _Stop | None = None
    _last_chunk_arrival: float | None = None
    _recent_recoveries: list[float] = field(default_factory=list)
    last_stop: str = ""  # reason of the latest stop, kept after it is cleared (for diagnostics)
    guard: DivergenceGuard = field(default_factory=DivergenceGuard)
    speed_scale: float = 1.0  # on the TCP speed caps; below 1 while the divergence guard slows the arm
    last_divergence: float | None = None
    last_chunk_age: float | None = None  # s from a chunk's stamp to its arrival: latency plus any clock offset
    _diverged: int = 0  # predictions in a row above the guard's threshold

    def __post_init__(self) -> None:
        self.counters.update(chunks_accepted=0, chunks_rejected=0)

    @property
    def linear_cap(self) -> float:
        """The TCP speed cap in force (m/s): the configured one, scaled down while the divergence guard slows."""
        return self.limits.max_linear_speed * self.speed_scale

    @property
    def angular_cap(self) -> float:
        return self.limits.max_angular_speed * self.speed_scale

    def limits_in_force(self) -> str:
        """The limits a chunk is held to now, in one line for /diagnostics."""
        lim = self.limits
        box = ", ".join(f"{axis} {lo:.2f}..{hi:.2f}" for axis, lo, hi in zip("xyz", lim.workspace_min, lim.workspace_max))
        return (f"TCP <= {self.linear_cap:.3g} m/s, <= {self.angular_cap:.3g} rad/s, <= {lim.max_linear_acceleration:g} m/s^2; "
                f"workspace {box} m (+{lim.workspace_tolerance:g} m moved onto it); tilt <= {np.degrees(lim.max_tilt):.0f} deg; chunk age <= {lim.max_chunk_age:g} s; "
                f"halt after {lim.max_chunk_silence:g} s without a chunk")

    # ------------------------------------------------------------------ chunks

    def reject(self, reason: str, message: str) -> ChunkRejected:
        """Count a rejection (also for chunks that never became an ActionChunk) and return the error."""
        self.counters["chunks_rejected"] += 1
        self.counters[f"rejected_{reason}"] += 1
        return ChunkRejected(reason, message)

    def admit_chunk(self, chunk: ActionChunk, now: float, setpoint: TrajectorySample) -> ActionChunk:
        """The chunk to execute (gripper clamped to its range), or raises :class:`ChunkRejected`."""
        lim = self.limits
        if self._stop is not None:
            raise self.reject("stopped", f"controller is stopped ({self._stop.message}); call /controller/reset")
        if not (np.all(np.isfinite(chunk.poses)) and np.all(np.isfinite(chunk.gripper))):
            raise self.reject("non_finite", "chunk contains NaN or infinite values")
        norms = np.linalg.norm(chunk.poses[:, 3:], axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-3):
            raise self.reject("bad_quaternion", f"orientations are not unit quaternions (norms {norms.min():.3f}..{norms.max():.3f})")
        age = self.last_chunk_age = now - chunk.stamp
        if age > lim.max_chunk_age:
            raise self.reject("too_old", f"chunk is {age:.2f} s old (max_chunk_age_s {lim.max_chunk_age})")
        if -age > lim.max_future_stamp:
            raise self.reject("future_stamp", f"chunk is stamped {-age:.2f} s ahead of this controller's clock: the clock "
                              "of the host that stamped its observation (where the cameras run) is ahead of the robot "
                              "PC's; synchronise them (chrony or PTP, README 'Across machines')")
        # How far each point lies outside the box (<= 0 inside): a policy that aims a few mm below the floor
        # gets the floor; one that aims far outside is wrong, and none of its chunk is trusted.
        beyond = np.maximum(lim.workspace_min - chunk.poses[:, :3], chunk.poses[:, :3] - lim.workspace_max).max(axis=1)
        if beyond.max() > lim.workspace_tolerance:
            point = chunk.poses[int(np.argmax(beyond)), :3].round(3).tolist()
            raise self.reject("outside_workspace", f"point {point} lies {beyond.max():.3f} m outside the workspace box "
                              f"{lim.workspace_min.tolist()}..{lim.workspace_max.tolist()} (workspace_tolerance_m "
                              f"{lim.workspace_tolerance:g})")
        poses = chunk.poses
        if beyond.max() > 0:
            poses = np.concatenate([np.clip(poses[:, :3], lim.workspace_min, lim.workspace_max), poses[:, 3:]], axis=1)
        tilt = self.tilt(poses[:, 3:])
        if np.any(tilt > lim.max_tilt):
            raise self.reject("tilt", f"hand tilted {tilt.max():.2f} rad from straight down (max_tilt_rad {lim.max_tilt})")
        future = chunk.times >= now + MIN_LEAD_S
        if not future.any():
            raise self.reject("stale", f"every point was due already (last {now - chunk.times[-1]:.2f} s ago)")
        # The chunk starts where the arm was at its stamp: since then (or until its first point is
        # due) the set-point can have moved at most at the speed cap.
        jump = float(np.linalg.norm(poses[0, :3] - setpoint.pose[:3]))
        reachable = lim.max_start_jump + self.linear_cap * abs(chunk.times[0] - now)
        if jump > reachable:
            raise self.reject("start_jump", f"first point is {jump:.3f} m from the current set-point (max {reachable:.3f} m)")
        self.counters["chunks_accepted"] += 1
        self._last_chunk_arrival = now
        if poses is not chunk.poses:
            self.counters["limited_workspace_projection"] += 1
        gripper = np.clip(chunk.gripper, *lim.gripper_range)
        if np.any(gripper != chunk.gripper):
            self.counters["limited_gripper_range"] += 1
        return ActionChunk(chunk.stamp, chunk.dt, poses, gripper)

    @staticmethod
    def tilt(quats: np.ndarray) -> np.ndarray:
        """Angle between each TCP z axis and straight down."""
        z_axes = np.array([quat_to_matrix(q)[:, 2] for q in np.atleast_2d(quats)])
        return np.arccos(np.clip(-z_axes[:, 2], -1.0, 1.0))

    def silent(self, now: float) -> bool:
        """True once when no chunk has arrived for max_chunk_silence (the caller then drops its plan)."""
        if self._last_chunk_arrival is None or now - self._last_chunk_arrival <= self.limits.max_chunk_silence:
            return False
        self._last_chunk_arrival = None
        self.counters["silence_halts"] += 1
        return True

    def divergence(self, value: float) -> str | None:
        """One prediction's divergence from what the camera then saw; returns the message of a slow-down or
        stop it starts (else None). A non-finite value counts as diverged: the prediction is unusable."""
        self.last_divergence = value
        guard = self.guard
        if guard.threshold is None:
            return None
        if np.isfinite(value) and value <= guard.threshold:
            self._diverged = 0
            if self.speed_scale < 1.0:
                self.speed_scale = 1.0
                self.counters["divergence_cleared"] += 1
            return None
        self._diverged += 1
        if self._diverged < guard.predictions:
            return None
        message = (f"divergence {value:.4g} above {guard.threshold:g} for {self._diverged} predictions in a row: "
                   "the camera no longer matches the predicted video")
        if guard.action == "halt":
            return message if self.latch("divergence", message) else None
        if self.speed_scale == 1.0:
            self.speed_scale = guard.slow_factor
            self.counters["divergence_slowdowns"] += 1
            return f"{message}; TCP speed caps x{guard.slow_factor:g} until a prediction matches again"
        return None

    # ------------------------------------------------------------------ stops

    @property
    def stop_message(self) -> str | None:
        return None if self._stop is None else self._stop.message

    def latch(self, kind: str, message: str, robot_error: bool = False) -> bool:
        """The one safe-stop path: e-stop and robot errors. True if newly latched (the first reason is kept)."""
        if self._stop is not None:
            return False
        self.counters[f"stops_{kind}"] += 1
        self._stop = _Stop(kind, message, robot_error)
        self.last_stop = message
        return True

    def at_rest(self, state: ArmState) -> bool:
        return float(np.max(np.abs(state.joint_velocities))) < self.limits.rest_joint_speed

    def reset(self, state: ArmState) -> tuple[bool, str]:
        """Clear a latched stop (operator request), only when the arm is at rest."""
        if self._stop is None:
            return True, "controller was not stopped"
        if not self.at_rest(state):
            speed = float(np.max(np.abs(state.joint_velocities)))
            return False, f"arm still moving ({speed:.3f} rad/s); wait until it is at rest"
        message, self._stop = self._stop.message, None
        self.counters["resets"] += 1
        return True, f"cleared stop ({message}); holding position until the next chunk"

    def should_recover(self, state: ArmState, now: float) -> bool:
        """A robot error on the allow-list, at rest, with attempts left: try ``recover_from_errors``.

        Attempts (failed or not) are bounded per ``recovery.window_s``, so an error that comes
        back after every recovery ends in a stop that only /controller/reset clears.
        """
        stop = self._stop
        if stop is None or not stop.robot_error or not self.at_rest(state) or stop.kind not in self.recovery.allowed_kinds:
            return False
        self._recent_recoveries = [t for t in self._recent_recoveries if now - t < self.recovery.window_s]
        if len(self._recent_recoveries) < self.recovery.max_attempts:
            return True
        if not stop.exhausted:
            stop.exhausted = True
            stop.message += (f"; {self.recovery.max_attempts} automatic recoveries in {self.recovery.window_s:g} s did not "
                             "help: check the robot, then call /controller/reset")
            self.counters["recoveries_exhausted"] += 1
        return False

    def recovery_result(self, ok: bool, now: float) -> None:
        self._recent_recoveries.append(now)
        if self._stop is None:
            return
        if ok:
            self._stop = None
            self.counters["recoveries"] += 1
        else:
            self.counters["recovery_failures"] += 1

    # ------------------------------------------------------------------ per-cycle limits

    def limit(self, desired: np.ndarray, state: ArmState, previous: JointCommand, previous_acceleration: np.ndarray,
              dt: float) -> tuple[JointCommand, np.ndarray]:
        """Limit the desired TCP twist (6,) into the joint velocities sent this cycle.

        Returns the command and the joint acceleration it implies (for next cycle's jerk limit).
        """
        lim, q = self.limits, state.joint_positions
        twist = np.array(desired, dtype=float)
        # 1. TCP speed caps: one factor for the whole twist keeps the direction (the TCP stays on its line).
        #    Caps lowered while moving (the divergence guard) are reached at the acceleration cap, not in a cycle.
        linear_cap = min(lim.max_linear_speed, max(self.linear_cap, np.linalg.norm(previous.twist[:3])
                                                   - lim.max_linear_acceleration * dt))
        angular_cap = min(lim.max_angular_speed, max(self.angular_cap, np.linalg.norm(previous.twist[3:])
                                                     - lim.max_angular_acceleration * dt))
        scale = min(_scale_down(twist[:3], linear_cap), _scale_down(twist[3:], angular_cap))
        self._count("tcp_speed", scale < 1.0)
        twist = twist * scale
        # 2. Workspace box and table plane: the measured TCP approaches each face no faster than it can
        #    brake within the acceleration cap and the braking horizon (chunks only hold points inside
        #    the box, but a stop from speed would carry the arm past it).
        toward_min = np.maximum(state.tcp_pose[:3] - lim.workspace_min, 0.0)
        toward_max = np.maximum(lim.workspace_max - state.tcp_pose[:3], 0.0)
        lowest = min(state.tcp_pose[2], self.kinematics.lowest_fingertip_z(q))
        toward_min[2] = min(toward_min[2], max(0.0, lowest - lim.table_z - lim.table_clearance))
        bounded = np.clip(twist[:3], -self._approach_speed(toward_min), self._approach_speed(toward_max))
        self._count("workspace", np.any(bounded != twist[:3]))
        twist[:3] = bounded
        # 3. TCP acceleration: the change from last cycle's sent twist is capped (velocity stays continuous).
        change = twist - previous.twist
        scale = min(_scale_down(change[:3], lim.max_linear_acceleration * dt),
                    _scale_down(change[3:], lim.max_angular_acceleration * dt))
        self._count("tcp_acceleration", scale < 1.0)
        twist = previous.twist + change * scale
        # 4. Into joint space; joint speeds and the joint position margins scale the whole motion.
        jac = self.kinematics.jacobian(q)
        qdot = adaptive_pseudo_inverse(jac, SINGULAR_THRESHOLD, JACOBIAN_DAMPING) @ twist
        ratio = np.abs(qdot) / lim.joint_velocity
        if self._count("joint_velocity", ratio.max() > 1.0):
            qdot = qdot / ratio.max()
        room = np.where(qdot > 0, self.kinematics.upper - q, q - self.kinematics.lower) - lim.joint_limit_margin
        allowed = np.maximum(room, 0.0) / lim.braking_horizon
        over = np.abs(qdot) > allowed
        if self._count("joint_limit", over.any()):
            qdot = qdot * float(np.min(allowed[over] / np.abs(qdot[over])))
        # 5. Per-joint rate limiter (as libfranka's limitRate): jerk, then acceleration.
        acceleration = (qdot - previous.joint_velocities) / dt
        jerk_bounded = np.clip(acceleration, previous_acceleration - lim.joint_jerk * dt,
                               previous_acceleration + lim.joint_jerk * dt)
        bounded = np.clip(jerk_bounded, -lim.joint_acceleration, lim.joint_acceleration)
        self._count("joint_jerk", np.any(jerk_bounded != acceleration))
        self._count("joint_acceleration", np.any(bounded != jerk_bounded))
        qdot = previous.joint_velocities + bounded * dt
        # 6. The rate limiter may bend the motion a little: the TCP caps hold on what is actually sent.
        sent = jac @ qdot
        scale = min(_scale_down(sent[:3], linear_cap), _scale_down(sent[3:], angular_cap))
        self._count("tcp_speed", scale < 1.0)
        qdot, sent = qdot * scale, sent * scale
        return JointCommand(qdot, sent, None), (qdot - previous.joint_velocities) / dt

    def _approach_speed(self, room: np.ndarray) -> np.ndarray:
        """Fastest approach to limits ``room`` metres away that stops in time: braking at half the
        acceleration cap (the rest covers the arm's lag), and within the braking horizon close to them."""
        lim = self.limits
        return np.minimum(np.sqrt(lim.max_linear_acceleration * room), room / lim.braking_horizon)

    def _count(self, limit: str, active) -> bool:
        """Count a cycle in which ``limit`` changed the command; returns ``active``."""
        if active:
            self.counters[f"limited_{limit}"] += 1
        return bool(active)
