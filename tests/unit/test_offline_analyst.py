"""The offline analyst and what it reads: CSV profiles, capture statistics (checked against
Wireshark's capinfos on the captures in tests/data/pcaps), the history budget, titles."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import datetime

import pytest

from ingest.profile import CaptureError, CsvError, capture_stats, profile_csv, text_excerpt
from services.ai import ChatRequest, ContextItem, Turn, estimate_tokens, fit_history
from services.ai.offline import OfflineAnalyst, chunks, compose, intents
from services.replies import make_title
from tests.pcap_files import PCAPS

CAPTURES = sorted(p for p in PCAPS.glob("*.pcap*") if p.name != "not-a-capture.pcap")


def test_csv_profile(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("name,score,ok,when\nann,1.5,yes,2024-01-01\nbob,,no,2023-12-31T10:00:00\n"
                    "ann,4,NA,\ncid,2,yes,2024-02-01\nbad,row\n")
    prof = profile_csv(path)
    assert (prof["rows"], prof["badRows"], prof["delimiter"]) == (4, 1, ",")
    name, score, ok, when = prof["columns"]
    assert (name["type"], name["count"], name["missing"], name["distinct"]) == ("text", 4, 0, 3)
    assert name["top"][0] == {"value": "ann", "count": 2}
    assert (score["type"], score["missing"], score["min"], score["max"]) == ("number", 1, 1.5, 4)
    assert score["mean"] == pytest.approx(2.5)
    assert (ok["type"], ok["missing"]) == ("bool", 1)
    assert (when["type"], when["min"], when["max"]) == ("datetime", "2023-12-31T10:00:00",
                                                        "2024-02-01")
    assert prof["sample"][0] == {"name": "ann", "score": "1.5", "ok": "yes", "when": "2024-01-01"}
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CsvError):
        profile_csv(tmp_path / "empty.csv")


@pytest.fixture(scope="module")
def nano_pcapng(tmp_path_factory):
    """A pcapng whose interface counts nanoseconds (if_tsresol 9), made by editcap."""
    if not shutil.which("editcap"):
        pytest.fail("editcap (Wireshark) is part of the setup")
    out = tmp_path_factory.mktemp("nano") / "handshake-nano.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(PCAPS / "tcpdump-tcp-handshake-nano.pcap"),
                    str(out)], check=True, timeout=30)
    return out


@pytest.mark.parametrize("path", [*CAPTURES, "nano.pcapng"],
                         ids=lambda p: getattr(p, "name", p))
def test_capture_totals_match_capinfos(path, request):
    if path == "nano.pcapng":
        path = request.getfixturevalue("nano_pcapng")
    stats = capture_stats(path)["summary"]
    if shutil.which("capinfos"):
        out = subprocess.run(["capinfos", "-T", "-r", "-c", "-d", str(path)],
                             capture_output=True, text=True, timeout=30).stdout.split()
        assert (stats["packets"], stats["bytes"]) == (int(out[-2]), int(out[-1]))
        # First and last packet times (the timestamp units of every interface).
        out = subprocess.run(["capinfos", "-T", "-r", "-a", "-e", "-S", str(path)],
                             capture_output=True, text=True, timeout=30).stdout.split()
        if stats["packets"] and out[-1] != "n/a":
            first, last = (datetime.fromisoformat(stats[k].replace("Z", "+00:00")).timestamp()
                           for k in ("firstTime", "lastTime"))
            assert (first, last) == (pytest.approx(float(out[-2]), abs=2e-6),
                                     pytest.approx(float(out[-1]), abs=2e-6))
    assert stats["truncated"] == (path.name == "truncated-dns-tcp.pcap")


def test_capture_errors_and_excerpts(tmp_path):
    with pytest.raises(CaptureError):
        capture_stats(PCAPS / "not-a-capture.pcap")
    text = tmp_path / "notes.md"
    text.write_text("line one\nline two\n" * 10)
    got = text_excerpt(text, chars=20)
    assert got["lines"] == 20 and got["size"] == 180 and got["excerpt"] == "line one\nline two\nli"
    assert got["truncated"] is True


def test_history_budget_drops_oldest_and_keeps_roles_alternating():
    turns = [Turn("user", "a" * 400), Turn("assistant", "b" * 400), Turn("user", "c" * 400),
             Turn("assistant", ""), Turn("user", "d" * 400)]
    kept, dropped = fit_history(turns, 10_000)
    assert [t.role for t in kept] == ["user", "assistant", "user"] and dropped == 0
    assert kept[-1].text == "c" * 400 + "\n\n" + "d" * 400  # consecutive user turns merge
    kept, dropped = fit_history(turns, 250)
    assert [t.text[0] for t in kept] == ["c"] and dropped == 2
    kept, _ = fit_history([Turn("user", "z" * 10_000)], 5)
    assert len(kept) == 1  # the newest turn always goes, whatever its size


def test_titles():
    assert make_title("  which columns have **missing** values in sales.csv?\nthanks") == \
        "Which columns have missing values in sales.csv?"
    assert make_title("", "data.csv") == "data.csv"
    assert make_title("Summarise <b>this</b> file") == "Summarise <b>this</b> file"
    assert make_title("## > quoted *heading*") == "Quoted heading"
    assert len(make_title("word " * 40)) <= 60


def _item(kind: str, data: dict, name: str = "f") -> ContextItem:
    return ContextItem("id1", name, kind, "", data, 10)


def test_offline_answers_are_labelled_deterministic_and_streamed():
    espn = capture_stats(PCAPS / "sanders-http_espn.pcapng")
    request = ChatRequest(history=[Turn("user", "top talkers please")],
                          context=[_item("pcap", espn, "espn.pcapng")])
    text = compose(request)
    assert text.startswith("**Offline analyst** (built in, not an AI model)")
    assert "1. 172.16.0.122: 652,181 bytes in 956 packets" in text
    assert compose(request) == text
    assert intents("which columns have missing values?") == ["missing", "columns"]
    assert intents("hello") == ["summary"]
    got: list[str] = []

    async def collect(piece: str) -> None:
        got.append(piece)

    final = asyncio.run(OfflineAnalyst(delay_s=0).reply(request, collect))
    assert "".join(got) == text and got == chunks(text) and len(got) > 10
    assert final.model == "offline-analyst" and final.usage["outputTokens"] == \
        estimate_tokens(text)
    bare = compose(ChatRequest(history=[Turn("user", "summarise this file")]))
    assert "offline analyst" in bare.lower() and "ANTHROPIC_API_KEY" in bare
