"""The AsyncAPI 3.0 document of the Socket.IO surface, generated from the event registry and
its pydantic models (``GET /asyncapi.json``, ``python -m server asyncapi``), so it cannot
drift from what the dispatcher accepts.

Written from a client's side, as a client SDK would read it: every registered event is a
``send`` operation whose reply is its ack; every push is a ``receive`` operation. One channel
per Socket.IO event name (its ``address``); ids replace ``:`` by ``.`` because AsyncAPI ids
allow no colon. There are no ack models, so an ack's ``data`` is described by the event's
``ack`` text only.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from handlers.base import EventSpec
from services.config import Settings
from services.replay import UNNUMBERED_PUSHES
from store.errors import HTTP_STATUS

ASYNCAPI_VERSION = "3.0.0"

# Pushes no event declares in its ``emits``: sent by the connection itself, the drain, or
# a REST route (the upload). Each with what it is for.
EXTRA_PUSHES = {
    "auth:expired": "The socket's access token has just expired: refresh it (auth:refresh) "
                    "before the next event is refused with token_expired. Data: {expiredAt}.",
    "auth:revoked": "The socket's sign-in was ended (logout elsewhere, password change, "
                    "account disabled or deleted); the socket is signed out or disconnected. "
                    "Data: {reason}.",
    "server:draining": "This instance is shutting down: reconnect (to another instance) "
                       "after reconnectInMs. Data: {reconnectInMs}.",
    "auth:quota": "A guest spent one of their imports or AI messages (an import, a message, "
                  "or a capture upload, whose ingest the server starts): what is left, to "
                  "their own room. Data: {userId, remainingImports | remainingMessages}.",
    "file:added": "A file was uploaded to the project (REST POST /api/projects/{id}/files). "
                  "Data: {file}.",
}

# Pushes that carry no room/seq/epoch (docs/DELIVERY.md, "Sequenced rooms"): snapshots,
# ephemeral relays, the ticker, and those addressed to one socket.
UNSEQUENCED_PUSHES = UNNUMBERED_PUSHES

REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"

_SCHEMAS = "#/components/schemas/"


def _id(name: str) -> str:
    return name.replace(":", ".")


def _ref(where: str) -> dict:
    return {"$ref": where}


def server_version() -> str:
    try:
        return metadata.version("collab-server")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0+source"


def pushes_of(specs: Iterable[EventSpec]) -> dict[str, list[str]]:
    """Every push name → the events declared to cause it (empty for ``EXTRA_PUSHES``)."""
    out: dict[str, list[str]] = {name: [] for name in EXTRA_PUSHES}
    for spec in specs:
        for push in spec.emits:
            out.setdefault(push, []).append(spec.name)
    return dict(sorted(out.items()))


class _Schemas:
    """``components/schemas``: pydantic's ``$defs`` hoisted there, refs rewritten. A name
    taken by a different definition gets its model's name in front, so two modules' models
    may reuse a nested model's name."""

    def __init__(self, fixed: dict[str, Any]):
        self.defs: dict[str, Any] = dict(fixed)

    def payload(self, model: Any) -> dict:
        schema = model.model_json_schema()
        renamed: dict[str, str] = {}
        local = schema.pop("$defs", {})
        for name, definition in local.items():
            target = name
            if target in self.defs and self.defs[target] != definition:
                target = f"{model.__name__}.{name}"
            renamed[name] = target
        for name, definition in local.items():
            self.defs[renamed[name]] = _rewrite(definition, renamed)
        return _rewrite(schema, renamed)


def _rewrite(node: Any, renamed: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, renamed) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = _SCHEMAS + renamed[ref.removeprefix("#/$defs/")]
        return out
    if isinstance(node, list):
        return [_rewrite(v, renamed) for v in node]
    return node


def _fixed_schemas() -> dict[str, Any]:
    """The envelope, the error codes and the delivery fields, shared by every message."""
    return {
        "ErrorCode": {"type": "string", "enum": list(HTTP_STATUS),
                      "description": "SPEC §2: the only codes an ack's error carries."},
        "Error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": _ref(_SCHEMAS + "ErrorCode"),
                "message": {"type": "string", "description": "for people, not for code"},
                "details": {"description": "machine-readable specifics (e.g. bad_request's "
                                           "fields, locked's holder, rate_limited's "
                                           "retryAfterMs)"},
            },
        },
        "ErrorAck": {
            "type": "object", "required": ["ok", "error"], "additionalProperties": False,
            "description": "The ack of a refused or failed call.",
            "properties": {"ok": {"const": False}, "error": _ref(_SCHEMAS + "Error")},
        },
        "Room": {"type": "string", "pattern": "^(project|conversation|user):.+$",
                 "description": "a sequenced room, e.g. project:<id>"},
        "Seq": {"type": "integer", "minimum": 1,
                "description": "gap-free, strictly increasing per room across all instances"},
        "Epoch": {"type": "string",
                  "description": "changes whenever the room's history is lost: a client "
                                 "holding another epoch reloads the room (sync answers resync)"},
        "RoomPosition": {
            "type": "object", "required": ["room", "seq", "epoch"],
            "properties": {"room": _ref(_SCHEMAS + "Room"), "seq": _ref(_SCHEMAS + "Seq"),
                           "epoch": _ref(_SCHEMAS + "Epoch")},
        },
        "AckPushes": {
            "type": "array", "items": _ref(_SCHEMAS + "RoomPosition"),
            "description": "The pushes this call caused, which its caller does not receive "
                           "(it has the ack): so its seq tracking has no gap. Absent when "
                           "empty.",
        },
        "RequestId": {
            "type": "string", "minLength": 1, "maxLength": 64, "pattern": REQUEST_ID_PATTERN,
            "description": "Makes a retry safe: a repeat by the same user within "
                           "REPLAY_WINDOW_S, on any instance, gets the first call's ack and "
                           "changes nothing; while the first still runs, conflict "
                           "{requestId, inProgress, retryAfterMs}; for another event, "
                           "bad_request.",
        },
    }


def _describe(spec: EventSpec, settings: Settings) -> tuple[str, dict]:
    """The operation's description (for readers) and its ``x-`` fields (for tools)."""
    limit = None
    if spec.limit_class is not None:
        rate, burst = settings.event_budget(spec.limit_class)
        limit = {"class": spec.limit_class, "perSecond": rate, "burst": burst}
    lines = [f"**Who may call:** {spec.access}.",
             "**Rate limit:** " + (f"`{spec.limit_class}` budget ({limit['perSecond']:g}/s "
                                   f"per user, burst {limit['burst']})" if limit
                                   else "exempt from the per-user budgets") + ".",
             "**Idempotent:** " + ("yes, with `requestId`" if spec.idempotent else "no") + ".",
             f"**Ack data:** {spec.ack or 'nothing'}."]
    if spec.emits:
        lines.append("**Pushes:** " + ", ".join(f"`{e}`" for e in spec.emits) + ".")
    extensions = {"x-access": spec.access, "x-rate-limit": limit,
                  "x-idempotent": spec.idempotent, "x-emits": list(spec.emits)}
    return "\n\n".join(lines), extensions


def build(specs: Iterable[EventSpec], settings: Settings, version: str) -> dict:
    """The whole document; pure: the same events, settings and version give the same one."""
    specs = list(specs)
    schemas = _Schemas(_fixed_schemas())
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    security = [_ref("#/components/securitySchemes/accessToken")]

    def channel(name: str) -> dict:
        return channels.setdefault(_id(name), {"address": name, "messages": {}})

    for spec in specs:
        cid = _id(spec.name)
        payload = schemas.payload(spec.model)
        if spec.idempotent:
            payload.setdefault("properties", {})["requestId"] = _ref(_SCHEMAS + "RequestId")
        messages[f"{cid}.payload"] = {"name": spec.name, "title": f"{spec.name} payload",
                                      "payload": payload}
        messages[f"{cid}.ack"] = {
            "name": f"{spec.name} ack", "title": f"{spec.name} ack",
            "summary": f"{{ok: true, data: {spec.ack or 'null'}}} or the error envelope",
            "payload": {"oneOf": [
                {"type": "object", "required": ["ok", "data"], "additionalProperties": False,
                 "properties": {"ok": {"const": True},
                                "data": {"description": spec.ack or "nothing (null)"},
                                "pushes": _ref(_SCHEMAS + "AckPushes")}},
                _ref(_SCHEMAS + "ErrorAck"),
            ]},
        }
        channel(spec.name)["messages"].update({
            "payload": _ref(f"#/components/messages/{cid}.payload"),
            "ack": _ref(f"#/components/messages/{cid}.ack")})
        description, extensions = _describe(spec, settings)
        operations[f"send.{cid}"] = {
            "action": "send", "channel": _ref(f"#/channels/{cid}"),
            "title": spec.name, "summary": spec.doc, "description": description,
            "tags": [{"name": spec.name.split(":", 1)[0]}],
            "messages": [_ref(f"#/channels/{cid}/messages/payload")],
            "reply": {"channel": _ref(f"#/channels/{cid}"),
                      "messages": [_ref(f"#/channels/{cid}/messages/ack")]},
            **({"security": security} if spec.auth else {}),
            **extensions,
        }

    for name, causes in pushes_of(specs).items():
        cid = _id(name)
        sequenced = name not in UNSEQUENCED_PUSHES
        why = EXTRA_PUSHES.get(name) or "Caused by " + ", ".join(f"`{c}`" for c in causes) + "."
        shape: dict[str, Any] = {"type": "object", "description": why}
        if sequenced:
            shape["properties"] = {"room": _ref(_SCHEMAS + "Room"),
                                     "seq": _ref(_SCHEMAS + "Seq"),
                                     "epoch": _ref(_SCHEMAS + "Epoch")}
            shape["required"] = ["room", "seq", "epoch"]
        messages[f"{cid}.push"] = {
            "name": name, "title": f"{name} push", "payload": shape,
            "description": ("Sequenced: carries its room's `room`/`seq`/`epoch` (left out "
                            "only by a server run with SEQUENCE_PUSHES off); `sync` replays "
                            "it after a reconnect." if sequenced else
                            "Not sequenced: no `room`/`seq`/`epoch`, never replayed."),
            "x-sequenced": sequenced,
        }
        channel(name)["messages"]["push"] = _ref(f"#/components/messages/{cid}.push")
        operations[f"receive.{cid}"] = {
            "action": "receive", "channel": _ref(f"#/channels/{cid}"),
            "title": f"{name} (push)", "summary": why,
            "tags": [{"name": name.split(":", 1)[0]}],
            "messages": [_ref(f"#/channels/{cid}/messages/push")],
            "x-sequenced": sequenced, "x-pushed-by": causes,
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "collab server: Socket.IO events", "version": version,
                 "description": _INTRO},
        "defaultContentType": "application/json",
        "servers": {"instance": {
            "host": f"{settings.host}:{settings.port}", "protocol": "ws",
            "pathname": "/socket.io/",
            "description": "One instance as configured (HOST, PORT); behind a proxy, the "
                           "proxy's address. Socket.IO v5 protocol (Engine.IO v4); clients "
                           "should use the websocket transport.",
        }},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas.defs,
            "messages": {**messages, "errorAck": {
                "name": "error ack", "title": "error ack", "payload": _ref(_SCHEMAS + "ErrorAck"),
                "summary": "The ack of any event that was refused or failed."}},
            "securitySchemes": {"accessToken": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token, given in the Socket.IO handshake as "
                               "auth: {token}, or gained on the same socket by auth:login, "
                               "auth:register, auth:guest or auth:refresh. When it expires "
                               "the socket gets auth:expired and events answer token_expired."}},
        },
    }


_INTRO = """\
Every client→server event (a `send` operation) is a Socket.IO event whose one argument is
its payload and whose ack (the operation's reply) is the envelope
`{ok: true, data, pushes?}` or `{ok: false, error: {code, message, details?}}`
(`#/components/schemas/ErrorAck`; `code` one of `#/components/schemas/ErrorCode`).
An unknown event name is answered `bad_request`. A payload field not in its schema is
refused (`bad_request` naming it).

Mutating events (`x-idempotent`) accept an optional `requestId` that makes a retry safe.
Pushes (`receive` operations) to `project:`, `conversation:` and `user:` rooms carry
`room`, `seq` and `epoch`; after a reconnect, `sync` replays the missed ones
(docs/DELIVERY.md). `x-access` says who may call an event, `x-rate-limit` which per-user
budget it draws on (null: exempt)."""


@functools.lru_cache(maxsize=4)
def document_json(specs: tuple[EventSpec, ...], settings: Settings) -> str:
    """The document as served, built once per registry and configuration."""
    return json.dumps(build(specs, settings, server_version()), indent=2,
                      ensure_ascii=False) + "\n"

