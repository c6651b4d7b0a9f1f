"""A user's second socket (another tab, another device) coming into a project room or going
changes nobody's list of who is there: the room is not pushed a presence it already has.

"No push came" is checked against a later push on the same socket (pushes to one socket
arrive in the order they were made), never after a pause."""
from __future__ import annotations

from tests.client import unique_email


async def pushed_since(mark: int, sender, receiver, project_id: str, tag: str) -> list[str]:
    """The events ``receiver`` got from its ``mark``-th arrival until ``sender``'s broadcast
    ``tag`` reached it."""
    await sender.ok("project:broadcast", {"id": project_id, "event": tag})
    await receiver.wait_for("project:broadcast", lambda d: d["event"] == tag)
    events = [event for event, _ in receiver.arrivals[mark:]]
    return events[:events.index("project:broadcast")]


async def test_second_tab_is_not_pushed_last_tab_is(clients):
    alice = await clients(name="alice")
    await alice.register(unique_email("alice"))
    bob = await clients(name="bob")
    reg = await bob.register(unique_email("bob"))
    p = await alice.ok("project:create", {"name": "Tabs"})
    pid = p["id"]
    await alice.ok("project:member:add", {"id": pid, "email": bob.user["email"],
                                          "role": "editor"})
    await alice.ok("project:join", {"id": pid})
    await bob.ok("project:join", {"id": pid})
    await alice.wait_for("project:presence", lambda d: len(d["users"]) == 2)

    tab = await clients(reg["tokens"]["accessToken"], name="bob-tab2")
    mark = len(alice.arrivals)
    online = (await tab.ok("project:join", {"id": pid}))["online"]
    assert {u["userId"] for u in online} == {alice.user["id"], bob.user["id"]}
    assert "project:presence" not in await pushed_since(mark, tab, alice, pid, "joined")
    mark = len(alice.arrivals)
    await tab.ok("project:leave", {"id": pid})
    assert "project:presence" not in await pushed_since(mark, bob, alice, pid, "left")

    alice.forget("project:presence")
    await bob.close()  # Bob's last socket in the room
    gone = await alice.wait_for("project:presence", lambda d: len(d["users"]) == 1)
    assert gone["users"][0]["userId"] == alice.user["id"]
