"""Row locks and the ticker across three instances behind Redis."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.client import Client, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster

ENV = {**FAST, "LOCK_LEASE_S": "3", "LOCK_GRACE_S": "1", "TICKER_INTERVAL_S": "1",
       "LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def trio():
    with Cluster(n=3, extra_env=ENV) as c:
        yield c


async def project_with_table(owner_url, members):
    owner = await Client(owner_url, "owner").connect()
    await owner.register(unique_email("owner"))
    p = await owner.ok("project:create", {"name": "Race"})
    for c in members:
        await owner.ok("project:member:add", {"id": p["id"], "email": c.user["email"],
                                              "role": "editor"})
    await owner.ok("project:join", {"id": p["id"]})
    t = await owner.ok("table:create", {"projectId": p["id"], "name": "t",
                                        "columns": [{"name": "n", "type": "number"}]})
    row = await owner.ok("row:add", {"tableId": t["id"], "values": {"n": 0}})
    return owner, p, t["id"], row["id"]


async def test_fifty_clients_on_three_instances_race_two_hundred_times(trio):
    clients = []
    for i in range(50):
        c = await Client(trio.instances[i % 3].url, f"c{i}").connect()
        await c.register(unique_email(f"racer{i}"))
        clients.append(c)
    owner, p, tid, rid = await project_with_table(trio.instances[0].url, clients)
    await asyncio.gather(*(c.ok("project:join", {"id": p["id"]}) for c in clients))
    winners = []
    try:
        version = 1
        for round_no in range(200):
            acks = await asyncio.gather(*(c.call("row:lock", {"tableId": tid, "rowId": rid})
                                          for c in clients))
            granted = [i for i, a in enumerate(acks) if a["ok"]]
            assert len(granted) == 1, (round_no, [a for a in acks if a["ok"]])
            assert all(a["error"]["code"] == "locked" for a in acks if not a["ok"])
            w = granted[0]
            winners.append(clients[w].user["id"])
            row = await clients[w].ok("row:update", {
                "tableId": tid, "rowId": rid, "version": version,
                "lockToken": acks[w]["data"]["lockToken"], "values": {"n": round_no + 1}})
            version = row["version"]
            await clients[w].ok("row:unlock", {"tableId": tid, "rowId": rid})
        # The owner (on instance 0) saw strictly alternating locked/unlocked pushes.
        await owner.wait_for("row:unlocked", lambda d: len(owner.pushes["row:unlocked"]) >= 200)
        locked = owner.pushes["row:locked"]
        assert [d["userId"] for d in locked] == winners
        assert len(owner.pushes["row:unlocked"]) == 200
        # The stored history has one update per round, by that round's winner, in order.
        hist = await owner.ok("row:history", {"tableId": tid, "rowId": rid})
        updates = [h for h in hist if h["op"] == "update"]
        assert [h["userId"] for h in updates] == winners
        assert [h["after"]["n"] for h in updates] == list(range(1, 201))
        assert len({c.user["id"] for c in clients} & set(winners)) > 1
    finally:
        for c in clients + [owner]:
            await c.close()


async def test_dead_holders_lock_is_freed_by_a_survivor_and_its_token_is_fenced(trio):
    holder = await Client(trio.instances[2].url, "holder").connect()
    reg = await holder.register(unique_email("holder"))
    watcher = await Client(trio.instances[0].url, "watcher").connect()
    await watcher.register(unique_email("watcher"))
    owner, p, tid, rid = await project_with_table(trio.instances[0].url, [holder, watcher])
    await watcher.ok("project:join", {"id": p["id"]})
    try:
        lock = await holder.ok("row:lock", {"tableId": tid, "rowId": rid})
        await watcher.wait_for("row:locked")
        killed = time.monotonic()
        trio.kill(2)
        freed = await watcher.wait_for("row:unlocked", timeout=30)
        assert freed["reason"] == "disconnect" and freed["userId"] == reg["user"]["id"]
        assert time.monotonic() - killed < 3 + 3 + 2  # lease + reaper election + slack
        # The dead holder's token cannot write, through any instance.
        ghost = await Client(trio.instances[1].url, "ghost").connect(reg["tokens"]["accessToken"])
        err = await ghost.err("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                             "lockToken": lock["lockToken"], "values": {"n": 666}})
        assert err["code"] == "conflict"
        mine = await watcher.ok("row:lock", {"tableId": tid, "rowId": rid})
        await watcher.ok("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                        "lockToken": mine["lockToken"], "values": {"n": 7}})
        await ghost.close()
    finally:
        trio.restart(2)
        for c in (holder, watcher, owner):
            await c.close()


async def test_ticker_has_one_producer_and_fails_over(trio):
    subs = []
    for inst in trio.instances:
        c = await Client(inst.url).connect()
        await c.guest()
        await c.ok("ticker:subscribe")
        subs.append(c)
    try:
        await subs[0].wait_for("ticker:tick", lambda d: len(subs[0].pushes["ticker:tick"]) >= 3,
                               timeout=15)
        producer = subs[0].pushes["ticker:tick"][-1]["producer"]
        leader = next(i for i, inst in enumerate(trio.instances) if inst.name == producer)
        survivor = subs[(leader + 1) % 3]
        survivor.forget("ticker:tick")
        trio.kill(leader)
        killed = time.monotonic()
        await survivor.wait_for("ticker:tick", lambda d: d["producer"] != producer, timeout=15)
        assert time.monotonic() - killed <= 2 * 1.0 + 0.5  # two intervals (+ scheduling slack)

        def new_ticks():
            return [t for t in survivor.pushes["ticker:tick"] if t["producer"] != producer]

        # Four ticks since the failover (about three intervals): two producers would show.
        await survivor.wait_for("ticker:tick", lambda d: len(new_ticks()) >= 4, timeout=15)
        after = new_ticks()
        assert len({t["producer"] for t in after}) == 1  # one new producer, not two
        stamps = [time.mktime(time.strptime(t["ts"][:19], "%Y-%m-%dT%H:%M:%S")) +
                  float("0." + t["ts"][20:23]) for t in after]
        assert all(b - a >= 0.5 for a, b in zip(stamps, stamps[1:])), stamps
        subs[(leader + 2) % 3].forget("ticker:tick")
        await survivor.ok("ticker:unsubscribe")
    finally:
        trio.restart(leader)
        for c in subs:
            await c.close()


async def test_reclaim_on_another_instance_after_reconnect(trio):
    """A holder whose socket drops reconnects through another instance within the grace:
    the lock stays theirs (same token), and the old instance does not release it later."""
    ana = await Client(trio.instances[0].url, "ana@0").connect()
    reg = await ana.register(unique_email("ana"))
    bob = await Client(trio.instances[1].url, "bob@1").connect()
    await bob.register(unique_email("bob"))
    carl = await Client(trio.instances[0].url, "carl@0").connect()
    await carl.register(unique_email("carl"))
    owner, p, tid, rid = await project_with_table(trio.instances[2].url, [ana, bob, carl])
    await bob.ok("project:join", {"id": p["id"]})
    try:
        first = await ana.ok("row:lock", {"tableId": tid, "rowId": rid})
        # The control: Carl holds another row from instance 0 and drops just after Ana (once
        # instance 0 has handled her going: her presence left the room), so his grace there
        # ends just after hers. His row:unlocked is the marker that Ana's grace ran out too.
        carl_row = await owner.ok("row:add", {"tableId": tid, "values": {"n": 0}})
        await carl.ok("row:lock", {"tableId": tid, "rowId": carl_row["id"]})
        await ana.ok("project:join", {"id": p["id"]})
        await bob.wait_for("project:presence", lambda d: reg["user"]["id"] in
                           [u["userId"] for u in d["users"]])
        bob.forget("project:presence")
        await ana.close()
        await bob.wait_for("project:presence", lambda d: reg["user"]["id"] not in
                           [u["userId"] for u in d["users"]])
        await carl.close()
        ana2 = await Client(trio.instances[1].url, "ana@1").connect(reg["tokens"]["accessToken"])
        again = await ana2.ok("row:lock", {"tableId": tid, "rowId": rid})
        assert again["lockToken"] == first["lockToken"]
        control = await bob.wait_for("row:unlocked", lambda d: d["rowId"] == carl_row["id"],
                                     timeout=10)
        assert control["reason"] == "disconnect"
        assert [u for u in bob.pushes["row:unlocked"] if u["rowId"] == rid] == []
        assert (await bob.err("row:lock", {"tableId": tid, "rowId": rid}))["code"] == "locked"
        await ana2.ok("row:update", {"tableId": tid, "rowId": rid, "version": 1,
                                     "lockToken": first["lockToken"], "values": {"n": 1}})
        await ana2.close()
        gone = await bob.wait_for("row:unlocked", lambda d: d["rowId"] == rid, timeout=10)
        assert gone["reason"] == "disconnect"
    finally:
        for c in (ana, bob, carl, owner):
            await c.close()
