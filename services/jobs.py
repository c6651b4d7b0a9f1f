"""Durable jobs on a per-instance worker pool: claims, leases, takeover, cancel, progress.

A job per file lives in the store (a ``JobQueue``: capture ingests, chat imports). Every
instance runs one worker per kind: it claims queued jobs while it has free slots, renews
the lease of each job it runs, and takes over a running job whose lease lapsed (its
instance died). Every write of a run carries its ``attempt`` and the store refuses a stale
one. A cancel reaches the instance running the job through the bus; a shutdown hands the
job back to the queue so the next instance to claim it resumes or restarts it.

A kind says what one run does (``work``), how to drop what a run stored (``discard``), and
which pushes tell the project room (``JobEvents``).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from services.container import Core
from store.base import Job, JobQueue
from store.ids import iso

log = logging.getLogger("services.jobs")
R = TypeVar("R")
POLL_S = 2.0


@dataclass(frozen=True)
class JobEvents:
    queued: str
    progress: str
    failed: str
    cancelled: str


class JobCancelled(Exception):
    """The run stopped because ``run.cancel`` was set (``run.why`` says by whom)."""


def job_view(job: Job, position: int | None = None) -> dict:
    return {"fileId": job.file_id, "projectId": job.project_id, "state": job.state,
            "attempt": job.attempt, "progress": job.progress, "error": job.error,
            "position": position, "owner": job.owner, "queuedAt": iso(job.created_at),
            "startedAt": iso(job.started_at), "finishedAt": iso(job.finished_at)}


class JobRun:
    """One running job on this instance; ``cancel`` is a threading.Event because the work
    runs in worker threads that check it."""

    def __init__(self, job: Job):
        self.job = job
        self.cancel = threading.Event()
        self.why = ""  # cancelled | lost | shutdown
        self.progress: dict = {}
        self.task: asyncio.Task | None = None


class Handoff:
    """Writes from a job's worker thread to the event loop, at most ``inflight`` ahead (the
    parser waits instead of piling batches up in memory). A write that returns False (the
    run lost its job) or raises stops the run: the thread's next ``send`` raises
    ``stopped``, and ``drain`` re-raises the write's error on the loop."""

    def __init__(self, run: JobRun, stopped: type[BaseException], inflight: int = 2):
        self.run = run
        self.stopped = stopped
        self.loop = asyncio.get_running_loop()
        self.slots = threading.Semaphore(inflight)
        self.failure: list[BaseException] = []
        self.pending: set = set()

    async def _write(self, write: Callable[[], Awaitable[bool]]) -> None:
        try:
            if not await write():
                self.run.why = self.run.why or "lost"
                self.run.cancel.set()
        except BaseException as exc:  # handed to the worker thread, which stops
            self.failure.append(exc)
            self.run.cancel.set()
        finally:
            self.slots.release()

    def send(self, write: Callable[[], Awaitable[bool]]) -> None:
        """From the worker thread: run ``write()`` on the loop, without waiting for it."""
        self.slots.acquire()
        if self.failure or self.run.cancel.is_set():
            self.slots.release()
            raise self.stopped()
        fut = asyncio.run_coroutine_threadsafe(self._write(write), self.loop)
        self.pending.add(fut)
        fut.add_done_callback(self.pending.discard)

    def call(self, fn: Callable[[], Coroutine[Any, Any, R]]) -> R:
        """From the worker thread: run ``fn()`` on the loop and wait for its result."""
        if self.failure or self.run.cancel.is_set():
            raise self.stopped()
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result()

    async def drain(self) -> None:
        """On the loop, once the thread is done: wait for the writes still going; the
        caller then checks ``run.cancel`` (a lost job stops there too)."""
        for fut in list(self.pending):
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(fut)
        if self.failure:  # a store error stopped the pass: that is the error
            raise self.failure[0]


class JobWorker(ABC):
    name: ClassVar[str]  # names the bus channel, tasks and logs
    events: ClassVar[JobEvents]
    # Exceptions the work raises when it stopped on ``run.cancel``.
    cancelled_errors: ClassVar[tuple[type[BaseException], ...]] = (JobCancelled,)
    # Bad input (each has ``reason`` and ``message``): the job fails with ``bad_request``.
    input_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, core: Core, queue: JobQueue, *, slots: int, lease_s: float):
        self.core = core
        self.queue = queue
        self.instance = core.settings.instance_id
        self.slots = max(1, slots)
        self.lease_s = max(1.0, lease_s)
        self.running: dict[str, JobRun] = {}
        self.wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None

    # -- what a kind provides ---------------------------------------------------------------

    @abstractmethod
    async def work(self, run: JobRun) -> None:
        """Run the job to its end (``finish_job(state="done")`` and the final pushes)."""

    @abstractmethod
    async def discard(self, file_id: str) -> None:
        """Drop what runs of this file's job stored (a cancel, a failure, a fresh run)."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.core.bus.on(f"{self.name}:cancel", self._on_cancel_message)
        self._loop_task = asyncio.create_task(self._claim_loop(), name=f"{self.name}-claims")

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(BaseException):
                await self._loop_task
        for run in list(self.running.values()):
            run.why = "shutdown"
            run.cancel.set()
        tasks = [r.task for r in self.running.values() if r.task]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- queue ----------------------------------------------------------------------------

    async def enqueue(self, file_id: str, project_id: str, user_id: str,
                      params: dict | None = None) -> dict:
        before = await self.queue.get_job(file_id)
        if before is not None and before.state in ("done", "failed", "cancelled"):
            await self.discard(file_id)  # a new run starts from nothing, not a resume
        job = await self.queue.queue_job(file_id=file_id, project_id=project_id,
                                         requested_by=user_id, params=params)
        self.wake.set()
        position = await self.queue.queue_position(file_id)
        if job.state == "queued":
            await self.push(project_id, self.events.queued,
                            {"fileId": file_id, "position": position})
        return job_view(job, position)

    async def view(self, file_id: str) -> dict | None:
        job = await self.queue.get_job(file_id)
        if job is None:
            return None
        return job_view(job, await self.queue.queue_position(file_id))

    async def cancel(self, job: Job) -> None:
        await self.core.bus.publish(f"{self.name}:cancel", {"fileId": job.file_id})
        await self.discard(job.file_id)
        await self.push(job.project_id, self.events.cancelled, {"fileId": job.file_id})

    async def forget(self, file_id: str) -> None:
        """The file is gone: stop its job and remove everything derived from it."""
        if await self.queue.cancel_job(file_id) is not None:
            await self.core.bus.publish(f"{self.name}:cancel", {"fileId": file_id})
        await self.discard(file_id)
        await self.queue.delete_job(file_id)

    async def _on_cancel_message(self, data: dict) -> None:
        run = self.running.get(str(data.get("fileId")))
        if run is not None:
            run.why = "cancelled"
            run.cancel.set()

    async def _claim_loop(self) -> None:
        while True:
            try:
                while len(self.running) < self.slots:
                    job = await self.queue.claim_job(instance=self.instance,
                                                     now=self.core.clock.time(),
                                                     lease_s=self.lease_s)
                    if job is None:
                        break
                    run = JobRun(job)
                    self.running[job.file_id] = run
                    run.task = asyncio.create_task(self._run(run),
                                                   name=f"{self.name}-{job.file_id}")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming %s jobs failed", self.name)
            await self._idle(min(POLL_S, self.lease_s / 3))
            self.wake.clear()

    async def _idle(self, seconds: float) -> None:
        """Until ``wake`` is set or ``seconds`` pass on the clock (a lapsed lease elsewhere is
        only seen by polling)."""
        if self.wake.is_set():
            return
        waits = [asyncio.ensure_future(self.wake.wait()),
                 asyncio.ensure_future(self.core.clock.sleep(seconds))]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # -- one run --------------------------------------------------------------------------

    async def _run(self, run: JobRun) -> None:
        job = run.job
        renew = asyncio.create_task(self._renew_loop(run))
        try:
            await self.work(run)
        except self.cancelled_errors:
            if run.why == "cancelled":
                await self.discard(job.file_id)
            elif run.why == "shutdown":  # hand it back; the next instance to claim resumes it
                await self.queue.finish_job(job.file_id, attempt=job.attempt, state="queued")
        except self.input_errors as exc:
            await self._fail(job, "bad_request", getattr(exc, "reason", "bad_input"),
                             getattr(exc, "message", str(exc)), getattr(exc, "details", None))
        except Exception as exc:  # the job fails; the worker and the instance go on
            log.exception("%s job of %s failed", self.name, job.file_id)
            await self._fail(job, "internal", "internal",
                             f"{self.name} failed: {exc.__class__.__name__}")
        finally:
            renew.cancel()
            with contextlib.suppress(BaseException):
                await renew
            self.running.pop(job.file_id, None)
            self.wake.set()

    async def _renew_loop(self, run: JobRun) -> None:
        job = run.job
        while True:
            await self.core.clock.sleep(self.lease_s / 3)
            try:
                ours = await self.queue.renew_job(
                    job.file_id, attempt=job.attempt,
                    lease_until=self.core.clock.time() + self.lease_s,
                    progress=run.progress or None)
            except Exception:
                log.exception("renewing the lease of %s failed", job.file_id)
                continue
            if not ours:
                current = await self.queue.get_job(job.file_id)
                run.why = "cancelled" if current is None or current.state == "cancelled" \
                    else "lost"
                run.cancel.set()
                return

    async def _fail(self, job: Job, code: str, reason: str, message: str,
                    details: dict | None = None) -> None:
        await self.discard(job.file_id)
        error = {"code": code, "reason": reason, "message": message}
        if await self.queue.finish_job(job.file_id, attempt=job.attempt, state="failed",
                                       error=error):
            push: dict[str, object] = {"fileId": job.file_id, **error}
            if details:
                push["details"] = details
            await self.push(job.project_id, self.events.failed, push)

    def progress(self, run: JobRun, progress: dict) -> None:
        """Record and push a run's progress (call on the loop)."""
        run.progress = progress
        asyncio.ensure_future(self.push(run.job.project_id, self.events.progress,
                                        {"fileId": run.job.file_id, **progress}))

    async def push(self, project_id: str, event: str, data: dict) -> None:
        try:
            await self.core.gateway.push_project(project_id, event, data)
        except Exception:  # a push that fails must not fail the job
            log.exception("push %s failed", event)
