"""Controller benchmark: command-stream jitter, latency from chunk arrival to motion, and how
much faster than real time the direct MuJoCo backend runs the same control core.

    PYTHONPATH=src MUJOCO_GL=egl python bench/bench_controller.py [--chunks 10] [--ip 127.0.0.93]

The franky backend talks to franky-sim's own server (its ``franky-sim`` command)
over the real libfranka protocol on loopback, so the numbers include the network stack and
this machine's load. Each trial holds still, then submits a 5 cm line chunk, and times:
arrival → first non-zero command sent, and arrival → the measured TCP has moved 1 mm.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from video_policy_ros.config import ControllerConfig
from video_policy_ros.control.build import build_control_loop
from video_policy_ros.control.mujoco_arm import MujocoArm
from video_policy_ros.types import ActionChunk, ArmState

MOVED_M = 0.001


def line_chunk(state: ArmState, stamp: float, offset=(0.0, 0.05, -0.03), speed: float = 0.1) -> ActionChunk:
    n = int(np.ceil(np.linalg.norm(offset) / (speed * 0.1)))
    s = np.linspace(1 / n, 1, n)[:, None]
    positions = state.tcp_pose[:3] + s * np.asarray(offset)
    return ActionChunk(stamp, 0.1, np.hstack([positions, np.tile(state.tcp_pose[3:], (n, 1))]), np.full(n, 0.04))


def percentiles(values) -> str:
    v = np.asarray(values) * 1e3
    return f"p50 {np.percentile(v, 50):6.2f}  p99 {np.percentile(v, 99):6.2f}  max {v.max():6.2f} ms"


def bench_franky(config: ControllerConfig, trials: int) -> None:
    sent: list[tuple[float, float]] = []  # (monotonic time, |commanded TCP speed|)
    measured: list[tuple[float, np.ndarray]] = []
    loop = build_control_loop(
        config,
        on_state=lambda s: measured.append((time.monotonic(), s.tcp_pose[:3].copy())),
        on_command=lambda c: sent.append((time.monotonic(), float(np.linalg.norm(c.twist[:3])))),
    )
    loop.start()
    if not loop.wait_until_running(30):
        raise SystemExit(f"error: no robot at {config.robot_ip}: {loop.fatal or loop.status}")
    to_command, to_motion = [], []
    offset = np.array([0.0, 0.05, -0.03])
    try:
        for trial in tqdm(range(trials), desc="franky backend: chunks"):
            time.sleep(0.7)  # at rest
            start = loop.latest_state
            arrival = time.monotonic()
            loop.submit_chunk(line_chunk(start, time.time(), offset * (1 if trial % 2 == 0 else -1)))
            time.sleep(1.2)
            to_command.append(next(t for t, v in sent if t > arrival and v > 1e-4) - arrival)
            to_motion.append(next(t for t, p in measured if t > arrival and np.linalg.norm(p - start.tcp_pose[:3]) > MOVED_M)
                             - arrival)
    finally:
        loop.close()
    intervals = np.diff([t for t, _ in sent])
    period = 1.0 / config.loop_rate_hz
    print(f"\nfranky backend over libfranka/loopback, loop at {config.loop_rate_hz:.0f} Hz ({len(intervals)} cycles):")
    print(f"  command interval       {percentiles(intervals)}   (p99 / period = {np.percentile(intervals, 99) / period:.2f})")
    print(f"  jitter |interval - T|  {percentiles(np.abs(intervals - period))}")
    print(f"  chunk → first command  {percentiles(to_command)}   (p50 / period = {np.median(to_command) / period:.2f})")
    print(f"  chunk → TCP moved 1 mm {percentiles(to_motion)}   (p50 / period = {np.median(to_motion) / period:.2f})")


def bench_mujoco(config: ControllerConfig, simulated_s: float) -> None:
    from video_policy_ros.sim.world import SIM_JOINT_DAMPING_GAINS

    arm = MujocoArm(command_timeout_s=config.command_timeout_s, stop_deceleration=5.0,
                    gripper_speed=config.gripper_speed, joint_damping_gains=SIM_JOINT_DAMPING_GAINS)
    states: list[ArmState] = []
    loop = build_control_loop(config, states.append, connect=lambda: arm, clock=lambda: arm.time)
    loop.run_for(0.1, arm.advance, lambda: arm.time)
    started, elapsed = time.perf_counter(), 0.0
    with tqdm(total=simulated_s, desc="mujoco backend: simulated s", unit="s") as progress:
        while elapsed < simulated_s:
            loop.submit_chunk(line_chunk(states[-1], arm.time, (0.0, 0.05 if int(elapsed) % 2 == 0 else -0.05, 0.0)))
            loop.run_for(1.0, arm.advance, lambda: arm.time)
            elapsed += 1.0
            progress.update(1.0)
    wall = time.perf_counter() - started
    arm.close()
    print(f"\nmujoco backend (same core, franky-sim's model stepped at 1 kHz): {simulated_s:.0f} s simulated in "
          f"{wall:.1f} s wall = {simulated_s / wall:.2f}x real time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10, help="trials with the franky backend")
    parser.add_argument("--ip", default="127.0.0.93", help="loopback address for the franky-sim server")
    parser.add_argument("--simulated-s", type=float, default=10.0, help="simulated seconds for the MuJoCo backend")
    args = parser.parse_args()
    config = ControllerConfig(robot_ip=args.ip)
    server = subprocess.Popen([str(Path(sys.executable).with_name("franky-sim")), "-s", "mujoco", "--hostname", args.ip],
                              stdout=subprocess.DEVNULL)
    try:
        bench_franky(config, args.chunks)
    finally:
        server.send_signal(2)
        server.wait(timeout=10)
    bench_mujoco(config, args.simulated_s)


if __name__ == "__main__":
    main()
