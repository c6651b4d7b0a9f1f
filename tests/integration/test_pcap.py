"""PCAP analysis on one instance, through the real server: upload → ingest with progress →
every query; figures checked against capinfos / tshark on the same file."""
from __future__ import annotations

import base64
import subprocess

from tests.client import unique_email
from tests.files_helpers import upload
from tests.pcap_files import PCAPS


async def owner_project(clients, server, name="Captures"):
    c = await clients(name="owner")
    await c.register(unique_email("pcap"))
    p = await c.ok("project:create", {"name": name})
    await c.ok("project:join", {"id": p["id"]})
    return c, p


async def ingest(c, server, project_id, data: bytes, filename: str, wait: str = "pcap:done"):
    status, out = await upload(server.url, c.tokens["accessToken"], project_id, data, filename)
    assert status == 201, out
    fid = out["data"]["id"]
    pushed = await c.wait_for(wait, lambda d: d["fileId"] == fid, timeout=60)
    return fid, pushed


def capinfos(path) -> dict:
    out = subprocess.run(["capinfos", "-T", "-M", "-r", "-c", "-d", "-S", "-a", "-e",
                          str(path)], capture_output=True, text=True).stdout
    packets, size, first, last = out.strip().split("\t")[1:5]
    return {"packets": int(packets), "bytes": int(size), "first": float(first),
            "last": float(last)}


async def test_upload_ingests_with_progress_and_every_query_answers(clients, server):
    c, p = await owner_project(clients, server)
    path = PCAPS / "http-simple-get.pcap"
    fid, done = await ingest(c, server, p["id"], path.read_bytes(), "web.pcap")
    truth = capinfos(path)
    summary = done["summary"]
    assert done["projectId"] == p["id"]
    assert (summary["packets"], summary["bytes"]) == (truth["packets"], truth["bytes"])
    assert abs(summary["firstEpoch"] - truth["first"]) < 1e-6
    assert abs(summary["lastEpoch"] - truth["last"]) < 1e-6
    assert summary["linkTypes"] == [{"linkType": 1, "name": "ether"}]
    assert summary["format"] == "pcap" and summary["truncated"] is False
    progress = [x for x in c.pushes["pcap:progress"] if x["fileId"] == fid]
    assert progress and progress[-1]["percent"] == 100.0
    assert progress[-1]["packets"] == truth["packets"]

    got = await c.ok("pcap:summary", {"fileId": fid})
    assert got["summary"] == summary and got["job"]["state"] == "done"

    tree = await c.ok("pcap:protocols", {"fileId": fid})
    assert tree["tree"][0]["name"] == "eth"
    assert tree["tree"][0]["frames"] == truth["packets"]

    convs = await c.ok("pcap:conversations", {"fileId": fid, "kind": "tcp"})
    assert len(convs["items"]) == 1 and convs["nextCursor"] is None
    conv = convs["items"][0]
    assert conv["frames"] == truth["packets"] and conv["stream"] == 0
    ends = await c.ok("pcap:endpoints", {"fileId": fid, "kind": "ip"})
    assert sum(e["txFrames"] for e in ends["items"]) == truth["packets"]

    io = await c.ok("pcap:io", {"fileId": fid, "interval": 1})
    assert sum(x["packets"] for x in io["items"]) == truth["packets"]
    assert io["items"][0]["t"] == 0
    sizes = await c.ok("pcap:sizes", {"fileId": fid})
    assert sum(b["packets"] for b in sizes["buckets"]) == truth["packets"]

    first = await c.ok("pcap:packets", {"fileId": fid, "limit": 5})
    assert [x["number"] for x in first["items"]] == [1, 2, 3, 4, 5]
    assert first["items"][0]["relativeTime"] == 0
    rest = await c.ok("pcap:packets", {"fileId": fid, "cursor": first["nextCursor"],
                                       "limit": 1000})
    assert rest["items"][0]["number"] == 6 and rest["nextCursor"] is None
    assert len(first["items"]) + len(rest["items"]) == truth["packets"]
    http = await c.ok("pcap:packets", {"fileId": fid, "filter": {"protocol": "http"}})
    assert http["items"] and all(x["protocol"] == "HTTP" for x in http["items"])
    get = await c.ok("pcap:packets", {"fileId": fid, "filter": {"text": "get /"}})
    assert len(get["items"]) == 1 and get["items"][0]["info"].startswith("GET /")
    port = await c.ok("pcap:packets", {"fileId": fid, "limit": 3, "filter": {"port": 80}})
    assert len(port["items"]) == 3
    nobody = await c.ok("pcap:packets", {"fileId": fid, "filter": {"address": "192.0.2.99"}})
    assert nobody == {"fileId": fid, "state": "done", "items": [], "nextCursor": None}

    number = get["items"][0]["number"]
    one = await c.ok("pcap:packet", {"fileId": fid, "number": number})
    names = [layer["name"] for layer in one["layers"]]
    assert names[:4] == ["frame", "eth", "ip", "tcp"] and "http" in names
    assert one["layers"][0]["label"].startswith(f"Frame {number}:")
    ip = next(layer for layer in one["layers"] if layer["name"] == "ip")
    src = next(f for f in ip["children"] if f["name"] == "ip.src")
    assert src["pos"] == 26 and src["size"] == 4 and src["value"] == one["packet"]["source"]
    assert len(bytes.fromhex(one["bytes"])) == one["packet"]["length"]
    tshark_hex = subprocess.run(["tshark", "-r", str(path), "-c", str(number), "-Y",
                                 f"frame.number=={number}", "-T", "fields", "-e",
                                 "frame.protocols"], capture_output=True, text=True).stdout
    assert tshark_hex.strip().split(":")[:3] == ["eth", "ethertype", "ip"]

    follow = await c.ok("pcap:follow", {"fileId": fid, "stream": "tcp", "index": 0})
    client_bytes = b"".join(base64.b64decode(s["data"]) for s in follow["segments"]
                            if s["dir"] == 0)
    assert client_bytes.startswith(b"GET /")
    assert any(s["dir"] == 1 and s["text"].startswith("HTTP/1.1") for s in follow["segments"])


async def test_a_stranger_sees_nothing_and_a_viewer_cannot_ingest(clients, server):
    c, p = await owner_project(clients, server)
    fid, _ = await ingest(c, server, p["id"], (PCAPS / "dns-udp.pcap").read_bytes(), "d.pcap")
    stranger = await clients(name="stranger")
    await stranger.register(unique_email("stranger"))
    for event, extra in (("pcap:summary", {}), ("pcap:packets", {}),
                         ("pcap:packet", {"number": 1}), ("pcap:ingest", {}),
                         ("pcap:conversations", {"kind": "udp"})):
        err = await stranger.err(event, {"fileId": fid, **extra})
        assert err["code"] == "not_found", (event, err)
    viewer = await clients(name="viewer")
    await viewer.register(unique_email("viewer"))
    await c.ok("project:member:add", {"id": p["id"], "email": viewer.user["email"],
                                      "role": "viewer"})
    assert (await viewer.ok("pcap:summary", {"fileId": fid}))["summary"]["packets"] == 5
    assert (await viewer.err("pcap:ingest", {"fileId": fid}))["code"] == "forbidden"
    assert (await viewer.err("pcap:cancel", {"fileId": fid}))["code"] == "forbidden"
    err = await c.err("pcap:packets", {"fileId": fid, "extra": 1})
    assert err["code"] == "bad_request"
    err = await c.err("pcap:packet", {"fileId": fid, "number": 999})
    assert err["code"] == "not_found"


async def test_paging_is_stable_and_sorted(clients, server):
    c, p = await owner_project(clients, server)
    fid, _ = await ingest(c, server, p["id"],
                          (PCAPS / "sanders-http_espn.pcapng").read_bytes(), "espn.pcapng")
    seen, cursor = [], None
    while True:
        page = await c.ok("pcap:conversations", {"fileId": fid, "kind": "tcp", "limit": 7,
                                                 **({"cursor": cursor} if cursor else {})})
        seen += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    everything = await c.ok("pcap:conversations", {"fileId": fid, "kind": "tcp",
                                                   "limit": 1000})
    assert seen == everything["items"]
    assert [x["bytes"] for x in seen] == sorted((x["bytes"] for x in seen), reverse=True)
    by_start = await c.ok("pcap:conversations", {"fileId": fid, "kind": "tcp",
                                                 "sort": "start", "limit": 1000})
    assert [x["start"] for x in by_start["items"]] == sorted(x["start"] for x in seen)
    numbers, cursor = [], None
    while True:
        page = await c.ok("pcap:packets", {"fileId": fid, "limit": 97,
                                           "filter": {"protocol": "TCP"},
                                           **({"cursor": cursor} if cursor else {})})
        numbers += [x["number"] for x in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    truth = subprocess.run(["tshark", "-n", "-r", str(PCAPS / "sanders-http_espn.pcapng"),
                            "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Protocol"],
                           capture_output=True, text=True).stdout.splitlines()
    assert numbers == [int(n) for n, proto in (x.split("\t") for x in truth) if proto == "TCP"]
    bad = await c.err("pcap:conversations", {"fileId": fid, "kind": "tcp", "cursor": "zz"})
    assert bad["code"] == "bad_request"


async def test_deleting_the_file_removes_the_capture(clients, server):
    import gzip

    from server.keys import services_of
    from services.captures import derived_key

    services = services_of(server.app)
    c, p = await owner_project(clients, server)
    data = gzip.compress((PCAPS / "dns-tcp.pcap").read_bytes())
    fid, _ = await ingest(c, server, p["id"], data, "dns.pcap.gz")
    record = await services.store.files.get_file(fid)
    assert await services.blobs.exists(derived_key(fid))
    await c.ok("file:delete", {"id": fid})
    for hook in services.hooks.file_deleted:  # files.delete_file calls these (idempotent)
        await hook(record)
    assert await services.store.pcap.get_job(fid) is None
    assert await services.store.pcap.get_packet(fid, 1) is None
    assert not await services.blobs.exists(derived_key(fid))
    assert (await c.err("pcap:summary", {"fileId": fid}))["code"] == "not_found"


async def test_guest_ingests_spend_imports_shared_with_table_imports(clients, server):
    g = await clients(name="guest")
    await g.guest()
    assert g.user["remainingImports"] == 2
    p = await g.ok("project:create", {"name": "Guest captures"})
    await g.ok("project:join", {"id": p["id"]})
    data = (PCAPS / "dns-udp.pcap").read_bytes()
    fid, _ = await ingest(g, server, p["id"], data, "dns.pcap")  # the upload's ingest: one
    # Each spend tells the guest what is left (the count shown since sign-in is stale).
    quota = await g.wait_for("auth:quota")
    assert quota["userId"] == g.user["id"] and quota["remainingImports"] == 1
    g.forget("pcap:done", "auth:quota")
    await g.ok("pcap:ingest", {"fileId": fid})  # again: the second
    assert (await g.wait_for("auth:quota"))["remainingImports"] == 0
    await g.wait_for("pcap:done", lambda d: d["fileId"] == fid, timeout=60)
    assert (await g.ok("auth:me"))["remainingImports"] == 0
    err = await g.err("pcap:ingest", {"fileId": fid})
    assert err["code"] == "forbidden" and err["details"]["reason"] == "guest_limit"
    # An upload at zero is kept as a file; its ingest is refused with the same reason.
    fid2, failed = await ingest(g, server, p["id"], data, "again.pcap", wait="pcap:failed")
    assert (failed["code"], failed["reason"]) == ("forbidden", "guest_limit")
    assert (await g.err("pcap:summary", {"fileId": fid2}))["code"] == "not_found"  # no job
    status, out = await upload(server.url, g.tokens["accessToken"], p["id"], b"a,b\n1,2\n",
                               "t.csv")
    assert status == 201
    err = await g.err("table:import", {"projectId": p["id"], "fileId": out["data"]["id"]})
    assert err["code"] == "forbidden" and err["details"]["reason"] == "guest_limit"
