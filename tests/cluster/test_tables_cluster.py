"""Table pushes across instances, including secret columns: clear for owners and the row's
author, masked for everyone else, whichever instance each one is connected to."""
from __future__ import annotations

from tests.client import Client, unique_email

COLUMNS = [{"name": "user", "type": "text"}, {"name": "API_key", "type": "text", "secret": True}]


async def test_secret_masking_and_table_pushes_across_instances(cluster, connect):
    owner = await connect(cluster.instances[0].url, name="owner@0")
    author = await connect(cluster.instances[1].url, name="author@1")
    viewer = await connect(cluster.instances[0].url, name="viewer@0")
    await owner.register(unique_email("owner"))
    reg = await author.register(unique_email("author"))
    await viewer.register(unique_email("viewer"))
    p = await owner.ok("project:create", {"name": "Secrets"})
    await owner.ok("project:member:add", {"id": p["id"], "email": author.user["email"],
                                          "role": "editor"})
    await owner.ok("project:member:add", {"id": p["id"], "email": viewer.user["email"],
                                          "role": "viewer"})
    # The author's second tab is on the other instance: found through presence, not locally.
    author_tab2 = await Client(cluster.instances[0].url).connect(reg["tokens"]["accessToken"])
    try:
        for c in (owner, author, viewer, author_tab2):
            await c.ok("project:join", {"id": p["id"]})
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "keys",
                                            "columns": COLUMNS})
        assert (await author.wait_for("table:created"))["table"]["id"] == t["id"]
        secret = "sk-live-0123456789wxyz"
        await author.ok("row:add", {"tableId": t["id"], "values": {"user": "a",
                                                                   "API_key": secret}})
        assert (await owner.wait_for("row:added"))["row"]["values"]["API_key"] == secret
        assert (await author_tab2.wait_for("row:added"))["row"]["values"]["API_key"] == secret
        assert (await viewer.wait_for("row:added"))["row"]["values"]["API_key"] == "••••wxyz"
        # Markers on the same room, sent after the row's pushes went out (owner on instance 0,
        # the author on 1): an echo to the author or a second version to anyone would have
        # arrived before them.
        await owner.ok("project:broadcast", {"id": p["id"], "event": "marker", "data": {}})
        await author.ok("project:broadcast", {"id": p["id"], "event": "marker", "data": {}})
        for c, senders in ((author, [owner]), (author_tab2, [owner, author]),
                           (viewer, [owner, author]), (owner, [author])):
            for sender in senders:
                await c.wait_for("project:broadcast", lambda d, u=sender.user["id"]:
                                 d["event"] == "marker" and d["userId"] == u)
        assert author.pushes["row:added"] == []  # the sending socket has the ack
        for c in (owner, author_tab2, viewer):  # each gets one version, never both
            assert len(c.pushes["row:added"]) == 1, c.name
    finally:
        await author_tab2.close()
