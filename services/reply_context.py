"""Grounding a reply in files: attachments first, then (on request) the project's files.

Each file becomes one ``ContextItem``: CSV → column profile + sample rows; capture → the
PCAP domain's ingest summary when it has one, else a quick scan; text/markdown → excerpt;
anything else → name, type and size. What a file yields is computed once (in a worker
thread), kept in the store by (file id, sha256) and in a small per-instance LRU, and shared
by concurrent requests for the same file. Items are added while they fit the token budget
(one that does not fit is cut down or left out); what was left out is reported.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.profile import CaptureError, CsvError, capture_stats, profile_csv, text_excerpt
from services.ai import ContextItem, estimate_tokens
from services.container import Core
from store.base import ChatHit, FileRecord, ImportedChat
from store.ids import iso

log = logging.getLogger("handlers.chat")
CACHE_SIZE = 256
MIN_USEFUL_TOKENS = 120  # below this a cut-down item says nothing worth its space
CSV_EXT = (".csv", ".tsv")
PCAP_EXT = (".pcap", ".pcapng", ".cap")
TEXT_EXT = (".txt", ".md", ".markdown", ".log", ".json", ".xml", ".yaml", ".yml", ".ini",
            ".py", ".js", ".ts", ".sql", ".html", ".css", ".sh", ".toml", ".rst")
PCAP_MIME = ("application/vnd.tcpdump.pcap", "application/x-pcapng")


def kind_of(record: FileRecord) -> str:
    name, mime = record.name.lower(), record.mime
    if name.endswith(CSV_EXT) or mime in ("text/csv", "text/tab-separated-values"):
        return "csv"
    if mime in PCAP_MIME or name.endswith(PCAP_EXT):
        return "pcap"
    if mime.startswith("text/") or mime in ("application/json", "application/xml") \
            or name.endswith(TEXT_EXT):
        return "text"
    return "other"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(kind: str, record: FileRecord, data: dict, *, compact: bool = False) -> str:
    """The text a model reads for one file."""
    if "error" in data:
        return f'"{record.name}" ({kind}) could not be read: {data["error"]}'
    if kind == "csv":
        lines = [f'CSV "{record.name}": {data["rows"]} rows, {len(data["columns"])} columns'
                 + (f', {data["badRows"]} malformed rows skipped' if data.get("badRows") else "")]
        for c in data["columns"]:
            line = (f'- {c["name"]} ({c["type"]}): {c["count"]} values, {c["missing"]} missing, '
                    f'{c["distinct"]}{"+" if c.get("distinctAtLeast") else ""} distinct')
            if "min" in c:
                line += f', min {_fmt(c["min"])}, max {_fmt(c["max"])}'
            if "mean" in c:
                line += f', mean {_fmt(c["mean"])}'
            if c.get("top") and not compact:
                line += "; top: " + ", ".join(f'{t["value"]!r} ×{t["count"]}' for t in c["top"])
            lines.append(line)
        if data.get("sample") and not compact:
            lines.append("Sample rows:")
            lines += [", ".join(f"{k}={v!r}" for k, v in row.items()) for row in data["sample"]]
        return "\n".join(lines)
    if kind == "pcap":
        s = data["summary"]
        lines = [f'Capture "{record.name}": {s["packets"]} packets, {s["bytes"]} bytes, '
                 f'{s.get("firstTime")} to {s.get("lastTime")} ({s.get("durationSeconds")} s), '
                 f'link types {s.get("linkTypes")}, truncated={s.get("truncated")}']
        top = 5 if compact else 10
        if data.get("protocols"):
            lines.append("Protocols (packets/bytes): " + ", ".join(
                f'{p["name"]} {p["packets"]}/{p["bytes"]}' for p in data["protocols"][:top]))
        if data.get("topTalkers"):
            lines.append("Top talkers by bytes: " + ", ".join(
                f'{t["address"]} {t["bytes"]} B/{t["packets"]} pkts'
                for t in data["topTalkers"][:top]))
        if data.get("conversations"):
            lines.append("Largest TCP/UDP conversations: " + "; ".join(
                f'{c["protocol"]} {c["a"]} <-> {c["b"]} {c["bytes"]} B/{c["packets"]} pkts'
                for c in data["conversations"][:top]))
        return "\n".join(lines)
    if kind == "text":
        excerpt = data.get("excerpt", "")
        if compact:
            excerpt = excerpt[:1500]
        return (f'Text file "{record.name}" ({data.get("lines")} lines, {data.get("size")} bytes)'
                f'{", excerpt" if data.get("truncated") or compact else ""}:\n{excerpt}')
    return f'File "{record.name}": {record.mime}, {record.size} bytes (contents not readable)'


STOP_WORDS = frozenset("""a an and are as at be by did do does for from had has have how i in is it
its me most of on or our that the their them they this to was we were what when where which
who whom why with wrote write writes you your chat chats message messages""".split())
RELEVANT = 8  # messages a chat contributes as the ones closest to the question


def keywords(question: str, most: int = 5) -> list[str]:
    """The question's words worth searching for: longest first, no stop words."""
    words = {w for w in re.findall(r"\w{3,}", question.lower()) if w not in STOP_WORDS}
    return sorted(words, key=lambda w: (-len(w), w))[:most]


def render_chat(chat: ImportedChat, data: dict, *, compact: bool = False) -> str:
    people = ", ".join(f"{p['name']} ({p['messages']})" for p in data["participants"][:20])
    lines = [f'Imported {chat.platform} chat "{chat.name}": {data["messageCount"]} messages '
             f'from {data["firstTime"]} to {data["lastTime"]}; participants (messages): '
             f"{people}"]
    if data["activity"]:
        lines.append("Messages per month: " + ", ".join(
            f"{month} {count}" for month, count in data["activity"][-(6 if compact else 36):]))
    hits = data["relevant"][:3 if compact else RELEVANT]
    if hits:
        lines.append("Messages most relevant to the question:")
        lines += [f"[{h['time']}] {h['author']}: {h['text'][:300 if compact else 1000]}"
                  for h in hits]
    return "\n".join(lines)


class ContextBuilder:
    def __init__(self, core: Core):
        self.core = core
        self._cache: OrderedDict[str, tuple[str, dict]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future] = {}

    async def build(self, files: Sequence[FileRecord], budget: int
                    ) -> tuple[list[ContextItem], list[dict]]:
        items: list[ContextItem] = []
        omitted: list[dict] = []
        left = budget
        for record in files:
            try:
                kind, data = await self.file_data(record)
            except Exception:
                log.exception("chat context for file %s failed", record.id)
                omitted.append({"fileId": record.id, "name": record.name, "reason": "unreadable"})
                continue
            text, truncated = render(kind, record, data), False
            if estimate_tokens(text) > left:
                text, truncated = render(kind, record, data, compact=True), True
            if estimate_tokens(text) > left:
                if left < MIN_USEFUL_TOKENS:
                    omitted.append({"fileId": record.id, "name": record.name,
                                    "reason": "budget"})
                    continue
                text = text[:left * 4 - 40] + "\n[… cut to fit the context budget]"
            tokens = estimate_tokens(text)
            left -= tokens
            items.append(ContextItem(record.id, record.name, kind, text, data, tokens, truncated))
        return items, omitted

    async def build_chats(self, chats: Sequence[ImportedChat], question: str, budget: int
                          ) -> tuple[list[ContextItem], list[dict]]:
        """Imported chats as grounding: who wrote how much, activity per month, and the
        messages the search index finds closest to the question."""
        items: list[ContextItem] = []
        omitted: list[dict] = []
        left = budget
        for chat in chats:
            data = await self.chat_data(chat, question)
            text, truncated = render_chat(chat, data), False
            if estimate_tokens(text) > left:
                text, truncated = render_chat(chat, data, compact=True), True
            if estimate_tokens(text) > left:
                omitted.append({"chatId": chat.id, "name": chat.name, "reason": "budget"})
                continue
            tokens = estimate_tokens(text)
            left -= tokens
            items.append(ContextItem(chat.id, chat.name, "chat", text, data, tokens, truncated))
        return items, omitted

    async def chat_data(self, chat: ImportedChat, question: str) -> dict:
        store = self.core.store.chats
        relevant: dict[str, ChatHit] = {}
        for word in keywords(question):
            page = await store.search(chat.project_id, word, chat_id=chat.id, limit=RELEVANT)
            for hit in page.items:
                relevant.setdefault(hit.message_id, hit)
        best = sorted(relevant.values(), key=lambda h: (-h.score, h.time))[:RELEVANT]
        return {"platform": chat.platform, "messageCount": chat.message_count,
                "systemCount": chat.system_count, "firstTime": iso(chat.first_time),
                "lastTime": iso(chat.last_time),
                "participants": [{"name": p.name, "messages": p.messages}
                                 for p in chat.participants],
                "activity": await store.activity(chat.id, bucket="month"),
                "relevant": [{"time": iso(h.time), "author": h.author, "text": h.text}
                             for h in sorted(best, key=lambda h: h.time)]}

    async def file_data(self, record: FileRecord) -> tuple[str, dict]:
        key = f"{record.id}:{record.sha256}"
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._load(record)
            future.set_result(result)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(key, None)
        if not result[1].get("transient"):
            self._cache[key] = result
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    async def _load(self, record: FileRecord) -> tuple[str, dict]:
        kind = kind_of(record)
        if kind == "other":
            return kind, {"mime": record.mime, "size": record.size}
        chat = self.core.store.chat
        stored = await chat.get_file_context(record.id, record.sha256)
        if stored is not None:
            return kind, stored
        data = await self._pcap_ingest_summary(record) if kind == "pcap" else None
        if data is None:
            data = await self._compute(kind, record)
        if not data.get("transient"):
            await chat.put_file_context(file_id=record.id, project_id=record.project_id,
                                        sha256=record.sha256, kind=kind, data=data)
        return kind, data

    async def _compute(self, kind: str, record: FileRecord) -> dict:
        suffix = "." + record.name.rsplit(".", 1)[-1] if "." in record.name else ""
        readers: dict[str, Callable[[Path], dict]] = {
            "csv": profile_csv, "pcap": capture_stats, "text": text_excerpt}
        fn = readers[kind]
        async with self.core.blobs.local_copy(record.storage_key, suffix) as path:
            try:
                return await asyncio.to_thread(fn, path)
            except (CsvError, CaptureError) as exc:
                return {"error": getattr(exc, "message", None) or str(exc)}

    async def _pcap_ingest_summary(self, record: FileRecord) -> dict | None:
        """The PCAP domain's figures (tshark's, from its finished ingest) in the shape the
        quick scan gives; None when there is no finished ingest (the quick scan answers).
        Marked transient: a later re-ingest may change them, so they are not cached here."""
        repo = getattr(self.core.store, "pcap", None)
        if repo is None:
            return None
        try:
            job = await repo.get_job(record.id)
            if job is None or job.state != "done":
                return None
            summary = await repo.get_stats(record.id, "summary")
            if not isinstance(summary, dict) or "packets" not in summary:
                return None
            talkers = [e for kind in ("ip", "ipv6")
                       for e in (await repo.get_stats(record.id, f"endpoints:{kind}") or [])]
            flows = [(kind.upper(), c) for kind in ("tcp", "udp")
                     for c in (await repo.get_stats(record.id, f"conversations:{kind}") or [])]
            tree = await repo.get_stats(record.id, "protocols") or []
        except Exception:
            log.exception("pcap statistics of %s unavailable", record.id)
            return None
        protocols: list[dict] = []

        def walk(nodes, depth=0):
            for node in nodes:
                protocols.append({"name": node["name"], "packets": node["frames"],
                                  "bytes": node["bytes"], "depth": depth})
                walk(node.get("children") or [], depth + 1)

        walk(tree)
        talkers.sort(key=lambda e: (-e["bytes"], e["address"]))
        flows.sort(key=lambda kc: (-kc[1]["bytes"], kc[1]["a"]))
        return {
            "summary": {"packets": summary["packets"], "bytes": summary["bytes"],
                        "firstTime": summary.get("firstTime"),
                        "lastTime": summary.get("lastTime"),
                        "durationSeconds": summary.get("duration"),
                        "linkTypes": [lt.get("name", str(lt)) if isinstance(lt, dict) else lt
                                      for lt in summary.get("linkTypes", [])],
                        "truncated": summary.get("truncated", False), "partial": False},
            "protocols": protocols[:40],
            "services": [],
            "topTalkers": [{"address": e["address"], "packets": e["frames"], "bytes": e["bytes"],
                            "txBytes": e["txBytes"], "rxBytes": e["rxBytes"]}
                           for e in talkers[:10]],
            "endpointCount": len(talkers),
            "conversations": [{"protocol": kind, "a": f"{c['a']}:{c.get('portA')}",
                               "b": f"{c['b']}:{c.get('portB')}", "packets": c["frames"],
                               "bytes": c["bytes"]} for kind, c in flows[:10]],
            "conversationCount": len(flows),
            "source": "pcap ingest (tshark)",
            "transient": True,
        }
