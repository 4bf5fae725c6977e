"""The ``video-policy`` command. Each subcommand lives next to the code it drives.

Subcommand modules are imported lazily, so ``video-policy run`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). The module provides add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("video_policy_ros.nodes.graph", "run the whole graph in one process (sim world by default)"),
    "demos": ("video_policy_ros.sim.demos", "generate scripted-expert demonstrations in the sim world"),
    "train": ("video_policy_ros.model.train", "train a Video Policy checkpoint"),
    "eval": ("video_policy_ros.evaluation.evaluate", "success rate of a policy on held-out sim seeds, through the ROS graph"),
    "train-bc": ("video_policy_ros.model.bc_train", "train the behaviour-cloning baseline (small CNN + MLP head)"),
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
    return int(importlib.import_module(SUBCOMMANDS[args.command][0]).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
