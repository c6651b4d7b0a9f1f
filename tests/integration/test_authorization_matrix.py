"""The authorization matrix, generated from the event registry (``handlers.all_events()``).

Every event is called, through a real server and real Socket.IO clients, as each of:

* ``anonymous`` — connected, not signed in;
* ``stranger`` — registered, member of nothing;
* ``guest`` — ``auth:guest``, member of nothing;
* ``admin`` — site admin (role ``admin`` in the store), not a member of P;
* ``viewer``, ``editor``, ``owner`` — members of project P with those roles;

against the resources of P (the callers' own project) and of Q (another user's project, no
caller a member). What each call must answer follows from who may call the event — pinned in
``POLICY`` and checked against the ``@event`` declarations, so that changing an event's role
is a deliberate, reviewed edit here — and from the resource kind its scope names:

* not callable by anyone, and anonymous → ``unauthorized``;
* a scope, and a caller who is not a member of the resource's project (every caller on Q;
  stranger, guest and admin on P) → ``not_found`` naming the resource kind ("table not
  found"); for ``InRoom`` → ``forbidden`` (join the project first);
* a member with a lower role than the scope's → ``forbidden`` (needs the … role);
* a member with enough role → past authorization: ``ok``, or an error that is none of
  unauthorized / forbidden / the scope's own not_found (and not bad_request or internal,
  which would mean the sample payload is wrong); except where a handler documents a rule of
  its own on top of the scope (``RULES``).

Every refused call must change nothing: the embedded SQLite file (every table, read with a
separate connection) and the blob directory are compared before and after it.

Each scoped event needs a valid payload in ``SAMPLES`` (so authorization is the only reason to
refuse); a new event without one fails ``test_every_event_has_a_valid_sample``. Resources
are rebuilt for every event and between allowed calls, so destructive calls (deletes, member
removal) never disturb later checks.

Also checked: another project's resource is refused exactly like an id that does not exist
(``ids reveal nothing``, handlers/scopes.py), and the handler rules' permitted side.
"""
from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import ValidationError

from handlers import all_events
from handlers.base import EventSpec
from handlers.scopes import InRoom, Scope
from ingest.chats.model import ParsedMessage
from server.keys import services_of
from store.base import Column, role_at_least
from store.ids import iso, new_id, utcnow
from tests.client import Client, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload
from tests.pcap_files import PCAPS

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the world's loop

EVENTS: list[EventSpec] = all_events()
SPECS: dict[str, EventSpec] = {spec.name: spec for spec in EVENTS}
PASSWORD = "correct horse"
CSV = b"name,n\nada,1\nbob,2\n"
WHATSAPP = b"12/03/2024, 09:16 - Ana: hello\n12/03/2024, 09:17 - Bo: hi Ana\n"

# The callers, in the order their calls are made (refusals first, see ``_run_scoped``), and
# their role in P (the own project). Nobody but Q's owner is a member of Q.
CALLERS = ("anonymous", "stranger", "guest", "admin", "viewer", "editor", "owner")
ROLE_IN_P: dict[str, str | None] = {"anonymous": None, "stranger": None, "guest": None,
                                    "admin": None, "viewer": "viewer", "editor": "editor",
                                    "owner": "owner"}
TARGETS = ("P", "Q")


# -- resources and sample payloads ---------------------------------------------------------

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

# The reviewed policy: who may call each event — "anyone", "signed in", or the project role a
# scoped event needs on its resource ("viewer" < "editor" < "owner"; project:broadcast's is the
# role project:join checks). Pinned here, apart from the ``@event`` declarations the matrix is
# generated from, so that a changed role, a dropped scope or a dropped ``auth`` fails the
# matrix until this table is changed on purpose (and the change is reviewed).
POLICY: dict[str, str] = {
    "auth:register": "anyone", "auth:login": "anyone", "auth:guest": "anyone",
    "auth:refresh": "anyone", "auth:logout": "signed in", "auth:me": "signed in",
    "auth:update": "signed in",
    "auth:upgrade": "signed in",
    "admin:users": "admin", "admin:user:update": "admin", "admin:user:delete": "admin",
    "admin:metrics": "admin", "admin:audit": "admin",
    "project:list": "signed in", "project:create": "signed in", "project:get": "viewer",
    "project:update": "owner", "project:delete": "owner", "project:join": "viewer",
    "project:leave": "signed in", "project:member:add": "owner",
    "project:member:remove": "viewer", "project:broadcast": "viewer",
    "file:list": "viewer", "file:delete": "editor",
    "table:create": "editor", "table:list": "viewer", "table:get": "viewer",
    "table:rename": "editor", "table:delete": "owner", "table:import": "editor",
    "table:history": "viewer", "table:restore": "editor",
    "table:rows": "viewer", "row:get": "viewer", "row:add": "editor", "row:update": "editor",
    "row:delete": "editor", "row:lock": "editor", "row:unlock": "editor",
    "row:heartbeat": "editor", "row:history": "viewer", "row:restore": "editor",
    "ticker:subscribe": "signed in", "ticker:unsubscribe": "signed in",
    "conversation:create": "editor", "conversation:list": "viewer",
    "conversation:get": "viewer", "conversation:rename": "editor",
    "conversation:delete": "editor", "conversation:join": "viewer",
    "conversation:leave": "signed in", "message:send": "editor", "message:cancel": "editor",
    "pcap:ingest": "editor", "pcap:cancel": "editor", "pcap:summary": "viewer",
    "pcap:protocols": "viewer", "pcap:conversations": "viewer", "pcap:endpoints": "viewer",
    "pcap:io": "viewer", "pcap:sizes": "viewer", "pcap:packets": "viewer",
    "pcap:packet": "viewer", "pcap:follow": "viewer",
    "chat:import": "editor", "chat:import:cancel": "editor", "chat:import:status": "viewer",
    "chat:list": "viewer",
    "chat:get": "viewer", "chat:messages": "viewer", "chat:rename": "editor",
    "chat:delete": "editor", "chat:search": "viewer",
    "ping": "anyone",
}
PROJECT_ROLES = ("viewer", "editor", "owner")


def declared(spec: EventSpec) -> str:
    """The registry's answer to the question POLICY answers."""
    if not spec.auth:
        return "anyone"
    if spec.admin:
        return "admin"
    return spec.scope.role if spec.scope is not None else "signed in"


# Rules handlers add on top of their scope (each documented in the handler's docstring): a
# member whose role satisfies the scope is still refused, ``forbidden`` with this message.
RULES: dict[str, dict[str, str]] = {
    # the conversation was created by P's owner: an editor is neither creator nor owner
    "conversation:delete": {"editor": "only the conversation's creator or a project owner"},
    # the sample removes another member: only owners may
    "project:member:remove": {"viewer": "only owners remove other members",
                              "editor": "only owners remove other members"},
    # the sample breaks the lock with force: only owners may
    "row:unlock": {"editor": "only project owners can break"},
}


# -- what each call must answer ------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    code: str | None  # None: the call gets past authorization
    message: str = ""  # the refusal's message contains this
    exact: bool = False  # … or is exactly this
    why: str = ""

    @property
    def refused(self) -> bool:
        return self.code is not None


PASS = Expect(None, why="allowed")


def expect(spec: EventSpec, caller: str, target: str) -> Expect:
    """The answer the policy promises to ``caller`` acting on ``target``'s resources (the
    resource kind named by a refusal comes from the event's scope)."""
    access = POLICY[spec.name]
    if access == "anyone":
        return PASS
    if caller == "anonymous":
        return Expect("unauthorized", why="auth event, not signed in")
    if access == "admin":
        return PASS if caller == "admin" else Expect("forbidden", "admins only", why="admins")
    if access == "signed in":
        return PASS
    scope = spec.scope
    assert scope is not None, f"{spec.name}: the policy gives it a scope; it has none"
    role = ROLE_IN_P[caller] if target == "P" else None
    if isinstance(scope, InRoom):
        if role is None or not role_at_least(role, access):
            return Expect("forbidden", "join the project", why="not in the project's room")
        return PASS
    if role is None:
        return Expect("not_found", scope_not_found(scope), exact=True, why="not a member")
    if not role_at_least(role, access):
        return Expect("forbidden", f"needs the {access} role", why=f"{role} < {access}")
    rule = RULES.get(spec.name, {}).get(caller)
    if rule:
        return Expect("forbidden", rule, why="handler rule")
    return PASS


def scope_not_found(scope: Scope) -> str:
    return f"{scope.kind} not found"


def judge(spec: EventSpec, exp: Expect, ack: dict) -> str | None:
    """What is wrong with ``ack`` (None: nothing)."""
    if not isinstance(ack, dict) or "ok" not in ack:
        return f"not an ack: {ack!r}"
    err = ack.get("error") or {}
    code, message = err.get("code"), err.get("message", "")
    if exp.refused:
        if ack["ok"]:
            return f"expected {exp.code} ({exp.why}), got ok"
        if code != exp.code:
            return f"expected {exp.code} ({exp.why}), got {code}: {message}"
        if exp.exact and message != exp.message:
            return f"expected {exp.code} {exp.message!r} ({exp.why}), got {message!r}"
        if not exp.exact and exp.message not in message:
            return f"expected {exp.code} mentioning {exp.message!r} ({exp.why}), got {message!r}"
        return None
    if ack["ok"]:
        return None
    if code in ("unauthorized", "token_expired", "forbidden"):
        return f"allowed call refused: {code}: {message}"
    if spec.scope is not None and code == "not_found" and message == scope_not_found(spec.scope):
        return f"allowed call refused as invisible: {message}"
    if spec.scope is not None and code in ("bad_request", "internal"):
        return f"allowed call failed ({code}: {message}): fix its sample payload"
    return None


# -- the world -----------------------------------------------------------------------------

class World:
    """A real server and the callers' sockets, plus the store to build resources with."""

    def __init__(self, server: RunningServer):
        self.server = server
        self.services = services_of(cast(web.Application, server.app))
        self.store = self.services.store
        data_dir = Path(server.settings.data_dir)
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
        deadline = time.monotonic() + 60
        for fid in self.captures.values():
            while True:
                job = await self.store.pcap.get_job(fid)
                if job is not None and job.state == "done":
                    break
                assert job is None or job.state in ("queued", "running"), job
                assert time.monotonic() < deadline, "capture ingest did not finish"
                await asyncio.sleep(0.05)
        await self.quiesce()

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
        await store.chats.add_lines(chat_id, 1, 1, [ParsedMessage(
            time=utcnow(), author="Ana", text="hello there")])
        await store.chats.publish_chats(fid, 1)
        return Res(self, project=pid, table=table.id, row=row.id, file=fid, chat=chat_id,
                   export=export,
                   capture=self.captures[target], conversation=conv.id,
                   generating=exchange.reply.id, member=self.ids["member"],
                   outsider_email=self.outsider_email)

    # -- observing the store -------------------------------------------------------------

    def snapshot(self) -> dict[str, list]:
        """Every row of every table (sorted) and every stored blob, read beside the server."""
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
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=15)
        try:
            jobs = sum(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE state IN "
                                    "('queued', 'running')").fetchone()[0]
                       for table in ("pcap_jobs", "chat_import_jobs"))
            generating = {r[0] for r in conn.execute(
                "SELECT id FROM chat_messages WHERE status = 'generating'")}
        finally:
            conn.close()
        return bool(jobs or generating - self.generating or self.services.chat.live
                    or self.services.pcap.running or self.services.imports.running)

    async def quiesce(self, timeout: float = 30) -> None:
        """Until what allowed calls started in the background (replies, ingests) is done
        and the store stops changing."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.busy():
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


def matrix_report(w: World) -> str:
    """The answers seen, one line per event (shown with ``pytest -s``)."""
    by_event: dict[str, list[str]] = {}
    for event, caller, target, answer in w.outcomes:
        by_event.setdefault(event, []).append(f"{caller}@{target}={answer}")
    lines = [f"authorization matrix: {w.calls} calls, {w.refusals_checked} refusals checked "
             "against a store snapshot"]
    lines += [f"  {event}: {' '.join(cells)}" for event, cells in by_event.items()]
    return "\n".join(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory):
    # No background writer may run while a refusal is being checked: the ticker's first tick
    # comes at start, the next in an hour; offline replies stream without pauses. The
    # anonymous caller's socket lives for the whole module: past AUTH_TIMEOUT_S's default.
    settings = make_settings(tmp_path_factory.mktemp("authz"), ticker_interval_s=3600,
                             chat_offline_delay_ms=0, auth_timeout_s=3600)
    server = await RunningServer(settings).start()
    w = World(server)
    try:
        await w.setup()
        yield w
        print(matrix_report(w))
    finally:
        for c in [*w.clients.values(), *w.extra_clients]:
            await c.close()
        await server.stop()


# -- the matrix ----------------------------------------------------------------------------

def _sample(spec: EventSpec, res: Res) -> dict:
    return SAMPLES.get(spec.name, lambda r: {})(res)


async def _refusal(w: World, spec: EventSpec, caller: str, target: str, payload: dict,
                   exp: Expect, problems: list[str]) -> bool:
    """One call that must be refused and must leave the store as it was; whether it did."""
    label = f"{spec.name} as {caller} on {target}"
    before = w.snapshot()
    ack = await w.call(w.clients[caller], spec.name, payload, caller, target)
    after = w.snapshot()
    w.refusals_checked += 1
    wrong = judge(spec, exp, ack)
    if wrong:
        problems.append(f"{label}: {wrong}")
    if before != after:
        problems.append(f"{label}: refused call changed the store: "
                        f"{describe_change(before, after)}")
        await w.quiesce()
        return False
    return True


async def _run_unscoped(w: World, spec: EventSpec) -> list[str]:
    """Events without a scope: anonymous is refused unless anyone may call; a caller who may
    gets past authorization, on a socket of its own (sign-in, logout and upgrade change the
    socket's session)."""
    problems: list[str] = []
    scratch = Res(w)
    access = POLICY[spec.name]
    refused = ["anonymous"] if access != "anyone" else []
    if access == "admin":
        refused += [c for c in CALLERS if c not in ("anonymous", "admin")]
    for caller in refused:
        await _refusal(w, spec, caller, "-", _sample(spec, scratch),
                       expect(spec, caller, "P"), problems)
    if access == "admin":
        who, client = "admin", w.clients["admin"]
    else:
        who = "anonymous" if access == "anyone" else "signed-in"
        client = await w.client(who, register=access != "anyone")
        w.extra_clients.append(client)
    ack = await w.call(client, spec.name, _sample(spec, scratch), who, "-")
    wrong = judge(spec, PASS, ack)
    if wrong:
        problems.append(f"{spec.name} as {who}: {wrong}")
    if client is not w.clients.get(who):
        await client.close()
    await w.quiesce()
    return problems


async def _run_scoped(w: World, spec: EventSpec) -> list[str]:
    problems: list[str] = []
    res = {"P": await w.build("P"), "Q": await w.build("Q")}
    cases = [(caller, target, expect(spec, caller, target))
             for caller in CALLERS for target in TARGETS]
    refusals = [c for c in cases if c[2].refused]
    allowed = [c for c in cases if not c[2].refused]
    for caller, target, exp in refusals:
        if not await _refusal(w, spec, caller, target, _sample(spec, res[target]), exp,
                              problems):
            res[target] = await w.build(target)  # so one wrong answer does not cascade
    for i, (caller, target, exp) in enumerate(allowed):
        assert target == "P"
        if i:  # the previous call may have deleted or changed what this one needs
            await w.quiesce()
            res[target] = await w.build(target)
        client = w.clients[caller]
        if isinstance(spec.scope, InRoom):
            await client.ok("project:join", {"id": res[target].project})
        ack = await w.call(client, spec.name, _sample(spec, res[target]), caller, target)
        wrong = judge(spec, exp, ack)
        if wrong:
            problems.append(f"{spec.name} as {caller} on {target}: {wrong}")
    await w.quiesce()
    return problems


@in_module_loop
@pytest.mark.parametrize("spec", EVENTS, ids=lambda spec: spec.name)
async def test_event_answers_as_declared(world: World, spec: EventSpec):
    assert spec.name in POLICY, f"{spec.name} is not in POLICY: say who may call it"
    scoped = POLICY[spec.name] in PROJECT_ROLES
    assert scoped == (spec.scope is not None), (
        f"{spec.name}: POLICY says {POLICY[spec.name]!r}, the declaration {declared(spec)!r}")
    if scoped:
        problems = await _run_scoped(world, spec)
    else:
        problems = await _run_unscoped(world, spec)
    assert not problems, (f"{spec.name} (policy: {POLICY[spec.name]}; declared: "
                          f"{spec.access}):\n  " + "\n  ".join(problems))


@in_module_loop
@pytest.mark.parametrize("spec", [s for s in EVENTS if s.scope is not None],
                         ids=lambda spec: spec.name)
async def test_invisible_resource_answers_like_a_missing_one(world: World, spec: EventSpec):
    """"ids reveal nothing": another project's resource and an id that does not exist get the
    same refusal, so a caller cannot probe which ids exist."""
    assert spec.scope is not None
    res = await world.build("Q")
    invisible = _sample(spec, res)
    missing = {**invisible, spec.scope.field: new_id()}
    client = world.clients["stranger"]
    a = await world.call(client, spec.name, invisible)
    b = await world.call(client, spec.name, missing)
    assert not a["ok"] and not b["ok"], (a, b)
    seen = (a["error"]["code"], a["error"]["message"], a["error"].get("details"))
    ghost = (b["error"]["code"], b["error"]["message"], b["error"].get("details"))
    assert seen == ghost, (f"{spec.name}: an existing resource of another project answers "
                           f"{seen}, a missing id answers {ghost}")


@in_module_loop
async def test_handler_rules_allow_what_their_docstrings_promise(world: World):
    """The other side of ``RULES``: the conversation's creator (an editor) may delete it, any
    member may leave a project, an owner may break a lock someone else holds."""
    w, c = world, world.clients
    res = await w.build("P")
    conv = await c["editor"].ok("conversation:create", {"projectId": res.project})
    assert await c["editor"].ok("conversation:delete", {"id": conv["id"]}) == {"id": conv["id"]}
    conv = await c["editor"].ok("conversation:create", {"projectId": res.project})
    await w.store.projects.set_member(res.project, w.ids["editor"], "viewer")
    err = await c["editor"].err("conversation:delete", {"id": conv["id"]})
    assert err["code"] == "forbidden"  # the creator, but no longer an editor
    await w.store.projects.set_member(res.project, w.ids["editor"], "editor")

    lock = await c["editor"].ok("row:lock", {"tableId": res.table, "rowId": res.row})
    assert lock["lockToken"]
    assert (await c["editor"].err("row:unlock", {"tableId": res.table, "rowId": res.row,
                                                 "force": True}))["code"] == "forbidden"
    assert await c["owner"].ok("row:unlock", {"tableId": res.table, "rowId": res.row,
                                              "force": True}) == {"released": True}

    await c["viewer"].ok("project:member:remove", {"id": res.project,
                                                   "userId": w.ids["viewer"]})
    err = await c["viewer"].err("project:get", {"id": res.project})
    assert (err["code"], err["message"]) == ("not_found", "project not found")
    await w.quiesce()


def test_declarations_match_the_policy():
    """Each event's declaration says what POLICY says (the catalogue's "who may call"
    column comes from the declarations): a change to either must be made to both."""
    assert set(POLICY) == set(SPECS), (
        f"events missing from POLICY: {sorted(set(SPECS) - set(POLICY))}; "
        f"POLICY entries of no event: {sorted(set(POLICY) - set(SPECS))}")
    differ = {name: (POLICY[name], declared(spec)) for name, spec in SPECS.items()
              if POLICY[name] != declared(spec)}
    assert not differ, f"(policy, declaration) differ: {differ}"


def test_every_event_has_a_valid_sample():
    """A new scoped event without a sample payload fails here, and so does a sample that
    its event's payload model refuses or one left behind by a removed event."""
    scoped = {s.name for s in EVENTS if s.scope is not None}
    assert not scoped - set(SAMPLES), f"events without a sample: {sorted(scoped - set(SAMPLES))}"
    stale = sorted(set(SAMPLES) - set(SPECS))
    assert not stale, f"samples of no event: {stale}"
    assert not set(RULES) - scoped, f"rules of no scoped event: {sorted(set(RULES) - scoped)}"

    class _Stub:  # what samples read of the world, without a server
        login_email = "someone@example.com"

        @staticmethod
        def take_refresh_token() -> str:
            return "r" * 43

    ids = {f: new_id() for f in ("project", "table", "row", "file", "capture", "conversation",
                                 "generating", "chat", "export", "member")}
    res = Res(cast(World, _Stub()), outsider_email="outsider@example.com", **ids)
    bad = []
    for spec in EVENTS:
        payload = _sample(spec, res)
        try:
            spec.model.model_validate(payload)
        except ValidationError as exc:
            bad.append(f"{spec.name}: {exc.errors(include_url=False)}")
        if spec.scope is not None and payload.get(spec.scope.field) in (None, ""):
            if not isinstance(spec.scope, InRoom):
                bad.append(f"{spec.name}: sample does not set the scope field {spec.scope.field}")
    assert not bad, "\n".join(bad)
