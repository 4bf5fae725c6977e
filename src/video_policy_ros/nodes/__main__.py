"""``python -m video_policy_ros.nodes NODE --ros-args ...``: one node, started as its executable in
scripts/ starts it (for tools that run nodes without an installed ament prefix, like preflight)."""

import importlib
import importlib.util
import sys

from video_policy_ros.nodes.signals import exit_node_process, take_shutdown_signals

# Before the node's imports start threads, as in scripts/ (they inherit the signal mask).
take_shutdown_signals()

node = sys.argv.pop(1) if len(sys.argv) > 1 else ""
module = f"video_policy_ros.nodes.{node}_node"
if not node.isidentifier() or importlib.util.find_spec(module) is None:
    print(f"error: no node named '{node}'; usage: python -m video_policy_ros.nodes NODE --ros-args ...", file=sys.stderr)
    sys.exit(2)
exit_node_process(importlib.import_module(module).main())
