"""Generating replies: one task per reply on the instance that received ``message:send``.

The task grounds the request (history within CHAT_HISTORY_TOKENS, files within
CHAT_CONTEXT_TOKENS), runs the provider and pushes its text to ``conversation:<id>`` as
``message:delta`` with an index that grows by one, through the Socket.IO manager (Redis),
so viewers on every instance see the same stream in order (one sender task per reply; text
arriving while a push is in flight joins the next push). It
ends with ``message:done`` (complete, or cancelled keeping what was streamed) or
``message:error`` (what was streamed is kept too).

Surviving a dead instance: the conversation holds the reply's claim with a lease
(CHAT_LEASE_S). Each instance renews the claims of its live replies and saves their text so
far twice a second; one elected reaper (a leader lease) fails replies whose lease lapsed and
pushes ``message:error``, so nothing stays "generating" for more than about a lease and a
reap interval. An instance that finds its claim gone stops generating.

Starting early: the provider's request is the slowest part of a reply, so when this instance
already knows what the exchange's write will read (the conversation's history, kept after
each reply made here) and that the sender may send there (a write of theirs went through),
the request starts *with* the write rather than after it (``ReplyEngine.early``). Nothing
of it reaches anyone before the write is stored, and it is kept only if the history the
write read is the one it was built from; otherwise it is cancelled and the request made
again, so a stale copy costs time, never a wrong reply. An early request takes the copy
(a second send meanwhile waits for its own write); it is kept again after each reply made
here, and dropped when another instance answers in the conversation, when it is closed and
when a sender is removed from its project. At most ``KNOWN_HISTORIES`` conversations are
kept, each at most the history budget (``CHAT_HISTORY_TOKENS``' worth of characters).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from services.ai import (
    ChatRequest,
    Final,
    Provider,
    ProviderError,
    Turn,
    chars_for_tokens,
    fit_history,
)
from services.clock import Clock
from services.container import Core
from services.leader import Leader
from services.replay import Delivery
from services.reply_context import ContextBuilder
from store.base import (
    ChatMessage,
    Conversation,
    Exchange,
    FileRecord,
    HistoryTurn,
    ImportedChat,
    RecentTurns,
)
from store.ids import iso

log = logging.getLogger("handlers.chat")
FLUSH_S = 0.5
SLICE_S = 0.005
SHUTDOWN_WAIT_S = 5.0
KNOWN_HISTORIES = 1000  # conversations whose next history an instance keeps (an LRU)
LOST = {"code": "unavailable", "reason": "instance_lost",
        "message": "the server generating this reply stopped before finishing it"}


# -- views and pushes shared with handlers/chat.py ----------------------------------------

def conversation_view(c: Conversation) -> dict:
    return {"id": c.id, "projectId": c.project_id, "ownerId": c.owner_id, "title": c.title,
            "createdAt": iso(c.created_at), "updatedAt": iso(c.updated_at),
            "generatingId": c.generating_id}


def message_view(m: ChatMessage) -> dict:
    out: dict[str, object] = {"id": m.id, "conversationId": m.conversation_id, "role": m.role,
           "content": m.content, "status": m.status, "authorId": m.author_id,
           "attachments": list(m.attachments), "metadata": m.metadata,
           "createdAt": iso(m.created_at), "updatedAt": iso(m.updated_at)}
    if m.status == "generating":
        out["deltaIndex"] = m.delta_index
    return out


def room(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def audience(c: Conversation) -> list[str]:
    """Who hears about a conversation itself: its room, and its project's room (or, for a
    private one, its owner's own room) so conversation lists stay current."""
    return [room(c.id), f"project:{c.project_id}" if c.project_id else f"user:{c.owner_id}"]


async def push_conversation(delivery: Delivery, event: str, c: Conversation,
                            extra: dict | None = None, skip_sid: str | None = None) -> None:
    await delivery.push(event, {"conversationId": c.id, "projectId": c.project_id,
                                "conversation": conversation_view(c), **(extra or {})},
                        to=audience(c), skip_sid=skip_sid)


def make_title(text: str, fallback: str = "Conversation") -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    # Markdown's markers go (emphasis, code, links; heading and quote marks at the start),
    # not characters that are text: "<b>" in a question stays "<b>".
    line = re.sub(r"^\s*(?:[#>]+\s*)+", "", line)
    words = re.sub(r"[`*_\[\]]+", "", line).split()
    title = ""
    for word in words[:8]:
        if len(title) + len(word) + 1 > 60:
            break
        title = f"{title} {word}".strip()
    title = title.rstrip(",;:")
    if not title:
        return fallback
    return title[0].upper() + title[1:]


# -- the engine ---------------------------------------------------------------------------

@dataclass(eq=False)
class LiveReply:
    conversation: Conversation
    user: ChatMessage
    reply: ChatMessage
    files: list[FileRecord]
    omitted: list[dict] = field(default_factory=list)
    history: list[HistoryTurn] = field(default_factory=list)
    chats: list[ImportedChat] = field(default_factory=list)
    task: asyncio.Task | None = None
    sender: asyncio.Task | None = None
    running: bool = False  # _run has started (a task cancelled before that never runs)
    parts: list[str] = field(default_factory=list)
    index: int = -1
    saved: int = -1
    cancel_reason: str | None = None
    # Latency figures for the reply's metadata (durationMs, firstDeltaMs): measured on the
    # performance counter, like the slice below, not read from the engine's clock.
    started: float = field(default_factory=time.perf_counter)
    first_at: float | None = None
    pending: list[str] = field(default_factory=list)  # received, not pushed yet
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    slice_at: float = 0.0  # when the provider last let the loop go (see on_text)
    announcing: Awaitable[None] | None = None  # message:started, numbered at ``begin``
    closing: bool = False
    early: EarlyRequest | None = None
    senders: frozenset[str] = frozenset()  # users whose writes here went through

    @property
    def turns(self) -> list[Turn]:
        return request_turns(self.history)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def request_turns(history: Sequence[HistoryTurn]) -> list[Turn]:
    """The turns of ``history`` a request carries: finished text, in order."""
    return [Turn(m.role, m.content) for m in history
            if m.status in ("complete", "cancelled") and m.content]


@dataclass(frozen=True)
class KnownHistory:
    """What the next exchange's write in a conversation will read as its history, as this
    instance saw it stored after a reply made here, and who sent in it (their writes went
    through: the store authorized them)."""

    project_id: str | None
    turns: tuple[HistoryTurn, ...]
    senders: frozenset[str]


class EarlyRequest:
    """A provider request started before its exchange is stored. Its text waits, in the
    provider's own task, until a reply takes it (``attach``) or it is dropped (``abandon``).
    """

    def __init__(self, engine: ReplyEngine, known: KnownHistory, content: str):
        self.engine = engine
        self.known = known
        history = [*known.turns, HistoryTurn("", "user", "complete", content)]
        self.turns = request_turns(history)
        self.metadata: dict = {}
        self.live: LiveReply | None = None
        self._attached = asyncio.Event()
        self.task = asyncio.create_task(self._generate(history), name="early-reply")
        # A dropped request's failure is nobody's to report.
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _generate(self, history: list[HistoryTurn]) -> Final:
        request = await self.engine.request(history, [], [], [], self.metadata)
        return await self.engine.provider.reply(request, self._on_text)

    async def _on_text(self, text: str) -> None:
        await self._attached.wait()
        assert self.live is not None
        await self.engine.on_text(self.live, text)

    async def attach(self, live: LiveReply) -> Final:
        """Make ``live`` the reply this request generates; its outcome."""
        self.live = live
        self._attached.set()
        try:
            return await self.task
        finally:
            self.task.cancel()  # whatever stopped the reply stops the request

    def abandon(self) -> None:
        self.task.cancel()


class ReplyEngine:
    def __init__(self, core: Core, provider: Provider, leader: Leader, *,
                 on_first_delta: Callable[[float], None] = lambda seconds: None,
                 on_early: Callable[[str], None] = lambda outcome: None):
        """``on_first_delta(seconds)``: each reply's time from ``begin`` (its exchange
        stored) to its first delta pushed to this instance's sockets (a metric).
        ``on_early(outcome)``: what became of each early request (``kept``, ``rebuilt``,
        ``dropped``; a metric)."""
        self.core = core
        self.on_first_delta = on_first_delta
        self.on_early = on_early
        self.provider = provider
        self.leader = leader
        self.settings = core.settings
        self.context = ContextBuilder(core)
        self.live: dict[str, LiveReply] = {}
        self.history_chars = chars_for_tokens(self.settings.chat_history_tokens)
        self.known: OrderedDict[str, KnownHistory] = OrderedDict()
        self.joined: dict[str, dict[str, str | None]] = {}  # sid -> {conversation: project}
        self._loops: list[asyncio.Task] = []

    @property
    def sio(self):
        return self.core.gateway.sio

    def _push(self, event: str, data: dict, conversation_id: str) -> Awaitable[None]:
        """Numbered now, delivered when awaited (services/replay.py)."""
        return self.core.delivery.push(event, data, to=room(conversation_id))

    @property
    def store(self):
        return self.core.store

    def attach(self) -> None:
        """Cluster reactions: cancels and closed conversations from any instance, members
        removed, projects deleted, sockets gone."""
        bus, hooks = self.core.bus, self.core.hooks
        bus.on("chat:cancel", self._on_cancel)
        bus.on("chat:closed", self._on_closed)
        bus.on("chat:exchange", self._on_exchange)
        bus.on("project:member_removed", self._on_member_removed)
        hooks.project_deleted.append(self._on_project_deleted)
        hooks.socket_disconnected.append(self._on_socket_gone)

    async def _on_cancel(self, msg: dict) -> None:
        self.cancel_local(msg.get("messageId", ""), "user")

    async def _on_exchange(self, msg: dict) -> None:
        if msg.get("instance") != self.settings.instance_id:
            self.known.pop(msg.get("conversationId", ""), None)

    async def _on_closed(self, msg: dict) -> None:
        ids = set(msg.get("conversationIds") or ())
        for cid in ids:
            self.known.pop(cid, None)
        for live in list(self.live.values()):
            if live.conversation.id in ids:
                self.cancel_local(live.reply.id, "deleted")
        for sid, rooms in list(self.joined.items()):
            for cid in ids & set(rooms):
                rooms.pop(cid, None)
                await self.sio.leave_room(sid, room(cid))

    async def _on_member_removed(self, msg: dict) -> None:
        for cid, known in list(self.known.items()):
            if known.project_id == msg["projectId"] and msg["userId"] in known.senders:
                del self.known[cid]
        for state in self.core.gateway.local_sockets_of(msg["userId"]):
            rooms = self.joined.get(state.sid, {})
            for cid, pid in list(rooms.items()):
                if pid == msg["projectId"]:
                    rooms.pop(cid, None)
                    await self.sio.leave_room(state.sid, room(cid))

    async def _on_project_deleted(self, project_id: str) -> None:
        ids = await self.store.chat.delete_project_chat(project_id)
        if ids:
            await self.core.bus.publish("chat:closed", {"conversationIds": ids})

    async def _on_socket_gone(self, sid: str, user_id: str) -> None:
        self.joined.pop(sid, None)

    @property
    def clock(self) -> Clock:
        return self.core.clock

    def lease_until(self):
        return self.clock.now() + timedelta(seconds=self.settings.chat_lease_s)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._keeper(), name="chat-keeper"),
                       asyncio.create_task(self._reaper(), name="chat-reaper")]

    async def stop(self) -> None:
        live = list(self.live.values())
        for item in live:
            self._cancel(item, "shutdown")
        if live:
            await asyncio.wait([i.task for i in live if i.task is not None],
                               timeout=SHUTDOWN_WAIT_S)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.leader.resign()
        with contextlib.suppress(Exception):
            await self.provider.close()

    # -- what handlers call ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def early(self, conversation_id: str, user_id: str, content: str,
                    plain: bool = True) -> AsyncIterator[EarlyRequest | None]:
        """Around the write of an exchange: for a ``plain`` message (no files, no chats,
        not a guest's), the provider request, started now if this instance knows the
        conversation's history and the sender (else None), for ``begin``. A write that
        refuses drops it (the copy it came from is gone: taken)."""
        known = self.known.get(conversation_id) if plain else None
        early = None
        if known is not None and user_id in known.senders:
            del self.known[conversation_id]  # taken: a second send meanwhile waits its write
            early = EarlyRequest(self, known, content)
        try:
            if early is not None:
                # Its first step (the SDK builds and sends the request: ~2 ms of the
                # interpreter here) before the write goes to the store's thread, which
                # would otherwise take the interpreter from it in turns meanwhile.
                await asyncio.sleep(0)
            yield early
        except BaseException:
            if early is not None:
                early.abandon()
                self.on_early("dropped")
            raise

    def begin(self, conversation: Conversation, exchange: Exchange, files: list[FileRecord],
              omitted: list[dict], chats: list[ImportedChat] | None = None,
              early: EarlyRequest | None = None) -> LiveReply:
        """Start generating ``exchange.reply`` (with ``early``'s request if it was built
        from the history the write read)."""
        user = exchange.user
        known = early.known if early is not None else self.known.pop(conversation.id, None)
        senders = known.senders if known else frozenset()
        live = LiveReply(conversation, user, exchange.reply, files, omitted,
                         [*exchange.history,
                          HistoryTurn(user.id, user.role, user.status, user.content)],
                         chats=list(chats or ()), early=early,
                         senders=senders | {user.author_id} if user.author_id else senders)
        self.live[exchange.reply.id] = live
        # Numbered now, before anything of the reply's can be: the first delta is numbered
        # right behind it when the provider's text comes, without waiting for its answer.
        live.announcing = self._push("message:started", {
            "conversationId": conversation.id, "messageId": live.reply.id,
            "message": message_view(live.reply), "userMessage": message_view(live.user)},
            conversation.id)
        live.sender = asyncio.create_task(self._sender(live), name=f"deltas-{live.reply.id}")
        live.task = asyncio.create_task(self._run(live), name=f"reply-{live.reply.id}")
        return live

    def cancel_local(self, message_id: str, reason: str = "user") -> bool:
        live = self.live.get(message_id)
        if live is None:
            return False
        self._cancel(live, reason)
        return True

    def _cancel(self, live: LiveReply, reason: str) -> None:
        if live.cancel_reason is None:
            live.cancel_reason = reason
            if live.running and live.task is not None:
                live.task.cancel()
            # else _run, when it starts, finds the reason and ends the reply itself

    def snapshot(self, conversation_id: str) -> dict | None:
        """The live text of a reply generating here, for a viewer joining mid-stream."""
        for live in self.live.values():
            if live.conversation.id == conversation_id:
                return {"messageId": live.reply.id, "content": live.text, "index": live.index}
        return None

    # -- one reply ------------------------------------------------------------------------

    async def _run(self, live: LiveReply) -> None:
        mid = live.reply.id
        metadata: dict = {"provider": self.provider.name, "model": self.provider.model}
        error: dict | None = None
        status = "complete"
        live.running = True
        # message:started was numbered at ``begin`` (its command is written before this
        # task's first step: the pipe's writer was woken first); the sender delivers it,
        # then the deltas in order. The provider's request goes out now (or went out
        # already: an early one).
        sender = live.sender
        assert sender is not None
        early, live.early = live.early, None
        if early is not None:
            if live.cancel_reason is not None:  # cancelled before this started
                early.abandon()
                self.on_early("dropped")
                early = None
            elif early.turns == live.turns:
                self.on_early("kept")
            else:
                early.abandon()  # built from a history the write did not read
                self.on_early("rebuilt")
                early = None
        try:
            if live.cancel_reason is not None:
                raise asyncio.CancelledError
            if early is not None:
                final = await early.attach(live)
                metadata.update(early.metadata)
            else:
                request = await self.request(live.history, live.files, live.chats,
                                             live.omitted, metadata)
                final = await self.provider.reply(request,
                                                  lambda text: self.on_text(live, text))
            metadata.update(model=final.model, usage=final.usage, stopReason=final.stop_reason)
        except asyncio.CancelledError:
            reason = live.cancel_reason or "shutdown"
            if reason == "user":
                status = "cancelled"
                metadata["stopReason"] = "cancelled"
            else:
                status = "failed"
                error = {"code": "unavailable", "reason": reason,
                         "message": "the server stopped while generating this reply"
                         if reason == "shutdown" else "generation was stopped"}
        except ProviderError as exc:
            status, error = "failed", exc.to_dict()
        except Exception:
            log.exception("reply %s failed", mid)
            status, error = "failed", {"code": "internal", "reason": "internal",
                                       "message": "the reply failed on the server"}
        live.closing = True
        live.wake.set()
        await asyncio.gather(sender, return_exceptions=True)
        self.live.pop(mid, None)
        await self._finish(live, status, metadata, error)

    async def on_text(self, live: LiveReply, text: str) -> None:
        """The provider's text for ``live``, as it comes."""
        if not text:
            return
        live.pending.append(text)
        if live.index < 0:
            # The text the user is waiting for goes out from here, before the provider
            # parses anything more (the sender is idle until woken).
            await self._push_first(live)
            return
        live.wake.set()
        # A provider parsing a burst it already holds would keep the loop until the burst
        # ends: every SLICE_S it lets the sender (and everyone else) run. Yielding on every
        # piece instead costs a push per piece or two, and pushes are what a burst queues
        # behind.
        now = time.perf_counter()
        if now - live.slice_at >= SLICE_S:
            await asyncio.sleep(0)
            live.slice_at = time.perf_counter()

    async def _sender(self, live: LiveReply) -> None:
        """Push text as ``message:delta``, in order. Text that arrives while a push is in
        flight goes out together in the next one, so a burst from the provider never
        queues up behind per-push costs: latency stays about one push."""
        assert live.announcing is not None
        try:
            await live.announcing
        except Exception:
            log.exception("pushing message:started of %s failed", live.reply.id)
        while True:
            await live.wake.wait()
            live.wake.clear()
            await self._push_pending(live)
            if live.closing:
                return

    async def _push_first(self, live: LiveReply) -> None:
        """The first delta, pushed from the provider's own task as soon as it comes (the
        sender is idle until woken); numbered after ``message:started``, which was at
        ``begin``."""
        live.first_at = time.perf_counter()
        data = self._take_pending(live)
        await self._push_delta(live, data)
        self.on_first_delta(time.perf_counter() - live.started)

    async def _push_pending(self, live: LiveReply) -> None:
        while live.pending:
            await self._push_delta(live, self._take_pending(live))

    @staticmethod
    def _take_pending(live: LiveReply) -> dict:
        """The text received since the last push, as the next delta."""
        text = "".join(live.pending)
        live.pending.clear()
        live.index += 1
        live.parts.append(text)
        return {"conversationId": live.conversation.id, "messageId": live.reply.id,
                "index": live.index, "text": text}

    async def _push_delta(self, live: LiveReply, data: dict) -> None:
        try:
            await self._push("message:delta", data, live.conversation.id)
        except Exception:  # a broken push must not lose the reply's text
            log.exception("pushing a delta of %s failed", live.reply.id)

    async def request(self, history: Sequence[HistoryTurn], files: list[FileRecord],
                      chats: list[ImportedChat], omitted: list[dict],
                      metadata: dict) -> ChatRequest:
        """The provider request answering the last turn of ``history`` (the user's), with
        ``files`` and ``chats`` as context (``omitted``: left out already); what went into
        it is noted in ``metadata``."""
        s = self.settings
        question = history[-1].content if history else ""
        turns, dropped = fit_history(request_turns(history), s.chat_history_tokens)
        # Files and imported chats share the context budget, half each when both are there.
        share = s.chat_context_tokens // (2 if files and chats else 1)
        items, more = ([], []) if not files else await self.context.build(files, share)
        if chats:
            chat_items, chat_omitted = await self.context.build_chats(
                chats, question,
                s.chat_context_tokens - sum(i.tokens for i in items))
            items, more = [*items, *chat_items], [*more, *chat_omitted]
        omitted = [*omitted, *more]
        metadata["history"] = {"sent": len(turns), "dropped": dropped,
                               "budgetTokens": s.chat_history_tokens}
        metadata["context"] = {
            "budgetTokens": s.chat_context_tokens,
            "included": [{("chatId" if i.kind == "chat" else "fileId"): i.file_id,
                          "name": i.name, "kind": i.kind,
                          "tokens": i.tokens, "truncated": i.truncated,
                          **({"source": i.data["source"]} if "source" in i.data else {})}
                         for i in items],
            "omitted": omitted}
        return ChatRequest(history=turns, context=items, omitted=omitted,
                           max_tokens=s.chat_max_tokens)

    async def _finish(self, live: LiveReply, status: str, metadata: dict,
                      error: dict | None) -> None:
        cid, mid = live.conversation.id, live.reply.id
        now = time.perf_counter()
        metadata["durationMs"] = round((now - live.started) * 1000, 1)
        metadata["deltas"] = live.index + 1
        if live.first_at is not None:
            metadata["firstDeltaMs"] = round((live.first_at - live.started) * 1000, 1)
        if error is not None:
            metadata["error"] = error
            metadata.setdefault("stopReason", "error")
        try:
            message = await self.store.chat.finish_reply(mid, status=status, content=live.text,
                                                         metadata=metadata,
                                                         delta_index=live.index)
        except Exception:
            log.exception("could not store the end of reply %s", mid)
            return  # its lease lapses and the reaper reports it
        if message is None:
            return  # reaped, displaced or deleted meanwhile: someone else reported it
        self._remember(live, message)
        # The other instances' copies of this conversation's history are stale now: told
        # at the end, not before the first delta (until the reply ends, a send there is a
        # conflict anyway), and before message:done, which a next send may follow.
        with contextlib.suppress(Exception):
            await self.core.bus.publish("chat:exchange", {
                "conversationId": cid, "instance": self.settings.instance_id})
        if error is None:
            await self._push("message:done", {"conversationId": cid, "messageId": mid,
                                               "message": message_view(message)}, cid)
            if live.conversation.title is None and status == "complete":
                await self._title(live)
        else:
            await self._push("message:error", {
                "conversationId": cid, "messageId": mid, **error,
                "reply": message_view(message)}, cid)

    def _remember(self, live: LiveReply, reply: ChatMessage) -> None:
        """Keep what the next exchange's write in the conversation will read as its history
        (``early``), unless an exchange began meanwhile (ours: the write refused)."""
        cid = live.conversation.id
        if any(other.conversation.id == cid for other in self.live.values()):
            return
        turns = RecentTurns.of([*live.history, HistoryTurn(reply.id, reply.role, reply.status,
                                                           reply.content)], self.history_chars)
        self.known[cid] = KnownHistory(live.conversation.project_id, turns, live.senders)
        self.known.move_to_end(cid)
        while len(self.known) > KNOWN_HISTORIES:
            self.known.popitem(last=False)

    async def _title(self, live: LiveReply) -> None:
        fallback = live.files[0].name if live.files else "Conversation"
        title = make_title(live.user.content, fallback)
        updated = await self.store.chat.set_title(live.conversation.id, title, only_if_unset=True)
        if updated is not None:
            await push_conversation(self.core.delivery, "conversation:updated", updated)

    # -- background -----------------------------------------------------------------------

    async def _keeper(self) -> None:
        """Save live text twice a second; renew our claims four times a lease."""
        clock = self.clock
        renew_every = self.settings.chat_lease_s / 4
        last_renew = clock.monotonic()
        while True:
            await clock.sleep(FLUSH_S)
            try:
                for live in list(self.live.values()):
                    if live.index > live.saved:
                        index, text = live.index, live.text
                        await self.store.chat.save_progress(live.reply.id, text, index)
                        live.saved = index
                if clock.monotonic() - last_renew >= renew_every and self.live:
                    last_renew = clock.monotonic()
                    ids = list(self.live)
                    held = await self.store.chat.renew_claims(ids, self.lease_until())
                    for mid in set(ids) - held:
                        lost = self.live.get(mid)
                        if lost is not None and lost.task is not None and not lost.task.done():
                            log.warning("reply %s lost its claim; stopping it", mid)
                            self._cancel(lost, "lost")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat keeper failed")

    async def _reaper(self) -> None:
        interval = max(0.5, min(5.0, self.settings.chat_lease_s / 3))
        while True:
            await self.clock.sleep(interval)
            try:
                if not await self.leader.hold():
                    continue
                for message in await self.store.chat.fail_expired(self.clock.now(), LOST):
                    self.cancel_local(message.id, "lost")
                    await self.report_failed(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat reaper failed")

    async def report_failed(self, message: ChatMessage) -> None:
        error = message.metadata.get("error") or LOST
        await self._push("message:error", {
            "conversationId": message.conversation_id, "messageId": message.id, **error,
            "reply": message_view(message)}, message.conversation_id)
