"""Each preflight check: one figure measured from outside (``Observations``) against one limit.

Pure functions of what the observer recorded, the controller configuration under test and
the site's limits; the scenarios in ``scenarios.py`` produce the recordings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from video_policy_ros.config import ControllerConfig, PreflightConfig
from video_policy_ros.preflight.observations import STAMP_LAG_S, Observations

BAD_CHUNK_KINDS = ("non_finite", "outside_workspace", "start_jump", "too_old", "future_stamp", "malformed")


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None  # None: the scenario did not get far enough to measure it
    limit: float
    unit: str
    at_most: bool  # the measured figure must be <= limit (else >=)
    detail: str = ""

    @property
    def passed(self) -> bool:
        if self.measured is None or not np.isfinite(self.measured):
            return False
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    @property
    def bound(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:.4g} {self.unit}".rstrip()

    def row(self) -> str:
        measured = "-" if self.measured is None else f"{self.measured:.4g}"
        detail = (self.detail.splitlines() or [""])[0][:110]
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:52s} {measured:>9s}  {self.bound:18s} {detail}"

    def summary(self) -> str:
        """One failed check in a sentence's clause."""
        if self.measured is None:
            return f"{self.name} (not measured: {self.detail})"
        return f"{self.name} ({self.measured:.4g}, must be {self.bound})"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def not_measured(name: str, limit: float, unit: str, at_most: bool, why: str) -> Check:
    return Check(name, None, limit, unit, at_most, why)


def robot_time(factor: float) -> str:
    """What a timed check adds to its detail when the robot's clock ran slower than the wall clock (a simulated
    FR3 on a loaded machine): its deadlines and speeds were then taken on the robot's time."""
    return "" if factor >= 1.0 else f"; robot clock down to {factor:.2f}x real time, deadlines on its time"


def speed_limit(controller: ControllerConfig, site: PreflightConfig) -> float:
    return min(controller.max_linear_speed, site.max_tcp_speed) * (1 + site.speed_tolerance)


def bad_chunks(obs: Observations, site: PreflightConfig) -> list[Check]:
    ev = obs.events
    _, positions = obs.poses_between(ev["bad_start"], ev["bad_end"])
    moved = float(np.linalg.norm(positions - positions[0], axis=1).max())
    checks = [Check(f"rejects {kind.replace('_', '-')} chunks", obs.counter(f"rejected_{kind}"), 1, "reports", False,
                    f"rejected_{kind} on /diagnostics") for kind in BAD_CHUNK_KINDS]
    return [*checks, Check("arm stays put while only bad chunks arrive", moved, site.max_bad_chunk_motion_m, "m", True)]


def faces(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """Chunks asking for twice the cap toward each workspace face: the speed stays under the cap and
    the TCP on the chunk's straight line."""
    checks, deviations = [], []
    for face, (start, target, sent, arrived) in obs.events["faces"].items():
        _, positions = obs.poses_between(sent, arrived)
        direction = (target - start) / np.linalg.norm(target - start)
        offsets = positions - start
        deviations.append(np.linalg.norm(offsets - np.outer(offsets @ direction, direction), axis=1).max())
        checks.append(Check(f"TCP speed toward {face}", obs.max_tcp_speed(sent, arrived), speed_limit(controller, site),
                            "m/s", True, "chunk asked for 2x the cap; from /joint_states" + robot_time(obs.robot_time_factor(sent, arrived))))
    return [*checks, Check("TCP stays on a straight chunk's line", float(max(deviations)), site.max_path_deviation_m, "m", True)]


def floor(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """Chunks stopping abruptly at the workspace floor: the TCP neither passes it nor stays short of it."""
    _, positions = obs.poses_between(obs.events["floor_start"], obs.events["floor_end"])
    lowest, floor_z = float(positions[:, 2].min()), controller.workspace.min[2]
    return [
        Check("TCP stays above the workspace floor", lowest, floor_z - site.floor_overshoot_m, "m", False,
              f"lowest TCP z; floor {floor_z} m"),
        Check("TCP reaches the workspace floor", lowest, floor_z + site.floor_reach_m, "m", True,
              f"lowest TCP z; table at {controller.table_z} m + {controller.table_clearance_m} m clearance"),
    ]


def below_floor(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """Chunks aiming half the workspace tolerance below the floor: moved onto it, none refused, and the
    TCP no lower than for chunks that stop at the floor. No rows when the tolerance is 0."""
    if controller.workspace_tolerance_m == 0:
        return []
    ev = obs.events
    _, positions = obs.poses_between(ev["below_floor_start"], ev["below_floor_end"])
    lowest, floor_z = float(positions[:, 2].min()), controller.workspace.min[2]
    depth = f"{controller.workspace_tolerance_m / 2 * 100:g} cm"
    return [
        Check(f"chunks aiming {depth} below the floor are moved onto it", ev["projected_after"] - ev["projected_before"],
              1, "chunks", False, "limited_workspace_projection on /diagnostics"),
        Check("none of them rejected", ev["outside_after"] - ev["outside_before"], 0, "chunks", True,
              "rejected_outside_workspace on /diagnostics"),
        Check(f"TCP stays above the workspace floor (aiming {depth} below)", lowest, floor_z - site.floor_overshoot_m, "m",
              False, f"lowest TCP z; floor {floor_z} m"),
    ]


def splices(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """Overlapping chunks that turn the motion: the commanded velocity changes at most a*dt per cycle."""
    ev = obs.events
    kept = [(s, v) for s, v in obs.commands if ev["splice_start"] <= s <= ev["splice_end"]]
    stamps, twists = np.array([s for s, _ in kept]), np.array([v for _, v in kept])
    change = np.linalg.norm(np.diff(twists, axis=0), axis=1)
    # Per published cycle; a cycle that ran late may legitimately change more, in proportion.
    allowed = controller.max_linear_acceleration * np.maximum(np.diff(stamps), 1.0 / controller.loop_rate_hz)
    moving = float(np.linalg.norm(twists, axis=1).max())
    if moving < 0.1:
        return [not_measured("velocity continuity across chunk splices", 1 + site.speed_tolerance, "x a*dt", True,
                             f"the arm never moved during the splices (peak {moving:.3f} m/s)")]
    return [Check("velocity continuity across chunk splices", float(np.max(change / allowed)), 1 + site.speed_tolerance,
                  "x a*dt", True, "largest per-cycle change of /controller/command")]


def silence(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    ev = obs.events
    sent = ev["silence_sent"]
    name = f"at rest {controller.max_chunk_silence_s + site.silence_halt_margin_s:.1f} s into chunk silence"
    if obs.max_joint_speed(sent + 1.0, sent + 2.5) <= 0.005:
        return [not_measured(name, site.at_rest_joint_speed, "rad/s", True, "the arm was not moving before the silence")]
    # The controller counts the silence on the wall clock; the braking after it runs on the robot's (slower than
    # the wall clock for a simulated FR3 on a loaded machine).
    factor = obs.robot_time_factor(sent, ev["silence_end"])
    residual = obs.max_joint_speed(obs.after_robot_seconds(sent + controller.max_chunk_silence_s, site.silence_halt_margin_s),
                                   ev["silence_end"] - STAMP_LAG_S)
    return [Check(name, residual, site.at_rest_joint_speed, "rad/s", True, "max joint speed" + robot_time(factor)),
            Check("silence halt reported", obs.counter("silence_halts"), 1, "reports", False, "silence_halts on /diagnostics")]


def estop(obs: Observations, site: PreflightConfig) -> list[Check]:
    ev = obs.events
    name = f"at rest {site.estop_halt_s} s after an e-stop while moving"
    if obs.max_joint_speed(ev["estop"] - 0.1, ev["estop"]) <= 0.05:
        return [not_measured(name, site.at_rest_joint_speed, "rad/s", True, "the arm was not moving at the e-stop")]
    success, message = ev["reset_response"]
    factor = obs.robot_time_factor(ev["estop"], ev["reset"])
    return [
        Check(name, obs.max_joint_speed(obs.after_robot_seconds(ev["estop"], site.estop_halt_s), ev["reset"] - STAMP_LAG_S),
              site.at_rest_joint_speed, "rad/s", True, "max joint speed until reset, while chunks kept coming" + robot_time(factor)),
        Check("chunks rejected while e-stopped", obs.counter("rejected_stopped"), 1, "reports", False),
        Check("moves again after /controller/reset", obs.max_joint_speed(ev["reset"], ev["done"]) if success else None,
              0.05, "rad/s", False, message),
    ]


def gripper(obs: Observations, site: PreflightConfig) -> list[Check]:
    ev = obs.events
    received = np.array([r for r, _, _ in obs.poses if ev["gripper_start"] <= r <= ev["gripper_end"]])
    fingers = np.array([f for r, f in obs.fingers if ev["gripper_start"] <= r <= ev["gripper_end"]])
    return [
        Check("/ee_pose keeps flowing while gripper targets flip", float(np.diff(received).max()), site.max_state_gap_s,
              "s", True, "longest gap"),
        Check("fingers follow the gripper chunks", float(fingers.max() - fingers.min()), 0.01, "m", False, "finger travel"),
    ]


def divergence_guard(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """The controller's answer to diverged predictions: slowed to its configured fraction of the cap
    (reached at the acceleration cap), or halted. No rows when the guard is off."""
    guard, ev = controller.divergence, obs.events
    if guard.threshold is None:
        return []
    triggered = ev["guard_triggered"]
    factor = obs.robot_time_factor(triggered, ev["guard_end"])
    if guard.action == "halt":
        settle = site.estop_halt_s + controller.max_linear_speed / controller.max_linear_acceleration
        return [
            Check(f"at rest {settle:.2f} s after diverged predictions (halt)",
                  obs.max_joint_speed(obs.after_robot_seconds(triggered, settle), ev["guard_end"] - STAMP_LAG_S),
                  site.at_rest_joint_speed, "rad/s", True, "max joint speed" + robot_time(factor)),
            Check("divergence stop reported", obs.counter("stops_divergence"), 1, "reports", False, obs.value("last_stop")),
        ]
    before = obs.max_tcp_speed(triggered - 0.5, triggered)
    before = before if np.isfinite(before) else 0.0
    name = f"TCP speed after diverged predictions (x{guard.slow_factor:g})"
    limit = controller.max_linear_speed * guard.slow_factor * (1 + site.speed_tolerance)
    if before <= limit:
        return [not_measured(name, limit, "m/s", True, f"the arm was at {before:.3f} m/s, not above the slowed cap, before")]
    # Down to the slowed cap at the acceleration cap, plus the lag of the measured pose.
    settle = (before - controller.max_linear_speed * guard.slow_factor) / controller.max_linear_acceleration + 0.2
    return [Check(name, obs.max_tcp_speed(obs.after_robot_seconds(triggered, settle), ev["guard_end"] - STAMP_LAG_S), limit, "m/s", True,
                  f"was {before:.3f} m/s before; from /joint_states" + robot_time(factor))]


def survived(obs: Observations, who: str = "controller") -> list[Check]:
    return [Check(f"{who} process still running", float(obs.events.get(f"{who}_alive", False)), 1, "", False)]


def robot_errors(obs: Observations, site: PreflightConfig) -> list[Check]:
    """A reflex and an injected motion-generator error, each recovered in the same node and connection."""
    ev = obs.events
    checks = [Check(f"recovers from a {kind.replace('_', ' ')}", ev.get(f"{kind}_recovery_s"), site.recovery_timeout_s, "s",
                    True, str(ev.get(f"{kind}_reason", ""))) for kind in ("cartesian_reflex", "motion_generator_error")]
    moved = ev.get("moved_after_recovery")
    return [*checks, Check("follows chunks after both recoveries", moved, 0.01, "m", False, "TCP travel")]


def inference_crash(obs: Observations, controller: ControllerConfig, site: PreflightConfig) -> list[Check]:
    """The inference process SIGKILLed mid-chunk: the arm finishes nothing it was not sent, halts on the
    silence, holds, and follows the restarted node."""
    ev = obs.events
    # A chunk slowed to the speed cap can still be running when the silence halt is due: the arm then
    # brakes at the acceleration cap, so rest is due that long after the silence, plus the site's margin.
    braking = controller.max_linear_speed / controller.max_linear_acceleration + site.silence_halt_margin_s
    halt_name = f"TCP travel from {controller.max_chunk_silence_s + braking:.2f} s after the last chunk (inference killed)"
    if obs.max_joint_speed(ev["killed"] - 0.5, ev["killed"]) <= 0.02:
        return [not_measured(halt_name, site.max_halt_travel_m, "m", True, "the arm was not moving at the kill")]
    # Every chunk that reaches the probe before the restart came from the killed process; under load the
    # last of them can arrive after the kill was measured, and the controller counts silence from it.
    last_chunk = max(t for t in obs.chunk_arrivals if t <= ev["restarted"])
    factor = obs.robot_time_factor(last_chunk, ev["restarted"])
    # The silence counts on the wall clock, the braking after it on the robot's. What is left after the halt is the
    # arm settling onto its set-point, so the check is the distance travelled.
    _, positions = obs.poses_between(obs.after_robot_seconds(last_chunk + controller.max_chunk_silence_s, braking), ev["restarted"])
    if not len(positions):
        return [not_measured(halt_name, site.max_halt_travel_m, "m", True,
                             f"no /ee_pose between the halt deadline and the restart{robot_time(factor)}")]
    travel = float(np.linalg.norm(positions - positions[0], axis=1).max())
    halts = [(r, int(values["silence_halts"])) for r, _, values in obs.diagnostics if "silence_halts" in values]
    before = max((n for r, n in halts if r <= last_chunk), default=0)
    halted = next((r for r, n in halts if r > last_chunk and n > before), None)
    how = f"silence halt on /diagnostics {halted - last_chunk:.1f} s after it" if halted else "its plan ended before the silence"
    first_after = [t for t in obs.chunk_arrivals if t > ev["restarted"]]
    return [
        Check(halt_name, travel, site.max_halt_travel_m, "m", True,
              f"last chunk {last_chunk - ev['killed']:+.2f} s from the kill, {how}{robot_time(factor)}"),
        Check("restarted inference drives the arm again", first_after[0] - ev["restarted"] if first_after else None,
              site.inference_start_timeout_s, "s", True, "first chunk after the restart"),
    ]
