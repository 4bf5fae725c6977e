"""ament_python package: installs the Python package, launch files, configs, RViz config,
models and the ament index marker, plus executables in lib/<package>/ for ``ros2 run``."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "video_policy_ros"
NODES = ["sim_world", "controller", "inference", "camera", "bag_replay", "recorder", "view"]


def share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    return (f"share/{PACKAGE}/{folder}", [f for f in glob(f"{folder}/{pattern}")])


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """Every file under ``folder`` (e.g. checkpoint folders in models/), keeping sub-folders."""
    return [
        (f"share/{PACKAGE}/{root}", [os.path.join(root, f) for f in files])
        for root, _, files in os.walk(folder)
        if files
    ]


setup(
    name=PACKAGE,
    version="0.1.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*.py"),
        share("config", "*.yaml"),
        share("rviz", "*.rviz"),
        share("calibration", "*.yaml"),
        *share_tree("models"),
        # pip ignores setup.cfg's install_scripts; launch_ros looks in lib/<package>/.
        (f"lib/{PACKAGE}", [f"scripts/{n}" for n in NODES]),
    ],
    install_requires=["numpy", "pydantic>=2", "pyyaml"],
    zip_safe=True,
    maintainer="video_policy_ros developers",
    maintainer_email="dev@video-policy-ros.invalid",
    description="ROS 2 stack running a Video Policy (video generation + actions) on a Franka FR3",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "video-policy = video_policy_ros.cli:main",
            *[f"vp_{n} = video_policy_ros.nodes.{n}_node:main" for n in NODES],
        ],
    },
)
