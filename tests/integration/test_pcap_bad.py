"""Every awkward capture has a clear outcome: bad ones fail with a named reason, odd but
valid ones (link types, several interfaces, VLANs, IPv6, fragments, gzip) ingest fully and
their packets dissect."""
from __future__ import annotations

import gzip
import struct
import subprocess

from tests.files_helpers import upload
from tests.integration.test_pcap import capinfos, ingest, owner_project
from tests.pcap_files import PCAPS


async def upload_failing(c, server, pid, data: bytes, name: str) -> dict:
    status, out = await upload(server.url, c.tokens["accessToken"], pid, data, name)
    assert status == 201, out
    fid = out["data"]["id"]
    failed = await c.wait_for("pcap:failed", lambda d: d["fileId"] == fid, timeout=60)
    summary = await c.ok("pcap:summary", {"fileId": fid})
    assert summary["job"]["state"] == "failed" and summary["summary"] is None
    assert summary["job"]["error"]["reason"] == failed["reason"]
    assert (await c.ok("pcap:packets", {"fileId": fid}))["items"] == []
    err = await c.err("pcap:protocols", {"fileId": fid})
    assert err["code"] == "conflict" and err["details"]["state"] == "failed"
    return failed


async def test_bad_captures_fail_with_a_clear_reason(clients, server):
    c, p = await owner_project(clients, server)
    pid = p["id"]
    failed = await upload_failing(c, server, pid, (PCAPS / "not-a-capture.pcap").read_bytes(),
                                  "not-a-capture.pcap")
    assert (failed["code"], failed["reason"]) == ("bad_request", "not_a_capture")
    assert "not a capture file" in failed["message"]

    failed = await upload_failing(c, server, pid, (PCAPS / "tcpdump-empty.pcapng").read_bytes(),
                                  "empty.pcapng")
    assert failed["reason"] == "empty" and "no packets" in failed["message"]

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 65000)
    odd = header + struct.pack("<IIII", 1, 0, 4, 4) + b"abcd"
    failed = await upload_failing(c, server, pid, odd, "odd-link.pcap")
    assert failed["reason"] == "unsupported_link_type"
    assert "65000" in failed["message"]

    # Cut inside the first packet's record: nothing complete to keep.
    cut = (PCAPS / "dns-udp.pcap").read_bytes()[:24 + 16 + 10]
    failed = await upload_failing(c, server, pid, cut, "cut.pcap")
    assert failed["reason"] == "empty" and "cut short" in failed["message"]

    # Not a capture at all: no job is made.
    status, out = await upload(server.url, c.tokens["accessToken"], pid, b"a,b\n1,2\n", "x.csv")
    assert status == 201
    err = await c.err("pcap:summary", {"fileId": out["data"]["id"]})
    assert err["code"] == "not_found"


async def test_truncated_capture_keeps_what_was_read(clients, server):
    c, p = await owner_project(clients, server)
    fid, done = await ingest(c, server, p["id"],
                             (PCAPS / "truncated-dns-tcp.pcap").read_bytes(), "trunc.pcap")
    s = done["summary"]
    assert s["truncated"] is True and s["packets"] == 7
    assert "cut short in the middle of a packet" in s["warnings"][0]
    assert "7 complete packets" in s["warnings"][0]
    page = await c.ok("pcap:packets", {"fileId": fid})
    assert [x["number"] for x in page["items"]] == list(range(1, 8))
    one = await c.ok("pcap:packet", {"fileId": fid, "number": 7})
    assert [layer["name"] for layer in one["layers"]][:4] == ["frame", "eth", "ip", "tcp"]


async def test_link_types_interfaces_vlans_ipv6_fragments(clients, server, tmp_path):
    c, p = await owner_project(clients, server)
    pid = p["id"]

    # Linux cooked capture (SLL), nanosecond pcap.
    fid, done = await ingest(c, server, pid,
                             (PCAPS / "tcpdump-tcp-handshake-nano.pcap").read_bytes(), "sll.pcap")
    assert done["summary"]["linkTypes"] == [{"linkType": 113, "name": "linux-sll"}]
    one = await c.ok("pcap:packet", {"fileId": fid, "number": 1})
    assert [layer["name"] for layer in one["layers"]][:3] == ["frame", "sll", "ip"]
    assert len((await c.ok("pcap:conversations", {"fileId": fid, "kind": "tcp"}))["items"]) == 1

    # Raw IP, v4 and v6.
    for name, net in (("tcpdump-LINKTYPE_RAW_ipv4.pcap", "ip"),
                      ("tcpdump-LINKTYPE_RAW_ipv6.pcap", "ipv6")):
        fid, done = await ingest(c, server, pid, (PCAPS / name).read_bytes(), name)
        assert done["summary"]["linkTypes"] == [{"linkType": 101, "name": "rawip"}]
        assert done["summary"]["packets"] == capinfos(PCAPS / name)["packets"]
        one = await c.ok("pcap:packet", {"fileId": fid, "number": 1})
        assert [layer["name"] for layer in one["layers"]][:3] == ["frame", "raw", net]

    # Several interfaces with different link types in one pcapng.
    merged = tmp_path / "merged.pcapng"
    subprocess.run(["mergecap", "-w", str(merged), str(PCAPS / "dns-udp.pcap"),
                    str(PCAPS / "tcpdump-tcp-handshake-nano.pcap")], check=True,
                   capture_output=True)
    fid, done = await ingest(c, server, pid, merged.read_bytes(), "merged.pcapng")
    s = done["summary"]
    assert s["format"] == "pcapng" and s["interfaces"] == 2
    assert [x["linkType"] for x in s["linkTypes"]] == [1, 113]
    assert s["packets"] == 5 + 3
    layers = set()
    for number in range(1, 9):
        one = await c.ok("pcap:packet", {"fileId": fid, "number": number})
        layers.add(one["layers"][1]["name"])
    assert layers == {"eth", "sll"}

    # 802.1Q and QinQ tags.
    fid, done = await ingest(c, server, pid, (PCAPS / "twovlan.pcap").read_bytes(), "vlan.pcap")
    tree = (await c.ok("pcap:protocols", {"fileId": fid}))["tree"]
    assert tree[0]["name"] == "eth" and tree[0]["children"][0]["name"] == "vlan"
    one = await c.ok("pcap:packet", {"fileId": fid, "number": 1})
    assert [layer["name"] for layer in one["layers"]].count("vlan") == 2
    fid, done = await ingest(c, server, pid, (PCAPS / "tcpdump-802.1ad_QinQ.pcap").read_bytes(),
                             "qinq.pcap")
    assert done["summary"]["packets"] == capinfos(PCAPS / "tcpdump-802.1ad_QinQ.pcap")["packets"]

    # IPv6, with an address filter on a v6 address.
    fid, done = await ingest(c, server, pid, (PCAPS / "v6-http.pcap").read_bytes(), "v6.pcap")
    convs = await c.ok("pcap:conversations", {"fileId": fid, "kind": "ipv6", "limit": 100})
    assert len(convs["items"]) == 6
    server_v6 = "2001:6f8:900:7c0::2"
    page = await c.ok("pcap:packets", {"fileId": fid, "filter": {"address": server_v6}})
    assert len(page["items"]) == 10
    assert all(server_v6 in (x["source"], x["destination"]) for x in page["items"])

    # IPv6 fragments: only the frame completing a datagram counts in the IPv6 conversation.
    fid, done = await ingest(c, server, pid,
                             (PCAPS / "sanders-ipv6_fragments.pcapng").read_bytes(), "frag.pcapng")
    convs = await c.ok("pcap:conversations", {"fileId": fid, "kind": "ipv6", "sort": "start"})
    assert convs["items"][0]["frames"] == 10 and convs["items"][0]["start"] == 0.000054
    expected = capinfos(PCAPS / "sanders-ipv6_fragments.pcapng")["packets"]
    assert done["summary"]["packets"] == expected


async def test_gzip_compressed_capture(clients, server):
    c, p = await owner_project(clients, server)
    raw = (PCAPS / "dns-tcp.pcap").read_bytes()
    fid, done = await ingest(c, server, p["id"], gzip.compress(raw), "dns-tcp.pcap.gz")
    s = done["summary"]
    assert s["compressed"] is True and s["packets"] == capinfos(PCAPS / "dns-tcp.pcap")["packets"]
    one = await c.ok("pcap:packet", {"fileId": fid, "number": 4})
    assert "dns" in [layer["name"] for layer in one["layers"]]
    follow = await c.ok("pcap:follow", {"fileId": fid, "stream": "tcp", "index": 0})
    assert {s["dir"] for s in follow["segments"]} == {0, 1}
