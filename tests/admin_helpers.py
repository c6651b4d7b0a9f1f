"""Shared by the admin tests on SQLite and on MongoDB: an admin, and a user who owns data of
every kind (projects alone and with a co-owner, a table with rows, a file, a project and a
private conversation with an AI reply, an imported chat, a membership elsewhere)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.chat_helpers import finished
from tests.client import Client, unique_email
from tests.files_helpers import upload

PASSWORD = "correct horse"
WHATSAPP = ("12/03/2024, 09:16 - Zoë: Bonjour à tous\n"
            "12/03/2024, 09:17 - Ana: hello Zoë\n").encode()
Connect = Callable[[str], Awaitable[Client]]


async def make_admin(connect: Connect, store) -> Client:
    """A registered user made admin in the store, signed in again so the socket knows."""
    admin = await connect("admin")
    await admin.register(unique_email("admin"), PASSWORD)
    await store.users.update_user(admin.user["id"], role="admin")
    await admin.ok("auth:login", {"email": admin.user["email"], "password": PASSWORD})
    return admin


async def ask(c: Client, conversation_id: str) -> None:
    await c.ok("conversation:join", {"id": conversation_id})
    ack = await c.ok("message:send", {"conversationId": conversation_id, "content": "hello"})
    event, _ = await finished(c, ack["replyId"])
    assert event == "message:done"


async def user_with_everything(url: str, connect: Connect, host: Client) -> dict:
    """The victim and what they own; ``host`` owns a project the victim is a member of."""
    victim = await connect("victim")
    await victim.register(unique_email("victim"), PASSWORD)
    alone = await victim.ok("project:create", {"name": "mine alone"})
    table = await victim.ok("table:create", {"projectId": alone["id"], "name": "T",
                                             "columns": [{"name": "a"}]})
    await victim.ok("row:add", {"tableId": table["id"], "values": {"a": "x"}})
    status, body = await upload(url, victim.tokens["accessToken"], alone["id"], b"a,b\n1,2\n",
                                "data.csv")
    assert status == 201, body
    status, body = await upload(url, victim.tokens["accessToken"], alone["id"], WHATSAPP,
                                "WhatsApp Chat with Zoë.txt")
    assert status == 201, body
    await victim.ok("project:join", {"id": alone["id"]})
    await victim.ok("chat:import", {"projectId": alone["id"], "fileId": body["data"]["id"]})
    await victim.wait_for("chat:imported", lambda d: d["fileId"] == body["data"]["id"],
                          timeout=30)
    conv = await victim.ok("conversation:create", {"projectId": alone["id"]})
    await ask(victim, conv["id"])
    private = await victim.ok("conversation:create", {})
    await ask(victim, private["id"])
    shared = (await host.ok("project:list"))[0]
    await host.ok("project:member:add", {"id": shared["id"], "email": victim.user["email"],
                                         "role": "editor"})
    return {"victim": victim, "alone": alone, "shared": shared}
