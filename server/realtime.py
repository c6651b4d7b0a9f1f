"""The Socket.IO side of an instance: the server object, per-socket state, the one
dispatcher every event goes through, and the push helpers handlers use.

Dispatch order (STYLE rule 3): envelope → known event → signed in / token fresh → role →
payload model → project role → handler → ack. Every exception becomes an error ack; an
unexpected one gets ``internal`` with a reference id that is also in the log line.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import socketio
from engineio import json as engineio_json
from engineio import packet as eio_packet
from pydantic import ValidationError
from socketio import packet as sio_packet

from handlers.base import EventSpec, bad_payload
from handlers.context import EventContext
from server.admission import Admission, bind_session
from server.local_delivery import LocalManager
from server.metrics import Metrics
from server.redis_manager import RedisManager
from server.send_queue import BoundedEngineServer
from server.web_security import handshake_origins
from services.clock import Clock
from services.config import Settings
from services.container import Services
from services.gateway import SocketState
from services.push_order import PushOrder
from services.replay import CURRENT_CALL, CallPushes, Entry, compact_json
from store.base import User
from store.errors import (
    EventError,
    Forbidden,
    RateLimited,
    TokenExpired,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("server.events")
conn_log = logging.getLogger("server.connections")

# Enough of a Socket.IO text EVENT packet to answer it without parsing its body:
# type 2, optional "/namespace,", optional ack id, then '["event name"'.
_HEADER = re.compile(r'2(?:(/[^,]*),)?(\d*)\["((?:[^"\\]|\\.){0,200})"')
# Just the namespace and ack id of an EVENT packet, to answer one whose body is unusable.
_PREFIX = re.compile(r'2(?:(/[^,]*),)?(\d{1,15})')
SEEN_EVERY_S = 3600  # last_seen_at is written at most this often by connects
REPLAY_STALL_S = 30.0  # a replay stops when its socket reads nothing this long
FLUSH_BEFORE_CUT_S = 1.0  # a draining socket's last pushes get this long to go out
MAX_DEPTH = 64  # nesting of arrays/objects in an event's payload
# A BINARY_EVENT's header: attachment count, optional "/namespace,", optional ack id.
_BINARY = re.compile(r'5(\d{1,4})-(?:(/[^,]*),)?(\d{0,15})')
# A \\uD800-\\uDFFF escape in the raw text: the only way a lone surrogate gets in.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) is not valid Unicode."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` deep (iterative)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item)
    return False


_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _request_id(value: Any) -> str:
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise EventError("bad_request", "requestId must be 1-64 characters of A-Z a-z 0-9 "
                         "_ - . :", {"fields": [{"field": "requestId",
                                                 "problem": "not a valid requestId",
                                                 "type": "string_pattern_mismatch"}]})
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number overflows to infinity")
    return value


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    if len(text) > 100:  # engineio's own bound
        raise ValueError("Integer is too large")
    return int(text)


# One decoder for every packet: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_float=_finite,
                            parse_constant=_not_json)


class _StrictJson:
    """engineio's json (integers of at most 100 digits) refusing what Python's json lets
    through and JSON has not: NaN, Infinity, and numbers that overflow to infinity. None of
    them reaches a handler, a store or (relayed) another user's client."""

    dumps = staticmethod(engineio_json.dumps)

    @staticmethod
    def loads(s, **kwargs):
        if kwargs or not isinstance(s, str):
            return engineio_json.loads(s, parse_constant=_not_json, parse_float=_finite,
                                       **kwargs)
        return _DECODER.decode(s)


class EventPacket(sio_packet.Packet):
    json = _StrictJson


class CollabSocketServer(socketio.AsyncServer):
    """AsyncServer that answers an oversized event with ``too_large`` instead of decoding it.

    The transport limit (``max_http_buffer_size``) is set well above the event limit so a
    big payload reaches us and gets a clear answer rather than a closed connection.
    """

    event_limit: int = 1 << 20
    on_too_large: Callable[[str, int], None] | None = None
    on_malformed: Callable[[str], None] | None = None
    admission: Admission | None = None  # places of the handshakes in progress

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dropping: dict[str, int] = {}  # attachments still to come of a refused event

    def _engineio_server_class(self):
        return BoundedEngineServer  # per-socket send queues with a bound (server/send_queue.py)

    async def _handle_eio_message(self, eio_sid, data):
        if isinstance(data, bytes) and self._dropping.get(eio_sid):
            self._dropping[eio_sid] -= 1
            return
        binary = _BINARY.match(data, 0, 256) if isinstance(data, str) else None
        if binary:
            # No event takes binary attachments (payloads are JSON; files go over REST):
            # the event is refused and its attachments, sent as frames of their own after
            # it, are dropped as they come.
            count, namespace, ack_id = binary.groups()
            self._dropping[eio_sid] = int(count)
            await self._answer_malformed(eio_sid, namespace or "/", ack_id,
                                         "event payloads are JSON: binary attachments "
                                         "are not accepted")
            return
        if isinstance(data, str) and len(data) > self.event_limit:
            header = _HEADER.match(data, 0, 256)
            if header:
                namespace, ack_id, name = header.groups()
                await self._answer_too_large(eio_sid, namespace or "/", ack_id, name, len(data))
                return
        elif isinstance(data, str) and data[:1] == "2":
            # Text EVENT packets are decoded once, here: one whose body is not a JSON array
            # starting with the event's name, or nests too deep, gets ``bad_request``
            # instead of no answer (python-socketio drops it with a traceback).
            try:
                pkt = self.packet_class(encoded_packet=data)
                problem = "" if isinstance(pkt.data, list) and pkt.data \
                    and isinstance(pkt.data[0], str) else \
                    "an event packet is a JSON array: [name (a string), payload]"
                if not problem and data.count("[") + data.count("{") > MAX_DEPTH \
                        and too_deep(pkt.data):
                    problem = f"the payload nests deeper than {MAX_DEPTH} levels"
                if not problem and _SURROGATE_ESCAPE.search(data) and lone_surrogate(pkt.data):
                    problem = "strings must be valid Unicode (found a lone surrogate)"
            except RecursionError:
                pkt, problem = None, f"the payload nests deeper than {MAX_DEPTH} levels"
            except ValueError:
                pkt, problem = None, "the event packet is not valid JSON"
            if problem:
                prefix = _PREFIX.match(data, 0, 256)
                await self._answer_malformed(eio_sid, (prefix and prefix.group(1)) or "/",
                                             prefix.group(2) if prefix else "", problem)
                return
            assert pkt is not None
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
            return
        elif isinstance(data, bytes) and eio_sid in self._binary_packet:
            pkt = self._binary_packet[eio_sid]
            if len(data) > self.event_limit:
                del self._binary_packet[eio_sid]
                name = pkt.data[0] if pkt.data else "?"
                await self._answer_too_large(eio_sid, pkt.namespace or "/",
                                             str(pkt.id) if pkt.id is not None else "",
                                             name, len(data))
                return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_eio_connect(self, eio_sid, environ):
        # The handshake's place (server/admission.py) passes from the request that opened
        # the session to the session: a polling session's CONNECT comes in a later request.
        bind_session(environ)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_connect(self, eio_sid, namespace, data):
        try:
            await super()._handle_connect(eio_sid, namespace, data)
        finally:  # answered, accepted or refused: the next handshake may start
            if self.admission is not None:
                self.admission.finish(self.environ.get(eio_sid))

    async def _handle_eio_disconnect(self, eio_sid, reason):
        self._dropping.pop(eio_sid, None)
        if self.admission is not None:  # gone before its CONNECT was answered
            self.admission.finish(self.environ.get(eio_sid))
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _answer_malformed(self, eio_sid, namespace, ack_id, problem):
        if self.on_malformed:
            self.on_malformed(problem)
        if ack_id:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=namespace, id=int(ack_id),
                data=[{"ok": False, "error": EventError("bad_request", problem).to_dict()}]))

    async def _answer_too_large(self, eio_sid, namespace, ack_id, name, size):
        err = EventError("too_large", f"event payload is {size} bytes; the limit is "
                         f"{self.event_limit}", {"limit": self.event_limit, "size": size})
        if self.on_too_large:
            self.on_too_large(name, size)
        if ack_id:
            await self._send_packet(eio_sid, self.packet_class(
                sio_packet.ACK, namespace=namespace, id=int(ack_id),
                data=[{"ok": False, "error": err.to_dict()}]))


class Realtime:
    """The Socket.IO server of one instance (``services.gateway.Gateway``): sockets, rooms,
    pushes and the dispatcher. Built by the app factory; ``bind`` hands it the instance's
    services once every resource is open, before the first connection can arrive."""

    services: Services

    def __init__(self, settings: Settings, events: Iterable[EventSpec], metrics: Metrics):
        self.proxies = proxy_networks(settings)
        self.metrics = metrics
        self.events: dict[str, EventSpec] = {}
        for spec in events:
            if spec.name in self.events:
                raise ValueError(f"event {spec.name} registered twice")
            self.events[spec.name] = spec
        manager: socketio.AsyncManager = LocalManager()
        self.channel: str | None = None  # the manager's pub/sub channel (with Redis)
        if settings.redis_url:
            self.channel = "collab:sio"
            manager = RedisManager(settings.redis_url, channel=self.channel)
        self.sio = CollabSocketServer(
            async_mode="aiohttp",
            serializer=EventPacket,
            client_manager=manager,
            cors_allowed_origins=handshake_origins(
                settings, lambda address: _trusted(address, self.proxies)),
            # Transport cap: above the event limit, so oversized events get an answer.
            max_http_buffer_size=max(settings.max_event_bytes * 16, 16 << 20),
            ping_interval=20,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        self.sio.event_limit = settings.max_event_bytes
        self.sio.on_too_large = self._log_too_large
        self.sio.on_malformed = self._log_malformed
        engine = self.sio.eio
        engine.send_queue_max = settings.send_queue_max_bytes
        engine.on_slow_consumer = self._log_slow_consumer
        metrics.send_queue_peak.set_function(lambda: engine.peak_bytes)
        self.sockets: dict[str, SocketState] = {}
        # This instance's sockets per address, anonymous ones per address, signed-in ones per
        # user: the connection caps (MAX_SOCKETS_PER_IP / _PER_USER, ANON_SOCKETS_PER_IP).
        self._per_ip: collections.Counter[str] = collections.Counter()
        self._anonymous: collections.Counter[str] = collections.Counter()
        self._per_user: collections.Counter[str] = collections.Counter()
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("*", self.dispatch)

    def bind(self, services: Services) -> None:
        self.services = services
        # Cluster-wide reactions: every instance acts on its own sockets.
        services.bus.on("project:member_removed", self._on_member_removed)
        services.bus.on("project:role_changed", self._on_role_changed)
        services.bus.on("project:closed", self._on_project_closed)
        services.bus.on("user:role_changed", self._on_user_role_changed)
        services.sessions.on_revoked(self._revoke_sockets)

    async def _on_member_removed(self, msg: dict) -> None:
        for state in self.local_sockets_of(msg["userId"]):
            if msg["projectId"] in state.projects:
                await self.leave_project(state.sid, state, msg["projectId"])

    async def _on_project_closed(self, msg: dict) -> None:
        pid = msg["projectId"]
        for state in list(self.sockets.values()):
            if pid in state.projects:
                await self.leave_project(state.sid, state, pid)

    async def _on_user_role_changed(self, msg: dict) -> None:
        for state in self.local_sockets_of(msg["userId"]):
            state.role = msg["role"]

    async def _on_role_changed(self, msg: dict) -> None:
        for state in self.local_sockets_of(msg["userId"]):
            if msg["projectId"] in state.projects:
                await self.set_visibility(state.sid, msg["projectId"], msg["role"])

    # -- connection lifecycle -------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict, auth: Any = None):
        request = environ.get("aiohttp.request")
        ip = client_ip(request, self.proxies) if request else "?"
        state = SocketState(sid=sid, ip=ip)
        token = auth.get("token") if isinstance(auth, dict) else None
        settings = self.services.settings
        try:
            if self._per_ip[ip] >= settings.max_sockets_per_ip:
                raise RateLimited("too many sockets from this address")
            if token:
                services = self.services
                claims = services.tokens.verify_access(token)
                user = await services.sessions.check(claims)
                if self._per_user[user.id] >= settings.max_sockets_per_user:
                    raise RateLimited("too many sockets signed in as this user")
                await self.authenticate(sid, state, user, claims.expires_at, claims.session_id)
                self.sockets[sid] = state
                seen = user.last_seen_at
                if seen is None or (services.clock.now() - seen).total_seconds() > SEEN_EVERY_S:
                    await services.store.users.update_user(user.id,
                                                           last_seen_at=services.clock.now())
            else:
                if self._anonymous[ip] >= settings.anon_sockets_per_ip:
                    raise RateLimited("too many sockets not signed in from this address")
                self.sockets[sid] = state
                self._await_sign_in(state)
        except EventError as exc:
            self.sockets.pop(sid, None)
            conn_log.info("connect refused", extra={"fields": {
                "sid": sid, "ip": ip, "code": exc.code}})
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code, "message": exc.message,
                              **({"details": exc.details} if exc.details else {})}) from None
        self._per_ip[ip] += 1
        self.metrics.sockets.inc()
        return True

    def _await_sign_in(self, state: SocketState) -> None:
        """An anonymous socket is counted against its address and closed unless it signs
        in within AUTH_TIMEOUT_S."""
        self._anonymous[state.ip] += 1
        clock = self.services.clock
        state.expiry = clock.call_later(self.services.settings.auth_timeout_s,
                                        self._sign_in_overdue, state)

    async def close_transport(self, sid: str) -> None:
        """Cut the socket's connection (draining): clients reconnect on a lost transport,
        not after a Socket.IO disconnect. What was queued for it (``server:draining``) is
        written first: a cut drops whatever the writer has not taken yet."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            await self.sio.eio.drained(eio_sid, 0, FLUSH_BEFORE_CUT_S)
            await asyncio.sleep(0)  # the writer hands what it took to the transport
            await self.sio.eio.cut(eio_sid)

    @staticmethod
    def _dec(counter: collections.Counter[str], key: str) -> None:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]

    def _sign_in_overdue(self, state: SocketState) -> None:
        if self.sockets.get(state.sid) is state and state.user_id is None:
            conn_log.info("closing a socket that did not sign in", extra={"fields": {
                "sid": state.sid, "ip": state.ip}})
            asyncio.ensure_future(self.sio.disconnect(state.sid))

    async def _revoke_sockets(self, user_id: str, sessions: frozenset[str], reason: str,
                              spare_sid: str | None) -> None:
        for state in self.local_sockets_of(user_id):
            if state.session_id in sessions:
                await self.sio.emit("auth:revoked", {"reason": reason}, to=state.sid)
                if state.sid == spare_sid:
                    await self.sign_out(state.sid, state)
                else:
                    await self.sio.disconnect(state.sid)

    async def on_disconnect(self, sid: str, reason: Any = None):
        state = self.sockets.pop(sid, None)
        if state is None:
            return
        self.metrics.sockets.dec()
        self._dec(self._per_ip, state.ip)
        if state.user_id:
            self.metrics.users.dec()
            self._dec(self._per_user, state.user_id)
        else:
            self._dec(self._anonymous, state.ip)
        if state.expiry:
            state.expiry.cancel()
        for pid in await self.services.presence.drop_socket(sid):
            await self.push_presence(pid)
        if state.user_id:
            for hook in self.services.hooks.socket_disconnected:
                try:
                    await hook(sid, state.user_id)
                except Exception:
                    conn_log.exception("disconnect hook failed")

    async def authenticate(self, sid: str, state: SocketState, user: User,
                           token_exp: float, session_id: str) -> None:
        if state.user_id is None:
            if state.sid in self.sockets:  # an anonymous socket signing in (not a connect)
                self._dec(self._anonymous, state.ip)
            self.metrics.users.inc()
        elif state.user_id != user.id:
            await self.sio.leave_room(sid, f"user:{state.user_id}")
            self._dec(self._per_user, state.user_id)
        if state.user_id != user.id:
            self._per_user[user.id] += 1
        state.user_id = user.id
        state.username = user.username
        state.role = user.role
        state.is_guest = user.is_guest
        state.token_exp = token_exp
        state.session_id = session_id
        await self.sio.enter_room(sid, f"user:{user.id}")
        if state.expiry:
            state.expiry.cancel()
        clock = self.services.clock
        state.expiry = clock.call_later(token_exp - clock.time(), self._expired, sid, token_exp)

    async def sign_out(self, sid: str, state: SocketState) -> None:
        for pid in list(state.projects):
            await self.leave_project(sid, state, pid)
        if state.user_id:
            await self.sio.leave_room(sid, f"user:{state.user_id}")
            self.metrics.users.dec()
            self._dec(self._per_user, state.user_id)
        if state.expiry:
            state.expiry.cancel()
        state.user_id, state.username, state.role, state.is_guest = None, "", "user", False
        state.token_exp, state.expiry, state.session_id = 0.0, None, None
        self._await_sign_in(state)

    async def join_project(self, sid: str, state: SocketState, project_id: str,
                           role: str) -> None:
        await self.sio.enter_room(sid, f"project:{project_id}")
        await self.set_visibility(sid, project_id, role)
        state.projects.add(project_id)
        if await self.services.presence.join(project_id, sid, state.public_user()):
            await self.push_presence(project_id)

    async def set_visibility(self, sid: str, project_id: str, role: str) -> None:
        """Owners see secret columns in clear: they listen on a room of their own."""
        keep, drop = ("owners", "others") if role == "owner" else ("others", "owners")
        await self.sio.leave_room(sid, f"project:{project_id}:{drop}")
        await self.sio.enter_room(sid, f"project:{project_id}:{keep}")

    async def leave_project(self, sid: str, state: SocketState, project_id: str) -> None:
        await self.sio.leave_room(sid, f"project:{project_id}")
        for room in ("owners", "others"):
            await self.sio.leave_room(sid, f"project:{project_id}:{room}")
        state.projects.discard(project_id)
        if await self.services.presence.leave(project_id, sid):
            await self.push_presence(project_id)

    def _expired(self, sid: str, token_exp: float) -> None:
        # Tell the client before its next event fails, so it can refresh proactively.
        state = self.sockets.get(sid)
        if state is not None and state.token_exp == token_exp:
            asyncio.ensure_future(self.sio.emit("auth:expired", {"expiredAt": token_exp}, to=sid))

    # -- the dispatcher -------------------------------------------------------------------

    async def dispatch(self, event: str, sid: str, *args):
        started = time.perf_counter()
        state = self.sockets.get(sid)
        spec = self.events.get(event) if isinstance(event, str) else None
        outcome, ref = "ok", None
        try:
            if spec is None:
                raise EventError("bad_request", f"unknown event {str(event)[:100]!r}",
                                 {"event": str(event)[:100]})
            if state is None:
                raise Unauthorized("socket is not registered; reconnect")
            if len(args) > 1:
                raise EventError("bad_request", "send one payload object per event")
            data = args[0] if args else None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise EventError("bad_request",
                                 f"payload must be a JSON object, not {_json_type(data)}")
            request_id = None
            if "requestId" in data:  # any event takes one; mutating ones act on it
                data = dict(data)
                request_id = _request_id(data.pop("requestId"))
            if spec.auth:
                if state.user_id is None:
                    raise Unauthorized("sign in first: connect with auth.token or call auth:login")
                if state.token_exp <= self.services.clock.time():
                    raise TokenExpired("access token expired: call auth:refresh")
                if self.services.sessions.is_revoked(state.session_id):
                    raise Unauthorized("this sign-in was ended; sign in again",
                                       {"reason": "revoked"})
                if spec.limit_class is not None:
                    await self._within_budget(state.user_id, spec.limit_class)
                if spec.admin and state.role != "admin":
                    raise Forbidden("admins only")
            try:
                payload = spec.model.model_validate(data)
            except ValidationError as exc:
                raise bad_payload(exc) from None
            ctx = EventContext(self.services, sid, state, spec)
            if request_id is None or not spec.idempotent or state.user_id is None:
                return await self._call(ctx, payload)
            requests = self.services.requests
            first = await requests.begin(state.user_id, request_id, spec.name)
            if first is not None:
                outcome = "repeat"
                return first
            try:
                ack = await self._call(ctx, payload)
            except EventError as exc:
                ack = {"ok": False, "error": exc.to_dict()}
            except BaseException:
                await requests.forget(state.user_id, request_id)
                raise
            await requests.end(state.user_id, request_id, spec.name, ack)
            if not ack["ok"]:
                outcome = ack["error"]["code"]
            return ack
        except EventError as exc:
            outcome = exc.code
            return {"ok": False, "error": exc.to_dict()}
        except Exception:
            ref = uuid.uuid4().hex[:12]
            outcome = "internal"
            log.exception("event %s failed", event, extra={"fields": {"ref": ref}})
            return {"ok": False, "error": {"code": "internal",
                                           "message": f"internal error (ref {ref})",
                                           "details": {"ref": ref}}}
        finally:
            elapsed = time.perf_counter() - started
            name = spec.name if spec else "<unknown>"
            self.metrics.observe(name, outcome, elapsed)
            if log.isEnabledFor(logging.INFO):
                fields = {"event": name, "sid": sid, "user": state.user_id if state else None,
                          "ms": round(elapsed * 1000, 3), "outcome": outcome}
                if ref:
                    fields["ref"] = ref
                log.info("event", extra={"fields": fields})

    async def _call(self, ctx: EventContext, payload: Any) -> dict:
        """Resolve the event's scope, run its handler: the ok envelope, listing the pushes
        the call caused that skipped the caller's socket (its seq tracking stays whole)."""
        call = CallPushes(ctx.sid)
        token = CURRENT_CALL.set(call)
        try:
            scope = ctx.spec.scope
            if scope is not None and not scope.in_write:
                ctx.resource, ctx.project_role = await scope.resolve(
                    ctx, getattr(payload, scope.field))
            result = await ctx.spec.handler(ctx, payload)
        finally:
            CURRENT_CALL.reset(token)
        ack = {"ok": True, "data": result}
        if call.pushes:
            ack["pushes"] = call.pushes
        return ack

    async def _within_budget(self, user_id: str, cls: str) -> None:
        rate, burst = self.services.settings.event_budget(cls)
        wait = await self.services.event_limits.take(f"{user_id}:{cls}", rate, burst)
        if wait > 0:
            raise RateLimited(f"too many {cls} events; slow down",
                              {"retryAfterMs": math.ceil(wait * 1000), "class": cls})

    def _log_malformed(self, problem: str) -> None:
        self.metrics.observe("<malformed>", "bad_request", 0.0)
        log.info("event", extra={"fields": {"event": "<malformed>", "outcome": "bad_request",
                                            "problem": problem}})

    def _log_too_large(self, name: str, size: int) -> None:
        self.metrics.observe("<too_large>", "too_large", 0.0)
        log.info("event", extra={"fields": {"event": str(name)[:100], "outcome": "too_large",
                                            "bytes": size}})

    def _log_slow_consumer(self, eio_sid: str, queued: int) -> None:
        self.metrics.slow_consumers.inc()
        sid = self.sio.manager.sid_from_eio_sid(eio_sid, "/")
        state = self.sockets.get(sid) if sid else None
        conn_log.warning("slow consumer dropped", extra={"fields": {
            "sid": sid, "user": state.user_id if state else None,
            "ip": state.ip if state else None, "queuedBytes": queued,
            "limit": self.sio.eio.send_queue_max}})

    # -- authorization and pushes ---------------------------------------------------------

    async def push(self, event: str, data: Any, *, room: str | list[str],
                   skip_sid: str | None = None):
        await self.services.delivery.push(event, data, to=room, skip_sid=skip_sid)

    async def push_project(self, project_id: str, event: str, data: dict, *,
                           skip_sid: str | None = None) -> None:
        await self.services.delivery.push(event, {"projectId": project_id, **data},
                                          to=f"project:{project_id}", skip_sid=skip_sid)

    async def replay(self, sid: str, entries: list[Entry], clear: bool,
                     user_id: str) -> int | None:
        """Send buffered pushes to one socket of this instance, in order, each as it was
        pushed (``sync``). The payloads are JSON text already (from Redis): they become
        Socket.IO packets without being parsed and encoded again. Paced by the socket's
        send queue (half of SEND_QUEUE_MAX_KB at most), so a long replay never gets its
        client dropped as a slow consumer. None when the socket stopped reading (gone, or
        not draining within REPLAY_STALL_S): the rest is not sent."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is None:
            return None
        engine = self.sio.eio
        high = engine.send_queue_max // 2
        events: dict[str, str] = {}
        queued = 0
        for entry in entries:
            text = entry.text_for(clear or entry.author == user_id)
            head = events.get(entry.event)
            if head is None:
                head = events[entry.event] = f"2[{compact_json(entry.event)},"
            packet = head + text + "]"
            queued += len(packet)
            if queued > high:
                if not await engine.drained(eio_sid, high // 2, REPLAY_STALL_S):
                    return None
                queued = len(packet)
            await self.sio._send_eio_packet(eio_sid,
                                            eio_packet.Packet(eio_packet.MESSAGE, packet))
        return len(entries)

    async def push_presence(self, project_id: str) -> None:
        try:
            users = await self.services.presence.users(project_id)
        except Unavailable:
            self.services.presence.push_later(project_id)
            return
        await self.push_project(project_id, "project:presence", {"users": users})

    @property
    def host_id(self) -> str:
        """The manager's id on the pub/sub channel ("" without Redis)."""
        return getattr(self.sio.manager, "host_id", "")

    def push_order(self, clock: Clock) -> PushOrder:
        """The gate numbered pushes reach this instance's sockets through, shared by the
        manager's listener and the instance's own pushes (services/push_order.py)."""
        order = PushOrder(clock)
        if isinstance(self.sio.manager, RedisManager):
            self.sio.manager.order = order
        return order

    def in_room(self, sid: str, room: str) -> bool:
        # The manager's own room table is the truth: rooms can be left from any instance.
        members = self.sio.manager.rooms.get("/", {}).get(room)
        return bool(members) and sid in members

    def local_sockets_of(self, user_id: str) -> list[SocketState]:
        return [s for s in self.sockets.values() if s.user_id == user_id]


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def proxy_networks(settings: Settings) -> Networks:
    return tuple(ipaddress.ip_network(c, strict=False) for c in settings.trusted_proxies)


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request, networks: Networks) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    rightmost X-Forwarded-For hop that is not a trusted proxy (hops left of it are whatever
    the client chose to send, so they are never believed)."""
    remote = request.remote or "?"
    if not networks or not _trusted(remote, networks):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")
            if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else remote


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
