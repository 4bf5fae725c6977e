"""Bad configuration stops a node at start-up with exit code 2 and one line naming the key or file."""

import os
import subprocess
import sys

import pytest

from tests.repo import REPO

pytestmark = pytest.mark.integration


def run(args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return result.returncode, errors, result.stderr


def node(name, *params):
    args = [str(REPO / "scripts" / name), "--ros-args"]
    for p in params:
        args += ["-p", p]
    return args


def assert_one_line_error(outcome, *fragments):
    code, errors, stderr = outcome
    assert code == 2, stderr[-2000:]
    assert len(errors) == 1, stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in stderr


def test_unknown_key(tmp_path):
    bad = tmp_path / "controller.yaml"
    bad.write_text("robot_ip: 127.0.0.1\nmax_linear_sped: 0.1\n")
    assert_one_line_error(run(node("controller", f"config_file:={bad}")), "unknown key 'max_linear_sped'", str(bad))


def test_wrong_type(tmp_path):
    bad = tmp_path / "sim_world.yaml"
    bad.write_text("seed: many\n")
    assert_one_line_error(run(node("sim_world", f"config_file:={bad}")), "'seed'", str(bad))


def test_missing_config_file(tmp_path):
    assert_one_line_error(run(node("inference", f"config_file:={tmp_path / 'nope.yaml'}")), "config file not found", "nope.yaml")


def test_missing_model_checkpoint(tmp_path):
    outcome = run(["-m", "video_policy_ros.cli", "run", "--policy", "video_policy", "--model", str(tmp_path / "ckpt")])
    assert_one_line_error(outcome, "model checkpoint folder not found", "ckpt")


def test_unreachable_robot_ip():
    # Nothing listens on this loopback address, so each try is refused at once; the retries (for a sim world
    # that is still starting) last connect_timeout_s, shortened from its 30 s here.
    assert_one_line_error(run(node("controller", "robot_ip:=127.0.0.77", "connect_timeout_s:=3.0")), "robot_ip 127.0.0.77",
                          "no Franka controller answers")
