"""Chat-history import through a real server: upload → chat:import → progress → chat:imported,
then browsing, search, rename, delete and the four exports; every bad input ends in
chat:import:failed with nothing stored; guests spend one of their imports; cancel."""
from __future__ import annotations

import csv
import io
import io as _io
import json
import zipfile

import aiohttp

from tests.client import unique_email
from tests.files_helpers import upload

WHATSAPP = (
    "12/03/2024, 09:15 - Messages and calls are end-to-end encrypted. No one outside of this "
    "chat can read or listen to them.\n"
    "12/03/2024, 09:16 - Zoë: Bonjour à tous\n"
    "12/03/2024, 09:17 - Ana: hello Zoë, the quarterly report is ready\n"
    "it has two lines\n"
    "13/03/2024, 18:02 - Ana: <Media omitted>\n"
    "25/03/2024, 07:45 - Zoë: report looks good =SUM(A1)\n"
)


async def project_with_owner(clients, name="Chats"):
    c = await clients(name="owner")
    await c.register(unique_email("chat"))
    p = await c.ok("project:create", {"name": name})
    await c.ok("project:join", {"id": p["id"]})
    return c, p


async def uploaded(server, c, p, data: bytes, name: str) -> str:
    status, out = await upload(server.url, c.tokens["accessToken"], p["id"], data, name)
    assert status == 201, out
    return out["data"]["id"]


async def imported(server, c, p, data: bytes, name: str, **params) -> list[dict]:
    fid = await uploaded(server, c, p, data, name)
    job = await c.ok("chat:import", {"projectId": p["id"], "fileId": fid, **params})
    assert job["fileId"] == fid and job["state"] in ("queued", "running")
    done = await c.wait_for("chat:imported", lambda d: d["fileId"] == fid, timeout=30)
    return done["chats"]


async def failed(server, c, p, data: bytes, name: str, **params) -> dict:
    fid = await uploaded(server, c, p, data, name)
    await c.ok("chat:import", {"projectId": p["id"], "fileId": fid, **params})
    out = await c.wait_for("chat:import:failed", lambda d: d["fileId"] == fid, timeout=30)
    assert out["projectId"] == p["id"] and out["code"] == "bad_request", out
    assert (await c.ok("chat:list", {"projectId": p["id"]}))["items"] == []
    return out


async def test_import_browse_search_rename_export_delete(clients, server):
    c, p = await project_with_owner(clients)
    [chat] = await imported(server, c, p, WHATSAPP.encode(), "WhatsApp Chat with Zoë.txt",
                            timezone="Europe/Paris")
    assert chat["platform"] == "whatsapp" and chat["projectId"] == p["id"]
    assert chat["messageCount"] == 4 and chat["systemCount"] == 1
    assert {x["name"]: x["messages"] for x in chat["participants"]} == {"Zoë": 2, "Ana": 2}
    # WhatsApp gives local times: 09:15 in Paris (UTC+1 in March) is 08:15 UTC.
    assert chat["firstTime"] == "2024-03-12T08:15:00.000Z"
    progress = c.pushes.get("chat:import:progress", [])
    assert progress and progress[-1]["percent"] == 100.0 and progress[-1]["messages"] == 5

    assert (await c.ok("chat:list", {"projectId": p["id"]}))["items"] == [chat]
    assert await c.ok("chat:get", {"id": chat["id"]}) == chat
    page = await c.ok("chat:messages", {"chatId": chat["id"], "limit": 2})
    assert [m["kind"] for m in page["items"]] == ["system", "message"]
    rest = await c.ok("chat:messages", {"chatId": chat["id"], "cursor": page["nextCursor"]})
    texts = [m["text"] for m in page["items"] + rest["items"]]
    assert "hello Zoë, the quarterly report is ready\nit has two lines" in texts
    media = next(m for m in rest["items"] if m["attachments"])
    assert media["author"] == "Ana" and media["attachments"][0]["kind"]
    only_zoe = await c.ok("chat:messages", {"chatId": chat["id"], "author": "Zoë"})
    assert [m["author"] for m in only_zoe["items"]] == ["Zoë", "Zoë"]

    hits = await c.ok("chat:search", {"projectId": p["id"], "query": "zoe"})
    assert hits["items"] and all("«" in h["snippet"] for h in hits["items"])
    report = await c.ok("chat:search", {"projectId": p["id"], "query": "report"})
    assert {h["author"] for h in report["items"]} == {"Ana", "Zoë"}
    phrase = await c.ok("chat:search", {"projectId": p["id"], "query": '"report is ready"'})
    assert [h["author"] for h in phrase["items"]] == ["Ana"]
    prefix = await c.ok("chat:search", {"projectId": p["id"], "query": "quart*"})
    assert len(prefix["items"]) == 1
    around = await c.ok("chat:messages", {"chatId": chat["id"],
                                          "around": phrase["items"][0]["messageId"]})
    assert phrase["items"][0]["messageId"] in [m["id"] for m in around["items"]]

    renamed = await c.ok("chat:rename", {"id": chat["id"], "name": "Team"})
    assert renamed["name"] == "Team"

    headers = {"Authorization": f"Bearer {c.tokens['accessToken']}"}
    async with aiohttp.ClientSession() as http:
        base = f"{server.url}/api/chats/{chat['id']}/export"
        async with http.get(f"{base}.json", headers=headers) as r:
            assert r.status == 200
            body = json.loads(await r.text())
        assert body["chat"]["name"] == "Team" and len(body["messages"]) == 5
        async with http.get(f"{base}.csv", headers=headers) as r:
            rows = list(csv.DictReader(io.StringIO(await r.text())))
        assert len(rows) == 5
        # A cell a spreadsheet would run as a formula is neutralized.
        assert all(not row["text"].startswith("=") for row in rows)
        async with http.get(f"{base}.md", headers=headers) as r:
            assert r.status == 200 and (await r.text()).startswith("# Team")
        async with http.get(f"{base}.txt", headers=headers) as r:
            assert "Ana: hello Zoë" in await r.text()
        async with http.get(f"{base}.exe", headers=headers) as r:
            assert r.status == 400
        async with http.get(f"{base}.json") as r:
            assert r.status == 401

    assert await c.ok("chat:delete", {"id": chat["id"]}) == {"id": chat["id"]}
    assert (await c.err("chat:get", {"id": chat["id"]}))["code"] == "not_found"
    assert (await c.ok("chat:search", {"projectId": p["id"], "query": "report"}))["items"] == []


async def test_bad_exports_fail_cleanly(clients, server):
    c, p = await project_with_owner(clients)
    unknown = await failed(server, c, p, b"just some notes\nnothing chatty\n", "notes.txt")
    assert unknown["reason"] == "unknown_format" and "notes" in unknown["message"].lower() \
        or unknown["message"]
    not_chat = await failed(server, c, p, json.dumps({"hello": "world"}).encode(), "x.json")
    assert not_chat["reason"] in ("not_a_chat", "unknown_format")
    truncated = await failed(server, c, p, b'{"name": "Chat", "type": "personal_chat", '
                             b'"id": 1, "messages": [{"id": 1, "type": "mess', "result.json")
    assert truncated["reason"] == "truncated"
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.txt", "12/03/2024, 09:16 - A: hi\n")
    slip = await failed(server, c, p, buf.getvalue(), "export.zip")
    assert slip["reason"] == "unsafe_archive"
    forced = await failed(server, c, p, WHATSAPP.encode(), "chat.txt", platform="telegram")
    assert forced["reason"] in ("not_a_chat", "unknown_format")
    bad_zone = await c.err("chat:import", {"projectId": p["id"], "fileId": "x",
                                           "timezone": "Mars/Olympus"})
    assert bad_zone["code"] == "bad_request"


async def test_guest_imports_are_limited_and_cancel_keeps_nothing(clients, server):
    g = await clients(name="guest")
    await g.guest()
    p = await g.ok("project:create", {"name": "Mine"})
    await g.ok("project:join", {"id": p["id"]})
    fid = await uploaded(server, g, p, WHATSAPP.encode(), "chat.txt")
    for _ in range(2):  # GUEST_IMPORTS defaults to 2
        await g.ok("chat:import", {"projectId": p["id"], "fileId": fid})
        await g.wait_for("chat:imported", lambda d: d["fileId"] == fid, timeout=30)
        g.forget("chat:imported")
    refused = await g.err("chat:import", {"projectId": p["id"], "fileId": fid})
    assert refused["code"] == "forbidden" and refused["details"]["reason"] == "guest_limit"
    # Importing the same file again replaced the earlier chats: one chat, not two.
    assert len((await g.ok("chat:list", {"projectId": p["id"]}))["items"]) == 1


async def test_a_reply_grounded_in_an_imported_chat(clients, server):
    from tests.chat_helpers import finished

    c, p = await project_with_owner(clients)
    [chat] = await imported(server, c, p, WHATSAPP.encode(), "WhatsApp Chat with Zoë.txt")
    conv = await c.ok("conversation:create", {"projectId": p["id"]})
    await c.ok("conversation:join", {"id": conv["id"]})
    ack = await c.ok("message:send", {"conversationId": conv["id"], "chats": [chat["id"]],
                                      "content": "Who wrote the most messages about the "
                                                 "quarterly report, and when?"})
    event, done = await finished(c, ack["replyId"])
    assert event == "message:done", done
    text = done["message"]["content"]
    # The offline analyst answers from the real figures: counts, the busiest month, and
    # the message the search index found for "quarterly report".
    assert "4 messages from 2 participants" in text, text
    assert "busiest month was 2024-03 with 4 messages" in text, text
    assert "the quarterly report is ready" in text, text
    included = done["message"]["metadata"]["context"]["included"]
    assert included == [{"chatId": chat["id"], "name": chat["name"], "kind": "chat",
                         "tokens": included[0]["tokens"], "truncated": False}]

    private = await c.ok("conversation:create", {})
    err = await c.err("message:send", {"conversationId": private["id"], "content": "hi",
                                       "chats": [chat["id"]]})
    assert err["code"] == "bad_request"
    other = await c.ok("project:create", {"name": "Other"})
    elsewhere = await c.ok("conversation:create", {"projectId": other["id"]})
    err = await c.err("message:send", {"conversationId": elsewhere["id"], "content": "hi",
                                       "chats": [chat["id"]]})
    assert err["code"] == "not_found"
