"""pcap:* — capture analysis. An uploaded .pcap/.pcapng (also gzip-compressed) is ingested
in the background (``services.captures``); these events start or cancel an ingest and
query the result: capture properties, protocol hierarchy, conversations, endpoints, I/O,
sizes, the packet list, one packet's dissection and Follow Stream.

Pushes to the project room: ``pcap:queued {fileId, position}``, ``pcap:progress {fileId,
packets, bytes, percent, rate, etaSeconds}`` (at most ~4/s), ``pcap:done {fileId,
summary}``, ``pcap:failed {fileId, code, reason, message}``, ``pcap:cancelled {fileId}``.
"""
from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from handlers.base import Cursor, Int, Payload, Time, event
from handlers.scopes import Capture, File
from ingest.pcap import follow as following
from ingest.pcap import layout as layouts
from ingest.pcap.stats import io_series, smallest_interval
from services.captures import PcapService
from services.quotas import spend_guest_quota
from store.base import PacketFilter, PcapPacket
from store.errors import BadRequest, Conflict, EventError, NotFound
from store.query import decode_cursor, encode_cursor

Id = Field(min_length=1, max_length=64)
Kind = Literal["eth", "ip", "ipv6", "tcp", "udp"]
MAX_IO_POINTS = 10_000
FOLLOW_MAX_PACKETS = 20_000
FOLLOW_MAX_BYTES = 4 << 20
PACKETS_CACHED = 256


class FilePayload(Payload):
    fileId: str = Id


class ListPayload(Payload):
    fileId: str = Id
    kind: Kind
    sort: Literal["bytes", "frames", "start", "duration", "address"] = "bytes"
    order: Literal["asc", "desc"] | None = None
    cursor: str | None = Cursor
    limit: int = Int(100, ge=1, le=1000)


class IoPayload(Payload):
    fileId: str = Id
    interval: float | None = Field(default=None, gt=0, le=86400 * 365)


class PacketFilterIn(Payload):
    protocol: str | None = Field(default=None, min_length=1, max_length=64)
    address: str | None = Field(default=None, min_length=1, max_length=128)
    port: int | None = Int(None, le=65535)
    timeFrom: Time | None = None
    timeTo: Time | None = None
    text: str | None = Field(default=None, min_length=1, max_length=200)
    tcpStream: int | None = Int(None)
    udpStream: int | None = Int(None)


class PacketsPayload(Payload):
    fileId: str = Id
    cursor: str | None = Cursor
    limit: int = Int(100, ge=1, le=1000)
    filter: PacketFilterIn | None = None


class PacketPayload(Payload):
    fileId: str = Id
    number: int = Int(ge=1)


class FollowPayload(Payload):
    fileId: str = Id
    stream: Literal["tcp", "udp"]
    index: int = Int()


# -- helpers ------------------------------------------------------------------------------

def service(ctx) -> PcapService:
    return ctx.services.pcap


def _epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()  # a payload's Time is in UTC


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(
        timespec="microseconds").replace("+00:00", "Z")


def packet_view(p: PcapPacket, first: float | None) -> dict:
    return {"number": p.number, "time": _time(p.ts),
            "relativeTime": round(p.ts - first, 6) if first is not None else None,
            "source": p.src, "destination": p.dst, "protocol": p.protocol,
            "length": p.length, "info": p.info, "srcPort": p.sport, "dstPort": p.dport,
            "stream": {"kind": p.l4, "index": p.stream} if p.l4 else None}


# What each sort key of a conversation or endpoint list holds, as a cursor checks it.
SORT_VALUES: dict[str, type] = {"bytes": int, "frames": int, "start": float, "duration": float,
                                "a": str, "address": str}


def page_sorted(items: list[dict], key: str, descending: bool, cursor: str | None,
                limit: int) -> dict:
    """Keyset paging over an immutable list: order by (key, id); the cursor is the last
    (value, id) seen, so pages stay stable whatever is asked in between. A cursor names
    its sort key: one from a list sorted another way is refused, not misread."""
    def sort_key(item):
        return (item[key], item["id"])

    ordered = sorted(items, key=sort_key, reverse=descending)
    start = 0
    if cursor:
        last = tuple(decode_cursor(cursor, key, (SORT_VALUES[key], int)))
        lo, hi = 0, len(ordered)
        while lo < hi:  # first item strictly after ``last`` in this order
            mid = (lo + hi) // 2
            k = sort_key(ordered[mid])
            after = k < last if descending else k > last
            if after:
                hi = mid
            else:
                lo = mid + 1
        start = lo
    chunk = ordered[start:start + limit]
    more = start + limit < len(ordered)
    return {"items": chunk,
            "nextCursor": encode_cursor([key, chunk[-1][key], chunk[-1]["id"]])
            if more and chunk else None}


# -- events -------------------------------------------------------------------------------

@event("pcap:ingest", FilePayload, scope=File("fileId", "editor"),
       ack="job {fileId, state, progress, position, ...}",
       emits=("pcap:queued", "pcap:progress", "pcap:done", "pcap:failed", "auth:quota"))
async def on_ingest(ctx, p: FilePayload):
    """Ingest an uploaded capture (editors). Uploads of .pcap/.pcapng start this by
    themselves; calling it again on a finished capture ingests it anew. Each ingest spends
    one of a guest's imports (``forbidden`` with reason ``guest_limit`` at zero)."""
    record = ctx.resource
    if ctx.state.is_guest:
        await spend_guest_quota(ctx.store, ctx.gateway, ctx.user_id, "remaining_imports")
    return await service(ctx).enqueue(record.id, record.project_id, ctx.user_id)


@event("pcap:cancel", FilePayload, scope=File("fileId", "editor"),
       ack="{fileId, state}", emits=("pcap:cancelled",))
async def on_cancel(ctx, p: FilePayload):
    """Stop a queued or running ingest and remove what it stored (editors)."""
    record = ctx.resource
    job = await ctx.store.pcap.cancel_job(record.id)
    if job is None:
        current = await ctx.store.pcap.get_job(record.id)
        raise Conflict("no ingest of this file is queued or running",
                       {"state": current.state if current else None})
    await service(ctx).cancel(job)
    return {"fileId": record.id, "state": "cancelled"}


@event("pcap:summary", FilePayload, scope=Capture("fileId", "viewer", done=False),
       ack="{fileId, job, summary: {format, linkTypes, packets, bytes, firstTime, lastTime, "
           "duration, ..., truncated} or null}")
async def on_summary(ctx, p: FilePayload):
    """Capture properties like ``capinfos`` plus the ingest job (state, progress, queue
    position); ``summary`` is null until the ingest is done."""
    record, job = ctx.resource.file, ctx.resource.job
    summary = await service(ctx).stats(job, "summary") if job.state == "done" else None
    return {"fileId": record.id, "job": await service(ctx).view(record.id),
            "summary": summary}


@event("pcap:protocols", FilePayload, scope=Capture("fileId", "viewer"),
       ack="{fileId, total, tree: [{name, frames, bytes, "
                                          "children}]}")
async def on_protocols(ctx, p: FilePayload):
    """The protocol hierarchy (Wireshark's, counted in the ingest pass)."""
    record, job = ctx.resource.file, ctx.resource.job
    summary = await service(ctx).stats(job, "summary")
    return {"fileId": record.id, "total": {"frames": summary["packets"],
                                           "bytes": summary["bytes"]},
            "tree": await service(ctx).stats(job, "protocols")}


@event("pcap:conversations", ListPayload, scope=Capture("fileId", "viewer"),
       ack="{items: [{id, a, b, portA?, portB?, framesAB, bytesAB, framesBA, bytesBA, frames, "
           "bytes, start, duration, stream?}], nextCursor}")
async def on_conversations(ctx, p: ListPayload):
    """Conversations like Wireshark's (eth, ip, ipv6, tcp, udp); sorted by bytes, frames,
    start, duration or address; keyset-paged."""
    record, job = ctx.resource.file, ctx.resource.job
    items = await service(ctx).stats(job, f"conversations:{p.kind}")
    key = "a" if p.sort == "address" else p.sort
    descending = (p.order or ("asc" if key in ("a", "start") else "desc")) == "desc"
    return {"fileId": record.id, "kind": p.kind,
            **page_sorted(items, key, descending, p.cursor, p.limit)}


@event("pcap:endpoints", ListPayload, scope=Capture("fileId", "viewer"),
       ack="{items: [{id, address, port?, frames, bytes, txFrames, txBytes, rxFrames, "
           "rxBytes}], nextCursor}")
async def on_endpoints(ctx, p: ListPayload):
    """Endpoints (per address, and port for tcp/udp): packets and bytes each way."""
    record, job = ctx.resource.file, ctx.resource.job
    if p.sort in ("start", "duration"):
        raise BadRequest("endpoints sort by bytes, frames or address")
    items = await service(ctx).stats(job, f"endpoints:{p.kind}")
    key = "address" if p.sort == "address" else p.sort
    descending = (p.order or ("asc" if key == "address" else "desc")) == "desc"
    return {"fileId": record.id, "kind": p.kind,
            **page_sorted(items, key, descending, p.cursor, p.limit)}


@event("pcap:io", IoPayload, scope=Capture("fileId", "viewer"),
       ack="{fileId, interval, start, items: [{t, packets, bytes}]}")
async def on_io(ctx, p: IoPayload):
    """Packets and bytes per interval from the first packet (default: the finest interval
    giving at most 10000 points)."""
    record, job = ctx.resource.file, ctx.resource.job
    io = await service(ctx).stats(job, "io")
    interval = p.interval or smallest_interval(io, MAX_IO_POINTS)
    try:
        items = io_series(io, interval, MAX_IO_POINTS)
    except ValueError as exc:
        raise BadRequest(str(exc), {"base": io["base"]}) from None
    except OverflowError:
        raise BadRequest(f"interval too small: at least "
                         f"{smallest_interval(io, MAX_IO_POINTS):g} s for this capture",
                         {"minimum": smallest_interval(io, MAX_IO_POINTS)}) from None
    return {"fileId": record.id, "interval": interval, "start": _time(io["start"]),
            "items": items}


@event("pcap:sizes", FilePayload, scope=Capture("fileId", "viewer"),
       ack="{fileId, buckets: [{min, max, packets, bytes}], minLength, maxLength, "
           "averageLength}")
async def on_sizes(ctx, p: FilePayload):
    """Packet length histogram (Wireshark's Packet Lengths buckets)."""
    record, job = ctx.resource.file, ctx.resource.job
    return {"fileId": record.id, **await service(ctx).stats(job, "sizes")}


@event("pcap:packets", PacketsPayload, scope=Capture("fileId", "viewer", done=False),
       ack="{items: [{number, time, relativeTime, source, destination, protocol, length, "
           "info, srcPort, dstPort, stream}], nextCursor}")
async def on_packets(ctx, p: PacketsPayload):
    """The packet list in frame order with filters (protocol, address, port, time range,
    text in Info, one TCP/UDP stream); keyset-paged by frame number. Works while the
    ingest runs (the frames stored so far)."""
    record, job = ctx.resource.file, ctx.resource.job
    f = p.filter or PacketFilterIn()
    if f.tcpStream is not None and f.udpStream is not None:
        raise BadRequest("filter on one stream: tcpStream or udpStream")
    flt = PacketFilter(protocol=f.protocol, address=f.address, port=f.port,
                       since=_epoch(f.timeFrom), until=_epoch(f.timeTo), text=f.text,
                       l4="tcp" if f.tcpStream is not None else
                       "udp" if f.udpStream is not None else None,
                       stream=f.tcpStream if f.tcpStream is not None else f.udpStream)
    page = await ctx.store.pcap.list_packets(record.id, cursor=p.cursor, limit=p.limit,
                                              flt=flt)
    first = None
    if job.state == "done":
        first = (await service(ctx).stats(job, "summary"))["firstEpoch"]
    elif page.items:
        head = await ctx.store.pcap.get_packet(record.id, 1)
        first = head.ts if head else None
    return {"fileId": record.id, "state": job.state,
            "items": [packet_view(x, first) for x in page.items],
            "nextCursor": page.next_cursor}


@event("pcap:packet", PacketPayload, scope=Capture("fileId", "viewer"),
       ack="{fileId, number, packet, context, layers: [{name, label, value?, pos?, size?, "
           "source?, frame?, children?}], bytes (hex), sources: [{name, bytes (hex), length, "
           "truncated}], truncated}")
async def on_packet(ctx, p: PacketPayload):
    """One packet's full dissection by Wireshark's own daemon (sharkd), with what earlier and
    later frames tell: TCP segments reassembled into the PDU they carry (HTTP, TLS, DNS over
    TCP...), a segment in the middle of a PDU naming the frame it is reassembled in, requests
    linked to responses. ``context`` says from what it was dissected: ``capture`` (the whole
    capture, the view Wireshark shows), or for a capture too large to keep open (or still
    being opened) ``stream`` (the frames of its TCP/UDP stream up to it: a PDU ending here is
    reassembled, references to later frames are missing) or ``frame`` (outside TCP/UDP).
    ``layers``: the tree; ``name`` is the field's filter name ("" for a text item and for an
    item the filter language cannot name), ``value`` its value as a display filter writes it
    (strings unquoted, at most 4096 characters), ``pos``/``size`` its bytes, in ``bytes`` (the
    frame) or, with ``source: i``, in ``sources[i]``: bytes a dissector built, such as the
    reassembled TCP segments (at most 1 MiB each; ``length`` is the whole). ``frame`` links
    to another frame. ``truncated``: the tree had more than 20 000 items."""
    record, job = ctx.resource.file, ctx.resource.job
    cache = service(ctx).packet_acks
    key = (record.id, job.attempt, p.number)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    summary = await service(ctx).stats(job, "summary")
    packet = await ctx.store.pcap.get_packet(record.id, p.number)
    if packet is None:
        raise NotFound(f"no frame {p.number} in this capture: it has {summary['packets']}",
                       {"frames": summary["packets"]})
    layout = await service(ctx).stats(job, "layout")
    context, view = await service(ctx).detail.view(record, job, packet, layout)
    out = {"fileId": record.id, "number": p.number,
           "packet": packet_view(packet, summary["firstEpoch"]), "context": context,
           "layers": view.layers, "bytes": view.data.hex(),
           "sources": [{"name": s["name"], "bytes": s["bytes"].hex(), "length": s["length"],
                        "truncated": s["truncated"]} for s in view.sources],
           "truncated": view.truncated}
    if context == "capture":  # the others are better once the session is open
        cache[key] = out
        while len(cache) > PACKETS_CACHED:
            cache.popitem(last=False)
    return out


@event("pcap:follow", FollowPayload, scope=Capture("fileId", "viewer"),
       ack="{fileId, stream, index, nodes: [a, b], segments: [{dir, data (base64), text}]}")
async def on_follow(ctx, p: FollowPayload):
    """Follow Stream: the reassembled payload of one TCP/UDP stream, both directions in
    order (``dir`` 0 = from the first node, 1 = from the second)."""
    record, job = ctx.resource.file, ctx.resource.job
    packets = await ctx.store.pcap.stream_packets(record.id, p.stream, p.index,
                                                  FOLLOW_MAX_PACKETS + 1)
    if not packets:
        raise NotFound(f"no {p.stream} stream {p.index} in this capture")
    layout = await service(ctx).stats(job, "layout")
    if any(x.offset is None for x in packets) or not layout.get("preambles"):
        raise EventError("unavailable", "this capture's format has no offset index")
    truncated = len(packets) > FOLLOW_MAX_PACKETS
    packets = packets[:FOLLOW_MAX_PACKETS]
    async with service(ctx).capture_path(record, layout) as path:
        result = await asyncio.to_thread(_follow, path, layout, packets, p.stream)
    segments, total = [], 0
    for seg in result["segments"]:
        data = seg["data"][:max(0, FOLLOW_MAX_BYTES - total)]
        total += len(data)
        segments.append({"dir": seg["dir"], "length": len(seg["data"]),
                         "data": base64.b64encode(data).decode(),
                         "text": data.decode("utf-8", "replace")})
        if total >= FOLLOW_MAX_BYTES:
            truncated = True
            break
    return {"fileId": record.id, "stream": p.stream, "index": p.index,
            "nodes": result["nodes"], "segments": segments, "truncated": truncated}


def _follow(path, layout: dict, packets: list[PcapPacket], kind: str) -> dict:
    """Cut the stream's frames into a small capture and follow stream 0 in it: tshark then
    reads only this stream's packets, not the whole file."""
    preambles = [base64.b64decode(x) for x in layout["preambles"]]
    section = packets[0].section
    fd, name = tempfile.mkstemp(suffix=".pcapng" if layout["format"] == "pcapng" else ".pcap")
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            out.write(preambles[section])
            for x in packets:
                if x.section == section:
                    # on_follow checked the offsets; the ingest sets reclen with offset
                    assert x.offset is not None and x.reclen is not None
                    out.write(layouts.read_record(src, x.offset, x.reclen))
        return following.follow(name, kind, 0)
    finally:
        os.unlink(name)


EVENTS = [on_ingest, on_cancel, on_summary, on_protocols, on_conversations, on_endpoints,
          on_io, on_sizes, on_packets, on_packet, on_follow]
