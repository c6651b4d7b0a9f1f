"""Capture ingest jobs, packet rows and capture statistics on MongoDB.

- ``pcap_jobs``: one document per capture file (``store/mongo/jobs.py``).
- ``pcap_packets``: one document per frame, ``_id`` = "<fileId>:<number, zero-padded>", so a
  frame is stored once however many times an interrupted ingest re-sends it; indexes per
  filter column end in ``number`` so pages are index range scans from the cursor.
- ``pcap_stats``: named JSON documents, split into parts below the 16 MB BSON limit.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError

from store.base import PacketFilter, Page, PcapPacket, PcapRepo
from store.mongo import common
from store.mongo.jobs import MongoJobs, create_job_indexes
from store.query import encode_cursor, last_seen

PART_CHARS = 8 << 20
DUPLICATE_KEY = 11000


async def create_pcap_indexes(db: Any) -> None:
    packets = db["pcap_packets"]
    await create_job_indexes(db["pcap_jobs"])
    await packets.create_index([("fileId", 1), ("number", 1)], name="fileId_number",
                               unique=True)
    for column in ("protoLc", "src", "dst", "sport", "dport"):
        await packets.create_index([("fileId", 1), (column, 1), ("number", 1)],
                                   name=f"fileId_{column}_number")
    await packets.create_index([("fileId", 1), ("l4", 1), ("stream", 1), ("number", 1)],
                               name="fileId_stream_number")
    await db["pcap_stats"].create_index([("fileId", 1), ("name", 1), ("part", 1)],
                                        name="fileId_name_part")


def _packet(d: dict) -> PcapPacket:
    return PcapPacket(number=d["number"], ts=d["ts"], length=d["len"], caplen=d["caplen"],
                      src=d["src"], dst=d["dst"], sport=d.get("sport"), dport=d.get("dport"),
                      l4=d.get("l4"), stream=d.get("stream"), protocol=d["proto"],
                      info=d["info"], offset=common.plain(d.get("off")),
                      reclen=d.get("reclen"), section=d.get("sec", 0))


def _doc(file_id: str, p: PcapPacket) -> dict:
    return {"_id": f"{file_id}:{p.number:012d}", "fileId": file_id, "number": p.number,
            "ts": p.ts, "len": p.length, "caplen": p.caplen, "src": p.src, "dst": p.dst,
            "sport": p.sport, "dport": p.dport, "l4": p.l4, "stream": p.stream,
            "proto": p.protocol, "protoLc": p.protocol.lower(), "info": p.info,
            "off": p.offset, "reclen": p.reclen, "sec": p.section}


AFTER = ReturnDocument.AFTER


class MongoPcap(MongoJobs, PcapRepo):
    def __init__(self, db: Any):
        super().__init__(db["pcap_jobs"])
        self.db = db
        self.packets = db["pcap_packets"]
        self.stats = db["pcap_stats"]

    async def _on_delete(self, file_id: str) -> None:
        await self.packets.delete_many({"fileId": file_id})
        await self.stats.delete_many({"fileId": file_id})

    # -- packets --------------------------------------------------------------------------

    async def add_packets(self, file_id, attempt, packets: Sequence[PcapPacket]) -> bool:
        if not await self._owns(file_id, attempt):
            return False
        if packets:
            try:
                await self.packets.insert_many([_doc(file_id, p) for p in packets],
                                               ordered=False)
            except BulkWriteError as exc:  # frames stored by an earlier attempt stay
                errors = exc.details.get("writeErrors", []) if exc.details else []
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
        return True

    async def last_packet_number(self, file_id) -> int:
        docs = await self.packets.find({"fileId": file_id}, {"number": 1}) \
            .sort("number", -1).limit(1).to_list(None)
        return docs[0]["number"] if docs else 0

    async def get_packet(self, file_id, number) -> PcapPacket | None:
        doc = await self.packets.find_one({"_id": f"{file_id}:{number:012d}"})
        return _packet(doc) if doc else None

    async def list_packets(self, file_id, *, cursor=None, limit=100,
                           flt: PacketFilter = PacketFilter()) -> Page[PcapPacket]:
        query: dict = {"fileId": file_id, "number": {"$gt": last_seen(cursor, "p", int) or 0}}
        ands: list[dict[str, Any]] = []
        if flt.protocol:
            query["protoLc"] = flt.protocol.lower()
        if flt.address:
            ands.append({"$or": [{"src": flt.address}, {"dst": flt.address}]})
        if flt.port is not None:
            ands.append({"$or": [{"sport": flt.port}, {"dport": flt.port}]})
        if flt.since is not None or flt.until is not None:
            query["ts"] = {k: v for k, v in (("$gte", flt.since), ("$lte", flt.until))
                           if v is not None}
        if flt.text:
            query["info"] = {"$regex": re.escape(flt.text), "$options": "i"}
        if flt.l4 is not None:
            query.update(l4=flt.l4, stream=flt.stream)
        if ands:
            query["$and"] = ands
        docs = await self.packets.find(query).sort("number", 1).limit(limit + 1).to_list(None)
        items = [_packet(d) for d in docs[:limit]]
        return Page(items, encode_cursor(["p", items[-1].number]) if len(docs) > limit
                    else None)

    async def stream_packets(self, file_id, l4, stream, limit,
                             through=None) -> list[PcapPacket]:
        if through is None:
            page = await self.list_packets(file_id, limit=limit,
                                           flt=PacketFilter(l4=l4, stream=stream))
            return page.items
        docs = await self.packets.find({"fileId": file_id, "l4": l4, "stream": stream,
                                        "number": {"$lte": through}}) \
            .sort("number", -1).limit(limit).to_list(None)
        return [_packet(d) for d in reversed(docs)]

    async def delete_packets(self, file_id) -> None:
        await self.packets.delete_many({"fileId": file_id})

    # -- statistics -----------------------------------------------------------------------

    async def put_stats(self, file_id, attempt, stats: dict) -> bool:
        if not await self._owns(file_id, attempt):
            return False
        for name, value in stats.items():
            text = json.dumps(value, separators=(",", ":"))
            parts = [text[i:i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
            await self.stats.delete_many({"fileId": file_id, "name": name})
            await self.stats.insert_many([
                {"_id": f"{file_id}:{name}:{i}", "fileId": file_id, "name": name, "part": i,
                 "data": part} for i, part in enumerate(parts)])
        return True

    async def get_stats(self, file_id, name):
        docs = await self.stats.find({"fileId": file_id, "name": name}) \
            .sort("part", 1).to_list(None)
        if not docs:
            return None
        return json.loads("".join(d["data"] for d in docs))
