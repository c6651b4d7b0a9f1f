"""The Anthropic provider end to end: the real ``anthropic`` SDK inside the server, pointed
with ANTHROPIC_BASE_URL at a protocol-faithful fake of the Messages streaming API."""
from __future__ import annotations

import asyncio

import pytest

from tests.chat_helpers import assert_gapless, close, deltas, finished, team
from tests.client import eventually
from tests.conftest import make_settings
from tests.fake_anthropic import KEY, Script
from tests.files_helpers import upload

MODEL = "claude-sonnet-4-6"


@pytest.fixture
def settings(tmp_path, fake, request):
    overrides = {"anthropic_api_key": KEY, "anthropic_base_url": fake.url,
                 "anthropic_model": MODEL, "anthropic_timeout_s": 1,
                 "anthropic_retry_max_wait_s": 2, "anthropic_max_retries": 2}
    overrides.update(getattr(request, "param", {}))
    return make_settings(tmp_path, **overrides)


@pytest.fixture
async def room(server):
    """(client, conversation id) with the client in the conversation's room."""
    p, owner, _ = await team(server.url)
    conv = await owner.ok("conversation:create", {"projectId": p["id"]})
    await owner.ok("conversation:join", {"id": conv["id"]})
    owner.project = p
    yield owner, conv["id"]
    await close(owner)


async def send(client, conv_id, content="Hi", **extra) -> str:
    ack = await client.ok("message:send", {"conversationId": conv_id, "content": content,
                                           **extra})
    return ack["replyId"]


async def test_normal_stream_with_pings_and_grounding(server, fake, room):
    client, conv_id = room
    pieces = [f"w{i} " for i in range(60)]
    fake.script(Script(deltas=pieces, ping_every=7))
    status, out = await upload(server.url, client.tokens["accessToken"], client.project["id"],
                               b"a,b\n1,x\n,y\n3,\n", "tiny.csv")
    assert status == 201
    rid = await send(client, conv_id, "Describe tiny.csv", attachments=[out["data"]["id"]])
    event, done = await finished(client, rid)
    assert event == "message:done"
    message = done["message"]
    assert message["content"] == "".join(pieces) == assert_gapless(deltas(client, rid))
    meta = message["metadata"]
    assert (meta["provider"], meta["model"], meta["stopReason"]) == ("anthropic", MODEL,
                                                                     "end_turn")
    assert meta["usage"]["outputTokens"] == 60 and meta["usage"]["inputTokens"] > 0
    (seen,) = fake.requests
    assert seen.headers.get("Authorization") == f"Bearer {KEY}"
    body = seen.body
    assert body["model"] == MODEL and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Describe tiny.csv"}]
    assert 'name="tiny.csv" kind="csv"' in body["system"]
    assert "- a (number): 2 values, 1 missing" in body["system"]


async def test_cancel_mid_stream_closes_the_upstream_and_keeps_the_text(server, fake, room):
    client, conv_id = room
    hold = asyncio.Event()
    fake.script(Script(deltas=[f"p{i} " for i in range(10)], hold=hold, hold_after=3))
    rid = await send(client, conv_id)
    await eventually(lambda: "".join(d["text"] for d in deltas(client, rid)) == "p0 p1 p2 ")
    await client.ok("message:cancel", {"messageId": rid})
    event, done = await finished(client, rid)
    assert event == "message:done" and done["message"]["status"] == "cancelled"
    assert done["message"]["content"] == "p0 p1 p2 " == assert_gapless(deltas(client, rid))
    hold.set()
    await eventually(lambda: fake.requests[0].disconnected)
    assert not fake.requests[0].finished


async def test_error_event_mid_stream_keeps_what_was_streamed(server, fake, room):
    client, conv_id = room
    fake.script(Script(deltas=["one ", "two ", "three ", "four"], error_after=2,
                       error_type="overloaded_error"))
    rid = await send(client, conv_id)
    event, err = await finished(client, rid)
    assert event == "message:error"
    assert (err["code"], err["reason"]) == ("unavailable", "overloaded")
    assert err["reply"]["status"] == "failed" and err["reply"]["content"] == "one two "
    assert len(fake.requests) == 1  # an error inside the stream is not retried
    got = await client.ok("conversation:get", {"id": conv_id})
    assert got["messages"][-1]["content"] == "one two "
    assert got["conversation"]["generatingId"] is None


async def test_429_then_success(server, fake, room):
    client, conv_id = room
    fake.script(Script(status=429, error_type="rate_limit_error",
                       headers={"retry-after-ms": "150", "retry-after": "1"}))
    rid = await send(client, conv_id)
    event, done = await finished(client, rid)
    assert event == "message:done" and done["message"]["content"] == "Hello, world."
    first, second = fake.requests
    assert second.started - first.started >= 0.15  # retry-after-ms honoured


async def test_529_retries_exhausted(server, fake, room):
    client, conv_id = room
    fake.script(*[Script(status=529, error_type="overloaded_error",
                         headers={"retry-after": "0"}) for _ in range(3)])
    rid = await send(client, conv_id)
    event, err = await finished(client, rid)
    assert event == "message:error"
    assert (err["code"], err["reason"]) == ("unavailable", "overloaded")
    assert len(fake.requests) == 3  # the first try and ANTHROPIC_MAX_RETRIES=2
    assert err["reply"]["content"] == ""


async def test_retry_after_beyond_the_cap_fails_at_once(server, fake, room):
    client, conv_id = room
    fake.script(Script(status=429, error_type="rate_limit_error",
                       headers={"retry-after": "3600"}))
    rid = await send(client, conv_id)
    event, err = await finished(client, rid)
    assert (event, err["code"], err["retryAfter"]) == ("message:error", "rate_limited", 3600)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("script,streamed", [
    (Script(stall_after=2), "Hello, "),  # silence mid-stream
    (Script(stall_before_headers=5), ""),  # no answer at all
])
async def test_slow_server_times_out(server, fake, room, script, streamed):
    client, conv_id = room
    fake.script(script)
    rid = await send(client, conv_id)
    event, err = await finished(client, rid)
    assert (event, err["code"], err["reason"]) == ("message:error", "unavailable", "timeout")
    assert err["reply"]["content"] == streamed
    assert len(fake.requests) == 1  # a timed-out attempt is not retried


@pytest.mark.parametrize("settings", [{"chat_history_tokens": 350}], indirect=True)
async def test_history_is_cut_to_the_budget_oldest_first(server, fake, room):
    client, conv_id = room
    texts = [f"question {i}: " + "x" * 600 for i in range(4)]
    for text in texts:
        rid = await send(client, conv_id, text)
        event, done = await finished(client, rid)
        assert event == "message:done"
    sent = fake.requests[-1].body["messages"]
    assert sent ==  [{"role": "user", "content": texts[2]},
                    {"role": "assistant", "content": "Hello, world."},
                    {"role": "user", "content": texts[3]}]
    assert done["message"]["metadata"]["history"] == {"sent": 3, "dropped": 4,
                                                      "budgetTokens": 350}
    assert [len(r.body["messages"]) for r in fake.requests] == [1, 3, 3, 3]


@pytest.mark.parametrize("settings", [{"anthropic_api_key": "sk-ant-wrong"}], indirect=True)
async def test_a_refused_key_is_a_clear_error(server, fake, room):
    client, conv_id = room
    rid = await send(client, conv_id)
    event, err = await finished(client, rid)
    assert (event, err["code"], err["reason"]) == ("message:error", "unavailable",
                                                   "provider_auth")
    assert "ANTHROPIC_API_KEY" in err["message"]
