"""A world to call every event in: a real server, callers with every relation to a project
(stranger, guest, admin, viewer, editor, owner, anonymous), one of each resource built on
demand, and a valid sample payload per event. Shared by the authorization matrix
(``tests/integration/test_authorization_matrix.py``) and the event fuzzer
(``tests/integration/test_fuzz.py``)."""
from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from aiohttp import web

from handlers.base import EventSpec
from ingest.chats.model import ParsedMessage, message_row
from server.keys import services_of
from store.base import Column
from store.ids import iso, new_id, utcnow
from tests.client import Client, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload
from tests.pcap_files import PCAPS

PASSWORD = "correct horse"
CSV = b"name,n\nada,1\nbob,2\n"
WHATSAPP = b"12/03/2024, 09:16 - Ana: hello\n12/03/2024, 09:17 - Bo: hi Ana\n"


# -- resources and sample payloads --------------------------------------------------------

@dataclass(frozen=True)
class Res:
    """One project's resources, as the samples see them (every id real and in ``project``,
    except ``capture``, a finished capture in a long-lived project with the same members)."""

    world: World
    project: str = ""
    table: str = ""
    row: str = ""
    file: str = ""  # a CSV file with its bytes stored
    capture: str = ""  # an ingested capture (job done, stats stored)
    conversation: str = ""  # created by the project's owner, idle
    generating: str = ""  # a reply generating (in a conversation of its own)
    chat: str = ""  # an imported chat (published)
    export: str = ""  # a WhatsApp export file, not imported yet
    member: str = ""  # a viewer of the project who is none of the callers
    outsider_email: str = ""  # a registered user who is not a member


Sample = Callable[[Res], dict]

SAMPLES: dict[str, Sample] = {
    # auth and other unscoped events (only the anonymous / signed-in checks)
    "auth:register": lambda r: {"email": unique_email("authz-reg"), "password": PASSWORD},
    "auth:login": lambda r: {"email": r.world.login_email, "password": PASSWORD},
    "auth:guest": lambda r: {},
    "auth:refresh": lambda r: {"refreshToken": r.world.take_refresh_token()},
    "auth:logout": lambda r: {},
    "auth:me": lambda r: {},
    "auth:update": lambda r: {"username": f"authz_{new_id()[-10:]}"},
    "auth:upgrade": lambda r: {"email": unique_email("authz-up"), "password": PASSWORD},
    "project:list": lambda r: {},
    "project:create": lambda r: {"name": "Made by the matrix"},
    "project:leave": lambda r: {"id": r.project or "not-joined"},
    "ticker:subscribe": lambda r: {},
    "ticker:unsubscribe": lambda r: {},
    "conversation:leave": lambda r: {"id": r.conversation or "not-joined"},
    "ping": lambda r: {},
    # each room is checked inside (tests/integration/test_replay.py); none readable here
    "sync": lambda r: {"rooms": [{"room": f"project:{r.project or 'none'}", "seq": 0,
                                  "epoch": None}]},
    # projects
    "project:get": lambda r: {"id": r.project},
    "project:update": lambda r: {"id": r.project, "name": "Renamed", "color": "blue"},
    "project:delete": lambda r: {"id": r.project},
    "project:join": lambda r: {"id": r.project},
    "project:member:add": lambda r: {"id": r.project, "email": r.outsider_email,
                                     "role": "viewer"},
    "project:member:remove": lambda r: {"id": r.project, "userId": r.member},
    "project:broadcast": lambda r: {"id": r.project, "event": "cursor", "data": {"x": 1}},
    # files
    "file:list": lambda r: {"projectId": r.project},
    "file:delete": lambda r: {"id": r.file},
    # tables
    "table:create": lambda r: {"projectId": r.project, "name": "Fresh",
                               "columns": [{"name": "title"}, {"name": "qty", "type": "number"}]},
    "table:list": lambda r: {"projectId": r.project},
    "table:get": lambda r: {"tableId": r.table},
    "table:rename": lambda r: {"tableId": r.table, "name": "Renamed"},
    "table:delete": lambda r: {"tableId": r.table},
    "table:import": lambda r: {"projectId": r.project, "fileId": r.file, "name": "Imported"},
    "table:history": lambda r: {"tableId": r.table},
    "table:restore": lambda r: {"tableId": r.table, "at": iso(utcnow())},
    # rows
    "table:rows": lambda r: {"tableId": r.table},
    "row:get": lambda r: {"tableId": r.table, "rowId": r.row},
    "row:add": lambda r: {"tableId": r.table, "values": {"name": "cy", "n": 3}},
    "row:update": lambda r: {"tableId": r.table, "rowId": r.row, "version": 1,
                             "values": {"n": 42}},
    "row:delete": lambda r: {"tableId": r.table, "rowId": r.row, "version": 1},
    "row:lock": lambda r: {"tableId": r.table, "rowId": r.row},
    "row:unlock": lambda r: {"tableId": r.table, "rowId": r.row, "force": True},
    "row:heartbeat": lambda r: {"tableId": r.table, "rowId": r.row, "lockToken": "not-a-token"},
    "row:history": lambda r: {"tableId": r.table, "rowId": r.row},
    "row:restore": lambda r: {"tableId": r.table, "rowId": r.row, "version": 1},
    # chat
    "conversation:create": lambda r: {"projectId": r.project, "title": "Matrix"},
    "conversation:list": lambda r: {"projectId": r.project},
    "conversation:get": lambda r: {"id": r.conversation},
    "conversation:rename": lambda r: {"id": r.conversation, "title": "Renamed"},
    "conversation:delete": lambda r: {"id": r.conversation},
    "conversation:join": lambda r: {"id": r.conversation},
    "message:send": lambda r: {"conversationId": r.conversation, "content": "hello"},
    "message:cancel": lambda r: {"messageId": r.generating},
    # captures
    "pcap:ingest": lambda r: {"fileId": r.file},
    "pcap:cancel": lambda r: {"fileId": r.file},
    "pcap:summary": lambda r: {"fileId": r.capture},
    "pcap:protocols": lambda r: {"fileId": r.capture},
    "pcap:conversations": lambda r: {"fileId": r.capture, "kind": "tcp"},
    "pcap:endpoints": lambda r: {"fileId": r.capture, "kind": "ip"},
    "pcap:io": lambda r: {"fileId": r.capture},
    "pcap:sizes": lambda r: {"fileId": r.capture},
    "pcap:packets": lambda r: {"fileId": r.capture, "limit": 5},
    "pcap:packet": lambda r: {"fileId": r.capture, "number": 1},
    "pcap:follow": lambda r: {"fileId": r.capture, "stream": "tcp", "index": 0},
    # imported chats
    "chat:import": lambda r: {"projectId": r.project, "fileId": r.export},
    "chat:import:cancel": lambda r: {"fileId": r.export},
    "chat:import:status": lambda r: {"fileId": r.export},
    "chat:list": lambda r: {"projectId": r.project},
    "chat:get": lambda r: {"id": r.chat},
    "chat:messages": lambda r: {"chatId": r.chat},
    "chat:rename": lambda r: {"id": r.chat, "name": "Renamed"},
    "chat:delete": lambda r: {"id": r.chat},
    "chat:search": lambda r: {"projectId": r.project, "query": "hello"},
    # admin events: a user id that does not exist, so the admin's call changes nothing
    "admin:users": lambda r: {"q": "authz"},
    "admin:user:update": lambda r: {"id": "no-such-user", "active": True},
    "admin:user:delete": lambda r: {"id": "no-such-user"},
    "admin:metrics": lambda r: {},
    "admin:audit": lambda r: {},
}

# -- the world -----------------------------------------------------------------------------

class World:
    """A real server and the callers' sockets, plus the store to build resources with."""

    def __init__(self, server: RunningServer):
        self.server = server
        self.services = services_of(cast(web.Application, server.app))
        self.store = self.services.store
        data_dir = Path(server.settings.data_dir)
        # The embedded store's file, read beside the server (snapshots: SQLite only).
        self.on_sqlite = self.store.backend == "sqlite"  # the store is wrapped (metrics)
        self.db_path = data_dir / "collab.sqlite3"  # store.factory.open_store
        self.blob_dir = data_dir / "files"  # store.factory.open_blobs
        self.clients: dict[str, Client] = {}
        self.ids: dict[str, str] = {}
        self.extra_clients: list[Client] = []
        self.login_email: str = ""
        self.refresh_tokens: list[str] = []
        self.outsider_email = ""
        self.captures: dict[str, str] = {}
        self.homes: dict[str, str] = {}  # the long-lived projects holding the captures
        self.generating: set[str] = set()  # replies we left generating on purpose
        self.calls = 0
        self.refusals_checked = 0
        self.outcomes: list[tuple[str, str, str, str]] = []  # event, caller, target, answer

    async def client(self, name: str, *, register: bool = True) -> Client:
        c = await Client(self.server.url, name).connect()
        if register:
            await c.register(unique_email(f"authz-{name}"), PASSWORD)
        return c

    async def setup(self) -> None:
        for name in ("stranger", "admin", "viewer", "editor", "owner", "q_owner", "member",
                     "outsider", "login"):
            c = await self.client(name)
            self.clients[name] = c
            self.ids[name] = signed(c)[0]["id"]
        self.outsider_email = signed(self.clients["outsider"])[0]["email"]
        self.login_email = signed(self.clients["login"])[0]["email"]
        self.refresh_tokens.append(signed(self.clients["login"])[1]["refreshToken"])
        guest = await self.client("guest", register=False)
        await guest.guest()
        self.clients["guest"], self.ids["guest"] = guest, signed(guest)[0]["id"]
        self.clients["anonymous"] = await self.client("anonymous", register=False)
        # The admin: a site role set in the store; signing in again puts it in the socket.
        admin = self.clients["admin"]
        await self.store.users.update_user(self.ids["admin"], role="admin")
        await admin.ok("auth:login", {"email": signed(admin)[0]["email"], "password": PASSWORD})
        assert (await admin.ok("auth:me"))["role"] == "admin"
        # Long-lived projects with an ingested capture each (ingest runs tshark: once).
        self.homes["P"] = await self._project("P")
        self.homes["Q"] = await self._project("Q")
        data = (PCAPS / "http-simple-get.pcap").read_bytes()
        for target, owner in (("P", "owner"), ("Q", "q_owner")):
            token = signed(self.clients[owner])[1]["accessToken"]
            status, out = await upload(self.server.url, token, self.homes[target], data,
                                       "web.pcap")
            assert status == 201, out
            self.captures[target] = out["data"]["id"]
        await self.ensure_captures()
        await self.quiesce()

    async def ensure_captures(self, timeout: float = 60) -> None:
        """Until both captures are ingested (polling the store: the ingest runs in a
        worker); one a caller cancelled, or whose ingest failed, is ingested anew."""
        deadline = time.monotonic() + timeout
        for target, fid in self.captures.items():
            while True:
                job = await self.store.pcap.get_job(fid)
                if job is not None and job.state == "done":
                    break
                if job is not None and job.state not in ("queued", "running"):
                    owner = self.ids["owner" if target == "P" else "q_owner"]
                    await self.services.pcap.enqueue(fid, self.homes[target], owner)
                assert time.monotonic() < deadline, f"capture ingest did not finish: {job}"
                await asyncio.sleep(0.05)

    def take_refresh_token(self) -> str:
        return self.refresh_tokens.pop()

    async def _project(self, target: str) -> str:
        store = self.store
        if target == "P":
            project = await store.projects.create_project(owner_id=self.ids["owner"],
                                                          name="P (own)")
            for name, role in (("editor", "editor"), ("viewer", "viewer"),
                               ("member", "viewer")):
                await store.projects.set_member(project.id, self.ids[name], role)
        else:
            project = await store.projects.create_project(owner_id=self.ids["q_owner"],
                                                          name="Q (another's)")
            await store.projects.set_member(project.id, self.ids["member"], "viewer")
        return project.id

    async def build(self, target: str) -> Res:
        """A fresh project with the target's members and one of each resource."""
        store = self.store
        owner = self.ids["owner" if target == "P" else "q_owner"]
        pid = await self._project(target)
        table = await store.tables.create_table(
            project_id=pid, name="People", columns=[Column("name", "text"),
                                                    Column("n", "number")], created_by=owner)
        [row] = await store.tables.add_rows(table.id, [{"name": "ada", "n": 1}], owner)
        fid = new_id()
        writer = await self.services.blobs.create(fid)
        await writer.write(CSV)
        await writer.commit()
        await store.files.create_file(file_id=fid, project_id=pid, name="people.csv",
                                      size=len(CSV), mime="text/csv",
                                      sha256=hashlib.sha256(CSV).hexdigest(), uploader_id=owner,
                                      storage_key=fid)
        conv = await store.chat.create_conversation(owner_id=owner, project_id=pid, title="Chat")
        busy = await store.chat.create_conversation(owner_id=owner, project_id=pid, title="Busy")
        exchange = await store.chat.start_exchange(
            busy.id, author_id=owner, content="hi", attachments=[], instance="elsewhere",
            lease_until=utcnow() + timedelta(days=1))
        self.generating.add(exchange.reply.id)
        export = new_id()
        writer = await self.services.blobs.create(export)
        await writer.write(WHATSAPP)
        await writer.commit()
        await store.files.create_file(file_id=export, project_id=pid, name="chat.txt",
                                      size=len(WHATSAPP), mime="text/plain",
                                      sha256=hashlib.sha256(WHATSAPP).hexdigest(),
                                      uploader_id=owner, storage_key=export)
        chat_id = await store.chats.begin_chat(project_id=pid, file_id=fid, attempt=1,
                                               name="Imported", platform="whatsapp",
                                               imported_by=owner)
        await store.chats.add_lines(chat_id, 1, 1, [message_row(ParsedMessage(
            time=utcnow(), author="Ana", text="hello there"))])
        await store.chats.publish_chats(fid, 1)
        return Res(self, project=pid, table=table.id, row=row.id, file=fid, chat=chat_id,
                   export=export,
                   capture=self.captures[target], conversation=conv.id,
                   generating=exchange.reply.id, member=self.ids["member"],
                   outsider_email=self.outsider_email)

    # -- observing the store -------------------------------------------------------------

    def snapshot(self) -> dict[str, list]:
        """Every row of every table (sorted) and every stored blob, read beside the server."""
        assert self.on_sqlite, "snapshots read the SQLite file"
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=15)
        try:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            out = {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                   for name in names}
        finally:
            conn.close()
        out["<blobs>"] = sorted((str(p.relative_to(self.blob_dir)), p.stat().st_size)
                                for p in self.blob_dir.rglob("*") if p.is_file())
        return out

    def busy(self) -> bool:
        working = bool(self.services.chat.live or self.services.pcap.running
                       or self.services.imports.running)
        if not self.on_sqlite:
            return working
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=15)
        try:
            jobs = sum(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE state IN "
                                    "('queued', 'running')").fetchone()[0]
                       for table in ("pcap_jobs", "chat_import_jobs"))
            generating = {r[0] for r in conn.execute(
                "SELECT id FROM chat_messages WHERE status = 'generating'")}
        finally:
            conn.close()
        return bool(jobs or generating - self.generating or working)

    async def quiesce(self, timeout: float = 30) -> None:
        """Until what allowed calls started in the background (replies, ingests) is done
        and the store stops changing."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.busy():
                if not self.on_sqlite:
                    return
                now = self.snapshot()
                if now == last:
                    return
                last = now
            await asyncio.sleep(0.05)
        raise AssertionError("the server did not settle after the allowed calls")

    async def call(self, client: Client, event: str, payload: dict, caller: str = "",
                   target: str = "") -> dict:
        self.calls += 1
        ack = await client.call(event, payload)
        if caller:
            answer = "ok" if ack.get("ok") else ack.get("error", {}).get("code", "?")
            self.outcomes.append((event, caller, target, answer))
        return ack


def signed(client: Client) -> tuple[dict, dict]:
    """The user and tokens of a signed-in test client."""
    assert client.user is not None and client.tokens is not None, f"{client.name} signed out"
    return client.user, client.tokens


def describe_change(before: dict, after: dict) -> str:
    parts = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name, []), after.get(name, [])
        if a != b:
            gone = [r for r in a if r not in b]
            new = [r for r in b if r not in a]
            parts.append(f"{name}: -{gone[:2]!r} +{new[:2]!r}")
    return "; ".join(parts)[:1500]




def sample(spec: EventSpec, res: Res) -> dict:
    """A payload ``spec``'s model accepts, naming ``res``'s resources."""
    return SAMPLES.get(spec.name, lambda r: {})(res)


@asynccontextmanager
async def open_world(data_dir: Path, open_storage=None, **settings) -> AsyncIterator[World]:
    """A started server with its callers signed in and its captures ingested. No background
    writer runs unasked: the ticker's first tick comes at start, the next in an hour, and
    offline replies stream without pauses. The anonymous caller's socket lives for the whole
    world: past AUTH_TIMEOUT_S's default."""
    config = make_settings(data_dir, ticker_interval_s=3600, chat_offline_delay_ms=0,
                           auth_timeout_s=3600, **settings)
    server = await RunningServer(config, open_storage=open_storage).start()
    w = World(server)
    try:
        await w.setup()
        yield w
    finally:
        for c in [*w.clients.values(), *w.extra_clients]:
            await c.close()
        await server.stop()
