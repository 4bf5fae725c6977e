"""The ``video-policy`` command. Each subcommand lives next to the code it drives.

Subcommand modules are imported lazily, so ``video-policy run`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from video_policy_ros.errors import StackError

# name -> (module, one-line help). The module provides add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("video_policy_ros.nodes.graph", "run the whole graph in one process (sim world by default)"),
    "demos": ("video_policy_ros.sim.demos", "generate scripted-expert demonstrations in the sim world"),
    "train": ("video_policy_ros.model.train", "train a Video Policy checkpoint"),
    "calibrate": ("video_policy_ros.nodes.hand_eye_calibration", "camera calibration: hand-eye with a ChArUco board"),
    "record": ("video_policy_ros.nodes.recorder_node", "record episodes as rosbag2 (MCAP) bags; keyboard + services"),
    "collect": ("video_policy_ros.nodes.collect", "record N scripted-expert episodes through the sim graph"),
    "convert": ("video_policy_ros.data.convert", "convert bags and mp4 videos into the training dataset"),
    "export": ("video_policy_ros.runtime.export", "export a checkpoint's denoiser + VAE decoder to ONNX with a manifest"),
    "build-engine": ("video_policy_ros.runtime.tensorrt_backend", "build (or reuse) the TensorRT FP16 engines of a checkpoint"),
    "eval": ("video_policy_ros.evaluation.evaluate", "success rate of a policy on held-out sim seeds, through the ROS graph"),
    "train-bc": ("video_policy_ros.model.bc_train", "train the behaviour-cloning baseline (small CNN + MLP head)"),
    "dagger": ("video_policy_ros.sim.dagger", "a learned policy drives sim episodes, the scripted expert labels them"),
    "preflight": ("video_policy_ros.preflight.command", "fault-injection checks of your controller + inference config on the sim twin"),
    "view": ("video_policy_ros.nodes.view_node", "the operator's browser view of the live graph, or of a bag (--bag)"),
    "discovery-server": ("video_policy_ros.nodes.discovery", "Fast DDS discovery server, for a graph across hosts without multicast"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="video-policy", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = [a for a in argv if not a.startswith("-")][:1]
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name in names:  # only the chosen subcommand pays for its imports
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args) or 0)
    except StackError as exc:  # anything the user must fix, from any subcommand: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
