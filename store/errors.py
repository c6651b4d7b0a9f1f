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


class _Coded(EventError):
    """Base of the per-code subclasses: the code is fixed by the class, so the
    constructor takes only ``(message, details)``."""

    def __init__(self, message: str = "", details: Any = None):
        EventError.__init__(self, self.code, message, details)


class BadRequest(_Coded):
    code = "bad_request"


class Unauthorized(_Coded):
    code = "unauthorized"


class TokenExpired(_Coded):
    code = "token_expired"


class Forbidden(_Coded):
    code = "forbidden"


class NotFound(_Coded):
    code = "not_found"


class Conflict(_Coded):
    code = "conflict"


class Locked(_Coded):
    code = "locked"


class TooLarge(_Coded):
    code = "too_large"


class RateLimited(_Coded):
    code = "rate_limited"


class Unavailable(_Coded):
    code = "unavailable"


class BlobMissing(NotFound, FileNotFoundError):
    """A file's bytes are gone (the file was deleted meanwhile, e.g. with its project):
    ``not_found`` to the caller, and still a FileNotFoundError to code reading blobs."""

    def __init__(self, key: str):
        NotFound.__init__(self, "file not found (it was deleted)", {"key": key})
