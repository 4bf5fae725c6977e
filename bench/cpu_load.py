"""Busy CPU workers beside a benchmark: Debian's ``stress-ng --cpu K`` for the duration of a block."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_stress(workers: int) -> Iterator[None]:
    """``stress-ng --cpu workers`` runs while the block does (0: nothing runs)."""
    if not workers:
        yield
        return
    if shutil.which("stress-ng") is None:
        raise SystemExit("error: stress-ng is not installed (apt-get install stress-ng)")
    stress = subprocess.Popen(["stress-ng", "--cpu", str(workers), "--quiet"], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(stress.pid, signal.SIGKILL)
        stress.wait()
