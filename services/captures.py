"""Capture ingest as durable jobs: a per-instance worker pool, leases, progress pushes.

A job record per capture file lives in the store (``PcapRepo``). Every instance runs one
``PcapService``: it claims queued jobs while it has free slots (INGEST_CONCURRENCY), renews
the lease of each job it runs, and takes over a running job whose lease lapsed (its
instance died). A takeover re-runs tshark from the start and inserts only frames past the
last one stored (frame numbers are deterministic), so the result equals an uninterrupted
run. Every write of a run carries its ``attempt`` and the store refuses a stale one.

tshark and the parsing run in a worker thread (``ingest.pcap.run``); batches come back to
the event loop through a bounded hand-off, at most ``INFLIGHT`` inserts ahead.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import shutil
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from ingest.pcap.dissect import Dissector
from ingest.pcap.flows import KINDS, endpoints
from ingest.pcap.run import Cancelled, CaptureError, IngestRun, decompress_if_gzip
from services.container import Core
from services.quotas import spend_guest_quota
from store.base import FileRecord, Job
from store.errors import EventError
from store.ids import iso

log = logging.getLogger("server.pcap")
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")
CAPTURE_MIMES = ("application/vnd.tcpdump.pcap", "application/x-pcapng")
INFLIGHT = 2
CACHED_CAPTURES = 8
STALE_WORK_S = 6 * 3600
POLL_S = 2.0
LINK_NAMES = {0: "null", 1: "ether", 101: "rawip", 12: "rawip", 14: "rawip", 105: "ieee-802-11",
              113: "linux-sll", 127: "ieee-802-11-radiotap", 228: "rawip4", 229: "rawip6",
              239: "nflog", 276: "linux-sll2", 9: "ppp", 108: "loop"}


def is_capture(name: str, mime: str) -> bool:
    return mime in CAPTURE_MIMES or name.lower().endswith(CAPTURE_SUFFIXES)


def job_view(job: Job, position: int | None = None) -> dict:
    return {"fileId": job.file_id, "projectId": job.project_id, "state": job.state,
            "attempt": job.attempt, "progress": job.progress, "error": job.error,
            "position": position, "owner": job.owner, "queuedAt": iso(job.created_at),
            "startedAt": iso(job.started_at), "finishedAt": iso(job.finished_at)}


class _Run:
    """One running ingest on this instance."""

    def __init__(self, job: Job):
        self.job = job
        self.cancel = threading.Event()
        self.why = ""  # cancelled | lost | shutdown
        self.progress: dict = {}
        self.task: asyncio.Task | None = None


class PcapService:
    def __init__(self, core: Core):
        self.core = core
        settings = core.settings
        self.instance = settings.instance_id
        self.slots = max(1, settings.ingest_concurrency)
        self.lease_s = max(1.0, settings.ingest_lease_s)
        self.running: dict[str, _Run] = {}
        self.wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self.dissector = Dissector()
        self.cache: OrderedDict = OrderedDict()  # (fileId, attempt, name) -> stats document
        self.cache_size = 64
        self.dissections: OrderedDict = OrderedDict()  # (fileId, attempt, number) -> ack
        self.workdir = Path(settings.data_dir) / "pcap-work" / _safe(self.instance)
        self._cache_lock = asyncio.Lock()

    @property
    def store(self):
        return self.core.store.pcap

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_sweep, self.workdir.parent, self.core.clock.time() - STALE_WORK_S)
        self.core.bus.on("pcap:cancel", self._on_cancel_message)
        self._loop_task = asyncio.create_task(self._claim_loop(), name="pcap-claims")

    def attach(self) -> None:
        """React to uploads, deletions and project deletions (every instance registers)."""
        hooks = self.core.hooks
        hooks.file_added.append(self._file_added)
        hooks.file_deleted.append(lambda record: self.forget(record.id))
        hooks.project_deleted.append(self._project_deleted)

    async def _file_added(self, record: FileRecord) -> None:
        if not is_capture(record.name, record.mime):
            return
        store = self.core.store
        uploader = await store.users.get_user(record.uploader_id)
        if uploader is not None and uploader.is_guest:
            try:  # a guest's upload spends one of their imports; at zero it stays a file
                await spend_guest_quota(store, uploader.id, "remaining_imports")
            except EventError as exc:
                await self.core.gateway.sio.emit("pcap:failed", {
                    "fileId": record.id, "code": exc.code, "reason": "guest_limit",
                    "message": exc.message}, to=f"project:{record.project_id}")
                return
        await self.enqueue(record.id, record.project_id, record.uploader_id)

    async def _project_deleted(self, project_id: str) -> None:
        for file_id in await self.store.delete_project_jobs(project_id):
            await self.core.blobs.delete(derived_key(file_id))

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
        await self.dissector.close()

    # -- queue ----------------------------------------------------------------------------

    async def enqueue(self, file_id: str, project_id: str, user_id: str) -> dict:
        before = await self.store.get_job(file_id)
        if before is not None and before.state in ("done", "failed", "cancelled"):
            await self._discard(file_id)  # a new run starts from nothing, not a resume
        job = await self.store.queue_job(file_id=file_id, project_id=project_id,
                                         requested_by=user_id)
        self.wake.set()
        position = await self.store.queue_position(file_id)
        view = job_view(job, position)
        if job.state == "queued":
            await self._push(project_id, "pcap:queued", {"fileId": file_id, "position": position})
        return view

    async def view(self, file_id: str) -> dict | None:
        job = await self.store.get_job(file_id)
        if job is None:
            return None
        return job_view(job, await self.store.queue_position(file_id))

    async def cancel(self, job: Job) -> None:
        await self.core.bus.publish("pcap:cancel", {"fileId": job.file_id})
        await self._discard(job.file_id)
        await self._push(job.project_id, "pcap:cancelled", {"fileId": job.file_id})

    async def forget(self, file_id: str) -> None:
        """The file is gone: stop its ingest and remove everything derived from it."""
        job = await self.store.cancel_job(file_id)
        if job is not None:
            await self.core.bus.publish("pcap:cancel", {"fileId": file_id})
        await self.store.delete_job(file_id)
        await self.core.blobs.delete(derived_key(file_id))

    async def _on_cancel_message(self, data: dict) -> None:
        run = self.running.get(str(data.get("fileId")))
        if run is not None:
            run.why = "cancelled"
            run.cancel.set()

    async def _discard(self, file_id: str) -> None:
        await self.store.delete_packets(file_id)

    async def _claim_loop(self) -> None:
        while True:
            try:
                while len(self.running) < self.slots:
                    job = await self.store.claim_job(instance=self.instance,
                                                     now=self.core.clock.time(),
                                                     lease_s=self.lease_s)
                    if job is None:
                        break
                    run = _Run(job)
                    self.running[job.file_id] = run
                    run.task = asyncio.create_task(self._run(run), name=f"pcap-{job.file_id}")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming capture jobs failed")
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

    # -- one ingest -----------------------------------------------------------------------

    async def _run(self, run: _Run) -> None:
        job = run.job
        renew = asyncio.create_task(self._renew_loop(run))
        try:
            await self._ingest(run)
        except Cancelled:
            if run.why == "cancelled":
                await self._discard(job.file_id)
            elif run.why == "shutdown":  # hand it back; the next instance to claim resumes it
                await self.store.finish_job(job.file_id, attempt=job.attempt, state="queued")
        except CaptureError as exc:
            await self._fail(job, "bad_request", exc.reason, exc.message)
        except Exception as exc:
            log.exception("ingest of %s failed", job.file_id)
            await self._fail(job, "internal", "internal",
                             f"ingest failed: {exc.__class__.__name__}")
        finally:
            renew.cancel()
            with contextlib.suppress(BaseException):
                await renew
            self.running.pop(job.file_id, None)
            self.wake.set()

    async def _renew_loop(self, run: _Run) -> None:
        job = run.job
        while True:
            await self.core.clock.sleep(self.lease_s / 3)
            try:
                ours = await self.store.renew_job(job.file_id, attempt=job.attempt,
                                                  lease_until=self.core.clock.time()
                                                  + self.lease_s,
                                                  progress=run.progress or None)
            except Exception:
                log.exception("renewing the lease of %s failed", job.file_id)
                continue
            if not ours:
                current = await self.store.get_job(job.file_id)
                run.why = "cancelled" if current is None or current.state == "cancelled" \
                    else "lost"
                run.cancel.set()
                return

    async def _fail(self, job: Job, code: str, reason: str, message: str) -> None:
        await self._discard(job.file_id)
        error = {"code": code, "reason": reason, "message": message}
        if await self.store.finish_job(job.file_id, attempt=job.attempt, state="failed",
                                       error=error):
            await self._push(job.project_id, "pcap:failed",
                             {"fileId": job.file_id, "code": code, "reason": reason,
                              "message": message})

    async def _ingest(self, run: _Run) -> None:
        job = run.job
        record = await self.core.store.files.get_file(job.file_id)
        if record is None:
            await self.store.delete_job(job.file_id)
            return
        resume = await self.store.last_packet_number(job.file_id)
        loop = asyncio.get_running_loop()
        slots = threading.Semaphore(INFLIGHT)
        failure: list[BaseException] = []
        pending: set = set()

        async def insert(rows):
            try:
                ok = await self.store.add_packets(job.file_id, job.attempt, rows)
                if not ok:
                    run.why = run.why or "lost"
                    run.cancel.set()
            except BaseException as exc:  # handed to the worker thread, which stops
                failure.append(exc)
                run.cancel.set()
            finally:
                slots.release()

        def on_batch(rows):  # worker thread
            slots.acquire()
            if failure or run.cancel.is_set():
                slots.release()
                raise Cancelled()
            fut = asyncio.run_coroutine_threadsafe(insert(rows), loop)
            pending.add(fut)
            fut.add_done_callback(pending.discard)

        def on_progress(progress):  # worker thread
            loop.call_soon_threadsafe(self._progress, run, progress)

        async with self.core.blobs.local_copy(record.storage_key, ".pcap") as path:
            inflated = await asyncio.to_thread(decompress_if_gzip, Path(path), self.workdir)
            try:
                source = inflated or Path(path)
                ingest = IngestRun(source, on_batch=on_batch, on_progress=on_progress,
                                   cancel=run.cancel, skip_through=resume,
                                   processes=self.core.settings.ingest_tshark_procs or
                                   min(4, os.cpu_count() or 1),
                                   workdir=self.workdir)
                try:
                    result = await asyncio.to_thread(ingest.run)
                finally:
                    for fut in list(pending):
                        with contextlib.suppress(BaseException):
                            await asyncio.wrap_future(fut)
                    if failure:  # a store error stopped the pass: that is the error
                        raise failure[0]
                if run.cancel.is_set():
                    raise Cancelled()
                if inflated is not None:
                    await self._store_derived(job.file_id, inflated)
            finally:
                if inflated is not None:
                    inflated.unlink(missing_ok=True)
        stats = build_stats(result, record.name, compressed=inflated is not None)
        if not await self.store.put_stats(job.file_id, job.attempt, stats):
            raise Cancelled()
        final = {"packets": result.totals.packets, "bytes": result.totals.bytes,
                 "percent": 100.0, "rate": run.progress.get("rate"), "etaSeconds": 0}
        if await self.store.finish_job(job.file_id, attempt=job.attempt, state="done",
                                       progress=final):
            await self._push(job.project_id, "pcap:progress", {"fileId": job.file_id, **final})
            await self._push(job.project_id, "pcap:done",
                             {"fileId": job.file_id, "summary": stats["summary"]})

    def _progress(self, run: _Run, progress: dict) -> None:
        run.progress = progress
        asyncio.ensure_future(self._push(run.job.project_id, "pcap:progress",
                                         {"fileId": run.job.file_id, **progress}))

    async def _store_derived(self, file_id: str, path: Path) -> None:
        writer = await self.core.blobs.create(derived_key(file_id))
        try:
            with open(path, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                    await writer.write(chunk)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise

    async def _push(self, project_id: str, event: str, data: dict) -> None:
        try:
            await self.core.gateway.push_project(project_id, event, data)
        except Exception:
            log.exception("push %s failed", event)

    # -- reading a finished capture ---------------------------------------------------------

    async def stats(self, job: Job, name: str):
        key = (job.file_id, job.attempt, name)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        value = await self.store.get_stats(job.file_id, name)
        if value is not None:
            self.cache[key] = value
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return value

    @contextlib.asynccontextmanager
    async def capture_path(self, record, layout: dict):
        """A local path to the capture as indexed (the inflated copy of a gzip upload).

        Blobs in a local directory are read in place; from GridFS the capture is copied
        once into this instance's cache (the last ``CACHED_CAPTURES`` are kept), so cutting
        one frame out does not stream the whole file each time."""
        key = derived_key(record.id) if layout.get("compressed") else record.storage_key
        blobs = self.core.blobs
        if hasattr(blobs, "path"):  # store.blobs.local.LocalBlobs
            async with blobs.local_copy(key, ".pcap") as path:
                yield path
            return
        cached = self.workdir / "cache" / key
        if not cached.exists():
            async with self._cache_lock:
                if not cached.exists():
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    async with blobs.local_copy(key, ".pcap") as path:
                        part = cached.with_name(key + ".part")
                        await asyncio.to_thread(shutil.copyfile, path, part)
                        os.replace(part, cached)
                    await asyncio.to_thread(_trim, cached.parent, CACHED_CAPTURES)
        yield cached


def _sweep(root: Path, cutoff: float) -> None:
    """Inflated captures left by a killed instance (its work directory is never reused),
    last modified before ``cutoff`` (epoch seconds)."""
    for stale in root.glob("*/pcap-*.raw"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except FileNotFoundError:
            pass


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "instance"


def _trim(directory: Path, keep: int) -> None:
    files = sorted((p for p in directory.iterdir() if p.is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[keep:]:
        stale.unlink(missing_ok=True)


def derived_key(file_id: str) -> str:
    return f"{file_id}inflated"


def build_stats(result, name: str, compressed: bool) -> dict:
    t = result.totals
    duration = (t.latest - t.earliest) if t.packets else 0.0
    link_types = sorted({lt for section in result.link_types for lt in section})
    summary = {
        "name": name, "format": result.format, "compressed": compressed,
        "linkTypes": [{"linkType": lt, "name": LINK_NAMES.get(lt, f"linktype-{lt}")}
                      for lt in link_types],
        "interfaces": sum(len(s) for s in result.link_types),
        "sections": len(result.link_types),
        "packets": t.packets, "bytes": t.bytes, "capturedBytes": t.captured,
        "firstTime": _iso(t.earliest), "lastTime": _iso(t.latest),
        "firstEpoch": t.earliest, "lastEpoch": t.latest, "duration": round(duration, 9),
        "dataByteRate": (t.bytes / duration) if duration > 0 else None,
        "dataBitRate": (8 * t.bytes / duration) if duration > 0 else None,
        "averagePacketSize": t.bytes / t.packets if t.packets else None,
        "averagePacketRate": (t.packets / duration) if duration > 0 else None,
        "strictTimeOrder": t.ordered, "truncated": result.truncated,
        "warnings": result.warnings, "indexed": result.indexed,
    }
    stats = {"summary": summary, "protocols": result.reports.protocols,
             "io": t.io_view(), "sizes": t.sizes_view(),
             "layout": {"format": result.format, "indexed": result.indexed,
                        "compressed": compressed,
                        "preambles": [base64.b64encode(p).decode() for p in result.preambles]}}
    for kind in KINDS:
        conversations = result.flows.conversations(kind)
        stats[f"conversations:{kind}"] = conversations
        stats[f"endpoints:{kind}"] = endpoints(kind, conversations)
    return stats


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    dt = datetime.fromtimestamp(epoch, UTC)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")
