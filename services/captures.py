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
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from ingest.pcap.flows import KINDS, endpoints
from ingest.pcap.run import Cancelled, CaptureError, IngestRun, decompress_if_gzip
from services.container import Core
from services.dissections import Dissections
from services.jobs import Handoff, JobEvents, JobRun, JobWorker
from services.packet_detail import PacketDetail
from services.quotas import spend_guest_quota
from store.base import FileRecord, Job
from store.errors import EventError

log = logging.getLogger("server.pcap")
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")
CAPTURE_MIMES = ("application/vnd.tcpdump.pcap", "application/x-pcapng")
INFLIGHT = 2
CACHED_CAPTURES = 8
STALE_WORK_S = 6 * 3600
LINK_NAMES = {0: "null", 1: "ether", 101: "rawip", 12: "rawip", 14: "rawip", 105: "ieee-802-11",
              113: "linux-sll", 127: "ieee-802-11-radiotap", 228: "rawip4", 229: "rawip6",
              239: "nflog", 276: "linux-sll2", 9: "ppp", 108: "loop"}


def is_capture(name: str, mime: str) -> bool:
    return mime in CAPTURE_MIMES or name.lower().endswith(CAPTURE_SUFFIXES)


class PcapService(JobWorker):
    name = "pcap"
    events = JobEvents(queued="pcap:queued", progress="pcap:progress", failed="pcap:failed",
                       cancelled="pcap:cancelled")
    cancelled_errors = (Cancelled,)
    input_errors = (CaptureError,)

    def __init__(self, core: Core):
        settings = core.settings
        super().__init__(core, core.store.pcap, slots=settings.ingest_concurrency,
                         lease_s=settings.ingest_lease_s)
        self.cache: OrderedDict = OrderedDict()  # (fileId, attempt, name) -> stats document
        self.cache_size = 64
        self.packet_acks: OrderedDict = OrderedDict()  # (fileId, attempt, number) -> ack
        self.workdir = Path(settings.data_dir) / "pcap-work" / _safe(self.instance)
        self.dissections = Dissections(
            core.clock, self.workdir, sessions=settings.dissect_sessions,
            idle_s=settings.dissect_idle_s, queue=settings.dissect_queue,
            load_wait_s=settings.dissect_load_wait_s, binary=settings.sharkd)
        self.detail = PacketDetail(self, self.dissections,
                                   session_max_bytes=int(settings.dissect_session_max_mb * 2**20))
        self._cache_lock = asyncio.Lock()

    @property
    def store(self):
        return self.core.store.pcap

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_sweep, self.workdir.parent, self.core.clock.time() - STALE_WORK_S)
        await super().start()

    def attach(self) -> None:
        """React to uploads, deletions and project deletions (every instance registers)."""
        hooks = self.core.hooks
        hooks.file_added.append(self._file_added)
        hooks.file_deleted.append(lambda record: self.forget(record.id))
        hooks.project_deleted.append(self._project_deleted)
        # A capture ingested anew or deleted closes its sessions on every instance.
        self.core.bus.on("pcap:dissections:close", self._close_dissections)

    async def _close_dissections(self, data: dict) -> None:
        await self.dissections.close_file(str(data.get("fileId")))

    async def _file_added(self, record: FileRecord) -> None:
        if not is_capture(record.name, record.mime):
            return
        store = self.core.store
        uploader = await store.users.get_user(record.uploader_id)
        if uploader is not None and uploader.is_guest:
            try:  # a guest's upload spends one of their imports; at zero it stays a file
                await spend_guest_quota(store, self.core.gateway, uploader.id,
                                        "remaining_imports")
            except EventError as exc:
                await self.core.gateway.push_project(record.project_id, "pcap:failed", {
                    "fileId": record.id, "code": exc.code, "reason": "guest_limit",
                    "message": exc.message})
                return
        await self.enqueue(record.id, record.project_id, record.uploader_id)

    async def _project_deleted(self, project_id: str) -> None:
        for file_id in await self.store.delete_project_jobs(project_id):
            await self.core.bus.publish("pcap:dissections:close", {"fileId": file_id})
            await self.core.blobs.delete(derived_key(file_id))

    async def stop(self) -> None:
        await super().stop()
        await self.dissections.stop()

    async def forget(self, file_id: str) -> None:
        await super().forget(file_id)
        await self.core.blobs.delete(derived_key(file_id))

    async def discard(self, file_id: str) -> None:
        await self.core.bus.publish("pcap:dissections:close", {"fileId": file_id})
        await self.store.delete_packets(file_id)

    # -- one ingest -----------------------------------------------------------------------

    async def work(self, run: JobRun) -> None:
        job = run.job
        record = await self.core.store.files.get_file(job.file_id)
        if record is None:
            await self.store.delete_job(job.file_id)
            return
        resume = await self.store.last_packet_number(job.file_id)
        loop = asyncio.get_running_loop()
        handoff = Handoff(run, Cancelled, INFLIGHT)

        def on_batch(rows):  # worker thread
            handoff.send(lambda: self.store.add_packets(job.file_id, job.attempt, rows))

        def on_progress(progress):  # worker thread
            loop.call_soon_threadsafe(self.progress, run, progress)

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
                    await handoff.drain()
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
            await self.push(job.project_id, "pcap:progress", {"fileId": job.file_id, **final})
            await self.push(job.project_id, "pcap:done",
                             {"fileId": job.file_id, "summary": stats["summary"]})

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
