"""Chat-history import across instances: started on one instance, its progress and result
reach a member connected to the other, who can then browse and search the chats there; a
rename or delete on one instance reaches the other."""
from __future__ import annotations

from datetime import datetime, timedelta

from tests.client import unique_email
from tests.cluster.test_pcap_cluster import two_members
from tests.files_helpers import upload

MESSAGES = 60_000


def whatsapp_export(n: int) -> bytes:
    start = datetime(2023, 1, 1, 8, 0)
    authors = ["Ana", "Bo", "Zoë"]
    lines = []
    for i in range(n):
        at = start + timedelta(minutes=3 * i)
        lines.append(f"{at:%d/%m/%Y, %H:%M} - {authors[i % 3]}: message {i} about "
                     f"{'lighthouse' if i == n // 2 else 'weather'}\n")
    return "".join(lines).encode()


async def test_import_on_one_instance_is_seen_on_the_other(cluster, connect):
    a, b, p = await two_members(cluster, connect)
    status, out = await upload(cluster.instances[0].url, a.tokens["accessToken"], p["id"],
                               whatsapp_export(MESSAGES), "WhatsApp Chat with Team.txt")
    assert status == 201, out
    fid = out["data"]["id"]
    await a.ok("chat:import", {"projectId": p["id"], "fileId": fid})
    done = await b.wait_for("chat:imported", lambda d: d["fileId"] == fid, timeout=120)
    progress = b.pushes.get("chat:import:progress", [])
    assert progress and progress[-1]["percent"] == 100.0
    assert progress[-1]["messages"] == MESSAGES
    [chat] = done["chats"]
    assert chat["messageCount"] == MESSAGES
    assert sorted(x["name"] for x in chat["participants"]) == ["Ana", "Bo", "Zoë"]

    # b reads on instance 1 what a imported through instance 0.
    page = await b.ok("chat:messages", {"chatId": chat["id"], "limit": 500})
    assert len(page["items"]) == 500 and page["nextCursor"]
    hit = await b.ok("chat:search", {"projectId": p["id"], "query": "lighthouse"})
    assert [h["text"] for h in hit["items"]] == [f"message {MESSAGES // 2} about lighthouse"]

    await a.ok("chat:rename", {"id": chat["id"], "name": "Renamed"})
    updated = await b.wait_for("chat:updated", lambda d: d["chat"]["id"] == chat["id"])
    assert updated["chat"]["name"] == "Renamed"
    await a.ok("chat:delete", {"id": chat["id"]})
    await b.wait_for("chat:deleted", lambda d: d["id"] == chat["id"])
    assert (await b.err("chat:get", {"id": chat["id"]}))["code"] == "not_found"
    stranger = await connect(cluster.instances[1].url, name="s@1")
    await stranger.register(unique_email("s"))
    assert (await stranger.err("chat:list", {"projectId": p["id"]}))["code"] == "not_found"


async def test_an_import_whose_instance_is_killed_finishes_elsewhere(connect):
    from tests.cluster.conftest import FAST, dump_logs
    from tests.cluster.harness import Cluster

    big = 400_000
    with Cluster(n=2, extra_env={**FAST, "INGEST_LEASE_S": "3"}) as cluster:
        a, b, p = await two_members(cluster, connect)
        status, out = await upload(cluster.instances[0].url, a.tokens["accessToken"],
                                   p["id"], whatsapp_export(big), "chat.txt")
        assert status == 201, out
        fid = out["data"]["id"]
        await a.ok("chat:import", {"projectId": p["id"], "fileId": fid})
        await a.wait_for("chat:import:progress", lambda d: d["fileId"] == fid, timeout=60)
        owner = (await a.ok("chat:import:status", {"fileId": fid}))["owner"]
        victim = [inst.name for inst in cluster.instances].index(owner)
        watcher = b if victim == 0 else a
        cluster.kill(victim)
        try:
            done = await watcher.wait_for("chat:imported", lambda d: d["fileId"] == fid,
                                          timeout=120)
        except TimeoutError:
            raise AssertionError("no chat:imported after the kill\n"
                                 + dump_logs(cluster)) from None
        [chat] = done["chats"]
        assert chat["messageCount"] == big  # restarted from scratch: nothing twice
        job = await watcher.ok("chat:import:status", {"fileId": fid})
        assert job["state"] == "done" and job["attempt"] >= 2
        listed = await watcher.ok("chat:list", {"projectId": p["id"]})
        assert [c["id"] for c in listed["items"]] == [chat["id"]]  # the first attempt's: gone
        last = await watcher.ok("chat:messages", {"chatId": chat["id"], "around":
                                                  f"{chat['id']}.{big}", "limit": 2})
        assert last["items"][-1]["text"] == f"message {big - 1} about weather"
