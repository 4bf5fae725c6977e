"""Ports for servers a test starts (on 127.0.0.1 only)."""

import socket


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; the test's server binds it moments later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
