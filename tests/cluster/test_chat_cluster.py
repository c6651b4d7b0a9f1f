"""AI chat across instances: a reply generated on instance A streams to a viewer on
instance B whole and in order; when A dies mid-reply the reply is failed by the elected
reaper (CHAT_LEASE_S is short here) and B's viewer gets ``message:error``."""
from __future__ import annotations

import time

import pytest

from tests.chat_helpers import assert_gapless, deltas, finished
from tests.client import unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster
from tests.fake_anthropic import KEY, FakeInThread, Script

DELTAS = 500


@pytest.fixture(scope="module")
def fake():
    with FakeInThread() as server:
        yield server


@pytest.fixture(scope="module")
def chat_cluster(fake):
    env = {**FAST, "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
           "ANTHROPIC_MODEL": "claude-sonnet-4-6", "CHAT_LEASE_S": "3", "LOG_LEVEL": "WARNING"}
    with Cluster(n=2, extra_env=env) as c:
        yield c


async def pair(cluster, connect):
    """Alice (editor, on instance 0) and Bob (viewer, on instance 1) in one conversation."""
    a = await connect(cluster.instances[0].url, name="alice@0")
    b = await connect(cluster.instances[1].url, name="bob@1")
    await a.register(unique_email("alice"))
    await b.register(unique_email("bob"))
    p = await a.ok("project:create", {"name": "Chat across instances"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "viewer"})
    conv = await a.ok("conversation:create", {"projectId": p["id"]})
    for c in (a, b):
        await c.ok("conversation:join", {"id": conv["id"]})
    return a, b, conv["id"]


async def test_viewer_on_b_gets_every_delta_from_a_in_order(chat_cluster, fake, connect):
    pieces = [f"t{i} " for i in range(DELTAS)]
    fake.default = Script(deltas=pieces, ping_every=50)
    a, b, conv_id = await pair(chat_cluster, connect)
    ack = await a.ok("message:send", {"conversationId": conv_id, "content": "stream please"})
    rid = ack["replyId"]
    event, done = await finished(b, rid, timeout=60)
    assert event == "message:done", done
    # A's sockets get the reply from the same Redis channel as B's (seq order): by now or soon.
    assert (await finished(a, rid, timeout=60))[0] == "message:done"
    text = assert_gapless(deltas(b, rid))  # indices 0, 1, 2… with no gap or repeat
    # Every piece the model sent, in order (pieces arriving together may share a push).
    assert text == "".join(pieces) == done["message"]["content"]
    assert done["message"]["metadata"]["deltas"] == len(deltas(b, rid))
    assert assert_gapless(deltas(a, rid)) == text
    started = await b.wait_for("message:started", lambda d: d["messageId"] == rid)
    assert started["userMessage"]["content"] == "stream please"
    # message:started comes first on both instances, message:done last (seq order).
    for c in (a, b):
        mine = [e for e, d in c.arrivals if isinstance(d, dict) and d.get("messageId") == rid]
        assert mine[:2] == ["message:started", "message:delta"] and \
            mine[-1] == "message:done", mine[:3]
    got = await b.ok("conversation:get", {"id": conv_id})
    assert got["messages"][-1]["content"] == text and got["messages"][-1]["status"] == "complete"


async def test_dead_generating_instance_fails_the_reply_for_viewers(chat_cluster, fake,
                                                                    connect):
    fake.default = Script(deltas=[f"s{i} " for i in range(400)], delay=0.05)
    a, b, conv_id = await pair(chat_cluster, connect)
    ack = await a.ok("message:send", {"conversationId": conv_id, "content": "long one"})
    rid = ack["replyId"]
    await b.wait_for("message:delta", lambda d: d["messageId"] == rid and d["index"] >= 30,
                     timeout=30)
    chat_cluster.kill(0)
    killed = time.monotonic()
    event, err = await finished(b, rid, timeout=60)
    assert event == "message:error", err
    assert (err["code"], err["reason"]) == ("unavailable", "instance_lost")
    assert time.monotonic() - killed < 60
    seen = assert_gapless(deltas(b, rid))
    kept = err["reply"]["content"]
    assert err["reply"]["status"] == "failed" and seen.startswith(kept) and len(kept) > 0
    got = await b.ok("conversation:get", {"id": conv_id})
    assert got["conversation"]["generatingId"] is None
    assert got["messages"][-1]["status"] == "failed"
    # The conversation is usable again, from the surviving instance.
    fake.default = Script()
    b_editor = await connect(chat_cluster.instances[1].url, name="alice@1")
    await b_editor.ok("auth:refresh", {"refreshToken": a.tokens["refreshToken"]})
    await b_editor.ok("conversation:join", {"id": conv_id})
    again = await b_editor.ok("message:send", {"conversationId": conv_id, "content": "again"})
    assert (await finished(b_editor, again["replyId"]))[0] == "message:done"
