"""The admin's actions reach every instance (issue 12): a deactivation on instance 0 ends
the user's socket on instance 1, a role change reaches a socket on the other instance at its
next event, and admin:metrics counts instances and distinct online users across both."""
from __future__ import annotations

import sqlite3

from tests.client import eventually, unique_email

PASSWORD = "correct horse"


def promote(cluster, user_id: str) -> None:
    """The site role set in the shared store (as ``python -m server create-admin`` does)."""
    conn = sqlite3.connect(cluster.data_dir / "collab.sqlite3", timeout=15)
    with conn:
        conn.execute("UPDATE users SET role='admin' WHERE id=?", (user_id,))
    conn.close()


async def admin_on(cluster, connect, index: int):
    admin = await connect(cluster.instances[index].url, name=f"admin@{index}")
    reg = await admin.register(unique_email("admin"), PASSWORD)
    promote(cluster, reg["user"]["id"])
    await admin.ok("auth:login", {"login": reg["user"]["email"], "password": PASSWORD})
    return admin


async def test_deactivation_and_role_changes_reach_the_other_instance(cluster, connect):
    admin = await admin_on(cluster, connect, 0)
    target = await connect(cluster.instances[1].url, name="target@1")
    email = unique_email("target")
    await target.register(email, PASSWORD)
    helper = await connect(cluster.instances[1].url, name="helper@1")
    await helper.register(unique_email("helper"), PASSWORD)

    await admin.ok("admin:user:update", {"id": helper.user["id"], "role": "admin"})
    await eventually(lambda: helper.call("admin:metrics"), timeout=10)
    assert (await helper.call("admin:metrics"))["ok"]

    await admin.ok("admin:user:update", {"id": target.user["id"], "active": False})
    assert (await target.wait_for("auth:revoked")) == {"reason": "deactivated"}
    await eventually(lambda: not target.sio.connected)
    again = await connect(cluster.instances[1].url, name="again@1")
    err = await again.err("auth:login", {"login": email, "password": PASSWORD})
    assert err["code"] == "forbidden" and err["details"]["reason"] == "deactivated"


async def test_metrics_count_every_instance_and_each_online_user_once(fresh_cluster, connect):
    cluster = fresh_cluster  # nobody else online: the admin alone, then one more
    admin = await admin_on(cluster, connect, 0)
    names = sorted(inst.name for inst in cluster.instances)

    async def instances_and_online():
        m = await admin.ok("admin:metrics")
        return m if sorted(i["id"] for i in m["instances"]) == names \
            and m["onlineNow"] == 1 else None
    before = await eventually(instances_and_online, timeout=20)
    email = unique_email("both")
    here = await connect(cluster.instances[0].url, name="both@0")
    await here.register(email, PASSWORD)
    there = await connect(cluster.instances[1].url, name="both@1")
    await there.ok("auth:login", {"login": email, "password": PASSWORD})

    async def both_beaten():  # each instance's heartbeat has counted its socket of the user
        m = await admin.ok("admin:metrics")
        return m if all(i["sockets"] >= 1 for i in m["instances"]) \
            and m["onlineNow"] > before["onlineNow"] else None
    after = await eventually(both_beaten, timeout=20)  # heartbeats every 5 s
    assert after["onlineNow"] == before["onlineNow"] + 1  # on two instances, counted once
    assert after["totalUsers"] == before["totalUsers"] + 1
