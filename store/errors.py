"""The one error family of the product (SPEC §2 codes).

It lives in the lowest layer so the store can raise ``conflict``/``not_found`` and the
Socket.IO registry and REST adapters render the same exception without translation.
"""
from __future__ import annotations

from typing import Any

#: Every code a client may see, and the HTTP status the REST adapter uses for it.
HTTP_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "token_expired": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "locked": 423,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


class EventError(Exception):
    """An error answered to the caller as ``{"ok": false, "error": {...}}``."""

    code = "internal"

    def __init__(self, code: str | None = None, message: str = "", details: Any = None):
        if code is not None:
            if code not in HTTP_STATUS:
                raise ValueError(f"unknown error code {code!r}")
            self.code = code
        self.message = message or self.code.replace("_", " ")
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    def to_dict(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return err

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]


def _subclass(code: str) -> type[EventError]:
    def __init__(self, message: str = "", details: Any = None):
        EventError.__init__(self, code, message, details)

    name = "".join(part.title() for part in code.split("_"))
    return type(name, (EventError,), {"code": code, "__init__": __init__})


BadRequest = _subclass("bad_request")
Unauthorized = _subclass("unauthorized")
TokenExpired = _subclass("token_expired")
Forbidden = _subclass("forbidden")
NotFound = _subclass("not_found")
Conflict = _subclass("conflict")
Locked = _subclass("locked")
TooLarge = _subclass("too_large")
RateLimited = _subclass("rate_limited")
Unavailable = _subclass("unavailable")
