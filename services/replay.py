"""Per-room sequence numbers and the replay buffer: a missed push is noticed, and within a
window recovered (docs/DELIVERY.md).

Every push to a ``project:<id>``, ``conversation:<id>`` or ``user:<id>`` room goes through
``Delivery.push``, which gives it the room's next ``seq`` (with the room's ``epoch``), keeps it
in the room's replay buffer and sends it. ``sync`` reads the buffer back (``since``).

With Redis, one script assigns the number, appends to the room's stream and publishes the
push on the Socket.IO manager's channel, atomically: Redis' order of publishes is then the
order of ``seq``. The instance that made the push hands it to its own sockets as soon as the
script answers, the others from the channel; on every instance both paths go through one
gate per room (``services/push_order.py``) that hands pushes out in ``seq`` order, since an
earlier push from another instance may still be unread on the channel when the script
answers (python-socketio's manager delivers locally *before* numbering could exist, which is
exactly where a later push could overtake an earlier one). Embedded, the number is given in
process. On either, a push is numbered when it is made (``push`` is called), not when it is
awaited: with Redis its script is queued on one pipelined connection (services/redis_pipe.py),
so an instance's pushes are numbered in the order they were made, without one waiting for
the answer of the one before; a progress push created after another is never numbered before
it. Delivery, when the caller awaits, goes through the gate in ``seq`` order.

Redis unreachable: pushes are numbered in process under an epoch of this instance's own and
reach this instance's sockets only (as python-socketio's manager does during an outage);
clients see the epoch change and reload when Redis is back.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from services.clock import Clock
from services.push_order import FRESH_MS, PushOrder
from services.redis_client import OutageLog
from services.redis_pipe import PipelinedRedis
from store.errors import Unavailable

if TYPE_CHECKING:
    import socketio
    from redis.asyncio import Redis

log = logging.getLogger("services.replay")

ROOM_KINDS = ("project", "conversation", "user")
# Pushes to those rooms that are not sequenced: a full snapshot each time, and ephemeral
# cursors/typing relayed between clients.
UNSEQUENCED = frozenset({"project:presence", "project:broadcast"})
# Every push that goes out without room/seq/epoch: those, the ticker's (its own room) and the
# ones addressed to one socket (the catalogue and the AsyncAPI document say so).
UNNUMBERED_PUSHES = UNSEQUENCED | {"ticker:tick", "auth:expired", "auth:revoked",
                                   "server:draining"}
# A room's number and epoch outlive its buffer: an idle room keeps them this long, so its
# members' next push continues the sequence (when they go, the next push starts a new epoch).
STATE_TTL_S = 7 * 86400
# Compact JSON, as python-socketio encodes packets (pushes are spliced and replayed as text).
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def sequenced(room: str) -> bool:
    """``project:<id>``, ``conversation:<id>``, ``user:<id>`` (not ``project:<id>:owners``)."""
    kind, _, ident = room.partition(":")
    return kind in ROOM_KINDS and bool(ident) and ":" not in ident


@dataclass(frozen=True, slots=True)
class Form:
    """One form of a push: where it goes and what it says. A row of a table with secret
    columns goes out in two forms, clear and masked; replay gives each member the form they
    may see now (``masked``: the one for members who see secrets masked)."""

    to: str  # a room, or one socket's sid
    data: dict
    skip: tuple[str, ...] = ()
    masked: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A buffered push: ``data`` is its payload (a dict, or its JSON text from Redis)."""

    seq: int
    at: float
    event: str
    data: Any
    masked: Any = None
    author: str | None = None

    def payload_for(self, clear: bool) -> Any:
        return self.data if clear or self.masked is None else self.masked

    def text_for(self, clear: bool) -> str:
        """The payload as JSON text (from Redis it is text already)."""
        payload = self.payload_for(clear)
        return payload if isinstance(payload, str) else compact_json(payload)


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    epoch: str

    def view(self, room: str) -> dict:
        return {"room": room, "seq": self.seq, "epoch": self.epoch}


@dataclass(frozen=True, slots=True)
class Backlog:
    """What ``since`` found: the entries after the given seq, or ``resync``."""

    head: Head
    entries: list[Entry]
    resync: bool = False


# -- the pushes a call caused but its own socket was skipped from (listed in its ack) ------

@dataclass(slots=True)
class CallPushes:
    sid: str
    pushes: list[dict] = field(default_factory=list)


CURRENT_CALL: contextvars.ContextVar[CallPushes | None] = contextvars.ContextVar(
    "current_call", default=None)


def _note_skipped(room: str, head: Head, forms: Iterable[Form]) -> None:
    call = CURRENT_CALL.get()
    if call is not None and any(call.sid in f.skip for f in forms):
        call.pushes.append(head.view(room))


# -- in process ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Room:
    seq: int = 0
    at: float = 0.0  # when the last push was numbered
    ring: deque[Entry] = field(default_factory=deque)


class MemoryLog:
    """Sequence numbers and a ring of recent pushes per room, in this process (embedded, and
    the fallback while Redis is unreachable). Its epoch is new with every process."""

    def __init__(self, clock: Clock, max_events: int, window_s: float):
        self.clock, self.max_events, self.window_s = clock, max_events, window_s
        self.epoch = secrets.token_hex(6)
        self.rooms: dict[str, _Room] = {}
        self._swept = clock.time()

    def append(self, room: str, event: str, forms: list[Form], author: str | None) -> Head:
        state = self.rooms.get(room)
        if state is None:
            state = self.rooms[room] = _Room()
        state.seq += 1
        state.at = self.clock.time()
        head = Head(state.seq, self.epoch)
        clear = next((f for f in forms if not f.masked), forms[0])
        masked = next((f for f in forms if f.masked), None)
        stamp = {"room": room, "epoch": head.epoch, "seq": head.seq}
        for f in forms:
            f.data.update(stamp)  # each form's dict, sent as is below
        if self.max_events > 0:
            now = self.clock.time()
            if now - self._swept > self.window_s:
                self.sweep()
            ring = state.ring
            ring.append(Entry(head.seq, now, event, clear.data,
                              masked.data if masked is not None else None, author))
            while len(ring) > self.max_events or ring[0].at < now - self.window_s:
                ring.popleft()
        return head

    def head(self, room: str) -> Head:
        state = self.rooms.get(room)
        return Head(state.seq if state else 0, self.epoch)

    def lately(self, room: str) -> bool:
        """The room's last push was numbered within FRESH_MS: what the Redis script says as
        ``fresh`` (it may not be delivered yet: services/push_order.py)."""
        state = self.rooms.get(room)
        return state is not None and self.clock.time() - state.at < FRESH_MS / 1000

    def since(self, room: str, seq: int, epoch: str | None) -> Backlog:
        state = self.rooms.get(room)
        head = Head(state.seq if state else 0, self.epoch)
        entries = [e for e in state.ring if e.seq > seq] if state else []
        return _checked(head, entries, seq, epoch, self.clock.time() - self.window_s)

    def sweep(self) -> None:
        """Drop the buffers whose newest push is older than the window (numbers stay)."""
        self._swept = self.clock.time()
        cutoff = self._swept - self.window_s
        for state in self.rooms.values():
            if state.ring and state.ring[-1].at < cutoff:
                state.ring.clear()


def _checked(head: Head, entries: list[Entry], seq: int, epoch: str | None,
             oldest: float) -> Backlog:
    """The backlog after ``seq``, or resync when it cannot be given whole: another epoch,
    a client ahead of the room, or a gap reaching past the buffer or the window."""
    if epoch != head.epoch or seq > head.seq:
        return Backlog(head, [], resync=True)
    missing = head.seq - seq
    if missing == 0:
        return Backlog(head, [])
    if len(entries) < missing or entries[0].seq != seq + 1 or entries[0].at < oldest:
        return Backlog(head, [], resync=True)
    return Backlog(head, entries[:missing])


# -- Redis ---------------------------------------------------------------------------------

# KEYS: the room's state hash, its stream. ARGV: epoch candidate, max events (0: no
# buffer), state ttl, buffer ttl, channel, now, event, author, clear payload in three parts
# (around the epoch and the seq), masked payload likewise (or three empty strings), then
# per form: the manager message around the payload, and whether it carries the masked one.
# ``fresh`` (1/0): the room's previous push was made within FRESH_MS (services/push_order).
_PUSH = """
local state = redis.call('HMGET', KEYS[1], 'e', 't')
local epoch = state[1]
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = tostring(redis.call('HINCRBY', KEYS[1], 's', 1))
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local fresh = '0'
if state[2] and now_ms - tonumber(state[2]) < FRESH_MS then fresh = '1' end
redis.call('HSET', KEYS[1], 't', now_ms)
redis.call('EXPIRE', KEYS[1], ARGV[3])
local clear = ARGV[9] .. epoch .. ARGV[10] .. seq .. ARGV[11]
local masked = ''
if ARGV[12] ~= '' then masked = ARGV[12] .. epoch .. ARGV[13] .. seq .. ARGV[14] end
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0',
             't', ARGV[6], 'e', ARGV[7], 'd', clear, 'm', masked, 'a', ARGV[8])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
local i = 15
while i <= #ARGV do
  local body = clear
  if ARGV[i + 2] == 'm' then body = masked end
  redis.call('PUBLISH', ARGV[5],
             ARGV[i] .. body .. ARGV[i + 1] .. epoch .. '",' .. seq .. ',' .. fresh .. ']}')
  i = i + 3
end
return {seq, epoch, fresh}
""".replace("FRESH_MS", str(FRESH_MS))

# KEYS: state hash, stream. ARGV: epoch candidate, state ttl, after seq (or '' for the head only).
_SINCE = r"""
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local seq = redis.call('HGET', KEYS[1], 's') or '0'
local out = {}
if ARGV[3] ~= '' and tonumber(seq) > tonumber(ARGV[3]) then
  -- One string back, not an array per entry: parsing 10,000 nested replies costs the
  -- client a second; JSON text never holds a raw \30 or \31, so they separate safely.
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-0', '+')) do
    local f = entry[2]  -- t, e, d, m, a: the order _PUSH writes them in
    out[#out + 1] = entry[1] .. '\31' .. f[2] .. '\31' .. f[4] .. '\31' .. f[6] .. '\31'
                    .. f[8] .. '\31' .. f[10]
  end
end
return {seq, epoch, table.concat(out, '\30')}
"""


def _payload_parts(room: str, data: dict) -> tuple[str, str, str]:
    """The payload's JSON around its epoch and seq, which the script fills in."""
    text = compact_json(data)
    head = text[:-1] + ("," if len(text) > 2 else "")
    return head + '"room":' + compact_json(room) + ',"epoch":"', '","seq":', "}"


def _message_parts(event: str, form: Form, room: str, host_id: str) -> tuple[str, str]:
    """python-socketio's pub/sub message around its payload (see AsyncPubSubManager.emit),
    with the push's ``order`` (room, epoch, seq, fresh: the script ends it) for the other
    instances' gates. This instance's listener skips it (its host id): the push has gone
    to this instance's sockets already."""
    return ('{"method":"emit","event":' + compact_json(event) + ',"data":[',
            '],"binary":false,"namespace":"/","room":' + compact_json(form.to)
            + ',"skip_sid":' + compact_json(list(form.skip)) + ',"callback":null,'
            '"host_id":' + compact_json(host_id) + ',"order":[' + compact_json(room) + ',"')


class RedisLog:
    """Sequence numbers and buffers in Redis, shared by every instance."""

    def __init__(self, redis: Redis, clock: Clock, channel: str, max_events: int,
                 window_s: float, host_id: str, prefix: str = "collab:room:"):
        self.clock, self.channel, self.prefix = clock, channel, prefix
        self.host_id = host_id
        self.max_events, self.window_s = max_events, window_s
        # Pushes are numbered in the order they are made, each without waiting for the
        # answer of the one before (services/redis_pipe.py). EVAL, not EVALSHA: a pipelined
        # NOSCRIPT would fail every push behind it; Redis keeps the compiled script anyway.
        self.pipe = PipelinedRedis(redis)
        self._since = redis.register_script(_SINCE)

    def _keys(self, room: str) -> list[str]:
        tag = "{" + room + "}"  # one slot per room on a Redis Cluster
        return [self.prefix + tag, self.prefix + tag + ":log"]

    def append(self, room: str, event: str, forms: list[Form],
               author: str | None) -> asyncio.Future:
        """Number the push now (its place among this instance's pushes is fixed by this
        call); the future gets the script's answer (``answered`` reads it)."""
        clear = next((f for f in forms if not f.masked), forms[0])
        masked = next((f for f in forms if f.masked), None)
        args: list[Any] = [secrets.token_hex(6), self.max_events, STATE_TTL_S,
                           max(1, round(self.window_s)), self.channel, repr(self.clock.time()),
                           event, author or "", *_payload_parts(room, clear.data),
                           *(_payload_parts(room, masked.data) if masked else ("", "", ""))]
        for f in forms:
            args.extend((*_message_parts(event, f, room, self.host_id),
                         "m" if f.masked else "c"))
        return self.pipe.call("EVAL", _PUSH, 2, *self._keys(room), *args)

    @staticmethod
    def answered(answer: list) -> tuple[Head, bool]:
        """The push's number, and whether the room's previous push was made lately."""
        seq, epoch, fresh = answer
        return Head(int(seq), _text(epoch)), _text(fresh) == "1"

    async def _read(self, room: str, after: int | None) -> tuple[Head, list]:
        seq, epoch, raw = await self._since(
            keys=self._keys(room),
            args=[secrets.token_hex(6), STATE_TTL_S, "" if after is None else after])
        return Head(int(seq), _text(epoch)), raw

    async def head(self, room: str) -> Head:
        return (await self._read(room, None))[0]

    async def since(self, room: str, seq: int, epoch: str | None) -> Backlog:
        head, raw = await self._read(room, seq)
        entries = []
        for record in _text(raw).split("\x1e") if raw else ():
            ident, at, event, data, masked, author = record.split("\x1f")
            entries.append(Entry(int(ident.split("-", 1)[0]), float(at), event, data,
                                 masked or None, author or None))
        return _checked(head, entries, seq, epoch, self.clock.time() - self.window_s)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _all(pushes: list[Awaitable[None]]) -> None:
    for push in pushes:
        await push


# -- the one way pushes go out -------------------------------------------------------------

class Delivery:
    """Sends every push of the instance (``push``/``push_forms``) and answers ``sync``'s reads
    (``head``/``since``). ``enabled`` False (``SEQUENCE_PUSHES=0``): plain emits, no buffer."""

    def __init__(self, sio: socketio.AsyncServer, clock: Clock, *, max_events: int,
                 window_s: float, enabled: bool = True, redis: Redis | None = None,
                 channel: str | None = None, order: PushOrder | None = None,
                 host_id: str = ""):
        """With ``redis``: ``channel`` is the Socket.IO manager's, ``host_id`` its host id
        and ``order`` the gate its listener hands the other instances' pushes to."""
        self.sio, self.clock, self.enabled = sio, clock, enabled
        self.window_s = window_s
        self.memory = MemoryLog(clock, max_events, window_s)
        self.shared = RedisLog(redis, clock, channel, max_events, window_s, host_id) \
            if redis is not None and channel else None
        self.order = order or PushOrder(clock)
        self._outage = OutageLog(log, "sequencing pushes (this instance numbers them alone)")

    def push(self, event: str, data: dict, *, to: str | list[str],
             skip_sid: str | list[str] | None = None) -> Awaitable[None]:
        """``event`` to one or more rooms (or sids). A push to several sequenced rooms is
        one push per room, each numbered in its room: a socket in two of them gets a copy
        from each (each copy names its room). Numbered when called (the order of calls is
        the order of numbers), delivered when awaited: a caller awaits what it gets."""
        skip = tuple(skip_sid) if isinstance(skip_sid, list) else \
            (skip_sid,) if skip_sid else ()
        rooms = to if isinstance(to, list) else [to]
        if not self.enabled or event in UNSEQUENCED or not all(map(sequenced, rooms)):
            return self.sio.emit(event, data, to=to, skip_sid=list(skip) or None)
        if len(rooms) == 1:  # nearly every push: no wrapper around it
            return self.push_forms(rooms[0], event, [Form(rooms[0], dict(data), skip)])
        return _all([self.push_forms(r, event, [Form(r, dict(data), skip)]) for r in rooms])

    def push_forms(self, room: str, event: str, forms: list[Form],
                   author: str | None = None) -> Awaitable[None]:
        """One push to sequenced ``room`` in several forms (all numbered alike), numbered
        when called and delivered when awaited, like ``push``."""
        if not self.enabled:
            return _all([self.sio.emit(event, f.data, to=f.to, skip_sid=list(f.skip) or None)
                         for f in forms])
        if self.shared is not None:
            return self._numbered_by_redis(room, event, forms, author,
                                           self.shared.append(room, event, forms, author))
        head, fresh = self._number_here(room, event, forms, author)
        return self._deliver(room, event, forms, head, fresh=fresh, local=False)

    def _number_here(self, room: str, event: str, forms: list[Form],
                     author: str | None) -> tuple[Head, bool]:
        """Numbered in process (embedded, or Redis unreachable), with ``fresh`` as the
        Redis script says it (read before this push counts as the room's last)."""
        fresh = self.memory.lately(room)
        return self.memory.append(room, event, forms, author), fresh

    async def _numbered_by_redis(self, room: str, event: str, forms: list[Form],
                                 author: str | None, answer: asyncio.Future) -> None:
        try:
            head, fresh = RedisLog.answered(await answer)
        except (RedisError, Unavailable) as exc:
            # Numbered here instead, for this instance's sockets only.
            self._outage.failed(exc)
            head, fresh = self._number_here(room, event, forms, author)
        else:
            self._outage.ok()
            for f in forms:  # the script stamped the published copies alike
                f.data.update(head.view(room))
        # This instance's sockets only: the script published it to the others (or, Redis
        # unreachable, nothing can reach them).
        await self._deliver(room, event, forms, head, fresh=fresh, local=True)

    async def _deliver(self, room: str, event: str, forms: list[Form], head: Head, *,
                       fresh: bool, local: bool) -> None:
        """To this instance's sockets (``local``; else through the manager) in ``seq``
        order: pushes are numbered when made but may be awaited in another order."""
        async def send() -> None:
            for f in forms:
                await self.sio.emit(event, f.data, to=f.to, skip_sid=list(f.skip) or None,
                                    ignore_queue=local)

        await self.order.offer(room, head.epoch, head.seq, fresh, send)
        _note_skipped(room, head, forms)

    async def aclose(self) -> None:
        if self.shared is not None:
            await self.shared.pipe.aclose()

    async def head(self, room: str) -> Head:
        if self.shared is not None:
            try:
                return await self.shared.head(room)
            except (RedisError, Unavailable) as exc:
                self._outage.failed(exc)
        return self.memory.head(room)

    async def since(self, room: str, seq: int, epoch: str | None) -> Backlog:
        if self.shared is not None and epoch != self.memory.epoch:
            return await self.shared.since(room, seq, epoch)
        return self.memory.since(room, seq, epoch)

    def sweep(self) -> None:
        self.memory.sweep()
