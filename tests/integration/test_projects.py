"""project:* on one instance: CRUD, members and roles, rooms, presence, broadcast."""
from __future__ import annotations

from tests.client import unique_email


async def signed_in(clients, prefix="u"):
    c = await clients(name=prefix)
    await c.register(unique_email(prefix))
    return c


async def test_crud_and_updates_pushed_to_room(clients):
    owner = await signed_in(clients, "owner")
    p = await owner.ok("project:create", {"name": "Alpha", "description": "d", "color": "#00ff00"})
    assert p["role"] == "owner" and p["members"][0]["role"] == "owner"
    assert p["members"][0]["username"] == owner.user["username"]
    await owner.ok("project:join", {"id": p["id"]})
    upd = await owner.ok("project:update", {"id": p["id"], "name": "Beta", "color": "blue"})
    assert upd["name"] == "Beta" and upd["description"] == "d"
    pushed = await owner.wait_for("project:updated", lambda d: d["project"]["name"] == "Beta")
    assert pushed["projectId"] == p["id"]
    assert [x["name"] for x in await owner.ok("project:list")] == ["Beta"]
    assert (await owner.ok("project:get", {"id": p["id"]}))["color"] == "blue"
    await owner.ok("project:delete", {"id": p["id"]})
    await owner.wait_for("project:deleted", lambda d: d["projectId"] == p["id"])
    assert await owner.ok("project:list") == []
    assert (await owner.err("project:get", {"id": p["id"]}))["code"] == "not_found"


async def test_roles_viewer_reads_editor_writes_owner_manages(clients):
    owner = await signed_in(clients, "owner")
    editor = await signed_in(clients, "editor")
    viewer = await signed_in(clients, "viewer")
    stranger = await signed_in(clients, "stranger")
    p = await owner.ok("project:create", {"name": "Roles"})
    await owner.ok("project:member:add", {"id": p["id"], "email": editor.user["email"],
                                          "role": "editor"})
    await owner.ok("project:member:add", {"id": p["id"], "email": viewer.user["email"],
                                          "role": "viewer"})
    assert (await viewer.ok("project:get", {"id": p["id"]}))["role"] == "viewer"
    assert (await viewer.err("project:update", {"id": p["id"], "name": "x"}))["code"] == "forbidden"
    assert (await editor.err("project:member:add", {"id": p["id"], "email": stranger.user["email"],
                                                    "role": "viewer"}))["code"] == "forbidden"
    # A stranger learns nothing, not even that the project exists.
    for event, payload in [("project:get", {"id": p["id"]}), ("project:join", {"id": p["id"]}),
                           ("project:update", {"id": p["id"], "name": "x"}),
                           ("project:delete", {"id": p["id"]})]:
        err = await stranger.err(event, payload)
        assert err["code"] == "not_found" and "Roles" not in str(err)
    # The last owner cannot leave or be demoted.
    assert (await owner.err("project:member:remove", {"id": p["id"], "userId": owner.user["id"]}))[
        "code"] == "conflict"
    # A member may leave on their own.
    await viewer.ok("project:member:remove", {"id": p["id"], "userId": viewer.user["id"]})
    assert (await viewer.err("project:get", {"id": p["id"]}))["code"] == "not_found"
    assert (await owner.err("project:member:add", {"id": p["id"], "email": "nobody@example.com",
                                                   "role": "viewer"}))["code"] == "not_found"


async def test_join_snapshot_and_presence(clients):
    a = await signed_in(clients, "a")
    b = await signed_in(clients, "b")
    p = await a.ok("project:create", {"name": "Presence"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "editor"})
    snap = await a.ok("project:join", {"id": p["id"]})
    assert snap["project"]["id"] == p["id"] and len(snap["members"]) == 2
    assert [u["userId"] for u in snap["online"]] == [a.user["id"]]
    await b.ok("project:join", {"id": p["id"]})
    both = await a.wait_for("project:presence", lambda d: len(d["users"]) == 2)
    assert {u["userId"] for u in both["users"]} == {a.user["id"], b.user["id"]}
    a.forget("project:presence")
    await b.close()
    alone = await a.wait_for("project:presence",
                             lambda d: [u["userId"] for u in d["users"]] == [a.user["id"]])
    assert alone["projectId"] == p["id"]


async def test_removed_member_is_taken_out_of_the_room(clients):
    a = await signed_in(clients, "a")
    b = await signed_in(clients, "b")
    p = await a.ok("project:create", {"name": "Kick"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "viewer"})
    await a.ok("project:join", {"id": p["id"]})
    await b.ok("project:join", {"id": p["id"]})
    await a.wait_for("project:presence", lambda d: len(d["users"]) == 2)
    a.forget("project:presence")
    await a.ok("project:member:remove", {"id": p["id"], "userId": b.user["id"]})
    await b.wait_for("project:deleted", lambda d: d.get("reason") == "removed")
    await a.wait_for("project:presence", lambda d: len(d["users"]) == 1)
    err = await b.err("project:broadcast", {"id": p["id"], "event": "cursor", "data": {}})
    assert err["code"] == "forbidden"


async def test_broadcast_relays_to_others_not_sender(clients):
    a = await signed_in(clients, "a")
    b = await signed_in(clients, "b")
    p = await a.ok("project:create", {"name": "Cursor"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "viewer"})
    assert (await a.err("project:broadcast", {"id": p["id"], "event": "cursor"}))[
        "code"] == "forbidden"  # not joined yet
    await a.ok("project:join", {"id": p["id"]})
    await b.ok("project:join", {"id": p["id"]})
    await a.ok("project:broadcast", {"id": p["id"], "event": "cursor", "data": {"x": 1}})
    got = await b.wait_for("project:broadcast")
    assert got == {"projectId": p["id"], "userId": a.user["id"], "event": "cursor",
                   "data": {"x": 1}}
    # A marker from b on the same room: had a's own broadcast come back to a, it would have
    # arrived before this one.
    await b.ok("project:broadcast", {"id": p["id"], "event": "marker", "data": {}})
    marker = await a.wait_for("project:broadcast", lambda d: d["event"] == "marker")
    assert a.pushes["project:broadcast"] == [marker]
    big = await a.err("project:broadcast", {"id": p["id"], "event": "x", "data": "y" * 20000})
    assert big["code"] == "too_large"


async def test_broadcast_rate_limited_per_socket(tmp_path):
    from tests.client import Client
    from tests.conftest import RunningServer, make_settings

    srv = await RunningServer(make_settings(tmp_path, broadcast_rate=5,
                                            broadcast_burst=5)).start()
    c = await Client(srv.url).connect()
    try:
        await c.register(unique_email())
        p = await c.ok("project:create", {"name": "Rate"})
        await c.ok("project:join", {"id": p["id"]})
        acks = [await c.call("project:broadcast", {"id": p["id"], "event": "e", "data": i})
                for i in range(8)]
        codes = [a["ok"] or a["error"]["code"] for a in acks]
        assert codes[:5] == [True] * 5 and "rate_limited" in codes[5:]
    finally:
        await c.close()
        await srv.stop()


async def test_data_survives_restart(tmp_path):
    from tests.client import Client
    from tests.conftest import RunningServer, make_settings

    settings = make_settings(tmp_path)
    srv = await RunningServer(settings).start()
    c = await Client(srv.url).connect()
    reg = await c.register(unique_email())
    p = await c.ok("project:create", {"name": "Durable"})
    await c.close()
    await srv.stop()
    srv = await RunningServer(settings).start()
    try:
        c = await Client(srv.url).connect(reg["tokens"]["accessToken"])
        assert [x["id"] for x in await c.ok("project:list")] == [p["id"]]
        await c.close()
    finally:
        await srv.stop()
