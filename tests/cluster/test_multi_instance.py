"""Several instances behind Redis (and nginx): what one user does on instance A is seen
by another user on instance B, and a dead instance's users leave presence."""
from __future__ import annotations

import time

from tests.client import eventually, unique_email


async def pair(cluster, connect):
    """Alice on instance 0, Bob on instance 1 (directly, so the split is certain), sharing a
    project; both joined."""
    a = await connect(cluster.instances[0].url, name="alice@0")
    b = await connect(cluster.instances[1].url, name="bob@1")
    await a.register(unique_email("alice"))
    await b.register(unique_email("bob"))
    p = await a.ok("project:create", {"name": "Shared"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "editor"})
    await a.ok("project:join", {"id": p["id"]})
    await b.ok("project:join", {"id": p["id"]})
    return a, b, p


async def test_presence_updates_and_broadcast_cross_instances(cluster, connect):
    a, b, p = await pair(cluster, connect)
    both = await a.wait_for("project:presence", lambda d: len(d["users"]) == 2)
    assert {u["userId"] for u in both["users"]} == {a.user["id"], b.user["id"]}
    snap = await connect(cluster.instances[0].url)
    await snap.register(unique_email("carol"))
    await a.ok("project:member:add", {"id": p["id"], "email": snap.user["email"], "role": "viewer"})
    online = (await snap.ok("project:join", {"id": p["id"]}))["online"]
    assert {a.user["id"], b.user["id"]} <= {u["userId"] for u in online}

    await a.ok("project:update", {"id": p["id"], "description": "edited on instance 0"})
    got = await b.wait_for("project:updated",
                           lambda d: d["project"]["description"] == "edited on instance 0")
    assert got["projectId"] == p["id"]

    await b.ok("project:broadcast", {"id": p["id"], "event": "cursor", "data": {"row": 3}})
    relayed = await a.wait_for("project:broadcast")
    assert relayed["userId"] == b.user["id"] and relayed["data"] == {"row": 3}

    a.forget("project:presence")
    await b.close()
    await a.wait_for("project:presence",
                     lambda d: b.user["id"] not in {u["userId"] for u in d["users"]})


async def test_member_removed_on_other_instance_leaves_room(cluster, connect):
    a, b, p = await pair(cluster, connect)
    await a.wait_for("project:presence", lambda d: len(d["users"]) == 2)
    a.forget("project:presence")
    await a.ok("project:member:remove", {"id": p["id"], "userId": b.user["id"]})
    await b.wait_for("project:deleted", lambda d: d["projectId"] == p["id"])
    await a.wait_for("project:presence", lambda d: [u["userId"] for u in d["users"]] ==
                     [a.user["id"]])
    # Bob's socket on instance 1 really left the room: his broadcast is refused.
    err = await eventually(lambda: b.err("project:broadcast", {"id": p["id"], "event": "x"}))
    assert err["code"] == "forbidden"


async def test_through_nginx_and_tokens_valid_on_every_instance(cluster, connect):
    via_lb = await connect(cluster.url, name="lb")
    reg = await via_lb.register(unique_email("lb"))
    token = reg["tokens"]["accessToken"]
    for inst in cluster.instances:
        c = await connect(inst.url, token=token)
        assert (await c.ok("auth:me"))["id"] == reg["user"]["id"]
    # Rotation is cluster-wide: a refresh token used on one instance is spent on the other.
    r1 = await connect(cluster.instances[0].url)
    r2 = await connect(cluster.instances[1].url)
    await r1.ok("auth:refresh", {"refreshToken": reg["tokens"]["refreshToken"]})
    err = await r2.err("auth:refresh", {"refreshToken": reg["tokens"]["refreshToken"]})
    assert err["details"]["reason"] == "reused"


async def test_login_rate_limit_is_shared_by_instances(cluster, connect):
    email = unique_email("target")
    owner = await connect(cluster.instances[0].url)
    await owner.register(email)
    clients = [await connect(inst.url) for inst in cluster.instances]
    codes = []
    for i in range(7):  # LOGIN_MAX_FAILURES_IP=5 per account and address, over both instances
        err = await clients[i % 2].err("auth:login", {"email": email, "password": "wrong pw!"})
        codes.append(err["code"])
    assert codes[:5] == ["unauthorized"] * 5 and codes[5:] == ["rate_limited"] * 2


async def test_bad_input_on_one_instance_leaves_the_other_users_alone(cluster, connect):
    a, b, p = await pair(cluster, connect)
    err = await b.err("project:create", {"name": "x" * (2 * 1024 * 1024)}, timeout=30)
    assert err["code"] == "too_large"
    assert (await b.err("project:update", ["not", "an", "object"]))["code"] == "bad_request"
    assert (await b.err("what:ever"))["code"] == "bad_request"
    await b.ok("project:broadcast", {"id": p["id"], "event": "still", "data": 1})
    await a.wait_for("project:broadcast", lambda d: d["event"] == "still")


async def test_killed_instance_users_leave_presence_and_others_keep_serving(fresh_cluster,
                                                                              connect):
    cluster = fresh_cluster
    a, b, p = await pair(cluster, connect)
    await a.wait_for("project:presence", lambda d: len(d["users"]) == 2)
    a.forget("project:presence")
    killed_at = time.monotonic()
    cluster.kill(1)  # SIGKILL: no goodbye, so presence must notice the silence
    gone = await a.wait_for("project:presence",
                            lambda d: [u["userId"] for u in d["users"]] == [a.user["id"]],
                            timeout=30)
    assert gone["projectId"] == p["id"]
    assert time.monotonic() - killed_at < 60  # PRESENCE_TTL_S=3 here; the default is 30
    # The survivor and the load balancer keep serving.
    assert (await a.ok("project:get", {"id": p["id"]}))["name"] == "Shared"
    via_lb = await connect(cluster.url)
    await via_lb.register(unique_email("after"))
    assert (await via_lb.ok("ping"))["pong"]
    # A fresh join sees only live users.
    online = (await a.ok("project:join", {"id": p["id"]}))["online"]
    assert [u["userId"] for u in online] == [a.user["id"]]
