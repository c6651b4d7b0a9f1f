"""A reply's provider request started with its exchange's write (services/replies.py,
``ReplyEngine.early``): kept when the write read the history it was built from, made again
when it did not, cancelled (nothing pushed, nothing stored) when the write refuses, and the
instance's copy dropped when another instance answers in the conversation. The real SDK
against the fake Messages API; counted by ``collab_chat_early_requests_total``."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from server.keys import services_of
from services.ai import chars_for_tokens
from store.ids import utcnow
from tests.chat_helpers import close, deltas, finished, team
from tests.client import Client, eventually
from tests.cluster.harness import RedisServer
from tests.conftest import RunningServer, make_settings
from tests.fake_anthropic import KEY, Script
from tests.files_helpers import upload
from tests.metrics_helpers import scrape, value

HELLO = "Hello, world."


def chat_settings(tmp_path, fake, **extra):
    return make_settings(tmp_path, anthropic_api_key=KEY, anthropic_base_url=fake.url,
                         anthropic_timeout_s=5, **extra)


@pytest.fixture
async def server(tmp_path, fake):
    srv = await RunningServer(chat_settings(tmp_path, fake)).start()
    yield srv
    await srv.stop()


async def reply(client: Client, conv_id: str, content: str) -> tuple[str, dict]:
    ack = await client.ok("message:send", {"conversationId": conv_id, "content": content})
    return await finished(client, ack["replyId"])


async def early(url: str) -> dict[str, float]:
    samples = await scrape(url)
    return {o: value(samples, "collab_chat_early_requests_total", outcome=o)
            for o in ("kept", "rebuilt", "dropped")}


def turns(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
            for i, t in enumerate(texts)]


async def test_the_next_message_keeps_its_early_request(server, fake):
    project, owner, (editor,) = await team(server.url, "editor")
    try:
        conv = (await owner.ok("conversation:create", {"projectId": project["id"]}))["id"]
        await owner.ok("conversation:join", {"id": conv})
        assert (await reply(owner, conv, "first"))[0] == "message:done"
        assert await early(server.url) == {"kept": 0, "rebuilt": 0, "dropped": 0}
        event, done = await reply(owner, conv, "second")
        assert event == "message:done" and done["message"]["content"] == HELLO
        assert await early(server.url) == {"kept": 1, "rebuilt": 0, "dropped": 0}
        assert fake.requests[-1].body["messages"] == turns("first", HELLO, "second")
        assert done["message"]["metadata"]["history"]["sent"] == 3
        # Someone who has not sent here yet waits for the write: their right is unproven.
        await editor.ok("conversation:join", {"id": conv})
        assert (await reply(editor, conv, "third"))[0] == "message:done"
        assert await early(server.url) == {"kept": 1, "rebuilt": 0, "dropped": 0}
        # Now they have.
        assert (await reply(editor, conv, "fourth"))[0] == "message:done"
        assert await early(server.url) == {"kept": 2, "rebuilt": 0, "dropped": 0}
        assert fake.requests[-1].body["messages"] == turns(
            "first", HELLO, "second", HELLO, "third", HELLO, "fourth")
        # A message with files waits for the store (its context is read from it).
        status, out = await upload(server.url, owner.tokens["accessToken"], project["id"],
                                   b"a,b\n1,2\n", "t.csv")
        assert status == 201
        ack = await owner.ok("message:send", {"conversationId": conv, "content": "fifth",
                                              "attachments": [out["data"]["id"]]})
        assert (await finished(owner, ack["replyId"]))[0] == "message:done"
        assert await early(server.url) == {"kept": 2, "rebuilt": 0, "dropped": 0}
        assert 'name="t.csv"' in fake.requests[-1].body["system"]
    finally:
        await close(owner, editor)


async def test_a_stale_history_makes_the_request_again(server, fake):
    project, owner, _ = await team(server.url)
    store = services_of(server.app).store
    try:
        conv = (await owner.ok("conversation:create", {"projectId": project["id"]}))["id"]
        await owner.ok("conversation:join", {"id": conv})
        assert (await reply(owner, conv, "first"))[0] == "message:done"
        # An exchange this instance never heard of (another instance's, its bus message
        # lost): the history it kept is stale now.
        other = await store.chat.start_exchange(
            conv, author_id=owner.user["id"], content="elsewhere", attachments=[],
            instance="elsewhere", lease_until=utcnow() + timedelta(seconds=30),
            history_chars=chars_for_tokens(12000))
        await store.chat.finish_reply(other.reply.id, status="complete", content="answered",
                                      metadata={}, delta_index=0)
        held = asyncio.Event()
        fake.script(Script(deltas=["never "], hold=held, hold_after=0), Script())
        event, done = await reply(owner, conv, "second")
        assert event == "message:done" and done["message"]["content"] == HELLO
        stale, fresh = fake.requests[-2:]
        assert stale.body["messages"] == turns("first", HELLO, "second")
        assert fresh.body["messages"] == turns("first", HELLO, "elsewhere", "answered",
                                               "second")
        held.set()  # the fake notices a client gone when it writes
        await eventually(lambda: stale.disconnected)
        assert "never" not in "".join(d["text"] for d in deltas(owner, done["messageId"]))
        assert await early(server.url) == {"kept": 0, "rebuilt": 1, "dropped": 0}
    finally:
        await close(owner)


async def test_a_refused_write_cancels_the_request_and_pushes_nothing(server, fake):
    project, owner, (editor,) = await team(server.url, "editor")
    store = services_of(server.app).store
    try:
        conv = (await owner.ok("conversation:create", {"projectId": project["id"]}))["id"]
        for c in (owner, editor):
            await c.ok("conversation:join", {"id": conv})
        assert (await reply(editor, conv, "first"))[0] == "message:done"
        # Removed behind this instance's back (no bus message): only the write can tell.
        await store.projects.remove_member(project["id"], editor.user["id"])
        held = asyncio.Event()
        fake.script(Script(deltas=["secret "], hold=held, hold_after=0))
        before = len(fake.requests)
        err = await editor.err("message:send", {"conversationId": conv, "content": "again"})
        assert err["code"] == "not_found"
        await eventually(lambda: len(fake.requests) == before + 1)  # it did start early…
        held.set()  # (the fake notices a client gone when it writes)
        await eventually(lambda: fake.requests[-1].disconnected)  # …and was cancelled
        assert await early(server.url) == {"kept": 0, "rebuilt": 0, "dropped": 1}
        page = await owner.ok("conversation:get", {"id": conv})
        assert [m["content"] for m in page["messages"]] == ["first", HELLO]
        assert len(owner.pushes.get("message:started", [])) == 1
        # The instance forgot the conversation: the owner's next message waits for its
        # write (they never sent here) and is answered normally.
        assert (await reply(owner, conv, "owner"))[0] == "message:done"
        assert await early(server.url) == {"kept": 0, "rebuilt": 0, "dropped": 1}
    finally:
        await close(owner, editor)


async def test_another_instance_answering_drops_this_instances_copy(tmp_path, fake):
    with RedisServer() as redis:
        servers = []
        try:
            for name in ("a", "b"):
                servers.append(await RunningServer(chat_settings(  # one data dir: one store
                    tmp_path, fake, redis_url=redis.url, instance_id=name)).start())
            a, b = servers
            project, owner, (editor,) = await team(a.url, "editor")
            on_b = await Client(b.url, "editor on b").connect(editor.tokens["accessToken"])
            conv = (await owner.ok("conversation:create", {"projectId": project["id"]}))["id"]
            for c in (owner, on_b):
                await c.ok("conversation:join", {"id": conv})
            assert (await reply(owner, conv, "first"))[0] == "message:done"
            engine_a = services_of(a.app).chat
            assert conv in engine_a.known
            assert (await reply(on_b, conv, "from b"))[0] == "message:done"
            await eventually(lambda: conv not in engine_a.known)  # B's bus message came
            assert (await reply(owner, conv, "second"))[0] == "message:done"
            assert fake.requests[-1].body["messages"] == turns("first", HELLO, "from b", HELLO,
                                                               "second")
            assert await early(a.url) == {"kept": 0, "rebuilt": 0, "dropped": 0}
            assert (await reply(owner, conv, "third"))[0] == "message:done"
            assert await early(a.url) == {"kept": 1, "rebuilt": 0, "dropped": 0}
            await close(owner, editor, on_b)
        finally:
            for srv in servers:
                await srv.stop()


async def test_a_reply_cancelled_before_it_runs_still_ends(server, fake):
    """Cancelled in the same turn of the loop as its start (before its task ran once): it
    still ends, ``cancelled``, its claim released, its early request dropped."""
    project, owner, _ = await team(server.url)
    services = services_of(server.app)
    try:
        conv = (await owner.ok("conversation:create", {"projectId": project["id"]}))["id"]
        await owner.ok("conversation:join", {"id": conv})
        assert (await reply(owner, conv, "first"))[0] == "message:done"
        chat = services.chat
        async with chat.early(conv, owner.user["id"], "second") as taken:
            exchange = await services.store.chat.start_exchange(
                conv, author_id=owner.user["id"], content="second", attachments=[],
                instance=services.settings.instance_id, lease_until=chat.lease_until(),
                history_chars=chat.history_chars)
            chat.begin(exchange.conversation, exchange, [], [], [], taken)
            assert taken is not None and chat.cancel_local(exchange.reply.id)
        event, done = await finished(owner, exchange.reply.id)
        assert event == "message:done" and done["message"]["status"] == "cancelled"
        assert not chat.live
        assert await early(server.url) == {"kept": 0, "rebuilt": 0, "dropped": 1}
        got = await owner.ok("conversation:get", {"id": conv})
        assert got["conversation"]["generatingId"] is None
        assert (await reply(owner, conv, "third"))[0] == "message:done"
    finally:
        await close(owner)
