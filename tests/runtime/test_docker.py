"""The Docker images install what the package needs, at requirements.txt's pins (no Docker engine here).

Checked from the files: every third-party module imported under src/ comes from a pinned
requirement; each image installs every requirement (or a declared substitute) at that pin,
plus the Makefile's system packages; everything an image copies is in its build context.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from tests.repo import REPO

DOCKER = REPO / "docker"
IMAGES = {"gpu": DOCKER / "Dockerfile", "cpu": DOCKER / "Dockerfile.cpu"}
# What an image installs instead of a requirement, and why (anything else must be pinned as in requirements.txt).
SUBSTITUTES = {
    "gpu": {
        "ros-": "ros-kilted-ros-base",  # the ROS 2 Kilted apt packages replace the pip wheels of the same distribution
        "onnxruntime": "onnxruntime-gpu==1.31.1",  # the CUDA build of the same runtime (its newest release)
    },
    "cpu": {},
}
GPU_ONLY = {"tensorrt": "tensorrt-cu12==10.16.1.11"}  # imported by runtime/tensorrt_backend.py, not installable here
OWN = {"video_policy_ros", "launch", "launch_ros"}  # this package; launch files run under ros2 launch


def requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalized(name)] = version.strip()
    return pins


def normalized(distribution: str) -> str:
    """PEP 503: fast_simplification, Fast-Simplification and fast-simplification are one distribution."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def makefile_apt_packages() -> set[str]:
    match = re.search(r"^APT_PACKAGES\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.M)
    return set(match.group(1).split())


def instructions(dockerfile: Path) -> str:
    """The Dockerfile without comments and with continuation lines joined."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines).replace("\\\n", " ")


def pip_pins(text: str) -> dict[str, str]:
    """``name==version`` arguments of every ``pip install`` in the file."""
    pins = {}
    for command in re.findall(r"pip install ([^&\n]+)", text):
        for name, version in re.findall(r"(?<![-\w])([A-Za-z][\w.-]*)==([\w.]+)", command):
            pins[normalized(name)] = version
    return pins


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in (REPO / "src" / "video_policy_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN


def test_every_imported_module_comes_from_a_pinned_requirement():
    pins = requirements()
    providers = importlib.metadata.packages_distributions()
    unpinned = {}
    for module in sorted(imported_top_level_modules()):
        if module in GPU_ONLY:
            continue
        dists = {normalized(d) for d in providers.get(module, [])}
        assert dists, f"module {module!r} is imported under src/ but not installed here"
        if not dists & set(pins):
            unpinned[module] = sorted(dists)
    assert not unpinned, f"imported but not pinned in requirements.txt: {unpinned}"


@pytest.mark.parametrize("image", IMAGES)
def test_image_installs_every_requirement_at_its_pin(image):
    text = instructions(IMAGES[image])
    installed = pip_pins(text)
    uses_requirements = re.search(r"pip install -r /tmp/requirements[\w-]*\.txt", text) is not None
    excluded = re.findall(r"\^\(([^)]*)\)", text)  # grep -v -E '^(a|b)' filters on requirements.txt
    excluded_prefixes = [p.rstrip("=") for group in excluded for p in group.split("|")]
    for name, version in requirements().items():
        substitute = next((s for prefix, s in SUBSTITUTES[image].items() if name.startswith(prefix)), None)
        filtered = any(name == p or (p.endswith("-") and name.startswith(p)) for p in excluded_prefixes)
        if name in installed:
            assert installed[name] == version, f"{image}: {name}=={installed[name]} but requirements.txt pins {version}"
        elif substitute is not None:
            assert substitute in text, f"{image}: {name} is filtered out but its substitute {substitute} is not installed"
        else:
            assert uses_requirements and not filtered, f"{image}: requirement {name}=={version} is not installed"
    for name, version in installed.items():
        declared = set(SUBSTITUTES[image].values()) | (set(GPU_ONLY.values()) if image == "gpu" else set())
        assert name in requirements() or f"{name}=={version}" in declared, f"{image}: undeclared package {name}"


def test_gpu_image_has_the_gpu_runtimes_and_runs_a_real_robot_by_default():
    text = instructions(IMAGES["gpu"])
    for package in list(GPU_ONLY.values()) + ["onnxruntime-gpu==1.31.1", "ros-kilted-ros-base", "ros-kilted-launch-ros"]:
        assert package in text
    cmd = re.search(r"^CMD (.+)$", text, re.M).group(1)
    assert "ros2 launch video_policy_ros franka.launch.py" in cmd and "use_sim:=false" in cmd


@pytest.mark.parametrize("image", IMAGES)
def test_image_has_the_system_packages_and_its_build_context(image):
    text = instructions(IMAGES[image])
    apt = set(" ".join(re.findall(r"apt-get install -y --no-install-recommends ([^&]+)", text)).split())
    assert makefile_apt_packages() <= apt, f"{image}: missing apt packages {makefile_apt_packages() - apt}"
    ignore = (DOCKER / f"{IMAGES[image].name}.dockerignore").read_text().splitlines()
    for source in re.findall(r"^COPY (\S+) ", text, re.M):
        assert source == "." or f"!{source}" in ignore, f"{image}: COPY {source} is outside the build context"
