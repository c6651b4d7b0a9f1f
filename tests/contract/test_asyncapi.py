"""The AsyncAPI document (server/asyncapi.py): valid for the official parser, complete
against the event registry, and the same whether served or printed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
from pydantic import Field

import handlers
from handlers.base import EventSpec, Payload
from server.asyncapi import EXTRA_PUSHES, build, document_json, pushes_of
from services.config import Settings

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "scripts" / "validate-asyncapi.mjs"
SPEC_CODES = ["bad_request", "unauthorized", "token_expired", "forbidden", "not_found",
              "conflict", "locked", "too_large", "rate_limited", "unavailable", "internal"]
UNSEQUENCED = {"project:presence", "project:broadcast", "ticker:tick", "auth:expired",
               "auth:revoked", "server:draining"}


def document(settings: Settings | None = None) -> dict:
    return json.loads(document_json(tuple(handlers.all_events()), settings or Settings()))


def validate(path: Path) -> tuple[int, list[dict]]:
    """The Node validator's exit status and diagnostics."""
    assert (ROOT / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        "@asyncapi/parser is not installed: run ./dev setup (npm ci)"
    out = subprocess.run(["node", str(VALIDATOR), str(path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    diagnostics = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, diagnostics


def resolve(doc: dict, ref: str) -> dict:
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def surface(doc: dict) -> tuple[set[str], set[str]]:
    """(event names with a send operation, push names with a receive operation), each
    read from the channel address its operation points at."""
    found: dict[str, set[str]] = {"send": set(), "receive": set()}
    for op in doc["operations"].values():
        found[op["action"]].add(resolve(doc, op["channel"]["$ref"])["address"])
    return found["send"], found["receive"]


def missing(doc: dict, specs: list[EventSpec]) -> set[str]:
    sent, received = surface(doc)
    pushes = set(pushes_of(specs))
    return ({s.name for s in specs} - sent) | {f"push {p}" for p in pushes - received}


def test_the_official_parser_finds_no_error(tmp_path):
    path = tmp_path / "asyncapi.json"
    path.write_text(document_json(tuple(handlers.all_events()), Settings()))
    status, diagnostics = validate(path)
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert status == 0 and not errors, json.dumps(errors, indent=1)

    # The validator does fail a broken document: a dangling reference.
    broken = json.loads(path.read_text())
    broken["operations"]["send.ping"]["channel"] = {"$ref": "#/channels/no.such.event"}
    path.write_text(json.dumps(broken))
    status, diagnostics = validate(path)
    assert status == 1 and any(d["severity"] == "error" and "no.such.event" in d["message"]
                               for d in diagnostics), diagnostics


def test_every_event_and_every_push_is_in_the_document():
    specs = handlers.all_events()
    doc = document()
    sent, received = surface(doc)
    assert sent == {s.name for s in specs}
    assert received == {e for s in specs for e in s.emits} | set(EXTRA_PUSHES)
    assert {"auth:expired", "auth:revoked", "server:draining"} <= received
    assert not missing(doc, specs)

    # ... and the check fails when one is left out.
    del doc["operations"]["send.row.add"], doc["operations"]["receive.row.locked"]
    assert missing(doc, specs) == {"row:add", "push row:locked"}


def test_a_newly_registered_event_needs_no_special_case():
    class Position(Payload):
        room: str
        seq: int | None = Field(ge=0)
        epoch: str | None

    class SyncPayload(Payload):
        rooms: list[Position] = Field(min_length=1, max_length=100)

    async def sync(ctx, payload):
        """Replays missed pushes."""

    spec = EventSpec("sync", SyncPayload, sync, ack="{replayed, resync, heads, errors}",
                     emits=("row:updated",), limit_class="read")
    doc = build([*handlers.all_events(), spec], Settings(), "test")
    assert "sync" in surface(doc)[0]
    payload = doc["components"]["messages"]["sync.payload"]["payload"]
    items = payload["properties"]["rooms"]["items"]
    assert items == {"$ref": "#/components/schemas/Position"}
    assert resolve(doc, items["$ref"])["required"] == ["room", "seq", "epoch"]
    assert doc["operations"]["receive.row.updated"]["x-pushed-by"][-1] == "sync"


def test_payloads_acks_and_pushes_follow_the_delivery_contract():
    doc = document()
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == SPEC_CODES
    error = resolve(doc, "#/components/messages/errorAck")["payload"]
    assert resolve(doc, error["$ref"])["properties"]["error"] == {
        "$ref": "#/components/schemas/Error"}
    for spec in handlers.all_events():
        op = doc["operations"][f"send.{spec.name.replace(':', '.')}"]
        assert (op["x-access"], op["x-idempotent"]) == (spec.access, spec.idempotent)
        assert (op["x-rate-limit"] or {}).get("class") == spec.limit_class
        payload = resolve(doc, resolve(doc, op["messages"][0]["$ref"])["$ref"])["payload"]
        model = json.loads(json.dumps(spec.model.model_json_schema()).replace(
            '"#/$defs/', '"#/components/schemas/'))
        props = dict(payload.get("properties", {}))
        if spec.idempotent:
            assert props.pop("requestId") == {"$ref": "#/components/schemas/RequestId"}
        else:
            assert "requestId" not in props
        assert props == model.get("properties", {}), spec.name
        assert payload.get("required") == model.get("required"), spec.name

        ack = resolve(doc, resolve(doc, op["reply"]["messages"][0]["$ref"])["$ref"])["payload"]
        success, failure = ack["oneOf"]
        assert success["properties"]["ok"] == {"const": True}
        assert success["properties"]["data"]["description"] == (spec.ack or "nothing (null)")
        assert failure == {"$ref": "#/components/schemas/ErrorAck"}
    assert schemas["RequestId"]["pattern"] == "^[A-Za-z0-9_.:-]{1,64}$"
    assert (schemas["RequestId"]["minLength"], schemas["RequestId"]["maxLength"]) == (1, 64)

    for op in doc["operations"].values():
        if op["action"] != "receive":
            continue
        name = resolve(doc, op["channel"]["$ref"])["address"]
        push = resolve(doc, resolve(doc, op["messages"][0]["$ref"])["$ref"])["payload"]
        if name in UNSEQUENCED:
            assert "properties" not in push and op["x-sequenced"] is False, name
        else:
            assert push["required"] == ["room", "seq", "epoch"], name
            assert op["x-sequenced"] is True, name


async def test_served_at_asyncapi_json(server):
    async with aiohttp.ClientSession() as http, \
            http.get(f"{server.url}/asyncapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        served = await resp.json()
    assert served == document(server.settings)


def test_printed_by_python_m_server_asyncapi(tmp_path):
    env = {**os.environ, "ENV": "test", "DATA_DIR": str(tmp_path), "EVENT_RATE_HEAVY": "3"}
    out = subprocess.run([sys.executable, "-m", "server", "asyncapi"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    expected = document(Settings.from_env(env))
    assert printed["operations"] == expected["operations"]
    assert printed["operations"]["send.message.send"]["x-rate-limit"]["perSecond"] == 3
