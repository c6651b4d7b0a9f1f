"""sharkd's frame answers → ``pcap:packet`` trees, and the sharkd driver itself, on a real
sharkd: names and values from display filters, byte sources, caps, frame numbers given back
to a frame cut out of a larger capture, answers too large to read, errors, and a cancelled
call whose answer must not reach the next one."""
from __future__ import annotations

import asyncio
import base64

import pytest

from ingest.pcap.frame_tree import LABEL_BYTES, frame_view, name_value, renumber
from ingest.pcap.sharkd import AnswerTooLarge, Sharkd, SharkdError, SharkdGone
from tests.pcap_files import PCAPS


@pytest.mark.parametrize(("item", "expected"), [
    ({"f": "ip.src == 10.0.0.1"}, ("ip.src", "10.0.0.1")),
    ({"f": "tcp", "t": "proto"}, ("tcp", None)),
    ({"f": "tcp.analysis"}, ("tcp.analysis", None)),
    ({"f": "text"}, ("", None)),
    ({}, ("", None)),
    ({"f": "frame[80:16] == 06:67:6f"}, ("", None)),
    ({"f": 'http.server == "Apache \\"2\\" \\\\ ok"'}, ("http.server", 'Apache "2" \\ ok')),
    ({"f": 'http.response.line == "Accept: bytes\\r\\n\\x41\\101"'},
     ("http.response.line", "Accept: bytes\r\nAA")),
])
def test_names_and_values_come_from_the_display_filter(item, expected):
    assert name_value(item) == expected


def test_long_values_are_cut():
    name, value = name_value({"f": "tcp.payload == " + "61:" * 5000 + "61"})
    assert name == "tcp.payload" and len(value) == 4097 and value.endswith("…")


def result(tree, data=b"\x01\x02", sources=()):
    return {"tree": tree, "bytes": base64.b64encode(data).decode(),
            "ds": [{"name": n, "bytes": base64.b64encode(b).decode()} for n, b in sources]}


def test_sources_links_and_summary_names():
    tree = [
        {"l": "Frame 3: 2 bytes", "t": "proto", "f": "frame", "h": [0, 2],
         "n": [{"l": "Frame Number: 3", "f": "frame.number == 3"}]},
        {"l": "2 Reassembled TCP Segments (6 bytes): #1(3), #3(3)", "ds": 1, "h": [0, 6],
         "n": [{"l": "Frame: 1, payload: 0-2 (3 bytes)", "ds": 1, "h": [0, 3],
                "t": "framenum", "fnum": 1, "f": "tcp.segment == 1"},
               {"l": "Frame: 3, payload: 3-5 (3 bytes)", "ds": 1, "h": [3, 3],
                "t": "framenum", "fnum": 3, "f": "tcp.segment == 3"}]},
        {"l": "Hypertext Transfer Protocol", "t": "proto", "f": "http", "ds": 1, "h": [0, 6]},
    ]
    view = frame_view(result(tree, sources=[("Reassembled TCP (6 bytes)", b"GET /\n")]),
                      max_source_bytes=4)
    assert view.data == b"\x01\x02" and not view.truncated
    assert view.sources == [{"name": "Reassembled TCP (6 bytes)", "bytes": b"GET ",
                             "length": 6, "truncated": True}]
    frame, segments, http = view.layers
    assert frame == {"name": "frame", "label": "Frame 3: 2 bytes", "pos": 0, "size": 2,
                     "children": [{"name": "frame.number", "label": "Frame Number: 3",
                                   "value": "3"}]}
    assert segments["name"] == "tcp.segments" and segments["source"] == 0
    assert [(n["frame"], n["value"], n["pos"]) for n in segments["children"]] == \
        [(1, "1", 0), (3, "3", 3)]
    assert (http["name"], http["source"], http["size"]) == ("http", 0, 6)


def test_too_many_items_are_cut_and_said():
    tree = [{"l": f"line {i}", "f": "text"} for i in range(30)]
    view = frame_view(result([{"l": "Data", "t": "proto", "f": "data", "n": tree}]),
                      max_nodes=10)
    assert view.truncated and len(view.layers[0]["children"]) == 9


def test_renumbering_gives_a_cut_out_frame_its_numbers():
    tree = [
        {"l": "Frame 3: 60 bytes on wire", "t": "proto", "f": "frame",
         "n": [{"l": "Frame Number: 3", "f": "frame.number == 3"},
               {"l": "Time since reference or first frame: 1.5 seconds",
                "f": "frame.time_relative == 1.5"}]},
        {"l": "Transmission Control Protocol", "t": "proto", "f": "tcp",
         "n": [{"l": "Stream index: 1", "f": "tcp.stream == 1"},
               {"l": "This is an ACK to the segment in frame: 2", "t": "framenum",
                "fnum": 2, "f": "tcp.analysis.acks_frame == 2"},
               {"l": "Sequence Number: 3    (relative sequence number)",
                "f": "tcp.seq == 3"}]},
        {"l": "3 Reassembled TCP Segments (9 bytes): #1(3), #2(3), #3(3)" + "x" * 300,
         "ds": 1, "n": [{"l": "Frame: 2, payload: 3-5 (3 bytes)", "t": "framenum", "fnum": 2,
                         "f": "tcp.segment == 2"}]},
    ]
    view = renumber(frame_view(result(tree)), [1, 812, 1013], {"tcp.stream": 77})
    frame, tcp, segments = view.layers
    assert frame["label"] == "Frame 1013: 60 bytes on wire"
    assert frame["children"][0] == {"name": "frame.number", "label": "Frame Number: 1013",
                                    "value": "1013"}
    assert frame["children"][1]["label"].endswith("1.5 seconds")  # not a frame number
    stream, acks, seq = tcp["children"]
    assert (stream["label"], stream["value"]) == ("Stream index: 77", "77")
    assert (acks["label"], acks["frame"], acks["value"]) == \
        ("This is an ACK to the segment in frame: 812", 812, "812")
    assert seq["label"].startswith("Sequence Number: 3 ")  # a number, not a frame
    assert segments["label"].startswith("3 Reassembled TCP Segments (9 bytes): "
                                        "#1(3), #812(3), #1013(3)")
    assert len(segments["label"].encode()) == LABEL_BYTES
    assert segments["children"][0]["label"] == "Frame: 812, payload: 3-5 (3 bytes)"


async def test_sharkd_answers_refuses_and_survives_a_too_large_answer():
    shark = Sharkd(max_line=16384)
    await shark.start()
    try:
        status = await shark.load(str(PCAPS / "http-simple-get.pcap"))
        assert status["frames"] == 16
        small = await shark.frame(2)  # a bare TCP ACK: ~9.5 KB
        assert [x["f"] for x in small["tree"]][:4] == ["frame", "eth", "ip", "tcp"]
        with pytest.raises(AnswerTooLarge):
            await shark.frame(11)  # ~56 KB: a 5 KB page reassembled, quoted in fields
        with pytest.raises(SharkdError) as refused:
            await shark.frame(17)
        assert "out of range" in refused.value.message
        assert (await shark.frame(2))["tree"] == small["tree"]  # still in step
        assert shark.alive
    finally:
        await shark.close()
    assert not shark.alive
    with pytest.raises(SharkdGone):
        await shark.frame(2)


async def test_a_cancelled_call_does_not_answer_the_next_one():
    shark = Sharkd()
    await shark.start()
    try:
        await shark.load(str(PCAPS / "sanders-http_espn.pcapng"))
        call = asyncio.create_task(shark.frame(121))
        await asyncio.sleep(0)  # the request is written; its answer is not read yet
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        answer = await shark.frame(3)
        assert any(x.get("f") == "frame.number == 3" for x in answer["tree"][0]["n"])
    finally:
        await shark.close()


async def test_a_missing_binary_is_reported():
    with pytest.raises(SharkdGone):
        await Sharkd("/nonexistent/sharkd").start()
