"""The whole server on the MongoDB backend: two app instances in this process over one
stand-in database and one GridFS bucket, behind a real redis-server (Redis manager, locks,
presence), so what one instance writes the other serves and pushes."""
from __future__ import annotations

import hashlib
import os

import pytest

from store.blobs.gridfs import BUCKET
from tests.client import Client, unique_email, unstamped
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import download, upload
from tests.mongo_storage import MongoStorage

DB = "collab"


class Pair:
    """Instances ``a`` and ``b``, their shared stand-in, and the clients made on them."""

    def __init__(self, a: RunningServer, b: RunningServer, sync, db: str):
        self.a, self.b = a, b
        self.sync_db = sync[db]
        self.clients: list[Client] = []

    async def client(self, server: RunningServer, name: str, token: str | None = None):
        c = await Client(server.url, name).connect(token)
        self.clients.append(c)
        return c


@pytest.fixture
async def pair(tmp_path):
    """On a real MongoDB when MONGO_URL is set (a fresh database, dropped afterwards), else
    on the strict stand-in shared by both instances."""
    storage = MongoStorage(DB)
    redis = RedisServer().start()
    servers = []
    try:
        for name in ("a", "b"):
            settings = make_settings(tmp_path / name, redis_url=redis.url,
                                     instance_id=f"mongo-{name}", ticker_interval_s=3600,
                                     chat_offline_delay_ms=0, **storage.settings)
            servers.append(await RunningServer(settings,
                                               open_storage=storage.open_storage).start())
        made = Pair(*servers, storage.sync, storage.db)
        yield made
        for c in made.clients:
            await c.close()
    finally:
        for srv in servers:
            await srv.stop()
        redis.stop()
        storage.close()


async def shared_project(pair: Pair, name: str):
    """Ana registers and makes a project on A; Bo registers on B and joins it there."""
    ana = await pair.client(pair.a, "ana@a")
    await ana.register(unique_email("ana"))
    bo = await pair.client(pair.b, "bo@b")
    await bo.register(unique_email("bo"))
    p = await ana.ok("project:create", {"name": name})
    await ana.ok("project:member:add", {"id": p["id"], "email": bo.user["email"],
                                        "role": "editor"})
    await ana.ok("project:join", {"id": p["id"]})
    await bo.ok("project:join", {"id": p["id"]})
    return p, ana, bo


async def test_both_instances_use_the_mongo_backend(pair):
    ana = await pair.client(pair.a, "ana@a")
    out = await ana.register(unique_email("ana"))
    assert pair.sync_db["users"].find_one({"_id": out["user"]["id"]}) is not None
    # Ana's token is good on B: same users, same JWT secret.
    again = await pair.client(pair.b, "ana@b", out["tokens"]["accessToken"])
    assert (await again.ok("project:list")) == []


async def test_upload_on_a_list_download_delete_on_b(pair):
    p, ana, bo = await shared_project(pair, "Shared files")
    body = os.urandom(3 * 1024 * 1024 + 17)
    status, out = await upload(pair.a.url, ana.tokens["accessToken"], p["id"], body, "blob.bin")
    assert status == 201, out
    fid = out["data"]["id"]
    added = await bo.wait_for("file:added", lambda d: d["file"]["id"] == fid)
    assert added["file"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert pair.sync_db[f"{BUCKET}.files"].find_one({"_id": fid})["length"] == len(body)

    listed = await bo.ok("file:list", {"projectId": p["id"]})
    assert [f["id"] for f in listed["items"]] == [fid]
    status, data, _ = await download(pair.b.url, bo.tokens["accessToken"], fid)
    assert status == 200 and data == body

    await bo.ok("file:delete", {"id": fid})
    deleted = await ana.wait_for("file:deleted", lambda d: d["id"] == fid)
    assert unstamped(deleted) == {"projectId": p["id"], "id": fid}
    assert (await download(pair.a.url, ana.tokens["accessToken"], fid))[0] == 404
    assert (await ana.ok("file:list", {"projectId": p["id"]}))["items"] == []
    assert pair.sync_db[f"{BUCKET}.files"].count_documents({}) == 0
    assert pair.sync_db[f"{BUCKET}.chunks"].count_documents({}) == 0


async def test_rows_and_locks_across_instances(pair):
    p, ana, bo = await shared_project(pair, "Shared tables")
    t = await ana.ok("table:create", {"projectId": p["id"], "name": "brokers", "columns": [
        {"name": "user", "type": "text"}, {"name": "p.n.l $", "type": "number"}]})
    await bo.wait_for("table:created", lambda d: d["table"]["id"] == t["id"])
    row = await ana.ok("row:add", {"tableId": t["id"], "values": {"user": "ana",
                                                                   "p.n.l $": 12.5}})
    pushed = await bo.wait_for("row:added", lambda d: d["row"]["id"] == row["id"])
    assert pushed["row"]["values"] == {"user": "ana", "p.n.l $": 12.5}
    rows = await bo.ok("table:rows", {"tableId": t["id"], "sort": "p.n.l $",
                                      "filter": [{"column": "p.n.l $", "op": "gt", "value": 12}]})
    assert [r["id"] for r in rows["items"]] == [row["id"]]

    lock = await bo.ok("row:lock", {"tableId": t["id"], "rowId": row["id"]})
    seen = await ana.wait_for("row:locked", lambda d: d["rowId"] == row["id"])
    assert seen["userId"] == bo.user["id"]
    refused = await ana.err("row:lock", {"tableId": t["id"], "rowId": row["id"]})
    assert refused["code"] == "locked"
    held = await ana.ok("table:get", {"tableId": t["id"]})
    assert [(h["rowId"], h["userId"]) for h in held["locks"]] == [(row["id"], bo.user["id"])]
    assert held["rowCount"] == 1
    assert (await ana.err("row:update", {"tableId": t["id"], "rowId": row["id"], "version": 1,
                                         "values": {"user": "x"}}))["code"] == "locked"

    updated = await bo.ok("row:update", {"tableId": t["id"], "rowId": row["id"], "version": 1,
                                         "lockToken": lock["lockToken"],
                                         "values": {"p.n.l $": -3}})
    assert updated["version"] == 2
    got = await ana.wait_for("row:updated", lambda d: d["row"]["version"] == 2)
    assert got["row"]["values"] == {"user": "ana", "p.n.l $": -3}
    await bo.ok("row:unlock", {"tableId": t["id"], "rowId": row["id"]})
    await ana.wait_for("row:unlocked", lambda d: d["rowId"] == row["id"])
    history = await ana.ok("row:history", {"tableId": t["id"], "rowId": row["id"]})
    assert [(c["op"], c["version"]) for c in history] == [("add", 1), ("update", 2)]


def documents(pair: Pair) -> dict[str, int]:
    """Documents per collection (GridFS's included), read beside the servers."""
    return {name: pair.sync_db[name].count_documents({})
            for name in sorted(pair.sync_db.list_collection_names())}


async def test_admin_deletes_a_user_and_everything_they_alone_owned(pair):
    from server.keys import services_of
    from tests.admin_helpers import make_admin, user_with_everything

    store = services_of(pair.a.app).store
    admin = await make_admin(lambda name: pair.client(pair.a, name), store)
    host = await pair.client(pair.b, "host")
    await host.register(unique_email("host"))
    await host.ok("project:create", {"name": "host's"})
    before = documents(pair)
    made = await user_with_everything(pair.b.url, lambda name: pair.client(pair.b, name), host)
    assert documents(pair) != before
    out = await admin.ok("admin:user:delete", {"id": made["victim"].user["id"]})
    assert (out["projectsDeleted"], out["projectsTransferred"]) == (1, 0)
    await made["victim"].wait_for("auth:revoked")  # on the other instance
    after = documents(pair)
    assert after.pop("audit_log") == before.pop("audit_log", 0) + 1
    assert {k: v for k, v in after.items() if v} == {k: v for k, v in before.items() if v}
