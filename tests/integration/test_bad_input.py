"""Malformed input gets a clear error code; the connection, other users and the server
carry on (DEVELOPERS: 'a malformed payload never kills a connection')."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.client import unique_email


@pytest.fixture
async def alice(clients):
    c = await clients(name="alice")
    await c.register(unique_email("alice"))
    return c


async def still_serving(client, other):
    """The same socket answers again, and so does another user's."""
    assert (await client.ok("ping"))["pong"] is True
    assert (await other.ok("auth:me"))["id"] == other.user["id"]


async def test_unknown_event(alice, clients):
    bob = await clients()
    await bob.register(unique_email("bob"))
    err = await alice.err("no:such:event", {"a": 1})
    assert err["code"] == "bad_request" and "no:such:event" in err["message"]
    await still_serving(alice, bob)


@pytest.mark.parametrize("payload,needle", [
    ([1, 2], "an array"), ("text", "a string"), (42, "a number"), (True, "a boolean")])
async def test_payload_not_an_object(alice, clients, payload, needle):
    err = await alice.err("project:create", payload)
    assert err["code"] == "bad_request" and needle in err["message"]
    assert (await alice.ok("ping"))["pong"]


async def test_missing_extra_and_wrong_typed_fields(alice):
    missing = await alice.err("project:create", {})
    assert missing["code"] == "bad_request" and missing["message"] == "name is required"
    extra = await alice.err("project:create", {"name": "x", "owner": "me"})
    assert extra["code"] == "bad_request" and "owner is not a known field" in extra["message"]
    wrong = await alice.err("project:create", {"name": 123})
    assert wrong["code"] == "bad_request" and wrong["details"]["fields"][0]["field"] == "name"
    many = await alice.err("project:member:add", {"id": 5, "role": "king"})
    assert "more" in many["message"] and len(many["details"]["fields"]) == 3
    assert (await alice.err("project:create", {"name": "x", "color": "not a colour!"}))[
        "code"] == "bad_request"


async def test_ten_megabyte_payload_is_too_large_and_connection_survives(alice, clients):
    bob = await clients()
    await bob.register(unique_email("bob"))
    err = await alice.err("project:create", {"name": "x" * (10 * 1024 * 1024)}, timeout=30)
    assert err["code"] == "too_large" and err["details"]["limit"] == 1024 * 1024
    await still_serving(alice, bob)


async def test_several_arguments_refused(alice):
    ack = await alice.sio.call("ping", ({"a": 1}, {"b": 2}), timeout=5)
    assert ack["error"]["code"] == "bad_request"


async def test_unknown_project_and_foreign_project_reveal_nothing(alice, clients):
    bob = await clients()
    await bob.register(unique_email("bob"))
    secret = await bob.ok("project:create", {"name": "Bob's secret plans"})
    for pid in ("0" * 24, secret["id"], "../../etc/passwd"):
        for event in ("project:get", "project:join", "project:update", "project:delete"):
            payload = {"id": pid, "name": "pwned"} if event == "project:update" else {"id": pid}
            err = await alice.err(event, payload)
            assert err["code"] in ("not_found", "forbidden"), (event, err)
            assert "secret" not in json.dumps(err)
    assert (await bob.ok("project:get", {"id": secret["id"]}))["name"] == "Bob's secret plans"


async def test_unexpected_exception_answers_internal_with_a_reference(alice, server, monkeypatch,
                                                                      caplog):
    store = __import__("server.keys", fromlist=["services_of"]).services_of(server.app).store

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store.projects, "list_projects_for_user", broken)
    err = await alice.err("project:list")
    assert err["code"] == "internal" and err["details"]["ref"] in err["message"]
    assert "disk on fire" not in err["message"]
    assert any(getattr(r, "fields", {}).get("ref") == err["details"]["ref"] for r in caplog.records)
    monkeypatch.undo()
    assert await alice.ok("project:list") == []


async def test_events_before_sign_in_are_unauthorized(clients):
    anon = await clients()
    for event in ("project:list", "auth:me", "project:create"):
        assert (await anon.err(event, {"name": "x"} if event == "project:create" else None))[
            "code"] == "unauthorized"
    assert (await anon.ok("ping"))["pong"]


async def test_garbage_socketio_packets_do_not_break_the_server(server, alice):
    """Hand-made frames a library client would never send, over a raw websocket."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            await ws.receive()  # engine.io open
            await ws.send_str("40")  # socket.io connect, no auth
            await ws.receive()
            for frame in ['42[', '421["ping"', '42{"a":1}', '4299999999999999999999["ping"]',
                          '42[123]', '42[null,{}]', '4\x00\x01', '7', 'zz', '2probe']:
                await ws.send_str(frame)
            await ws.send_str('427["ping",{}]')  # a good one after the garbage
            answer = None
            for _ in range(20):
                msg = await asyncio.wait_for(ws.receive(), 5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if msg.data.startswith("437"):
                    answer = json.loads(msg.data[3:])
                    break
    # Whether or not the server chose to drop that abusive socket, everyone else is fine.
    assert (await alice.ok("auth:me"))["id"] == alice.user["id"]
    if answer is not None:
        assert answer[0]["ok"] is True


async def test_malformed_event_packets_get_a_bad_request_answer(server, alice):
    """Every EVENT packet whose ack id can be read is answered, whatever its body."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    deep_ok = "[" * 60 + "]" * 60
    deep = "[" * 70 + "]" * 70
    frames = {
        101: ('42101[]', "JSON array"),
        102: ('42102{}', "JSON array"),
        103: ('42103[["ping"]]', "JSON array"),
        104: ('42104["ping", {', "not valid JSON"),
        105: ('42105' + "[" * 1500 + "]" * 1500, "nests deeper"),
        106: (f'42106["project:broadcast", {{"id": "p", "event": "e", "data": {deep}}}]',
              "nests deeper"),
        107: ('42107["project:create", {"name": "\\ud800"}]', "lone surrogate"),
        108: ('42108[null, {}]', "JSON array"),
    }
    answers: dict[int, dict] = {}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await ws.receive()  # engine.io open
            await ws.send_str("40")
            await ws.receive()
            for frame, _ in frames.values():
                await ws.send_str(frame)
            await ws.send_str(f'42109["project:broadcast", {{"id": "p", "event": "e", '
                              f'"data": {deep_ok}}}]')  # decodes: answered by the handler
            while len(answers) < len(frames) + 1:
                msg = await asyncio.wait_for(ws.receive(), 10)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                if msg.data.startswith("43"):
                    ack = int(msg.data[2:5])
                    answers[ack] = json.loads(msg.data[5:])[0]
    for ack, (_, needle) in frames.items():
        assert answers[ack]["ok"] is False, (ack, answers[ack])
        assert answers[ack]["error"]["code"] == "bad_request", (ack, answers[ack])
        assert needle in answers[ack]["error"]["message"], (ack, answers[ack])
    # 60 levels is within the limit: it reached the handler (which wants a signed-in caller).
    assert answers[109]["error"]["code"] == "unauthorized"
    assert (await alice.ok("auth:me"))["id"] == alice.user["id"]
