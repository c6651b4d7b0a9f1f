"""Tables and rows on one instance: types, secrets, paging, history and restore, CSV."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.client import Client, unique_email
from tests.files_helpers import upload

COLUMNS = [{"name": "user", "type": "text"}, {"name": "pnl", "type": "number"},
           {"name": "active", "type": "bool"}, {"name": "since", "type": "datetime"},
           {"name": "API_key", "type": "text", "secret": True}]


async def team(server, *roles):
    """An owner plus one member per role, all in one project; everyone joined."""
    owner = await Client(server.url, "owner").connect()
    await owner.register(unique_email("owner"))
    p = await owner.ok("project:create", {"name": "Trading"})
    members = []
    for role in roles:
        c = await Client(server.url, role).connect()
        await c.register(unique_email(role))
        await owner.ok("project:member:add", {"id": p["id"], "email": c.user["email"],
                                              "role": role})
        members.append(c)
    for c in (owner, *members):
        await c.ok("project:join", {"id": p["id"]})
    return p, owner, members


async def close(*clients):
    for c in clients:
        await c.close()


async def test_create_add_update_delete_with_pushes(server):
    p, owner, (editor,) = await team(server, "editor")
    try:
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "brokers",
                                            "columns": COLUMNS})
        created = await editor.wait_for("table:created")
        assert created["table"]["id"] == t["id"]
        row = await editor.ok("row:add", {"tableId": t["id"], "values": {
            "user": "ana", "pnl": 12.5, "active": True, "since": "2024-05-01",
            "API_key": "sk-1234567890abcd"}})
        assert row["version"] == 1 and row["values"]["API_key"] == "sk-1234567890abcd"
        pushed = await owner.wait_for("row:added")
        assert pushed["row"]["id"] == row["id"] and pushed["tableId"] == t["id"]
        # The sender has the ack, not an echo: an echo would have come before this marker.
        await owner.ok("project:broadcast", {"id": p["id"], "event": "marker", "data": {}})
        await editor.wait_for("project:broadcast", lambda d: d["event"] == "marker")
        assert editor.pushes["row:added"] == []
        upd = await owner.ok("row:update", {"tableId": t["id"], "rowId": row["id"],
                                            "version": 1, "values": {"pnl": -3}})
        assert upd["version"] == 2 and upd["values"]["pnl"] == -3 and upd["values"]["user"] == "ana"
        got = await editor.wait_for("row:updated")
        assert got["row"]["version"] == 2
        stale = await editor.err("row:update", {"tableId": t["id"], "rowId": row["id"],
                                                "version": 1, "values": {"pnl": 99}})
        assert stale["code"] == "conflict" and stale["details"]["version"] == 2
        await editor.ok("row:delete", {"tableId": t["id"], "rowId": row["id"], "version": 2})
        assert (await owner.wait_for("row:deleted"))["rowId"] == row["id"]
        assert (await owner.ok("table:rows", {"tableId": t["id"]}))["items"] == []
    finally:
        await close(owner, editor)


@pytest.mark.parametrize("values,column", [
    ({"pnl": "12"}, "pnl"), ({"active": 1}, "active"), ({"since": "yesterday"}, "since"),
    ({"user": 5}, "user"), ({"nope": 1}, "nope"), ({"pnl": True}, "pnl")])
async def test_values_are_validated_against_column_types(server, values, column):
    p, owner, _ = await team(server)
    try:
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "t", "columns": COLUMNS})
        err = await owner.err("row:add", {"tableId": t["id"], "values": values})
        assert err["code"] == "bad_request" and column in err["message"]
    finally:
        await close(owner)


async def test_secret_columns_masked_for_others_everywhere(server):
    p, owner, (editor, viewer) = await team(server, "editor", "viewer")
    try:
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "keys",
                                            "columns": COLUMNS})
        secret = "sk-live-abcdef987654"
        row = await editor.ok("row:add", {"tableId": t["id"], "values": {"user": "e",
                                                                        "API_key": secret}})
        # Pushes: the owner sees it in clear, the viewer masked.
        assert (await owner.wait_for("row:added"))["row"]["values"]["API_key"] == secret
        masked = (await viewer.wait_for("row:added"))["row"]["values"]["API_key"]
        assert masked == "••••7654"
        # Reads and history follow the same rule; the author sees their own secret.
        for who, expect in ((owner, secret), (editor, secret), (viewer, masked)):
            rows = (await who.ok("table:rows", {"tableId": t["id"]}))["items"]
            assert rows[0]["values"]["API_key"] == expect
            hist = await who.ok("row:history", {"tableId": t["id"], "rowId": row["id"]})
            assert hist[0]["after"]["API_key"] == expect
        # Updates by the owner reach the author (an editor) in clear, the viewer masked.
        await owner.ok("row:update", {"tableId": t["id"], "rowId": row["id"], "version": 1,
                                      "values": {"API_key": "sk-new-000011112222"}})
        assert (await editor.wait_for("row:updated"))["row"]["values"]["API_key"] == \
            "sk-new-000011112222"
        assert (await viewer.wait_for("row:updated"))["row"]["values"]["API_key"] == "••••2222"
        # The author's update reaches their other socket in clear, the viewer masked.
        editor2 = await Client(server.url, "editor-2").connect(editor.tokens["accessToken"])
        await editor2.ok("project:join", {"id": p["id"]})
        viewer.forget()
        await editor.ok("row:update", {"tableId": t["id"], "rowId": row["id"], "version": 2,
                                       "values": {"API_key": "sk-own-333344445555"}})
        assert (await editor2.wait_for("row:updated"))["row"]["values"]["API_key"] == \
            "sk-own-333344445555"
        assert (await viewer.wait_for("row:updated"))["row"]["values"]["API_key"] == "••••5555"
        assert (await owner.wait_for("row:updated", lambda d: d["row"]["version"] == 3))[
            "row"]["values"]["API_key"] == "sk-own-333344445555"
        await close(editor2)
        # Not stored in clear.
        store = __import__("server.keys", fromlist=["services_of"]).services_of(server.app).store
        stored = await store.tables.get_row(t["id"], row["id"])
        assert "sk-new" not in str(stored.values) and stored.values["API_key"].startswith("enc:")
        # Secret columns cannot be sorted or filtered (that would leak them).
        assert (await owner.err("table:rows", {"tableId": t["id"], "sort": "API_key"}))[
            "code"] == "bad_request"
    finally:
        await close(owner, editor, viewer)


async def test_paging_sorting_filtering_is_stable(server):
    p, owner, _ = await team(server)
    try:
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "n",
                                            "columns": COLUMNS[:3]})
        values = [5, None, 3, 5, 1, None, 9, 3, 5, 2]
        for i, v in enumerate(values):
            await owner.ok("row:add", {"tableId": t["id"], "values": {"user": f"u{i}", "pnl": v,
                                                                      "active": i % 2 == 0}})
        for order in ("asc", "desc"):
            seen, cursor = [], None
            while True:
                page = await owner.ok("table:rows", {"tableId": t["id"], "sort": "pnl",
                                                     "order": order, "limit": 3,
                                                     "cursor": cursor})
                seen += [r["values"]["user"] for r in page["items"]]
                cursor = page["nextCursor"]
                if not cursor:
                    break
            assert sorted(seen) == sorted(f"u{i}" for i in range(10)) and len(seen) == 10
            pnl = [values[int(u[1:])] for u in seen]
            key = [(v is not None, v or 0) for v in pnl]
            assert key == sorted(key, reverse=order == "desc")
        big = await owner.ok("table:rows", {"tableId": t["id"], "filter": [
            {"column": "pnl", "op": "gte", "value": 5}, {"column": "active", "value": True}]})
        assert sorted(r["values"]["pnl"] for r in big["items"]) == [5, 5, 9]
        has = await owner.ok("table:rows", {"tableId": t["id"], "filter": [
            {"column": "user", "op": "contains", "value": "U1"}]})
        assert [r["values"]["user"] for r in has["items"]] == ["u1"]
    finally:
        await close(owner)


async def test_history_and_restore_round_trip(server):
    p, owner, _ = await team(server)
    try:
        t = await owner.ok("table:create", {"projectId": p["id"], "name": "h",
                                            "columns": COLUMNS[:2]})
        a = await owner.ok("row:add", {"tableId": t["id"], "values": {"user": "a", "pnl": 1}})
        b = await owner.ok("row:add", {"tableId": t["id"], "values": {"user": "b", "pnl": 2}})
        await asyncio.sleep(0.02)
        checkpoint = datetime.now(UTC).isoformat()
        await asyncio.sleep(0.02)
        await owner.ok("row:update", {"tableId": t["id"], "rowId": a["id"], "version": 1,
                                      "values": {"pnl": 100}})
        await owner.ok("row:delete", {"tableId": t["id"], "rowId": b["id"]})
        c = await owner.ok("row:add", {"tableId": t["id"], "values": {"user": "c", "pnl": 3}})
        hist = await owner.ok("row:history", {"tableId": t["id"], "rowId": a["id"]})
        assert [(h["version"], h["op"]) for h in hist] == [(1, "add"), (2, "update")]
        assert hist[1]["before"]["pnl"] == 1 and hist[1]["after"]["pnl"] == 100
        # Row restore: back to version 1, as version 3.
        restored = await owner.ok("row:restore", {"tableId": t["id"], "rowId": a["id"],
                                                  "version": 1})
        assert restored["version"] == 3 and restored["values"]["pnl"] == 1
        # Table restore to the checkpoint: b comes back, c goes, a stays at pnl 1.
        out = await owner.ok("table:restore", {"tableId": t["id"], "at": checkpoint})
        assert out == {"restored": 1, "deleted": 1}
        rows = (await owner.ok("table:rows", {"tableId": t["id"]}))["items"]
        assert sorted((r["values"]["user"], r["values"]["pnl"]) for r in rows) == [("a", 1),
                                                                                   ("b", 2)]
        table_hist = await owner.ok("table:history", {"tableId": t["id"], "limit": 2})
        assert [h["op"] for h in table_hist["items"]] == ["restore", "restore"]
        assert table_hist["nextCursor"] is not None
        assert c["id"] not in [r["id"] for r in rows]
    finally:
        await close(owner)


async def test_viewer_reads_editor_writes_owner_deletes_stranger_sees_nothing(server):
    p, owner, (editor, viewer) = await team(server, "editor", "viewer")
    stranger = await Client(server.url).connect()
    try:
        await stranger.register(unique_email("stranger"))
        t = await editor.ok("table:create", {"projectId": p["id"], "name": "r",
                                             "columns": COLUMNS[:1]})
        row = await editor.ok("row:add", {"tableId": t["id"], "values": {"user": "x"}})
        assert (await viewer.err("row:add", {"tableId": t["id"], "values": {}}))["code"] == \
            "forbidden"
        assert (await viewer.err("row:lock", {"tableId": t["id"], "rowId": row["id"]}))[
            "code"] == "forbidden"
        assert (await editor.err("table:delete", {"tableId": t["id"]}))["code"] == "forbidden"
        for event, payload in (("table:get", {"tableId": t["id"]}),
                               ("table:rows", {"tableId": t["id"]}),
                               ("row:history", {"tableId": t["id"], "rowId": row["id"]}),
                               ("table:list", {"projectId": p["id"]})):
            assert (await stranger.err(event, payload))["code"] == "not_found"
        # A row id of another table is not found through this table.
        t2 = await editor.ok("table:create", {"projectId": p["id"], "name": "r2",
                                              "columns": COLUMNS[:1]})
        assert (await editor.err("row:update", {"tableId": t2["id"], "rowId": row["id"],
                                                "version": 1, "values": {}}))["code"] == \
            "not_found"
        await owner.ok("table:delete", {"tableId": t["id"]})
        assert (await editor.err("table:get", {"tableId": t["id"]}))["code"] == "not_found"
    finally:
        await close(owner, editor, viewer, stranger)


CSV_TRICKY = ('\ufeffname,amount,note,when\r\n'
              '"Smith, Ana",12.5,"said ""hi""",2024-01-02\r\n'
              'Łukasz,7,"two\nlines",2024-03-04T05:06:07\r\n'
              'Zoë,,"日本語",\r\n')


async def test_csv_import_export_round_trip(server):
    p, owner, _ = await team(server)
    try:
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"],
                                   CSV_TRICKY.encode(), "people.csv")
        assert status == 201
        res = await owner.ok("table:import", {"projectId": p["id"], "fileId": out["data"]["id"]})
        assert res["rows"] == 3 and res["table"]["name"] == "people"
        types = {c["name"]: c["type"] for c in res["table"]["columns"]}
        assert types == {"name": "text", "amount": "number", "note": "text", "when": "datetime"}
        rows = (await owner.ok("table:rows", {"tableId": res["table"]["id"]}))["items"]
        assert [r["values"]["name"] for r in rows] == ["Smith, Ana", "Łukasz", "Zoë"]
        assert rows[1]["values"]["note"] == "two\nlines" and rows[0]["values"]["amount"] == 12.5
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/api/tables/{res['table']['id']}/export.csv",
                                headers={"Authorization":
                                         f"Bearer {owner.tokens['accessToken']}"}) as r:
                assert r.status == 200 and "text/csv" in r.headers["Content-Type"]
                exported = await r.read()
        # Re-import the export: same values.
        status, out2 = await upload(server.url, owner.tokens["accessToken"], p["id"], exported,
                                    "again.csv")
        res2 = await owner.ok("table:import", {"projectId": p["id"], "fileId": out2["data"]["id"]})
        rows2 = (await owner.ok("table:rows", {"tableId": res2["table"]["id"]}))["items"]
        assert [r["values"] for r in rows2] == [r["values"] for r in rows]
    finally:
        await close(owner)


@pytest.mark.parametrize("content,needle", [
    (b"a,b\n1,2\n3\n4,5,6\n", "wrong number of fields"),
    ("a;b\n\xe9t\xe9;1\n".encode("latin-1"), "not UTF-8"),
    (b"a,b,c\n", "no data rows"),
    (b"a,b,a\n1,2,3\n", "duplicate column names: a"),
    (",".join(f"c{i}" for i in range(10_000)).encode() + b"\n" + b"1," * 9999 + b"1\n",
     "10000 columns"),
])
async def test_bad_csv_imports_fail_clearly_and_leave_no_table(server, content, needle):
    p, owner, _ = await team(server)
    try:
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"], content,
                                   "bad.csv")
        assert status == 201
        err = await owner.err("table:import", {"projectId": p["id"], "fileId": out["data"]["id"]})
        assert err["code"] == "bad_request" and needle in err["message"], err
        assert await owner.ok("table:list", {"projectId": p["id"]}) == []
    finally:
        await close(owner)


async def test_ragged_rows_reported_with_line_numbers_and_skippable(server):
    p, owner, _ = await team(server)
    try:
        content = b"a,b\n1,2\n3\n4,5\n6,7,8\n"
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"], content,
                                   "ragged.csv")
        err = await owner.err("table:import", {"projectId": p["id"], "fileId": out["data"]["id"]})
        assert [b["line"] for b in err["details"]["badLines"]] == [3, 5]
        res = await owner.ok("table:import", {"projectId": p["id"], "fileId": out["data"]["id"],
                                              "skipBadRows": True})
        assert res["rows"] == 2 and res["skipped"]["count"] == 2
    finally:
        await close(owner)
