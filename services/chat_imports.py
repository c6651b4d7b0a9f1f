"""Chat-history import as durable jobs (``services.jobs``): a chat export uploaded to a
project becomes chats of that project, searchable and exportable.

The parser (``ingest.chats``) runs in a child process (``ingest.chats.worker``) and streams
messages back in batches of ``MessageRow`` tuples; a worker thread hands each batch on as it
came (still pickled: the store's writer thread reads it) through the bounded hand-off, so
memory stays flat however long the export is.
Chats are written hidden and published together at the end (``ImportedChatRepo``), so a
failed, cancelled or taken-over import leaves nothing partial: a takeover restarts the
parse from the beginning after dropping the hidden chats of earlier attempts.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ingest.chats import worker
from ingest.chats.model import ChatFormatError, MessageRow
from services.container import Core
from services.jobs import Handoff, JobCancelled, JobEvents, JobRun, JobWorker
from store.base import ChatLine, FileRecord, ImportedChat
from store.ids import iso

log = logging.getLogger("services.chat_imports")
BATCH = 5000
PROGRESS_EVERY_S = 0.25  # at most 4 pushes a second
PROGRESS_CHECK = 500  # messages between two looks at the clock


def chat_view(c: ImportedChat) -> dict:
    return {"id": c.id, "projectId": c.project_id, "fileId": c.file_id, "name": c.name,
            "platform": c.platform,
            "participants": [{"name": p.name, "messages": p.messages} for p in c.participants],
            "messageCount": c.message_count, "systemCount": c.system_count,
            "firstTime": iso(c.first_time), "lastTime": iso(c.last_time),
            "importedBy": c.imported_by, "createdAt": iso(c.created_at)}


def line_view(m: ChatLine) -> dict:
    out: dict[str, object] = {
        "id": m.id, "chatId": m.chat_id, "seq": m.seq, "time": iso(m.time),
        "author": m.author, "text": m.text, "kind": m.kind,
        "attachments": list(m.attachments), "reactions": list(m.reactions),
        "edited": m.edited, "deleted": m.deleted}
    if m.author_id is not None:
        out["authorId"] = m.author_id
    if m.reply_to is not None:
        out["replyTo"] = m.reply_to
    if m.source_id is not None:
        out["sourceId"] = m.source_id
    return out


class ChatImportService(JobWorker):
    name = "chat-import"
    events = JobEvents(queued="chat:import:queued", progress="chat:import:progress",
                       failed="chat:import:failed", cancelled="chat:import:cancelled")
    input_errors = (ChatFormatError,)

    def __init__(self, core: Core):
        settings = core.settings
        super().__init__(core, core.store.chat_imports, slots=settings.ingest_concurrency,
                         lease_s=settings.ingest_lease_s)

    def attach(self) -> None:
        hooks = self.core.hooks
        hooks.file_deleted.append(self._file_deleted)
        hooks.project_deleted.append(self._project_deleted)

    async def _file_deleted(self, record: FileRecord) -> None:
        await self.forget(record.id)  # discards the file's chats (pushing chat:deleted)

    async def _project_deleted(self, project_id: str) -> None:
        await self.core.store.chats.delete_project_chats(project_id)
        await self.queue.delete_project_jobs(project_id)

    async def discard(self, file_id: str) -> None:
        """Every chat of the file: a new run, a cancel or a failure starts from nothing
        (importing a file again replaces its chats)."""
        removed = await self.core.store.chats.delete_file_chats(file_id)
        job = await self.queue.get_job(file_id)
        if job is not None:
            for chat_id in removed:
                await self.push(job.project_id, "chat:deleted", {"id": chat_id})

    async def work(self, run: JobRun) -> None:
        job, store, clock = run.job, self.core.store, self.core.clock
        record = await store.files.get_file(job.file_id)
        if record is None:
            await self.queue.delete_job(job.file_id)
            return
        await self.core.store.chats.discard_import(job.file_id)  # an earlier attempt's
        params = job.params
        handoff = Handoff(run, JobCancelled)
        loop = asyncio.get_running_loop()
        started = clock.monotonic()
        counts = {"messages": 0, "warnings": 0}

        def report(parsed: int, position: int, size: int) -> None:  # on the loop
            took = max(clock.monotonic() - started, 1e-6)
            done = position / size if size else 0.0
            self.progress(run, {
                "messages": parsed, "percent": round(100 * done, 1),
                "rate": round(parsed / took, 1),
                "etaSeconds": round(took * (1 - done) / done, 1) if done > 0 else None})

        def parse(path: Path) -> None:  # worker thread: reads what the child parses
            spawn = multiprocessing.get_context("spawn")
            receiving, sending = spawn.Pipe(duplex=False)
            child = spawn.Process(
                target=worker.parse_to, name=f"chat-import-{job.file_id}", daemon=True,
                args=(sending, str(path), record.name, params.get("platform"),
                      params.get("timezone") or "UTC", BATCH, PROGRESS_CHECK))
            child.start()
            sending.close()
            last = -PROGRESS_EVERY_S  # the first progress is reported at once
            chat_id, seq = "", 1
            try:
                while True:
                    if run.cancel.is_set():
                        raise JobCancelled()
                    if not receiving.poll(0.2):
                        if not child.is_alive() and not receiving.poll():
                            raise RuntimeError(f"the parser stopped ({child.exitcode})")
                        continue
                    message: tuple[Any, ...] = receiving.recv()
                    kind, body = message[0], message[1:]
                    if kind == "chat":
                        chat_id = handoff.call(partial(
                            store.chats.begin_chat, project_id=job.project_id,
                            file_id=job.file_id, attempt=job.attempt, name=body[0],
                            platform=body[1], imported_by=job.requested_by))
                        seq = 1
                        continue
                    if kind == "lines":
                        count, position, size = body
                        rows = worker.receive_rows(receiving, count)
                        handoff.send(_adder(store, chat_id, job.attempt, seq, rows))
                        seq += len(rows)
                        counts["messages"] += len(rows)
                        parsed = counts["messages"]
                    elif kind == "parsed":
                        parsed, position, size = counts["messages"] + body[0], body[1], body[2]
                    elif kind == "done":
                        counts["warnings"] = body[0]
                        return
                    elif kind == "failed":
                        raise ChatFormatError(*body)
                    else:
                        raise RuntimeError(f"the parser failed: {body[0]}")
                    now = clock.monotonic()  # progress is paced by the clock, ≤ 4/s
                    if now - last >= PROGRESS_EVERY_S:
                        last = now
                        loop.call_soon_threadsafe(report, parsed, position, size)
            finally:
                receiving.close()
                if child.is_alive():
                    child.kill()
                child.join()

        async with self.core.blobs.local_copy(record.storage_key,
                                              _suffix(record.name)) as path:
            try:
                await asyncio.to_thread(parse, Path(path))
            finally:
                await handoff.drain()
        if run.cancel.is_set():
            raise JobCancelled()
        if counts["messages"] == 0:
            raise ChatFormatError("empty", f"{record.name} holds no messages")
        chats = await store.chats.publish_chats(job.file_id, job.attempt)
        took = max(clock.monotonic() - started, 1e-6)
        final = {"messages": counts["messages"], "percent": 100.0,
                 "rate": round(counts["messages"] / took, 1), "etaSeconds": 0,
                 "warnings": counts["warnings"], "chats": len(chats)}
        if await self.queue.finish_job(job.file_id, attempt=job.attempt, state="done",
                                       progress=final):
            await self.push(job.project_id, "chat:import:progress", {"fileId": job.file_id,
                                                                     **final})
            await self.push(job.project_id, "chat:imported",
                            {"fileId": job.file_id, "chats": [chat_view(c) for c in chats]})
        else:  # the job was cancelled or taken over meanwhile: its chats go
            await self.discard(job.file_id)


def _adder(store, chat_id: str, attempt: int, seq: int, batch: Sequence[MessageRow]):
    return lambda: store.chats.add_lines(chat_id, attempt, seq, batch)


def _suffix(name: str) -> str:
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
