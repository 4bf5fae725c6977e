"""Soak: many consecutive episodes through the real ``ros2 launch`` and through ``video-policy demos``.

    PYTHONPATH=src MUJOCO_GL=egl python bench/soak.py --launches 100 --demos 100 [--stress 2]

1. ``--launches N``: ``ros2 launch video_policy_ros franka.launch.py exit_on_done:=true seed:=<i>`` for seeds
   0..N-1, both tasks (a config folder whose sim_world.yaml says ``task.kind: mixed``), each from a fresh
   directory in a process group of its own. Counted: hangs (no exit within ``--launch-timeout``; the group is
   then killed), tracebacks in the output, processes of the group left after the launch exited (orphans), and
   exit codes that disagree with the verdict the launch printed (0 with SUCCESS, non-zero otherwise).
2. ``--demos N``: ``video-policy demos --episodes N --task mixed``, with a wall-clock limit of
   ``--demo-timeout`` per episode: counted are hung episodes (the limit ran out), aborted and failed ones.

``--stress K`` runs ``stress-ng --cpu K`` beside everything (Debian's stress-ng). Prints the counts and the
time per episode; writes them as JSON with ``--out``. Exit status 0 only with no hang, traceback or orphan and
every exit code matching its verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cpu_load import cpu_stress

REPO = Path(__file__).resolve().parents[1]
ROS2 = Path(sys.prefix) / "bin" / "ros2"


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pgid:
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                pass
    return members


def exit_status(process: subprocess.Popen) -> int | None:
    """Without reaping: the group id stays this launch's until it is reaped (no pid reuse)."""
    info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid == 0:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def one_launch(seed: int, config_dir: Path, robot_ip: str, timeout_s: float, work: Path) -> dict:
    cwd = work / f"launch_{seed}"
    cwd.mkdir(parents=True)
    log = cwd / "launch.log"
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PYTHONPATH=str(REPO / "src"), VIDEO_POLICY_ROS_HOME=str(cwd),
               ROS_LOG_DIR=str(cwd / "ros_log"), MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(ROS2), "launch", "video_policy_ros", "franka.launch.py", "exit_on_done:=true", f"seed:={seed}",
         f"robot_ip:={robot_ip}", f"config_dir:={config_dir}", "output_dir:=videos"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
        start_new_session=True)
    hung = False
    while (code := exit_status(process)) is None:
        if time.monotonic() - started > timeout_s:
            hung = True
            os.killpg(process.pid, signal.SIGINT)
            time.sleep(10)
            os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.5)
            code = exit_status(process)
            break
        time.sleep(0.2)
    wall = time.monotonic() - started
    time.sleep(1.0)  # launch's children had their chance to go
    orphans = group_members(process.pid)
    if orphans:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    out = log.read_text(errors="replace")
    verdict = "success" if "SUCCESS:" in out else "failure" if "FAILURE:" in out else "none"
    matches = (code == 0) == (verdict == "success") and verdict != "none"
    return {"seed": seed, "exit_code": code, "verdict": verdict, "code_matches_verdict": matches, "hung": hung,
            "tracebacks": out.count("Traceback"), "orphans": len(orphans), "wall_s": round(wall, 1),
            "task": "place" if "put the" in out else "touch", "log": str(log)}


def launches(n: int, robot_ip: str, timeout_s: float) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="soak_launch_"))
    config_dir = work / "config"
    shutil.copytree(REPO / "config", config_dir)
    sim = config_dir / "sim_world.yaml"
    sim.write_text(re.sub(r"kind: \w+", "kind: mixed", sim.read_text(), count=1))
    results = []
    for seed in range(n):
        r = one_launch(seed, config_dir, robot_ip, timeout_s, work)
        results.append(r)
        print(f"launch seed {seed} ({r['task']}): exit {r['exit_code']}, {r['verdict']}, {r['wall_s']} s"
              + (" HUNG" if r["hung"] else "") + (f" {r['tracebacks']} TRACEBACK(S)" if r["tracebacks"] else "")
              + (f" {r['orphans']} ORPHAN(S)" if r["orphans"] else "")
              + ("" if r["code_matches_verdict"] else f" EXIT CODE DISAGREES ({r['log']})"), flush=True)
    return results


def demos(n: int, robot_ip: str, timeout_s: float) -> dict:
    out = Path(tempfile.mkdtemp(prefix="soak_demos_"))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "video_policy_ros.cli", "demos", "--out", str(out), "--episodes", str(n), "--task",
         "mixed", "--first-seed", "5000", "--robot-ip", robot_ip],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
        start_new_session=True)
    lines: list[str] = []
    last_progress = time.monotonic()
    hung = 0
    os.set_blocking(process.stdout.fileno(), False)
    while process.poll() is None:
        chunk = process.stdout.read() or ""
        if chunk:
            new = [line for line in re.split(r"[\r\n]", chunk) if ".npz:" in line or "aborted" in line]
            if new:
                last_progress = time.monotonic()
                lines += new
        if time.monotonic() - last_progress > timeout_s:
            hung += 1
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    lines += [line for line in re.split(r"[\r\n]", process.stdout.read() or "") if ".npz:" in line or "aborted" in line]
    process.wait()
    wall = time.monotonic() - started
    saved = [line for line in lines if ".npz:" in line]
    return {"episodes": n, "saved": len(saved), "failed": sum("success=False" in line for line in saved),
            "aborted": sum("aborted" in line for line in lines), "hung": hung, "exit_code": process.returncode,
            "wall_s": round(wall, 1), "s_per_episode": round(wall / max(1, len(lines)), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=100)
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--stress", type=int, default=0, help="stress-ng --cpu K beside the runs (0: none)")
    parser.add_argument("--launch-timeout", type=float, default=180.0, help="s before a launch counts as hung")
    parser.add_argument("--demo-timeout", type=float, default=120.0, help="s without a finished demo: hung")
    parser.add_argument("--robot-ip", default="127.0.0.95")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not ROS2.exists() and args.launches:
        print(f"error: no ros2 in {sys.prefix}/bin: run make install (it installs the real ros2 launch)", file=sys.stderr)
        return 2
    with cpu_stress(args.stress):
        report: dict = {"stress_cpu": args.stress}
        if args.launches:
            runs = launches(args.launches, args.robot_ip, args.launch_timeout)
            walls = np.array([r["wall_s"] for r in runs])
            report["launch"] = {
                "episodes": len(runs), "hangs": sum(r["hung"] for r in runs),
                "tracebacks": sum(r["tracebacks"] > 0 for r in runs), "orphans": sum(r["orphans"] > 0 for r in runs),
                "exit_code_disagrees": sum(not r["code_matches_verdict"] for r in runs),
                "successes": {t: f"{sum(r['verdict'] == 'success' for r in runs if r['task'] == t)}/"
                                 f"{sum(r['task'] == t for r in runs)}" for t in ("touch", "place")},
                "s_per_episode_p50": float(np.median(walls)), "s_per_episode_max": float(walls.max()),
                "runs": runs,
            }
        if args.demos:
            report["demos"] = demos(args.demos, args.robot_ip, args.demo_timeout)
    summary = {k: v for k, v in report.get("launch", {}).items() if k != "runs"}
    print(f"ros2 launch soak: {summary}")
    print(f"demos soak: {report.get('demos')}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        print(f"report: {args.out.resolve()}")
    launch = report.get("launch", {})
    bad = sum(launch.get(k, 0) for k in ("hangs", "tracebacks", "orphans", "exit_code_disagrees"))
    return 0 if bad == 0 and report.get("demos", {}).get("hung", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
