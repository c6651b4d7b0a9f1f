"""Uploads the chat parsers must refuse, each with its reason and a message that says what
was seen: unsafe or oversized archives, broken or foreign JSON, empty exports, bad text."""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from ingest.chats import ArchiveLimits, ChatFormatError, open_export

DATA = Path(__file__).resolve().parents[1] / "data" / "chats"
BAD = DATA / "bad"
CHAT = (DATA / "whatsapp" / "WhatsApp Chat with Family.txt").read_bytes()


def refused(path: Path, filename: str | None = None, **kw) -> ChatFormatError:
    """The error of opening ``path`` and reading every message."""
    with pytest.raises(ChatFormatError) as caught:
        with open_export(path, filename or path.name, **kw) as export:
            for chat in export.chats():
                for _ in chat.messages:
                    pass
    return caught.value


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (2023, 1, 1, 0, 0, 0)), data, method)
    return path


# -- archives ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "C:\\Windows\\evil.txt",
                                  "chats/../../evil.txt", "..\\evil.txt", "D:evil.txt"])
def test_zip_slip_names_are_unsafe(tmp_path, name):
    upload = make_zip(tmp_path / "x.zip", {"_chat.txt": CHAT, name: b"boo"})
    e = refused(upload)
    assert e.reason == "unsafe_archive"
    assert "points outside the archive" in e.message and e.details["member"] == name


def test_zip_bomb_by_its_declared_ratio(tmp_path):
    upload = make_zip(tmp_path / "bomb.zip", {"_chat.txt": CHAT,
                                              "zeros.bin": b"\0" * (4 << 20)})
    e = refused(upload)
    assert e.reason == "unsafe_archive"
    assert "zeros.bin would expand" in e.message and "zip bomb" in e.message


def test_zip_total_and_member_sizes_are_limited(tmp_path):
    upload = make_zip(tmp_path / "big.zip", {"_chat.txt": CHAT, "photo.jpg": b"x" * 5000})
    e = refused(upload, limits=ArchiveLimits(max_total=4000))
    assert e.reason == "too_large" and "at most 0 MiB" in e.message
    e = refused(upload, limits=ArchiveLimits(max_member=4000))
    assert e.reason == "too_large" and e.details["member"] == "photo.jpg"


def test_zip_with_too_many_members(tmp_path):
    upload = make_zip(tmp_path / "many.zip", {"_chat.txt": CHAT,
                                              **{f"m{i}.jpg": b"x" for i in range(5)}})
    e = refused(upload, limits=ArchiveLimits(max_members=4))
    assert e.reason == "too_large" and "holds 6 files" in e.message


def _lie_about_size(path: Path, member: str, size: int) -> None:
    """Rewrite ``member``'s uncompressed size in the local and central headers."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        n = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30:local + 30 + n] == name:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        n = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + n] == name:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member, data, size", [
    ("_chat.txt", CHAT * 200, 300),
    ("result.json", (DATA / "telegram" / "result.json").read_bytes(), 4000),
])
def test_zip_member_larger_than_its_header_says(tmp_path, member, data, size):
    # the header claims fewer bytes (a harmless ratio) than come out: the bytes read, not
    # the header, decide
    upload = make_zip(tmp_path / "liar.zip", {member: data})
    _lie_about_size(upload, member, size)
    with zipfile.ZipFile(upload) as z:
        assert z.getinfo(member).file_size == size
    e = refused(upload, "export.zip")
    assert e.reason == "unsafe_archive"
    assert e.message == (f"{member} does not match its header (CRC check failed): the archive "
                         "is damaged or tampered with")


def test_nested_archive_by_name(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"_chat.txt": CHAT}).read_bytes()
    upload = make_zip(tmp_path / "outer.zip", {"_chat.txt": CHAT, "media/inner.zip": inner})
    e = refused(upload)
    assert e.reason == "unsafe_archive" and "nested archives" in e.message


def test_nested_archive_by_content(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"_chat.txt": CHAT}).read_bytes()
    upload = make_zip(tmp_path / "outer.zip", {"_chat.txt": inner})
    e = refused(upload)
    assert e.reason == "unsafe_archive" and "itself a zip archive" in e.message


def test_truncated_zip(tmp_path):
    whole = make_zip(tmp_path / "whole.zip", {"_chat.txt": CHAT}).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    e = refused(cut)
    assert e.reason == "truncated" and "truncated or damaged" in e.message


def test_empty_zip_and_unknown_zip(tmp_path):
    assert refused(make_zip(tmp_path / "e.zip", {})).reason == "empty"
    e = refused(make_zip(tmp_path / "u.zip", {"notes.md": b"# hi", "a.png": b"\x89PNG"}))
    assert e.reason == "unknown_format"
    assert "a zip archive holding notes.md, a.png (2 files)" in e.message


# -- JSON -------------------------------------------------------------------------------------

def test_truncated_json_seen_at_once():
    e = refused(BAD / "truncated_result.json")
    assert e.reason == "truncated"
    assert e.message.startswith("truncated_result.json ends in the middle of its JSON")


def test_truncated_json_found_while_streaming(tmp_path):
    # past the part read to find the platform: found when the messages get there
    messages = ",".join(
        f'{{"id": {i}, "type": "message", "date_unixtime": "{1677664800 + i}", '
        f'"from": "Ann", "from_id": "user1", "text": "message {i} {"x" * 40}"}}'
        for i in range(2000))
    whole = f'{{"name": "Big", "type": "personal_chat", "id": 1, "messages": [{messages}]}}'
    path = tmp_path / "result.json"
    path.write_text(whole[: len(whole) - 500], encoding="utf-8")
    read = []
    with pytest.raises(ChatFormatError) as caught:
        with open_export(path, "result.json") as export:
            for chat in export.chats():
                read.extend(chat.messages)
    assert caught.value.reason == "truncated"
    assert 1900 < len(read) < 2000


def test_json_that_is_not_a_chat():
    e = refused(BAD / "not_a_chat.json")
    assert e.reason == "not_a_chat"
    assert e.message.startswith("not_a_chat.json is a JSON object with keys [name, version, "
                                "dependencies], which is not a chat export")


def test_json_list_that_is_not_a_chat(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('[{"ts": "1.0", "user": "U1", "text": "a Slack day file alone"}]')
    e = refused(path)
    assert e.reason == "not_a_chat"
    assert "a JSON list of objects with keys [ts, user, text]" in e.message


def test_broken_json():
    e = refused(BAD / "broken.json")
    assert e.reason == "not_a_chat" and "is not valid JSON (parse error" in e.message


def test_export_without_messages_is_empty():
    e = refused(BAD / "empty_chat.json")
    assert e.reason == "empty"
    assert e.message == "empty_chat.json is a Telegram Desktop export without any message"


def test_empty_file():
    e = refused(BAD / "empty.txt")
    assert (e.reason, e.message) == ("empty", "empty.txt is empty (0 bytes)")


def test_blank_text_is_empty(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("\n  \n\n")
    e = refused(path)
    assert (e.reason, e.message) == ("empty", "chat.txt holds nothing but blank lines")


# -- text -------------------------------------------------------------------------------------

def test_latin1_text_is_undecodable():
    e = refused(BAD / "latin1_whatsapp.txt")
    assert e.reason == "undecodable"
    assert "not valid UTF-8 or UTF-16 (byte 0xFC at offset" in e.message


def test_bad_bytes_deep_in_a_chat_are_undecodable_with_the_line(tmp_path):
    path = tmp_path / "chat.txt"
    lines = [f"13/01/2023, 09:{i % 60:02d} - Ann: line {i}\n".encode() for i in range(5000)]
    path.write_bytes(b"".join(lines) + b"13/01/2023, 10:00 - Bob: caf\xe9\n")
    e = refused(path)
    assert e.reason == "undecodable" and "at line 5001" in e.message


def test_unknown_text_says_its_first_line():
    e = refused(BAD / "diary.txt")
    assert e.reason == "unknown_format"
    assert "it is text whose first line is 'Dear diary,'" in e.message


def test_binary_file_is_named(tmp_path):
    path = tmp_path / "photo.jpg.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    e = refused(path)
    assert e.reason == "unknown_format" and "it is a PNG image" in e.message


def test_forced_platform_that_does_not_fit_text():
    e = refused(BAD / "diary.txt", platform="whatsapp")
    assert e.reason == "not_a_chat"
    assert e.message.startswith("diary.txt is not a WhatsApp export: it is text whose first line")
