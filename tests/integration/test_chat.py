"""AI chat on one instance with the built-in offline analyst: conversations and access,
the streamed reply, titles, cancel, one reply at a time, guest limits, answers from real
data (a CSV and a real capture), project deletion."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.chat_helpers import assert_gapless, close, deltas, finished, team
from tests.client import Client, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import upload
from tests.pcap_files import PCAPS

ESPN = PCAPS / "sanders-http_espn.pcapng"
CSV = (b"city,temp,visits,opened\n"
       b"Oslo,3.5,10,2024-01-02\n"
       b"Rome,,12,2024-02-03\n"
       b"Lima,18.25,,2024-03-04\n"
       b"Oslo,4,7,\n"
       b"Kyiv,-2,30,2024-05-06\n")


@pytest.fixture
def settings(tmp_path, request):
    overrides = {"chat_offline_delay_ms": 0, "guest_messages": 2}
    overrides.update(getattr(request, "param", {}))
    return make_settings(tmp_path, **overrides)


async def ask(client, conv_id, content, **extra):
    ack = await client.ok("message:send", {"conversationId": conv_id, "content": content,
                                           **extra})
    event, data = await finished(client, ack["replyId"])
    return ack, event, data


async def test_stream_reaches_every_viewer_in_order_and_titles_the_conversation(server):
    p, owner, (viewer,) = await team(server.url, "viewer")
    try:
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        assert conv["title"] is None and conv["projectId"] == p["id"]
        assert (await viewer.wait_for("conversation:created"))["conversation"]["id"] == conv["id"]
        await owner.ok("conversation:join", {"id": conv["id"]})
        joined = await viewer.ok("conversation:join", {"id": conv["id"]})
        assert joined["generating"] is None
        ack, event, done = await ask(owner, conv["id"], "Hello, what can you do?")
        assert event == "message:done"
        user, reply_id = ack["message"], ack["replyId"]
        assert user["role"] == "user" and user["content"] == "Hello, what can you do?"
        assert ack["reply"]["status"] == "generating" and ack["reply"]["id"] == reply_id
        started = await viewer.wait_for("message:started", lambda d: d["messageId"] == reply_id)
        assert started["userMessage"]["id"] == user["id"]
        final = done["message"]
        assert final["status"] == "complete" and final["role"] == "assistant"
        assert "Offline analyst" in final["content"] and "not an AI model" in final["content"]
        meta = final["metadata"]
        assert meta["provider"] == "offline" and meta["stopReason"] == "end_turn"
        assert meta["usage"]["outputTokens"] > 0 and meta["durationMs"] >= 0
        assert meta["context"]["included"] == [] and meta["history"]["sent"] == 1
        for client in (owner, viewer):
            await finished(client, reply_id)
            assert assert_gapless(deltas(client, reply_id)) == final["content"]
        updated = await viewer.wait_for("conversation:updated")
        assert updated["conversation"]["title"] == "Hello, what can you do?"
        got = await viewer.ok("conversation:get", {"id": conv["id"]})
        assert [m["id"] for m in got["messages"]] == [user["id"], reply_id]
        assert got["messages"][1]["content"] == final["content"]
        assert got["conversation"]["title"] == "Hello, what can you do?"
    finally:
        await close(owner, viewer)


async def test_offline_analyst_answers_from_a_real_csv(server):
    p, owner, _ = await team(server.url)
    try:
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"], CSV,
                                   "weather.csv")
        assert status == 201, out
        fid = out["data"]["id"]
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        await owner.ok("conversation:join", {"id": conv["id"]})
        ack, _, done = await ask(owner, conv["id"], "Which columns have missing values?",
                                 attachments=[fid])
        assert ack["message"]["attachments"] == [fid]
        text = done["message"]["content"]
        assert "weather.csv" in text and "5 rows and 4 columns" in text
        assert "3 of 4 columns have missing values" in text
        for column in ("temp", "visits", "opened"):
            assert f"`{column}`: 1 missing of 5 rows (20.0%)" in text
        assert "`city`: " not in text
        included = done["message"]["metadata"]["context"]["included"]
        assert [(i["fileId"], i["kind"]) for i in included] == [(fid, "csv")]

        _, _, done = await ask(owner, conv["id"], "What is the average temp?", attachments=[fid])
        text = done["message"]["content"]
        assert "`temp` (number): 4 values; 1 missing" in text
        assert "min -2, max 18.25, mean 5.938" in text  # (3.5 + 18.25 + 4 - 2) / 4
        # The same question over the same data gives the same answer, word for word.
        _, _, again = await ask(owner, conv["id"], "What is the average temp?",
                                attachments=[fid])
        assert again["message"]["content"] == text
    finally:
        await close(owner)


def _tshark_endpoints(path: Path) -> list[tuple[str, int, int]]:
    """(address, packets, bytes) from Wireshark's own ``-z endpoints,ip``."""
    out = subprocess.run(["tshark", "-r", str(path), "-q", "-z", "endpoints,ip"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].count(".") == 3 and parts[1].isdigit():
            rows.append((parts[0], int(parts[1]), int(parts[2])))
    return sorted(rows, key=lambda r: -r[2])


# Figures from `tshark -q -z endpoints,ip` and `capinfos` on the same file, for machines
# without Wireshark's tools.
ESPN_TOP = [("172.16.0.122", 956, 652181), ("205.234.218.129", 588, 439846),
            ("63.85.36.72", 119, 99317)]


async def test_offline_analyst_answers_from_a_real_capture(server):
    expected = _tshark_endpoints(ESPN)[:3] if shutil.which("tshark") else ESPN_TOP
    assert expected == ESPN_TOP
    p, owner, _ = await team(server.url)
    try:
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"],
                                   ESPN.read_bytes(), ESPN.name)
        assert status == 201, out
        conv = await owner.ok("conversation:create", {"projectId": p["id"], "title": "Traffic"})
        await owner.ok("conversation:join", {"id": conv["id"]})
        _, _, done = await ask(owner, conv["id"], "Who are the top talkers?",
                               includeProjectFiles=True)
        text = done["message"]["content"]
        assert "956 packets and 652,181 bytes" in text  # capinfos: 956 packets, 652181 bytes
        for rank, (address, packets, size) in enumerate(expected, 1):
            assert f"{rank}. {address}: {size:,} bytes in {packets:,} packets" in text
        _, _, done = await ask(owner, conv["id"], "Which protocols and conversations are in it?",
                               includeProjectFiles=True)
        text = done["message"]["content"]
        assert "TCP 928 / 648,988" in text and "UDP 28 / 3,193" in text
        assert "TCP 172.16.0.122:41835 ↔ 205.234.218.129:80: 186,358 bytes" in text
        # A title given at creation is kept.
        got = await owner.ok("conversation:get", {"id": conv["id"]})
        assert got["conversation"]["title"] == "Traffic"
    finally:
        await close(owner)


async def test_access_viewer_reads_but_cannot_write_stranger_sees_nothing(server):
    p, owner, (viewer, editor) = await team(server.url, "viewer", "editor")
    stranger = await Client(server.url, "stranger").connect()
    await stranger.register(unique_email("stranger"))
    try:
        conv = await editor.ok("conversation:create", {"projectId": p["id"]})
        err = await viewer.err("conversation:create", {"projectId": p["id"]})
        assert err["code"] == "forbidden"
        err = await viewer.err("message:send", {"conversationId": conv["id"], "content": "hi"})
        assert err["code"] == "forbidden"
        assert (await viewer.err("conversation:rename", {"id": conv["id"], "title": "x"}))[
            "code"] == "forbidden"
        await viewer.ok("conversation:join", {"id": conv["id"]})
        listed = await viewer.ok("conversation:list", {"projectId": p["id"]})
        assert [c["id"] for c in listed["items"]] == [conv["id"]]
        for event, payload in [("conversation:get", {"id": conv["id"]}),
                               ("conversation:join", {"id": conv["id"]}),
                               ("conversation:rename", {"id": conv["id"], "title": "x"}),
                               ("conversation:delete", {"id": conv["id"]}),
                               ("message:send", {"conversationId": conv["id"], "content": "x"})]:
            assert (await stranger.err(event, payload))["code"] == "not_found", event
        assert (await stranger.err("conversation:list", {"projectId": p["id"]}))[
            "code"] == "not_found"
        await editor.ok("conversation:join", {"id": conv["id"]})
        ack, _, _ = await ask(editor, conv["id"], "hi")
        assert (await stranger.err("message:cancel", {"messageId": ack["replyId"]}))[
            "code"] == "not_found"
        # A private conversation is its owner's alone, even for the project's owner.
        private = await editor.ok("conversation:create", {})
        assert private["projectId"] is None
        assert (await owner.err("conversation:get", {"id": private["id"]}))["code"] == "not_found"
        mine = await editor.ok("conversation:list", {})
        assert [c["id"] for c in mine["items"]] == [private["id"]]
        assert (await owner.ok("conversation:list", {}))["items"] == []
        # Deleting: the creator or a project owner, not another editor.
        other = await owner.ok("conversation:create", {"projectId": p["id"]})
        assert (await editor.err("conversation:delete", {"id": other["id"]}))[
            "code"] == "forbidden"
        await owner.ok("conversation:delete", {"id": conv["id"]})
        assert (await viewer.wait_for("conversation:deleted"))["id"] == conv["id"]
        assert (await viewer.err("conversation:get", {"id": conv["id"]}))["code"] == "not_found"
        # Attachments must come from the conversation's project.
        q = await stranger.ok("project:create", {"name": "Elsewhere"})
        status, out = await upload(server.url, stranger.tokens["accessToken"], q["id"], CSV,
                                   "x.csv")
        assert status == 201
        err = await owner.err("message:send", {"conversationId": other["id"], "content": "x",
                                               "attachments": [out["data"]["id"]]})
        assert err["code"] == "not_found"
    finally:
        await close(owner, viewer, editor, stranger)


@pytest.mark.parametrize("settings", [{"chat_offline_delay_ms": 40}], indirect=True)
async def test_cancel_keeps_what_was_streamed_and_one_reply_at_a_time(server):
    p, owner, (editor,) = await team(server.url, "editor")
    try:
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        for c in (owner, editor):
            await c.ok("conversation:join", {"id": conv["id"]})
        ack = await owner.ok("message:send", {"conversationId": conv["id"],
                                              "content": "Tell me about this project"})
        rid = ack["replyId"]
        await editor.wait_for("message:delta", lambda d: d["messageId"] == rid and
                              d["index"] >= 2)
        err = await editor.err("message:send", {"conversationId": conv["id"], "content": "me too"})
        assert err["code"] == "conflict" and err["details"]["messageId"] == rid
        joined = await editor.ok("conversation:join", {"id": conv["id"]})
        assert joined["generating"]["messageId"] == rid and joined["generating"]["index"] >= 2
        assert (await editor.ok("message:cancel", {"messageId": rid}))["cancelling"] is True
        event, done = await finished(owner, rid)
        assert event == "message:done"
        final = done["message"]
        assert final["status"] == "cancelled" and final["metadata"]["stopReason"] == "cancelled"
        streamed = assert_gapless(deltas(owner, rid))
        assert final["content"] == streamed and 0 < len(streamed)
        assert "Offline analyst" in streamed
        err = await owner.err("message:cancel", {"messageId": rid})
        assert err["code"] == "conflict" and err["details"]["status"] == "cancelled"
        # The conversation is free again.
        ack2 = await editor.ok("message:send", {"conversationId": conv["id"], "content": "again"})
        assert (await finished(editor, ack2["replyId"]))[0] == "message:done"
        got = await owner.ok("conversation:get", {"id": conv["id"], "limit": 2})
        assert [m["id"] for m in got["messages"]] == [ack2["message"]["id"], ack2["replyId"]]
        older = await owner.ok("conversation:get", {"id": conv["id"], "cursor": got["nextCursor"]})
        assert [m["id"] for m in older["messages"]] == [ack["message"]["id"], rid]
        assert older["messages"][1]["status"] == "cancelled"
    finally:
        await close(owner, editor)


async def test_guest_limit(server):
    guest = await Client(server.url, "guest").connect()
    try:
        await guest.guest()
        assert guest.user["remainingMessages"] == 2
        conv = await guest.ok("conversation:create", {})
        await guest.ok("conversation:join", {"id": conv["id"]})
        for left in (1, 0):
            ack, event, _ = await ask(guest, conv["id"], "hello")
            assert event == "message:done" and ack["remainingMessages"] == left
            pushed = await guest.wait_for("auth:quota",
                                          lambda d, n=left: d["remainingMessages"] == n)
            assert pushed["userId"] == guest.user["id"]
        err = await guest.err("message:send", {"conversationId": conv["id"], "content": "more"})
        assert err["code"] == "forbidden" and err["details"]["reason"] == "guest_limit"
        got = await guest.ok("conversation:get", {"id": conv["id"]})
        assert len(got["messages"]) == 4  # the refused message was not stored
    finally:
        await guest.close()


async def test_bad_input_and_project_delete_cascades(server):
    p, owner, _ = await team(server.url)
    try:
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        for payload, field in [({"conversationId": conv["id"], "content": "   "}, "content"),
                               ({"conversationId": conv["id"]}, "content"),
                               ({"conversationId": conv["id"], "content": "x", "extra": 1},
                                "extra")]:
            err = await owner.err("message:send", payload)
            assert err["code"] == "bad_request" and field in err["message"]
        assert (await owner.err("conversation:rename", {"id": conv["id"], "title": " "}))[
            "code"] == "bad_request"
        private = await owner.ok("conversation:create", {})
        err = await owner.err("message:send", {"conversationId": private["id"], "content": "x",
                                               "includeProjectFiles": True})
        assert err["code"] == "bad_request"
        renamed = await owner.ok("conversation:rename", {"id": conv["id"], "title": " Q3 "})
        assert renamed["title"] == "Q3"
        await owner.ok("conversation:join", {"id": conv["id"]})
        await ask(owner, conv["id"], "hi")
        await owner.ok("project:delete", {"id": p["id"]})
        assert (await owner.err("conversation:get", {"id": conv["id"]}))["code"] == "not_found"
        assert (await owner.ok("conversation:get", {"id": private["id"]}))["conversation"]
    finally:
        await close(owner)


async def test_a_graceful_stop_leaves_no_reply_generating(tmp_path):
    """Stopping an instance mid-reply fails the reply (reason ``shutdown``), keeping what was
    streamed, instead of leaving it "generating"."""
    settings = make_settings(tmp_path, chat_offline_delay_ms=300)
    srv = await RunningServer(settings).start()
    again = None
    client = await Client(srv.url, "c").connect()
    try:
        await client.register(unique_email("c"))
        conv = await client.ok("conversation:create", {})
        await client.ok("conversation:join", {"id": conv["id"]})
        ack = await client.ok("message:send", {"conversationId": conv["id"], "content": "hi"})
        await client.wait_for("message:delta", lambda d: d["messageId"] == ack["replyId"])
        await client.close()  # aiohttp drains connections before the app's cleanup runs
        await srv.stop()
        again = await RunningServer(settings).start()
        watcher = await Client(again.url, "w").connect(client.tokens["accessToken"])
        got = await watcher.ok("conversation:get", {"id": conv["id"]})
        reply = got["messages"][-1]
        assert reply["id"] == ack["replyId"] and reply["status"] == "failed"
        assert reply["metadata"]["error"]["reason"] == "shutdown"
        assert reply["content"].startswith("**Offline analyst**")
        assert got["conversation"]["generatingId"] is None
        await watcher.close()
    finally:
        await client.close()
        if again:
            await again.stop()


async def test_a_finished_capture_ingest_grounds_the_answer(server):
    """Once the PCAP domain has ingested a capture, the analyst uses its (tshark's) figures."""
    p, owner, _ = await team(server.url)
    try:
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"],
                                   ESPN.read_bytes(), ESPN.name)
        assert status == 201, out
        fid = out["data"]["id"]
        await owner.wait_for("pcap:done", lambda d: d["fileId"] == fid, timeout=60)
        conv = await owner.ok("conversation:create", {"projectId": p["id"]})
        await owner.ok("conversation:join", {"id": conv["id"]})
        _, _, done = await ask(owner, conv["id"], "Summarise the top talkers and conversations",
                               attachments=[fid])
        (included,) = done["message"]["metadata"]["context"]["included"]
        assert included["source"] == "pcap ingest (tshark)"
        text = done["message"]["content"]
        assert "956 packets and 652,181 bytes" in text
        for rank, (address, packets, size) in enumerate(ESPN_TOP, 1):
            assert f"{rank}. {address}: {size:,} bytes in {packets:,} packets" in text
        assert "186,358 bytes" in text  # the largest TCP conversation, as tshark counts it
    finally:
        await close(owner)
