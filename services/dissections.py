"""sharkd sessions of one instance: one process per hot capture, a bounded LRU of them, and one
scratch process for small cut-out captures.

A session loads its whole capture once (Wireshark's first pass: about as long as one tshark run
over the file, ~1.3 s of CPU for 52 000 frames here) and then answers any frame in about a
millisecond with the reassembled view Wireshark shows. It costs one process: ~64 MB for
sharkd's own tables plus, measured, ~0.85 KB per frame (125 MB for 150 000 frames) and the
reassembled data it keeps. Hence the caps: at most ``sessions`` processes (least recently used
closed first), none idle longer than ``idle_s``, and a caller keeps larger captures out of them
(``PacketDetail`` sends those to stream context). Requests to one session run one at a time in
arrival order (sharkd answers in order anyway); at most ``queue`` wait, more are refused.

A request finding its session still loading waits ``load_wait_s`` and then gets None (its
caller answers from stream context instead and the load goes on for the next request). A
process that dies under a request is restarted (and its capture reloaded) once for it; a second
death answers ``unavailable``. Every process is a child reading its stdin: closing kills it,
and one whose server died exits at end of input.

The scratch process loads small captures cut out of a large one (``cut_frame``): one load of
a few hundred frames takes ~70 ms, mostly sharkd resetting its dissectors. sharkd keeps ~11 MB
of each capture it loaded, so after ``SCRATCH_LOADS`` a spare started meanwhile takes over. A
spare also starts when a capture's session starts loading, for the answers from stream context
while it loads.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

from ingest.pcap.frame_tree import FrameView, frame_view
from ingest.pcap.sharkd import SHARKD, AnswerTooLarge, Sharkd, SharkdError, SharkdGone
from services.clock import Clock, Timer
from store.errors import EventError

log = logging.getLogger("server.pcap")
Key = tuple[str, int]  # (file id, ingest attempt)
# sharkd 4.0 keeps ~11 MB of every capture it loaded: a fresh scratch process takes over after
# this many loads (started ahead, so no request waits for it).
SCRATCH_LOADS = 12


class Session:
    def __init__(self, key: Key, path: str):
        self.key = key
        self.path = path
        self.shark: Sharkd | None = None
        self.loading: asyncio.Task | None = None
        self.frames = 0
        self.loads = 0  # captures loaded by this process (the scratch loads many)
        self.waiting = 0
        self.lock = asyncio.Lock()
        self.timer: Timer | None = None
        self.closed = False

    @property
    def ready(self) -> bool:
        return (self.loading is not None and self.loading.done()
                and not self.loading.cancelled() and self.loading.exception() is None)


class Dissections:
    def __init__(self, clock: Clock, workdir: Path, *, sessions: int = 3, idle_s: float = 300.0,
                 queue: int = 16, load_wait_s: float = 1.0, binary: str = SHARKD,
                 frame_timeout_s: float = 30.0, load_timeout_s: float = 600.0):
        self.clock = clock
        self.workdir = workdir
        self.max_sessions = sessions
        self.idle_s = idle_s
        self.queue = queue
        self.load_wait_s = load_wait_s
        self.binary = binary
        self.frame_timeout_s = frame_timeout_s
        self.load_timeout_s = load_timeout_s
        self.sessions: OrderedDict[Key, Session] = OrderedDict()
        self.scratch = Session(("", 0), "")
        self._spare: asyncio.Task[Sharkd] | None = None
        self._closing: set[asyncio.Task] = set()
        self._stopped = False

    # -- a capture's session ----------------------------------------------------------------

    async def frame(self, key: Key, path: str, number: int) -> FrameView | None:
        """Frame ``number`` from the capture's session (opened, and its capture loaded, if
        needed); None while the load outlasts ``load_wait_s``."""
        session = await self._session(key, path)
        with self._waiting(session):
            loading = session.loading
            if not session.ready:
                if loading is None:
                    raise _closed()
                # asyncio.wait neither cancels the load nor raises what ended it
                done, _ = await asyncio.wait({loading}, timeout=self.load_wait_s)
                if not done:
                    return None
                if loading.cancelled():
                    raise _closed()
                failure = loading.exception()
                if failure is not None:
                    await self._close(session)
                    raise EventError("unavailable", f"the capture could not be opened for "
                                     f"dissection: {failure or 'timed out'}")
            async with session.lock:
                result = await self._ask(session, number, self._reload)
        return await asyncio.to_thread(frame_view, result)

    async def _session(self, key: Key, path: str) -> Session:
        if self._stopped:
            raise EventError("unavailable", "the server is shutting down")
        session = self.sessions.get(key)
        if session is not None:
            self.sessions.move_to_end(key)
            return session
        for stale in [s for k, s in self.sessions.items() if k[0] == key[0]]:
            await self._close(stale)  # an earlier ingest of the same file
        while self.sessions and len(self.sessions) >= self.max_sessions:
            await self._close(next(iter(self.sessions.values())))
        session = Session(key, path)
        self.sessions[key] = session
        if not (self.scratch.shark is not None and self.scratch.shark.alive):
            self._warm_spare()  # for stream-context answers while this loads
        session.loading = asyncio.create_task(self._load(session), name=f"sharkd-load-{key[0]}")
        session.loading.add_done_callback(_retrieve)
        return session

    async def _load(self, session: Session) -> None:
        shark = Sharkd(self.binary)
        session.shark = shark
        try:
            await shark.start()
            status = await asyncio.wait_for(shark.load(session.path), self.load_timeout_s)
        except BaseException:
            await shark.close()
            raise
        session.frames = int(status.get("frames", 0))
        log.info("sharkd session for %s: %d frames loaded (pid %s)", session.key[0],
                 session.frames, shark.pid)

    async def _reload(self, session: Session) -> None:
        if session.shark is not None:
            await session.shark.close()
        await self._load(session)

    # -- the scratch process ------------------------------------------------------------------

    async def cut_frame(self, capture: bytes, number: int) -> FrameView:
        """Frame ``number`` of a small capture (the bytes of a pcap or pcapng file)."""
        if self._stopped:
            raise EventError("unavailable", "the server is shutting down")
        session = self.scratch
        session.closed = False
        with self._waiting(session):
            fd, name = tempfile.mkstemp(suffix=".pcapng", prefix="cut-", dir=self.workdir)
            try:
                await asyncio.to_thread(_write, fd, capture)
                async with session.lock:
                    session.path = name
                    await self._load_cut(session)
                    result = await self._ask(session, number, self._restart_scratch)
            finally:
                os.unlink(name)
        return await asyncio.to_thread(frame_view, result)

    async def _load_cut(self, session: Session) -> None:
        try:
            await self._take_spare(session)
            if session.shark is not None and session.shark.alive:
                try:
                    await asyncio.wait_for(session.shark.load(session.path),
                                           self.load_timeout_s)
                    session.loads += 1
                    if session.loads >= SCRATCH_LOADS:
                        self._warm_spare()
                    return
                except (SharkdGone, TimeoutError) as exc:
                    log.warning("the scratch sharkd died (%s); restarting it once", exc)
            await self._restart_scratch(session)
        except (SharkdGone, TimeoutError, OSError) as exc:
            await self._close(session)
            raise EventError("unavailable", f"the dissector failed: {exc}") from None
        except SharkdError as exc:
            raise EventError("unavailable", f"the dissector refused the capture: "
                             f"{exc.message}") from None

    async def _restart_scratch(self, session: Session) -> None:
        if session.shark is not None:
            await session.shark.close()
        session.shark = Sharkd(self.binary)
        session.loads = 0
        await session.shark.start()
        await asyncio.wait_for(session.shark.load(session.path), self.load_timeout_s)
        session.loads = 1

    def _warm_spare(self) -> None:
        """Start a scratch process ahead of need (sharkd takes ~0.4 s to start)."""
        if self._spare is not None or self._stopped:
            return

        async def start() -> Sharkd:
            shark = Sharkd(self.binary)
            try:
                await shark.start()
            except BaseException:
                await shark.close()
                raise
            return shark

        self._spare = asyncio.create_task(start(), name="sharkd-spare")
        self._spare.add_done_callback(_retrieve)

    async def _take_spare(self, session: Session) -> None:
        """Put the spare in the scratch's place once it is ready (at once if the scratch is
        gone, or has loaded twice its share of captures)."""
        spare = self._spare
        if spare is None:
            return
        gone = session.shark is None or not session.shark.alive
        if not (spare.done() or gone or session.loads >= 2 * SCRATCH_LOADS):
            return
        self._spare = None
        try:
            fresh = await spare
        except (SharkdGone, OSError, asyncio.CancelledError):
            return
        old, session.shark, session.loads = session.shark, fresh, 0
        if old is not None:
            await old.close()

    async def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is None:
            return
        spare.cancel()
        with contextlib.suppress(BaseException):
            await (await spare).close()

    # -- one request ----------------------------------------------------------------------

    async def _ask(self, session: Session, number: int, reopen) -> dict:
        """sharkd's ``frame`` answer. A process that dies or hangs under the request is
        replaced once (``reopen`` starts one with the session's capture loaded)."""
        for attempt in (1, 2):
            try:
                if session.shark is None:
                    raise SharkdGone("no process")
                return await asyncio.wait_for(session.shark.frame(number), self.frame_timeout_s)
            except (SharkdGone, TimeoutError) as exc:
                why = str(exc) or "timed out"
                if attempt == 2 or session.closed:
                    await self._close(session)
                    raise EventError("unavailable", f"the dissector stopped while reading this "
                                     f"frame ({why})") from None
                log.warning("sharkd for %s died (%s); restarting it once",
                            session.key[0] or "cut-out captures", why)
                try:
                    await reopen(session)
                except (SharkdGone, SharkdError, TimeoutError, OSError) as again:
                    await self._close(session)
                    raise EventError("unavailable", f"the dissector could not be restarted: "
                                     f"{again}") from None
            except SharkdError as exc:
                raise EventError("unavailable", f"the dissector answered: {exc.message}",
                                 {"code": exc.code}) from None
            except AnswerTooLarge as exc:
                raise EventError("too_large", str(exc)) from None
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _waiting(self, session: Session):
        if session.waiting >= self.queue:
            raise EventError("unavailable", "too many dissections are waiting for this capture; "
                             "try again shortly", {"reason": "busy", "waiting": session.waiting})
        session.waiting += 1
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        try:
            yield
        finally:
            session.waiting -= 1
            if session.waiting == 0 and not session.closed and not self._stopped:
                session.timer = self.clock.call_later(self.idle_s, self._idle, session)

    # -- closing --------------------------------------------------------------------------

    def _idle(self, session: Session) -> None:
        if session.waiting == 0 and not session.closed:
            task = asyncio.ensure_future(self._close(session))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close(self, session: Session) -> None:
        session.closed = True
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        loading, session.loading = session.loading, None
        if loading is not None and not loading.done():
            loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
        if session is self.scratch:
            await self._drop_spare()
        shark, session.shark = session.shark, None
        if shark is not None:
            if session.key[0]:
                log.info("sharkd session for %s closed (pid %s)", session.key[0], shark.pid)
            await shark.close()

    async def close_file(self, file_id: str) -> None:
        """The capture was deleted or is ingested anew: close its sessions."""
        for session in [s for k, s in self.sessions.items() if k[0] == file_id]:
            await self._close(session)

    async def stop(self) -> None:
        self._stopped = True
        for session in [*self.sessions.values(), self.scratch]:
            await self._close(session)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def pids(self) -> dict[str, int | None]:
        """The process of each open session (file id → pid; ``""`` is the scratch)."""
        out = {k[0]: (s.shark.pid if s.shark else None) for k, s in self.sessions.items()}
        if self.scratch.shark is not None and self.scratch.shark.alive:
            out[""] = self.scratch.shark.pid
        return out


def _write(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _closed() -> EventError:
    return EventError("unavailable", "the capture's dissection session was closed meanwhile "
                      "(to make room, or its capture changed); ask again", {"reason": "closed"})


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # read here so asyncio does not log it: the waiters report it
