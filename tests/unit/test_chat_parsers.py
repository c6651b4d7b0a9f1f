"""The chat-export parsers (``ingest.chats``) on the hand-made fixtures of
``tests/data/chats``: every platform's quirks, asserted value by value."""
from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.chats import ChatFormatError, open_export
from ingest.chats.model import ParsedMessage

DATA = Path(__file__).resolve().parents[1] / "data" / "chats"
DISCORD = DATA / "discord" / "Retro Computing - Text Channels - general [1093914218179452960].json"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def parse(path: Path, filename: str | None = None, **kw) -> tuple[str, list]:
    """(platform, [(chat name, platform, [messages])]) of an export, read to the end."""
    with open_export(path, filename or path.name, **kw) as export:
        chats = [(c.name, c.platform, list(c.messages)) for c in export.chats()]
        assert export.position == export.size
        return export.platform, chats


def one_chat(path: Path, filename: str | None = None, **kw) -> tuple[str, list[ParsedMessage]]:
    platform, chats = parse(path, filename, **kw)
    assert len(chats) == 1
    return chats[0][0], chats[0][2]


def brief(m: ParsedMessage) -> tuple:
    return (m.time, m.author, m.text, m.kind)


def make_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return path


def tree(root: Path) -> dict[str, bytes | Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


# -- WhatsApp ---------------------------------------------------------------------------------

def test_whatsapp_android_day_first_in_a_time_zone():
    path = DATA / "whatsapp" / "WhatsApp Chat with Family.txt"
    name, ms = one_chat(path, timezone="Europe/Paris")
    assert name == "Family"
    assert [brief(m) for m in ms[:6]] == [
        (utc(2023, 1, 13, 8, 0), "", "Messages and calls are end-to-end encrypted. No one outside "
         "of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
         "system"),
        (utc(2023, 1, 13, 8, 1), "", 'Ann created group "Family"', "system"),
        (utc(2023, 1, 13, 8, 1), "", "Ann added Bob", "system"),
        # a colon inside the quoted subject does not make "Ann changed…" an author
        (utc(2023, 1, 13, 8, 2), "", 'Ann changed the subject from "Family" to "Family: 2023"',
         "system"),
        (utc(2023, 1, 13, 8, 5), "Ann", "Hello everyone: welcome!", "message"),
        (utc(2023, 1, 13, 8, 6), "Bob", "First line\nsecond line\n\nfourth line, after a blank one",
         "message"),
    ]
    media, photo, edited, deleted, you_deleted, marks, left = ms[6:]
    assert (media.author, media.text, media.attachments) == ("Bob", "", [{"kind": "media"}])
    assert (photo.text, photo.attachments) == (
        "Look at this", [{"kind": "image", "name": "IMG-20230114-WA0001.jpg"}])
    assert (edited.text, edited.edited, edited.deleted) == ("I fixed a typo", True, False)
    assert (deleted.author, deleted.text, deleted.deleted) == ("Ann", "", True)
    assert (you_deleted.author, you_deleted.deleted) == ("Bob", True)
    # July: Paris is UTC+2; the U+200E marks are gone from the author and the text
    assert brief(marks) == (utc(2023, 7, 15, 5, 0), "Carol", "hi, with marks", "message")
    assert brief(left) == (utc(2023, 7, 15, 5, 1), "", "Bob left", "system")
    assert all(m.source_id is None and m.reply_source is None for m in ms)


def test_whatsapp_us_month_first_12_hour_with_narrow_spaces_and_crlf():
    name, ms = one_chat(DATA / "whatsapp" / "us_12h.txt")
    assert name == "WhatsApp chat"
    assert [brief(m) for m in ms] == [
        (utc(2023, 1, 2, 9, 5), "Ann", "first, still ambiguous", "message"),
        (utc(2023, 1, 5, 12, 0), "Bob", "noon", "message"),
        (utc(2023, 1, 6, 0, 30), "Ann", "half past midnight", "message"),
        (utc(2023, 1, 13, 23, 59), "Bob", "the 13th settles it", "message"),
    ]


def test_whatsapp_month_first_is_decided_from_the_whole_file():
    # the first three dates read either way; only the last one (02/15) settles it
    _, ms = one_chat(DATA / "whatsapp" / "month_first_late.txt")
    assert [m.time for m in ms] == [utc(2023, 1, 2, 10), utc(2023, 1, 3, 10),
                                    utc(2023, 2, 1, 10), utc(2023, 2, 15, 10)]


def test_whatsapp_ambiguous_dates_follow_the_order_that_goes_forward():
    # 01/02, 01/03, 02/01: day-first would go back from 1 March to 2 January
    _, ms = one_chat(DATA / "whatsapp" / "ambiguous_by_order.txt")
    assert [m.time.date().isoformat() for m in ms] == ["2023-01-02", "2023-01-03", "2023-02-01"]


def test_whatsapp_ios_zip_with_marks_tildes_and_media(tmp_path):
    upload = make_zip(tmp_path / "upload.zip", {
        "_chat.txt": DATA / "whatsapp" / "ios_chat.txt",
        "00000012-PHOTO-2023-01-14-09-04-00.jpg": b"\xff\xd8\xff\xe0 not really a photo"})
    platform, chats = parse(upload, "WhatsApp Chat - Trip.zip")
    assert platform == "whatsapp"
    [(name, _, ms)] = chats
    assert name == "Trip"
    assert [brief(m) for m in ms[:5]] == [
        (utc(2023, 1, 14, 9, 0, 0), "", "Messages and calls are end-to-end encrypted. No one "
         "outside of this chat, not even WhatsApp, can read or listen to them.", "system"),
        # the group's own name as author of its events is dropped
        (utc(2023, 1, 14, 9, 0, 1), "", "Ann created group “Trip”", "system"),
        (utc(2023, 1, 14, 9, 0, 2), "", "Ann added ~\u202fBob", "system"),
        (utc(2023, 1, 14, 9, 1, 0), "Ann", "Anyone up for hiking?", "message"),
        # "~" + U+202F marks a non-contact: stripped
        (utc(2023, 1, 14, 9, 2, 30), "Bob", "Me!\nCount me in", "message"),
    ]
    image, attached, edited, deleted, number, call, document = ms[5:]
    assert (image.author, image.text, image.attachments) == ("Bob", "", [{"kind": "image"}])
    assert attached.attachments == [
        {"kind": "image", "name": "00000012-PHOTO-2023-01-14-09-04-00.jpg"}]
    assert (attached.text, attached.kind) == ("", "message")
    assert (edited.text, edited.edited) == ("Meet at 7", True)
    assert (deleted.author, deleted.text, deleted.deleted) == ("Bob", "", True)
    assert (number.author, number.text) == ("+1 (555) 010-0199", "hi from a number")
    assert (call.author, call.text, call.kind) == ("Ann", "Missed voice call", "system")
    assert (document.text, document.attachments) == ("", [{"kind": "file", "name": "Report.pdf"}])


def test_whatsapp_zip_names_the_chat_from_its_text_file(tmp_path):
    upload = make_zip(tmp_path / "export.zip", {
        "WhatsApp Chat with Family.txt": DATA / "whatsapp" / "WhatsApp Chat with Family.txt"})
    name, ms = one_chat(upload, "export.zip")
    assert name == "Family" and len(ms) == 13


@pytest.mark.parametrize("fixture", ["bom_utf8.txt", "utf16.txt"])
def test_whatsapp_utf8_bom_and_utf16(fixture):
    _, ms = one_chat(DATA / "whatsapp" / fixture, timezone="Europe/Berlin")
    assert [brief(m) for m in ms] == [
        (utc(2022, 12, 31, 22, 59), "Jürgen", "Frohes neues Jahr! Grüße", "message"),
        (utc(2022, 12, 31, 23, 1), "Zoë", "😀 Danke", "message"),
    ]


@pytest.mark.parametrize("header, when", [
    ("14/01/2023 à 18:30 - ", utc(2023, 1, 14, 18, 30)),  # French, no comma
    ("14.1.2023 klo 18.30 - ", utc(2023, 1, 14, 18, 30)),  # Finnish
    ("14/1/23, 6:30\u00a0p.\u00a0m. - ", utc(2023, 1, 14, 18, 30)),  # Spanish 12-hour
    ("[2023-01-14, 18:30:05] ", utc(2023, 1, 14, 18, 30, 5)),  # year first
    ("[14.01.23, 18:30:05] ", utc(2023, 1, 14, 18, 30, 5)),  # iOS German
    ("14/01/2023, 18:30 \u2013 ", utc(2023, 1, 14, 18, 30)),  # en dash
    ("1/14/23, 12:05\u202fAM - ", utc(2023, 1, 14, 0, 5)),  # US, after midnight
])
def test_whatsapp_header_variants(tmp_path, header, when):
    path = tmp_path / "chat.txt"
    path.write_text(f"{header}Ann: hi\n", encoding="utf-8")
    _, [message] = one_chat(path)
    assert (message.time, message.author, message.text) == (when, "Ann", "hi")


def test_whatsapp_lines_that_cannot_be_read_are_warnings_not_crashes(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("13/01/2023, 09:05 - Ann: hi\n"
                    "45/13/2023, 09:06 - Bob: a header whose date cannot be\n"
                    "13/01/2023, 25:61 - Bob: nor this time\n"
                    "14/01/2023, 10:00 - Bob: back to normal\n", encoding="utf-8")
    seen = []
    with open_export(path, "chat.txt", warn=lambda where, text: seen.append(where)) as export:
        [chat] = list(export.chats())
        ms = list(chat.messages)
        assert export.warnings == 2
    assert seen == ["line 2", "line 3"]
    assert [m.text for m in ms] == [
        "hi\n45/13/2023, 09:06 - Bob: a header whose date cannot be\n"
        "13/01/2023, 25:61 - Bob: nor this time", "back to normal"]


def test_whatsapp_text_before_the_first_message_is_a_warning(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("Saved from my phone\n"
                    "13/01/2023, 09:05 - Ann: hi\n13/01/2023, 09:06 - Bob: hello\n"
                    "13/01/2023, 09:07 - Ann: bye\n", encoding="utf-8")
    seen = []
    with open_export(path, "chat.txt", warn=lambda where, text: seen.append(where)) as export:
        assert export.platform == "whatsapp"
        [chat] = list(export.chats())
        assert [m.text for m in chat.messages] == ["hi", "hello", "bye"]
    assert seen == ["line 1"]


def test_whatsapp_is_streamed_in_bounded_memory(tmp_path):
    import tracemalloc

    path = tmp_path / "big.txt"
    with path.open("w", encoding="utf-8") as f:
        for i in range(40_000):
            f.write(f"{1 + i % 28:02d}/{1 + i // 28 % 12:02d}/2022, 10:{i % 60:02d} - "
                    f"Person {i % 7}: message number {i} with some words in it\n")
    tracemalloc.start()
    try:
        count = 0
        with open_export(path, path.name) as export:
            positions = []
            for chat in export.chats():
                for _ in chat.messages:
                    count += 1
                    if count % 5000 == 0:
                        positions.append(export.position)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 40_000
    assert positions == sorted(positions) and 0 < positions[0] < path.stat().st_size
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes: messages are not streamed"


# -- Telegram ---------------------------------------------------------------------------------

def test_telegram_one_chat():
    name, ms = one_chat(DATA / "telegram" / "result.json", timezone="Europe/Paris")
    assert name == "Book club"
    created, invited, welcome, reply, ghost, photo, sticker, voice, pin, poll, old = ms
    assert (created.kind, created.author, created.text, created.author_id, created.source_id) == (
        "system", "Ann Lee", 'Ann Lee created the group "Book club"', "user111", "1")
    assert created.time == utc(2023, 3, 1, 10, 0)
    assert invited.text == "Ann Lee added Carl, (deleted account)"
    assert (welcome.author, welcome.text, welcome.kind) == ("Ann Lee", "Welcome! First book:",
                                                            "message")
    # text as a list of strings and entities; reply, edit, reactions
    assert reply.text == "Read Dune by Frank — https://example.org/dune!"
    assert (reply.source_id, reply.reply_source, reply.edited) == ("4", "3", True)
    assert reply.reactions == [{"emoji": "👍", "count": 2},
                               {"emoji": "5368324170671202286", "count": 1}]
    assert (ghost.author, ghost.author_id) == ("(deleted account)", "user333")
    assert photo.attachments == [{"kind": "image", "name": "photo_1@01-03-2023_10-05-00.jpg"}]
    assert photo.text == "the cover"
    assert sticker.attachments == [{"kind": "sticker"}]  # the file was not included
    assert voice.attachments == [{"kind": "audio", "name": "audio_1.ogg"}]
    assert (pin.kind, pin.text, pin.reply_source) == ("system", "Ann Lee pinned a message", "4")
    assert poll.attachments == [{"kind": "poll", "name": "Next meeting?"}]
    # no date_unixtime: the local date is read in the import's zone (Paris, summer: UTC+2)
    assert old.time == utc(2023, 7, 1, 12, 0)
    assert all(m.time.tzinfo is UTC for m in ms)


def test_telegram_unsupported_message_is_a_counted_warning():
    seen = []
    with open_export(DATA / "telegram" / "result.json", "result.json",
                     warn=lambda where, text: seen.append((where, text))) as export:
        total = sum(len(list(c.messages)) for c in export.chats())
        assert (total, export.warnings) == (11, 1)
    assert seen == [("message 10", "a message the export could not include was skipped")]


def test_telegram_whole_account_gives_one_chat_per_dialog():
    platform, chats = parse(DATA / "telegram" / "account_result.json")
    assert platform == "telegram"
    # the chat without messages is left out; left_chats come after chats
    assert [(n, p, len(ms)) for n, p, ms in chats] == [
        ("Bob", "telegram", 2), ("Saved Messages", "telegram", 1), ("Old channel", "telegram", 1)]
    bob = chats[0][2]
    assert [(m.author, m.text, m.source_id, m.reply_source) for m in bob] == [
        ("Bob", "hi Ann", "101", None), ("Ann Lee", "hi Bob", "102", "101")]
    assert chats[1][2][0].text == "note to self: ls -la"
    assert chats[2][2][0].time == utc(2023, 1, 1)


def test_telegram_next_chat_skips_what_was_left_of_the_previous():
    with open_export(DATA / "telegram" / "account_result.json", "result.json") as export:
        chats = export.chats()
        first = next(chats)
        assert next(first.messages).text == "hi Ann"  # "hi Bob" is left unread
        second = next(chats)
        assert (second.name, [m.text for m in second.messages]) == (
            "Saved Messages", ["note to self: ls -la"])
        assert [c.name for c in chats] == ["Old channel"]


def test_telegram_export_folder_in_a_zip(tmp_path):
    upload = make_zip(tmp_path / "ChatExport.zip", {
        "ChatExport_2023-03-02/result.json": DATA / "telegram" / "result.json",
        "ChatExport_2023-03-02/photos/photo_1@01-03-2023_10-05-00.jpg": b"\xff\xd8\xff",
        "ChatExport_2023-03-02/messages.html": b"<html></html>"})
    name, ms = one_chat(upload, "ChatExport.zip")
    assert (name, len(ms)) == ("Book club", 11)


# -- Discord (DiscordChatExporter) ------------------------------------------------------------

def test_discord_channel():
    name, ms = one_chat(DISCORD)
    assert name == "Retro Computing / #general"
    join, question, reply, pin, sticker = ms
    assert (join.kind, join.author, join.text) == ("system", "Ada L.", "Joined the server.")
    assert join.time == utc(2023, 4, 8, 18, 0, 0, 123000)  # +02:00 stored in UTC
    assert (question.kind, question.author, question.author_id, question.source_id) == (
        "message", "Ada L.", "184379850225647616", "1093914300000000002")
    assert question.reactions == [{"emoji": "👍", "count": 3}, {"emoji": "amiga", "count": 1}]
    # no nickname: the user name; an id above 2**53 written as a number stays exact
    assert (reply.author, reply.author_id) == ("grace", "9007199254740993")
    assert (reply.kind, reply.reply_source, reply.edited) == ("message", "1093914300000000002",
                                                              True)
    assert reply.time == utc(2023, 4, 8, 18, 2, 30, 500000)
    assert reply.attachments == [{"kind": "image", "name": "a500.jpg"},
                                 {"kind": "file", "name": "manual.pdf"}]
    assert (pin.kind, pin.reply_source) == ("system", "1093914300000000003")
    assert sticker.time == utc(2023, 4, 8, 18, 4)  # -07:00
    assert (sticker.text, sticker.attachments) == ("", [{"kind": "sticker", "name": "Wave"}])
    assert not question.edited and all(isinstance(m.source_id, str) for m in ms)


def test_discord_several_channels_in_a_zip(tmp_path):
    other = DISCORD.read_text(encoding="utf-8").replace('"name": "general"', '"name": "games"')
    upload = make_zip(tmp_path / "dce.zip", {"general.json": DISCORD,
                                             "games.json": other.encode()})
    platform, chats = parse(upload, "dce.zip")
    assert platform == "discord"
    assert sorted(name for name, _, _ in chats) == ["Retro Computing / #games",
                                                    "Retro Computing / #general"]
    assert all(len(ms) == 5 for _, _, ms in chats)


# -- Slack ------------------------------------------------------------------------------------

def test_slack_export(tmp_path):
    upload = make_zip(tmp_path / "slack.zip", tree(DATA / "slack"))
    platform, chats = parse(upload, "Acme Slack export.zip")
    assert platform == "slack"
    # channels.json order, then the DM (named by its members); the empty channel is left out
    assert [(n, len(ms)) for n, _, ms in chats] == [
        ("#general", 7), ("#random", 1), ("Ann Lee, Bob Stone", 1)]
    join, welcome, thanks, late, bot, report, leave = chats[0][2]
    # day files are put in ts order
    assert (join.kind, join.author, join.author_id, join.text) == (
        "system", "Bob Stone", "U02BOB", "@Bob Stone has joined the channel")
    assert join.time == utc(2023, 1, 1, 10, 58, 20, 100)
    assert welcome.text == ("Welcome @Bob Stone! See #random and the docs & "
                            "https://example.org")
    assert (welcome.source_id, welcome.reply_source) == ("1672570800.000200", None)
    assert welcome.reactions == [{"emoji": ":wave:", "count": 1}, {"emoji": ":+1:", "count": 2}]
    assert (thanks.text, thanks.edited, thanks.reply_source) == ("Thanks! 1 < 2 > 0", True,
                                                                 "1672570800.000200")
    # a reply in the thread a day later, from another day file
    assert (late.reply_source, late.time) == ("1672570800.000200", utc(2023, 1, 2, 9, 0, 0, 100))
    assert (bot.author, bot.author_id, bot.text, bot.kind) == (
        "deploy-bot", "B01", "Deployed :rocket: @here", "message")
    assert report.attachments == [{"kind": "file", "name": "report.pdf"},
                                  {"kind": "image", "name": "chart.png"}]
    assert (leave.kind, leave.text) == ("system", "@Bob Stone has left the channel")
    assert chats[2][2][0].author == "Bob Stone"


def test_slack_export_inside_a_folder_of_the_zip(tmp_path):
    members = {f"Acme export/{k}": v for k, v in tree(DATA / "slack").items()}
    platform, chats = parse(make_zip(tmp_path / "slack.zip", members), "slack.zip")
    assert platform == "slack" and len(chats) == 3


# -- ChatGPT ----------------------------------------------------------------------------------

def test_chatgpt_visible_branch_only():
    platform, chats = parse(DATA / "chatgpt" / "conversations.json")
    assert platform == "chatgpt"
    assert [n for n, _, _ in chats] == ["Sourdough help", "ChatGPT conversation"]
    ms = chats[0][2]
    assert [(m.author, m.text, m.source_id) for m in ms] == [
        ("user", "How do I start a sourdough starter?", "u1"),
        ("assistant", "Mix equal parts flour and water.", "a1"),
        ("user", "What temperature?", "u2"),
        ("assistant", "Around 24 °C.", "a2"),
        ("user", "What about this jar?", "u3"),
        ("assistant", "That jar works.", "a4"),
    ]
    assert ms[0].time == utc(2023, 11, 14, 22, 13, 20, 500000)
    assert ms[4].attachments == [{"kind": "image", "name": "jar.jpg"}]
    assert ms[5].time == ms[4].time  # no create_time: the time of the message before
    assert all(m.kind == "message" for m in ms)
    assert [(m.author, m.text) for m in chats[1][2]] == [("user", "2+2?"), ("assistant", "4")]


# -- Messenger / Instagram --------------------------------------------------------------------

def test_messenger_thread_of_several_files_oldest_first_and_repaired(tmp_path):
    thread = DATA / "messenger" / "inbox" / "zoedurand_8f3k2"
    upload = make_zip(tmp_path / "facebook.zip", {
        f"your_activity_across_facebook/messages/inbox/zoedurand_8f3k2/{p.name}": p
        for p in thread.iterdir()})
    platform, chats = parse(upload, "facebook-zoe.zip")
    assert platform == "messenger"
    [(name, _, ms)] = chats
    assert name == "Zoë & Léo"
    assert [(m.author, m.text, m.kind) for m in ms] == [
        ("Zoë Durand", "Zoë added Léo Martin to the group.", "system"),
        ("Léo Martin", "here are the files", "message"),
        ("Léo Martin", "Salut Zoë ! Ça va ?", "message"),
        ("Zoë Durand", "Regarde ça 😍", "message"),
        ("Léo Martin", "", "message"),
        ("Zoë Durand", "", "message"),
    ]
    assert [m.time for m in ms] == sorted(m.time for m in ms)
    assert ms[0].time == utc(2023, 3, 28, 10, 40)
    assert ms[1].attachments == [{"kind": "audio", "name": "voice_1.mp4"},
                                 {"kind": "file", "name": "plan.pdf"}]
    assert ms[3].attachments == [{"kind": "image", "name": "3399_n.jpg"}]
    assert ms[3].reactions == [{"emoji": "❤", "count": 2}, {"emoji": "😂", "count": 1}]
    assert ms[4].attachments == [
        {"kind": "sticker", "name": "39178562_1505197616293642_5411344281094848512_n.png"}]
    assert ms[5].deleted and not ms[4].deleted


def test_messenger_single_file_and_instagram_shape():
    name, ms = one_chat(DATA / "messenger" / "inbox" / "zoedurand_8f3k2" / "message_2.json")
    assert name == "Zoë & Léo"
    assert [m.author for m in ms] == ["Zoë Durand", "Léo Martin", "Léo Martin"]


def test_messenger_end_to_end_encrypted_export():
    name, ms = one_chat(DATA / "messenger" / "ana_silva_10.json")
    assert name == "Ana Silva"
    assert [(m.author, m.text, m.attachments, m.reactions) for m in ms] == [
        ("Tom", "", [{"kind": "image", "name": "IMG_0001.jpeg"}], []),
        ("Ana Silva", "Olá, tudo bem?", [], [{"emoji": "👍", "count": 1}]),
    ]


def test_latin1_repair_leaves_real_text_alone():
    from ingest.chats.messenger import repair

    assert repair("ZoÃ«") == "Zoë"
    assert repair("Zoë") == "Zoë"  # not mis-decoded: the round trip fails, kept as is
    assert repair("plain") == "plain"
    assert repair("😀") == "😀"


# -- the API ----------------------------------------------------------------------------------

def test_forced_platform():
    with open_export(DATA / "telegram" / "result.json", "export.json",
                     platform="telegram") as export:
        assert export.platform == "telegram"
    with pytest.raises(ChatFormatError) as e:
        open_export(DATA / "telegram" / "result.json", "result.json", platform="discord")
    assert e.value.reason == "not_a_chat"
    assert e.value.message == ("result.json is not a DiscordChatExporter export: it is a JSON "
                               "object with keys [name, type, id, messages]")


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown platform"):
        open_export(DISCORD, "x.json", platform="icq")
    with pytest.raises(ValueError, match="unknown time zone"):
        open_export(DISCORD, "x.json", timezone="Mars/Olympus")


def test_chats_are_lazy_and_read_once():
    with open_export(DISCORD, "d.json") as export:
        assert export.position == 0 and export.size == DISCORD.stat().st_size
        chats = export.chats()
        assert export.position == 0  # nothing is read before it is asked for
        with pytest.raises(RuntimeError):
            export.chats()
        assert len(list(next(chats).messages)) == 5


def test_utf16_json_is_still_json(tmp_path):
    # a UTF-16 JSON file (a Discord export saved by an editor) is still JSON
    path = tmp_path / "general.json"
    path.write_bytes(DISCORD.read_text(encoding="utf-8").encode("utf-16"))
    name, ms = one_chat(path)
    assert name == "Retro Computing / #general" and len(ms) == 5


def test_json_with_a_utf8_bom(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"\xef\xbb\xbf" + (DATA / "telegram" / "result.json").read_bytes())
    name, ms = one_chat(path)
    assert (name, len(ms)) == ("Book club", 11)


def test_platform_is_found_whatever_byte_the_sniffed_head_ends_on():
    # a head cut inside "é", an escape or a literal is the end of the head, not broken JSON
    from ingest.chats.detect import json_platform
    from ingest.chats.jsonio import json_shape

    data = DISCORD.read_bytes()
    data = data.replace(b'"Anyone kept', '"\\u00e9\\u00e9 \\"caf\xc3\xa9\\" Anyone kept'.encode())
    start = data.index(b'"messages"') + 12
    for cut in range(start, len(data) - 1):
        assert json_platform(json_shape(data[:cut], False, "x.json"), "x.json") == (
            "discord", False), cut
