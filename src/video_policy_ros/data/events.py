"""Episode events on ``/episode/events`` (std_msgs/String): one small JSON object per message.

``{"event": "start" | "stop" | "success" | "failure" | "discard", "source": who sent it,
"reason": free text, "stamp": wall-clock seconds, ...}``; ``start`` may carry ``task``,
``seed`` and ``robot``. The sim world publishes ``start`` and the verdict; operators and
the recorder publish the rest.
"""

from __future__ import annotations

import json
import time
from typing import Any

EVENTS_TOPIC = "/episode/events"
EVENT_MSGTYPE = "std_msgs/msg/String"
EVENT_KINDS = ("start", "stop", "success", "failure", "discard")


def make_event(kind: str, source: str, reason: str = "", **fields: Any) -> dict[str, Any]:
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown episode event '{kind}', expected one of {EVENT_KINDS}")
    return {"event": kind, "source": source, "reason": reason, "stamp": time.time(), **fields}


def parse_event(text: str) -> dict[str, Any] | None:
    """The event in a ``/episode/events`` message, or None when it is not one."""
    try:
        event = json.loads(text)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and event.get("event") in EVENT_KINDS else None
