"""Helpers for chat tests: a project team, and reading one reply's stream off a client."""
from __future__ import annotations

from tests.client import Client, unique_email


async def team(url: str, *roles: str, name: str = "Chat project"):
    """An owner plus one member per role, in one project. Returns (project, owner, members)."""
    owner = await Client(url, "owner").connect()
    await owner.register(unique_email("owner"))
    project = await owner.ok("project:create", {"name": name})
    members = []
    for role in roles:
        c = await Client(url, role).connect()
        await c.register(unique_email(role))
        await owner.ok("project:member:add", {"id": project["id"], "email": c.user["email"],
                                              "role": role})
        members.append(c)
    for c in (owner, *members):
        await c.ok("project:join", {"id": project["id"]})
    return project, owner, members


async def finished(client: Client, message_id: str, timeout: float = 20) -> tuple[str, dict]:
    """Wait for the reply's ``message:done`` or ``message:error``; (event, data)."""
    import asyncio

    done = asyncio.ensure_future(client.wait_for(
        "message:done", lambda d: d["messageId"] == message_id, timeout))
    error = asyncio.ensure_future(client.wait_for(
        "message:error", lambda d: d["messageId"] == message_id, timeout))
    finished_, pending = await asyncio.wait({done, error}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    task = finished_.pop()
    return ("message:done" if task is done else "message:error"), task.result()


def deltas(client: Client, message_id: str) -> list[dict]:
    return [d for d in client.pushes.get("message:delta", []) if d["messageId"] == message_id]


def assert_gapless(items: list[dict]) -> str:
    """Indices 0, 1, 2… in order, no gaps or repeats; returns the text they spell."""
    assert [d["index"] for d in items] == list(range(len(items))), \
        [d["index"] for d in items][:50]
    return "".join(d["text"] for d in items)


async def close(*clients: Client) -> None:
    for c in clients:
        await c.close()
