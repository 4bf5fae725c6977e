"""``video-policy preflight`` as a user runs it, from another directory: the shipped configuration
passes, an unsafe one fails naming the check, bad input is one ``error:`` line.

The controller steps themselves run with the shipped configuration in
tests/integration/test_controller_faults.py and the robot-error step in
test_controller_robot_errors.py; here the command runs the inference-crash step and the two steps
that an unsafe configuration must fail.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.repo import REPO

pytestmark = pytest.mark.integration


def preflight(tmp_path, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, "-m", "video_policy_ros.cli", "preflight", "--output-dir", str(tmp_path / "out"),
                             *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout)
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return result.returncode, errors, result.stdout


def config_dir(tmp_path, **controller_changes):
    folder = tmp_path / "my_config"
    folder.mkdir()
    controller = yaml.safe_load((REPO / "config" / "controller.yaml").read_text())
    controller.update(controller_changes)
    (folder / "controller.yaml").write_text(yaml.safe_dump(controller))
    return folder


def test_the_inference_process_killed_mid_chunk_halts_the_arm_with_the_shipped_config(tmp_path):
    code, errors, out = preflight(tmp_path, "--only", "inference_crash")
    assert code == 0 and not errors, errors
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    names = [check["name"] for check in report["checks"] if check["passed"]]
    assert report["passed"] and names == ["TCP travel from 4.05 s after the last chunk (inference killed)",
                                          "restarted inference drives the arm again",
                                          "controller process still running"], report["checks"]
    assert "robot_ip 127.0.0.1 is not contacted" in out
    assert (tmp_path / "out" / "inference" / "inference_restarted.log").exists()


def test_a_speed_cap_above_the_sites_limit_fails_naming_the_check(tmp_path):
    code, errors, out = preflight(tmp_path, "--config-dir", str(config_dir(tmp_path, max_linear_speed=2.0)),
                                  "--only", "speed_at_faces")
    assert code == 1 and len(errors) == 1, errors
    assert "TCP speed toward" in errors[0] and "must be <= 0.26 m/s" in errors[0], errors[0]
    assert "FAIL  TCP speed toward" in out


def test_a_workspace_that_reaches_below_the_table_fails_naming_the_check(tmp_path):
    unsafe = config_dir(tmp_path, workspace={"min": [0.35, -0.2, -0.03], "max": [0.55, 0.2, 0.45]})
    code, errors, out = preflight(tmp_path, "--config-dir", str(unsafe), "--only", "workspace_floor")
    assert code == 1 and len(errors) == 1, errors
    assert "TCP reaches the workspace floor" in errors[0], errors[0]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert not report["passed"] and report["config_files"]["controller"] == str(unsafe / "controller.yaml")


@pytest.mark.parametrize("args, fragment", [
    (["--only", "speed"], "--only: unknown step(s) ['speed']"),
    (["--config-dir", "nowhere"], "--config-dir nowhere: no such folder"),
])
def test_bad_arguments_are_one_error_line(tmp_path, args, fragment):
    code, errors, _ = preflight(tmp_path, *args, timeout=60)
    assert code == 2 and len(errors) == 1 and fragment in errors[0], errors


def test_a_bad_controller_yaml_is_one_error_line_naming_the_key(tmp_path):
    folder = config_dir(tmp_path, max_linear_sped=0.1)
    code, errors, _ = preflight(tmp_path, "--config-dir", str(folder), timeout=60)
    assert code == 2 and len(errors) == 1 and "unknown key 'max_linear_sped'" in errors[0], errors


def test_a_configured_divergence_guard_slows_the_arm_to_its_fraction_of_the_cap(tmp_path):
    guard = {"threshold": 0.05, "predictions": 2, "action": "slow", "slow_factor": 0.5}
    code, errors, out = preflight(tmp_path, "--config-dir", str(config_dir(tmp_path, divergence=guard)),
                                  "--only", "divergence_guard")
    assert code == 0 and not errors, errors
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (slowed,) = [c for c in report["checks"] if c["name"] == "TCP speed after diverged predictions (x0.5)"]
    assert slowed["passed"] and slowed["limit"] == pytest.approx(0.25 * 0.5 * 1.04)
