"""The controller's limits and the graph's rates with the CPU loaded: ``stress-ng --cpu K`` beside the
integration scenarios that check them from outside, through the topic contract, against the sim FR3.

    PYTHONPATH=src MUJOCO_GL=egl python bench/safety_under_load.py --stress 2

Runs ``tests/integration/test_controller_faults.py`` (bad chunks, the TCP speed cap at every workspace face,
the workspace floor, velocity-continuous splicing, the silence halt, the e-stop while moving, gripper flips)
and ``tests/integration/test_graph.py`` (the whole graph: task success, camera and /joint_states rates,
measurement stamps, the e-stop while the policy keeps publishing) with the same assertions as the suite, and
prints every figure they measured next to the stress level. ``--stress 0`` gives the unloaded baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from cpu_load import cpu_stress

REPO = Path(__file__).resolve().parents[1]
MODULES = ["tests/integration/test_controller_faults.py", "tests/integration/test_graph.py"]
# test_controller_faults prints preflight's check rows (PASS/FAIL, figure, limit); test_graph its own figures.
FIGURES = re.compile(r"((PASS|FAIL)  |measured rates|max TCP speed|halted after)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stress", type=int, default=2, help="stress-ng --cpu K (0: no load)")
    args = parser.parse_args()
    started = time.monotonic()
    with cpu_stress(args.stress):
        result = subprocess.run([sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", *MODULES],
                                capture_output=True, text=True, cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="300"))  # whole FAILED lines
    load = os.getloadavg()[0]
    print(f"stress-ng --cpu {args.stress}: {time.monotonic() - started:.0f} s, load average at the end {load:.1f}")
    shown = set()
    for line in result.stdout.splitlines():
        figure = FIGURES.search(line)  # with -s, a test's print follows the progress dots on its line
        if figure and line[figure.start():] not in shown:  # each test re-prints the rows it asserts
            shown.add(line[figure.start():])
            print(line[figure.start():])
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    failures = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    print("\n".join(failures) if failures else "every limit held")
    print(summary)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
