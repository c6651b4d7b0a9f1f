"""Hardening B: bad input from a signed-in owner is a ``bad_request``, never ``internal``, on
both backends (SQLite, and MongoDB — real with MONGO_URL, else the strict stand-in).

Each case below was answered ``internal`` before: integers beyond int64 (they overflowed
in a driver), Unicode digits in a cursor (``"²٣".isdigit()`` but not ``int()``), a cursor
that decodes to the wrong JSON shape, a time that cannot be converted to UTC, NaN and
Infinity (Python's json reads them; JSON has none). Every integer in every payload model
is bounded (``handlers.base.Int``), every cursor is opaque and checked in one place
(``store.query.decode_cursor``), times are checked once (``handlers.base.Time``) and the
wire refuses non-finite numbers (``server.realtime.EventPacket``).
"""
from __future__ import annotations

import asyncio
import base64
import json
import typing
from collections.abc import Callable, Iterator

import aiohttp
import pytest
import pytest_asyncio
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from handlers import all_events
from handlers.base import MAX_INT, EventSpec
from tests.mongo_storage import MongoStorage
from tests.world import Res, World, open_world, sample

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the worlds' loop

EVENTS = all_events()
SPECS = {spec.name: spec for spec in EVENTS}
HUGE = 99999999999999999999  # > 2⁶⁴
FAR_PAST = "0001-01-01T00:00:00+01:00"  # in UTC: before year 1


def forged(value) -> str:
    """What a cursor looks like (base64url JSON), holding ``value``."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "mongo"])
async def world(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        async with open_world(data_dir) as w:
            yield w
        return
    storage = MongoStorage()
    try:
        async with open_world(data_dir, open_storage=storage.open_storage,
                              **storage.settings) as w:
            yield w
    finally:
        storage.close()


@pytest_asyncio.fixture(loop_scope="module")
async def res(world: World) -> Res:
    """Fresh resources of a project the caller (``world.clients["owner"]``) owns."""
    return await world.build("P")


# -- each finding, as found ----------------------------------------------------------------

Case = tuple[str, Callable[[Res], dict], str]  # event, payload, what the message names

FINDINGS: dict[str, Case] = {
    "history cursor beyond int64": (
        "table:history", lambda r: {"tableId": r.table, "cursor": HUGE}, "cursor"),
    "history cursor of digits": (
        "table:history", lambda r: {"tableId": r.table, "cursor": str(HUGE)}, "cursor"),
    "history cursor holding a number beyond int64": (
        "table:history", lambda r: {"tableId": r.table, "cursor": forged(["h", HUGE])},
        "cursor"),
    "packet number beyond int64": (
        "pcap:packet", lambda r: {"fileId": r.capture, "number": HUGE}, "number"),
    "follow index beyond int64": (
        "pcap:follow", lambda r: {"fileId": r.capture, "stream": "tcp", "index": HUGE},
        "index"),
    "packets cursor beyond int64": (
        "pcap:packets", lambda r: {"fileId": r.capture, "cursor": str(HUGE)}, "cursor"),
    "packets cursor of Unicode digits": (
        "pcap:packets", lambda r: {"fileId": r.capture, "cursor": "²٣"}, "cursor"),
    "packets tcpStream beyond int64": (
        "pcap:packets", lambda r: {"fileId": r.capture, "filter": {"tcpStream": HUGE}},
        "tcpStream"),
    "packets udpStream beyond 2⁵³": (
        "pcap:packets", lambda r: {"fileId": r.capture, "filter": {"udpStream": MAX_INT + 1}},
        "udpStream"),
    "conversations cursor of the wrong shape": (
        "pcap:conversations",
        lambda r: {"fileId": r.capture, "kind": "tcp", "cursor": forged(["x", 1])}, "cursor"),
    "endpoints cursor of the wrong shape": (
        "pcap:endpoints",
        lambda r: {"fileId": r.capture, "kind": "ip", "cursor": forged(["x", 1])}, "cursor"),
    "conversations cursor of another sort": (
        "pcap:conversations",
        lambda r: {"fileId": r.capture, "kind": "tcp", "sort": "address",
                   "cursor": forged(["bytes", 10, 0])}, "cursor"),
    "endpoints cursor with text where a number goes": (
        "pcap:endpoints",
        lambda r: {"fileId": r.capture, "kind": "ip", "cursor": forged(["bytes", "x", 0])},
        "cursor"),
    "row version beyond int64": (
        "row:update",
        lambda r: {"tableId": r.table, "rowId": r.row, "version": HUGE, "values": {"n": 1}},
        "version"),
    "row delete version beyond int64": (
        "row:delete", lambda r: {"tableId": r.table, "rowId": r.row, "version": HUGE},
        "version"),
    "row restore version beyond int64": (
        "row:restore", lambda r: {"tableId": r.table, "rowId": r.row, "version": -HUGE},
        "version"),
    "rows cursor holding a huge sort value": (
        "table:rows", lambda r: {"tableId": r.table, "sort": "n",
                                 "cursor": forged(["r", HUGE, "x"])}, "cursor"),
    "rows cursor holding an object": (
        "table:rows", lambda r: {"tableId": r.table, "sort": "n",
                                 "cursor": forged(["r", {"$gt": ""}, "x"])}, "cursor"),
    "restore to a time before year 1 in UTC": (
        "table:restore", lambda r: {"tableId": r.table, "at": FAR_PAST}, "at"),
    "chat lines from a time before year 1 in UTC": (
        "chat:messages", lambda r: {"chatId": r.chat, "from": FAR_PAST}, "from"),
    "chat search to a time after year 9999 in UTC": (
        "chat:search", lambda r: {"projectId": r.project, "query": "hello",
                                  "to": "9999-12-31T23:59:59-01:00"}, "to"),
    "packets from a time before year 1 in UTC": (
        "pcap:packets", lambda r: {"fileId": r.capture, "filter": {"timeFrom": FAR_PAST}},
        "timeFrom"),
}


@in_module_loop
@pytest.mark.parametrize("case", FINDINGS, ids=str)
async def test_finding_is_a_bad_request(world: World, res: Res, case: str):
    event, payload, names = FINDINGS[case]
    owner = world.clients["owner"]
    err = await owner.err(event, payload(res))
    assert err["code"] == "bad_request", (case, err)
    assert names in err["message"], (case, err)
    assert (await owner.ok("ping"))["pong"] is True


# -- every cursor, forged ------------------------------------------------------------------

CURSORED = [spec for spec in EVENTS if "cursor" in spec.model.model_fields]
FORGERIES = {
    "garbage": "not a cursor!",
    "unicode digits": "²٣",
    "digits beyond int64": str(HUGE),
    "not base64 of JSON": "AAAA",
    "an object": forged({"a": 1}),
    "an empty list": forged([]),
    "of no kind": forged(["x", 1]),
    "NaN": base64.urlsafe_b64encode(b'["p",NaN]').decode(),
    "overflowing float": base64.urlsafe_b64encode(b'["r",1e999,"x"]').decode(),
    "an integer beyond int64": forged(["h", HUGE]),
    "a negative position": forged(["l", -1]),
    "another list's (files')": forged(["f", "0" * 24]),
}


def test_the_cursored_events_are_the_paged_lists():
    """So that a new paged event is forged below (its model names its ``cursor``)."""
    assert {s.name for s in CURSORED} >= {
        "file:list", "table:history", "table:rows", "conversation:list", "conversation:get",
        "pcap:conversations", "pcap:endpoints", "pcap:packets", "chat:list",
        "chat:messages", "chat:search"}


@in_module_loop
@pytest.mark.parametrize("spec", CURSORED, ids=lambda s: s.name)
async def test_a_forged_cursor_is_a_bad_request(world: World, res: Res, spec: EventSpec):
    owner = world.clients["admin" if spec.admin else "owner"]
    wrong = []
    for label, cursor in FORGERIES.items():
        if label == "another list's (files')" and spec.name == "file:list":
            continue
        ack = await owner.call(spec.name, {**sample(spec, res), "cursor": cursor})
        err = ack.get("error") or {}
        if ack.get("ok") or err.get("code") != "bad_request" or "cursor" not in err["message"]:
            wrong.append(f"{label}: {ack}")
    assert not wrong, f"{spec.name}:\n  " + "\n  ".join(wrong)


@in_module_loop
async def test_every_opaque_cursor_is_taken_back(world: World, res: Res):
    """The cursors each list gives out page on (limit 1 over lists of two or more)."""
    owner = world.clients["owner"]
    for values in ({"name": "cy", "n": 3}, {"name": "di", "n": 4}):
        await owner.ok("row:add", {"tableId": res.table, "values": values})
    lists = [
        ("file:list", {"projectId": res.project}),
        ("conversation:list", {"projectId": res.project}),
        ("table:history", {"tableId": res.table}),
        ("table:rows", {"tableId": res.table, "sort": "n", "order": "desc"}),
        ("pcap:packets", {"fileId": res.capture}),
        ("pcap:endpoints", {"fileId": res.capture, "kind": "ip"}),
        ("pcap:endpoints", {"fileId": res.capture, "kind": "ip", "sort": "address"}),
    ]
    for event, payload in lists:
        first = await owner.ok(event, {**payload, "limit": 1})
        assert first["nextCursor"], (event, first)
        second = await owner.ok(event, {**payload, "limit": 1, "cursor": first["nextCursor"]})
        assert second["items"] and second["items"] != first["items"], (event, second)


@in_module_loop
async def test_rows_sorted_by_long_text_page_on(world: World, res: Res):
    """A row cursor holds the last sort value: a long cell's cursor is long, and is taken
    back (it was refused as longer than 500 characters)."""
    owner = world.clients["owner"]
    names = ["a" * 2000, "b" * 2000]
    for name in names:
        await owner.ok("row:add", {"tableId": res.table, "values": {"name": name}})
    first = await owner.ok("table:rows", {"tableId": res.table, "sort": "name", "limit": 2})
    rest = await owner.ok("table:rows", {"tableId": res.table, "sort": "name", "limit": 2,
                                         "cursor": first["nextCursor"]})
    seen = [r["values"]["name"] for r in first["items"] + rest["items"]]
    assert seen == sorted(["ada", *names]), seen


# -- numbers that are not JSON ---------------------------------------------------------------

NOT_JSON: dict[str, tuple[str, Callable[[Res], str]]] = {
    # the payload as the client puts it on the wire
    "NaN in a row": ("row:add", lambda r: f'{{"tableId": "{r.table}", "values": {{"n": NaN}}}}'),
    "Infinity in a filter": (
        "table:rows", lambda r: f'{{"tableId": "{r.table}", "filter": [{{"column": "n", '
                                f'"op": "gt", "value": -Infinity}}]}}'),
    "a float overflowing to infinity": (
        "row:update", lambda r: f'{{"tableId": "{r.table}", "rowId": "{r.row}", "version": 1, '
                                f'"values": {{"n": 1e999}}}}'),
    "NaN relayed to the room": (
        "project:broadcast", lambda r: f'{{"id": "{r.project}", "event": "cursor", '
                                       f'"data": {{"x": NaN}}}}'),
    "Infinity as an interval": (
        "pcap:io", lambda r: f'{{"fileId": "{r.capture}", "interval": Infinity}}'),
}


async def raw_acks(url: str, token: str, frames: dict[int, str],
                   binary: dict[int, int] | None = None) -> dict[int, dict]:
    """Send each ``42<ack id>[...]`` text frame on a raw signed-in socket; the acks by id.
    An id in ``binary`` goes as a BINARY_EVENT (``45<n>-<ack id>[...]``) followed by its
    ``n`` attachment frames."""
    ws_url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    answers: dict[int, dict] = {}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url) as ws:
            await ws.receive()  # engine.io open
            await ws.send_str("40" + json.dumps({"token": token}))
            connected = await asyncio.wait_for(ws.receive(), 10)
            assert connected.data.startswith("40"), connected.data
            for ack_id, body in frames.items():
                attachments = (binary or {}).get(ack_id)
                if attachments is None:
                    await ws.send_str(f"42{ack_id}{body}")
                    continue
                await ws.send_str(f"45{attachments}-{ack_id}{body}")
                for _ in range(attachments):
                    await ws.send_bytes(b"\x00\xff")
            while len(answers) < len(frames):
                msg = await asyncio.wait_for(ws.receive(), 10)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                if msg.data.startswith("43"):
                    digits = msg.data[2:].split("[", 1)[0]
                    answers[int(digits)] = json.loads(msg.data[2 + len(digits):])[0]
    return answers


@in_module_loop
async def test_non_finite_numbers_are_refused_on_the_wire(world: World, res: Res):
    owner = world.clients["owner"]
    await owner.ok("project:join", {"id": res.project})
    token = world.clients["owner"].tokens["accessToken"]  # type: ignore[index]
    cases = list(NOT_JSON.items())
    frames = {100 + i: f'["{event}", {body(res)}]' for i, (_, (event, body)) in
              enumerate(cases)}
    answers = await raw_acks(world.server.url, token, frames)
    for i, (label, _) in enumerate(cases):
        ack = answers[100 + i]
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request", (label, ack)
        assert "not valid JSON" in ack["error"]["message"], (label, ack)
    # Nothing was written or relayed: the row is as it was, nobody got a broadcast.
    row = await owner.ok("row:get", {"tableId": res.table, "rowId": res.row})
    assert row["row"]["values"] == {"name": "ada", "n": 1}
    assert (await owner.ok("table:history", {"tableId": res.table}))["items"][0]["op"] == "add"
    assert "cursor" not in owner.pushes
    await owner.ok("project:leave", {"id": res.project})


# -- the schemas -----------------------------------------------------------------------------

def integer_fields(model: type[BaseModel], where: str = "") -> Iterator[tuple[str, list]]:
    """Every int in ``model`` (nested models and unions included): (path, its constraints)."""
    for name, info in model.model_fields.items():
        yield from _integers(info.annotation, list(info.metadata), f"{where}{name}")


def _integers(annotation, metadata: list, path: str) -> Iterator[tuple[str, list]]:
    if annotation is int:
        yield path, metadata
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from integer_fields(annotation, f"{path}.")
        return
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        found = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        yield from _integers(inner, metadata + found, path)
        return
    for arg in typing.get_args(annotation):  # a field's constraints hold for its union's int
        yield from _integers(arg, metadata, path)


def test_every_integer_in_every_payload_is_bounded():
    """``handlers.base.Int``/``SafeInt`` on every int field: an unbounded one would let a
    huge number reach a store driver again."""
    unbounded = []
    checked = 0
    for spec in EVENTS:
        for path, constraints in integer_fields(spec.model):
            checked += 1
            low = [c.ge for c in constraints if hasattr(c, "ge") and c.ge is not None]
            high = [c.le for c in constraints if hasattr(c, "le") and c.le is not None]
            if not low or not high or min(low) < -MAX_INT or max(high) > MAX_INT:
                unbounded.append(f"{spec.name}: {path} {constraints}")
    assert checked >= 20, checked  # the walk finds the fields (limits, versions, numbers…)
    assert not unbounded, "\n".join(unbounded)


# -- found by the event fuzzer ---------------------------------------------------------------

BINARY: dict[str, Callable[[Res], dict]] = {
    "bytes relayed to the room": lambda r: {"id": r.project, "event": "cursor",
                                            "data": {"x": b"\x00\xff"}},
    "bytes in a row": lambda r: {"tableId": r.table, "values": {"name": b"ada"}},
    "bytes as an id": lambda r: {"id": b"\x00"},
}
BINARY_EVENTS = {"bytes relayed to the room": "project:broadcast", "bytes in a row": "row:add",
                 "bytes as an id": "project:get"}


@in_module_loop
@pytest.mark.parametrize("case", BINARY, ids=str)
async def test_binary_attachments_are_refused(world: World, res: Res, case: str):
    """Bytes in a payload travel as Socket.IO binary attachments (a BINARY_EVENT packet and
    frames after it). python-socketio decoded them past every check of the dispatcher: a
    relayed one failed with ``internal``, a malformed one got no answer at all. Payloads
    are JSON: a binary event is refused, its attachments dropped, the socket goes on."""
    owner = world.clients["owner"]
    await owner.ok("project:join", {"id": res.project})
    err = await owner.err(BINARY_EVENTS[case], BINARY[case](res))
    assert err["code"] == "bad_request" and "binary" in err["message"], err
    assert (await owner.ok("auth:me"))["id"] == world.ids["owner"]
    assert "cursor" not in owner.pushes
    row = await owner.ok("row:get", {"tableId": res.table, "rowId": res.row})
    assert row["row"]["values"] == {"name": "ada", "n": 1}
    await owner.ok("project:leave", {"id": res.project})


@in_module_loop
async def test_malformed_binary_event_is_answered(world: World, res: Res):
    """A BINARY_EVENT whose JSON is not JSON (NaN), or not [name, payload], with its
    attachments: answered, attachments dropped, the next text event answered too."""
    token = world.clients["owner"].tokens["accessToken"]  # type: ignore[index]
    placeholder = '{"_placeholder": true, "num": 0}'
    answers = await raw_acks(world.server.url, token, {
        201: f'["project:broadcast", {{"id": "{res.project}", "data": NaN}}]',
        202: f'[null, {placeholder}]',
        203: '["ping"]',
    }, binary={201: 1, 202: 2})
    for ack_id in (201, 202):
        assert answers[ack_id]["error"]["code"] == "bad_request", answers[ack_id]
    assert answers[203]["ok"] is True and answers[203]["data"]["pong"] is True


@in_module_loop
async def test_import_of_a_file_whose_bytes_are_gone_is_not_found(world: World, res: Res):
    """The race the fuzzer found (table:import beside project:delete) left a file record
    without its bytes under the import: ``not_found``, no table left behind."""
    owner = world.clients["owner"]
    await world.services.blobs.delete(res.file)
    err = await owner.err("table:import", {"projectId": res.project, "fileId": res.file})
    assert (err["code"], err["message"]) == ("not_found", "file not found (it was deleted)")
    assert [t["name"] for t in await owner.ok("table:list", {"projectId": res.project})] == [
        "People"]
