"""SIGINT/SIGTERM for node processes: a flag the spin loop checks, and one log line naming the sender.

A node that stops "cleanly" on its own must say who stopped it. The signals are blocked in
every thread and taken by one thread with ``sigwaitinfo``, which tells the sender's pid.
Threads inherit the signal mask when they start, and imports start threads (OpenBLAS, rclpy,
OpenCV), so the node executables call :func:`take_shutdown_signals` before importing anything
else; ``run_node`` calls it too, for processes started another way. A signal that arrives while
the process is still starting is remembered: the node stops as soon as it has started.

``ros2 launch`` forwards Ctrl-C to every node while the terminal sends it too, so a node sees
two in a row: the second one must not interrupt the clean-up the first one started.

``ros2 launch`` itself dies on SIGTERM or SIGKILL without stopping its nodes (its own log says "using
SIGTERM can result in orphaned processes"), and an arm controller must never run on unsupervised: each
node asks the kernel for a SIGTERM when its parent exits, and stops through the same path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from pathlib import Path

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LOG_FORMAT = "[%(name)s] %(levelname)s: %(message)s"

log = logging.getLogger(__name__)
_requested = threading.Event()
_taken = False
_parent: tuple[int, str] | None = None  # (pid, command) of the process that started this one
PR_SET_PDEATHSIG = 1


def take_shutdown_signals() -> threading.Event:
    """Block SIGINT/SIGTERM in this thread (and every thread it starts from now on) and take them in
    a thread of their own; returns the event they set. Idempotent."""
    global _taken
    if not _taken:
        _taken = True
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        for sig in SHUTDOWN_SIGNALS:  # a thread started before this still gets them: Python's handler
            signal.signal(sig, _on_signal)
        signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        threading.Thread(target=_take_signals, name="signals", daemon=True).start()
        _stop_when_parent_exits()
    return _requested


def _stop_when_parent_exits() -> None:
    global _parent
    pid = os.getppid()
    _parent = (pid, describe_sender(pid))
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask for a signal when the parent process exits (prctl: %s): this node will "
                    "outlive its launch if that is killed", os.strerror(ctypes.get_errno()))
    elif os.getppid() != pid:  # it exited before the request was in place
        log.warning("the parent process, %s, has exited; stopping", _parent[1])
        _requested.set()


def ignore_further_signals() -> None:
    """While the process winds down (rclpy.shutdown restores the default handlers)."""
    for sig in SHUTDOWN_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def describe_sender(pid: int) -> str:
    """``pid 123 (ros2 launch ...)``; pid 0 is the kernel, e.g. a terminal's Ctrl-C."""
    if pid == 0:
        return "the kernel (a terminal's Ctrl-C)"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = "already exited"
    return f"pid {pid} ({command[:200]})"


def _on_signal(signum: int, frame) -> None:
    log.info("received %s (sender unknown: taken by a thread that was started before the signal mask)",
             signal.Signals(signum).name)
    _requested.set()


def _take_signals() -> None:
    while True:
        info = signal.sigwaitinfo(SHUTDOWN_SIGNALS)
        name = signal.Signals(info.si_signo).name
        if _parent is not None and info.si_pid == _parent[0] and os.getppid() != _parent[0]:
            log.warning("received %s: the parent process, %s, has exited; stopping", name, _parent[1])
        else:
            log.info("received %s from %s", name, describe_sender(info.si_pid))
        _requested.set()


def exit_node_process(code: int) -> None:
    """End a node's process with ``code`` once ``run_node`` has cleaned up.

    A worker thread can still be inside a franky call then (a connection attempt when the stop came
    while connecting, a gripper move left behind by ``close``): daemon threads that return into
    Python during interpreter finalization are ended by a forced unwind, and C++ frames on their
    stack can turn that into std::terminate, an abort (exit code -6) instead of the node's code.
    With such a thread alive the process ends without finalization; everything worth keeping was
    closed and flushed by then. Library threads that only wait in Python (tqdm's monitor) do not count.
    """
    stragglers = [t.name for t in threading.enumerate() if t.daemon and t.is_alive() and _is_stack_worker(t)]
    if not stragglers:
        sys.exit(code)
    log.warning("thread(s) %s still running after clean-up; ending the process without waiting for them",
                ", ".join(sorted(stragglers)))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _is_stack_worker(thread: threading.Thread) -> bool:
    """A thread the stack started for its work (control loop, gripper, policy worker, ...), not the signal taker."""
    target = getattr(thread, "_target", None)  # threading.Thread keeps its target here (None once it has run)
    return thread.name != "signals" and getattr(target, "__module__", "").startswith("video_policy_ros.")
