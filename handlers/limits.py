"""Which per-user event budget each event draws on (the dispatcher enforces them:
``EVENT_RATE_*`` in the configuration). One list, so a new event gets a class by its name
and the README says what each class holds."""
from __future__ import annotations

# Events that start work far beyond a store round trip: a provider call, a file parse, a
# dissection, a full-text search.
HEAVY = frozenset({"message:send", "chat:import", "chat:search", "pcap:packet", "pcap:follow",
                   "pcap:ingest", "table:import", "table:restore", "row:restore"})
# Events whose own limits already apply (sign-in limits; the per-socket broadcast bucket),
# and the one that must always answer.
EXEMPT = frozenset({"auth:register", "auth:login", "auth:guest", "auth:refresh",
                    "project:broadcast", "ping"})
_WRITES = ("create", "update", "delete", "add", "remove", "rename", "restore", "lock",
           "unlock", "heartbeat", "cancel", "upgrade", "logout")


def event_class(name: str) -> str | None:
    """``heavy``, ``write`` or ``read``; None when the event is exempt."""
    if name in EXEMPT:
        return None
    if name in HEAVY:
        return "heavy"
    return "write" if name.rsplit(":", 1)[-1] in _WRITES else "read"


# Heavy events that change state (the other heavy ones only read).
_HEAVY_WRITES = frozenset({"message:send", "chat:import", "pcap:ingest", "table:import",
                           "table:restore", "row:restore"})


def is_mutating(name: str) -> bool:
    """Whether the event changes state, and so takes an optional ``requestId`` that makes a
    retry safe (the dispatcher answers a repeat with the first call's ack). Sign-in events
    are left out: their acks hold tokens, which are not kept for replay."""
    if name.startswith("auth:") or name in EXEMPT:
        return False
    return name in _HEAVY_WRITES or event_class(name) == "write"
