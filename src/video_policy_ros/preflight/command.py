"""``video-policy preflight``: the fault-injection suite against the sim twin, with your own controller
and inference configuration, before the real arm moves.

Every process runs on this machine only (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, a DDS domain of
its own) against a simulated FR3 on a loopback address: the configured ``robot_ip`` is never
contacted. Prints one row per check (measured figure, limit), writes ``report.json`` and the
processes' logs, and exits 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from video_policy_ros.config import (
    ConfigError,
    ControllerConfig,
    InferenceConfig,
    PreflightConfig,
    default_config_path,
    load_yaml,
)
from video_policy_ros.errors import StackError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from video_policy_ros.preflight.scenarios import STEPS

    parser.add_argument("--config-dir", type=Path, help="folder with your controller.yaml, inference.yaml (and optionally "
                        "sim_world.yaml, preflight.yaml for the site's limits); missing files: the shipped ones")
    parser.add_argument("--only", help=f"comma-separated steps (default: all): {', '.join(STEPS)}")
    parser.add_argument("--output-dir", type=Path, default=Path("preflight"), help="report.json and logs (default: ./preflight)")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID of the sim twin (default: one of its own, 50-100)")


def config_file(config_dir: Path | None, name: str) -> Path:
    if config_dir is not None and (config_dir / f"{name}.yaml").is_file():
        return config_dir / f"{name}.yaml"
    return default_config_path(name)


def private_domain_id() -> int:
    """A DDS domain for this run alone (IDs up to 101 are safe on Linux), never the current one."""
    current = int(os.environ.get("ROS_DOMAIN_ID") or 0)
    candidate = 50 + os.getpid() % 50
    return candidate + 1 if candidate == current else candidate


def selected_steps(only: str | None) -> list[str]:
    from video_policy_ros.preflight.scenarios import STEPS

    if only is None:
        return list(STEPS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in STEPS]
    if unknown or not names:
        raise StackError(f"--only: unknown step(s) {unknown or [only]}; choose from {', '.join(STEPS)}")
    return [name for name in STEPS if name in names]  # in the suite's order


def run(args: argparse.Namespace) -> int:
    if args.config_dir is not None and not args.config_dir.is_dir():
        raise ConfigError(f"--config-dir {args.config_dir}: no such folder (it holds your controller.yaml and inference.yaml)")
    steps = selected_steps(args.only)
    files = {name: config_file(args.config_dir, name) for name in ("controller", "inference", "sim_world", "preflight")}
    controller = load_yaml(ControllerConfig, files["controller"])
    load_yaml(InferenceConfig, files["inference"])  # a bad file fails here, in one line, not in a node's log
    site = load_yaml(PreflightConfig, files["preflight"])
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(private_domain_id() if args.domain_id is None else args.domain_id)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from video_policy_ros.preflight.processes import robot_ip_for_this_process
    from video_policy_ros.preflight.scenarios import STEPS, Setup, run_session

    output = args.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        print(f"{name + '.yaml':16s} {path}")
    print(f"sim twin         FR3 at {robot_ip_for_this_process()}, ROS_DOMAIN_ID {os.environ['ROS_DOMAIN_ID']}, localhost only "
          f"(robot_ip {controller.robot_ip} is not contacted)")
    sessions = list(dict.fromkeys(STEPS[name].session for name in steps))
    started, results = time.time(), []
    for i, session in enumerate(sessions, 1):
        print(f"[{i}/{len(sessions)}] {session} session", flush=True)
        work_dir = output / session
        work_dir.mkdir(exist_ok=True)
        setup = Setup(files["controller"], files["inference"], files["sim_world"], controller, site, work_dir)
        results += run_session(session, [name for name in steps if STEPS[name].session == session], setup,
                               progress=lambda line: print(line, flush=True))
    print()
    for check in results:
        print(check.row())
    failed = [check for check in results if not check.passed]
    report = output / "report.json"
    report.write_text(json.dumps({
        "passed": not failed, "duration_s": round(time.time() - started, 1), "steps": steps,
        "config_files": {name: str(path) for name, path in files.items()},
        "site_limits": site.model_dump(), "checks": [check.as_dict() for check in results],
    }, indent=2))
    print(f"\nreport: {report}\nlogs:   {output}/<session>/*.log")
    if failed:  # a finding, not a usage error: exit 1 (a bad config or argument exits 2)
        print(f"error: preflight failed {len(failed)} of {len(results)} checks: " + "; ".join(c.summary() for c in failed),
              file=sys.stderr)
        return 1
    print(f"preflight passed: {len(results)} of {len(results)} checks ({time.time() - started:.0f} s)")
    return 0
