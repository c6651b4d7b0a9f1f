"""How a domain declares its events (Home Assistant's websocket command registry, in
pydantic): one decorator names the event, its payload model, who may call it, what its ack
holds and what it pushes. ``server.realtime`` turns the declarations into a dispatcher and
``python -m server events`` into the catalogue, so the two cannot drift.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticUndefined

from handlers.limits import event_class, is_mutating
from store.base import role_at_least
from store.errors import EventError, Forbidden, NotFound

if TYPE_CHECKING:  # scopes build on project_access below
    from handlers.scopes import Scope


class Payload(BaseModel):
    """Base of every event payload: unknown fields are refused, not ignored, so a typo
    in a client surfaces as ``bad_request`` instead of a silently dropped change. Floats
    are finite (NaN and infinities reach no store and no other client)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True,
                              str_strip_whitespace=False, allow_inf_nan=False)


# Every integer in a payload is bounded on both sides, within what a JavaScript client
# reads exactly (2⁵³ − 1) and so far inside both stores' int64: a bigger one is a
# bad_request naming the field, not an OverflowError from a driver. ``tests/integration/
# test_hostile_input.py`` checks every event's model for unbounded integers.
MAX_INT = 2**53 - 1


def Int(default: Any = PydanticUndefined, *, ge: int = 0, le: int = MAX_INT,  # noqa: N802
        **extra: Any) -> Any:
    """The field of an integer payload value: ``ge`` ≤ value ≤ ``le`` (by default a count,
    0 to ``MAX_INT``)."""
    if not -MAX_INT <= ge <= le <= MAX_INT:
        raise ValueError(f"integer bounds {ge}..{le} are not within ±{MAX_INT}")
    return Field(default, ge=ge, le=le, **extra)


# A page cursor as the server gave it out: opaque, checked where it is read
# (``store.query.decode_cursor``), so a forged one is a bad_request.
Cursor: Any = Field(default=None, max_length=200)

# An integer inside a union (a filter value that may also be text or a number).
SafeInt = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]


def _utc(value: datetime) -> datetime:
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


# A time in a payload: ISO 8601 (or epoch seconds); without an offset it is UTC. Always
# handed to handlers in UTC, so no handler meets a time that cannot be converted.
Time = Annotated[datetime, AfterValidator(_utc)]


class Empty(Payload):
    pass


Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class EventSpec:
    name: str
    model: type[BaseModel]
    handler: Handler
    auth: bool = True
    admin: bool = False
    # What the event acts on and the role it needs there (``handlers.scopes``), resolved
    # by the dispatcher before the handler runs.
    scope: Scope | None = None
    ack: str = ""
    emits: tuple[str, ...] = field(default_factory=tuple)
    # The per-user budget the event draws on (``handlers.limits``); None: exempt.
    limit_class: str | None = None

    @property
    def doc(self) -> str:
        first = inspect.cleandoc(self.handler.__doc__ or "").split("\n\n")[0]
        return " ".join(first.split())

    @property
    def idempotent(self) -> bool:
        """Takes an optional ``requestId``: a repeat within REPLAY_WINDOW_S gets the first
        call's ack and changes nothing (``handlers.limits.is_mutating``)."""
        return self.auth and is_mutating(self.name)

    @property
    def access(self) -> str:
        if not self.auth:
            return "anyone"
        if self.admin:
            return "admin"
        if self.scope is not None:
            return self.scope.access
        return "signed in"


class EventHandler(Protocol):
    """A handler as ``@event`` leaves it: still callable, with its declaration attached."""

    spec: EventSpec

    def __call__(self, ctx: Any, payload: Any, /) -> Awaitable[Any]: ...


def event(name: str, model: type[BaseModel] = Empty, *, auth: bool = True, admin: bool = False,
          scope: Scope | None = None, ack: str = "",
          emits: tuple[str, ...] = ()) -> Callable[[Handler], EventHandler]:
    """Declare ``fn`` as the handler of ``name``; the domain lists it in its ``EVENTS``."""

    def wrap(fn: Handler) -> EventHandler:
        if scope is not None and scope.field not in model.model_fields:
            raise TypeError(f"{name}: payload has no field {scope.field!r} for its scope")
        handler = cast(EventHandler, fn)  # a plain function; ``spec`` is set just below
        handler.spec = EventSpec(name, model, fn, auth, admin, scope, ack, tuple(emits),
                                 event_class(name))
        return handler

    return wrap


def project_access(role: str | None, needed: str) -> str:
    """``role`` (the caller's in a project, None for none) if it includes ``needed``."""
    if role is None:
        # Same answer for "no such project" and "not yours": ids reveal nothing.
        raise NotFound("project not found")
    if not role_at_least(role, needed):
        raise Forbidden(f"needs the {needed} role in this project (you are {role})")
    return role


def bad_payload(exc: ValidationError) -> EventError:
    """pydantic's errors as one ``bad_request`` naming each field (STYLE rule 4)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        kind = err["type"]
        if kind == "missing":
            text = f"{where} is required"
        elif kind == "extra_forbidden":
            text = f"{where} is not a known field"
        else:
            text = f"{where}: {err['msg']}"
        problems.append({"field": where, "problem": text, "type": kind})
    message = problems[0]["problem"] if problems else "invalid payload"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return EventError("bad_request", message, {"fields": problems})


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what a relayed payload costs to send)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
