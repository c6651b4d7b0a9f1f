"""ImportedChatRepo contract: hidden imports and their fencing, publish (participants,
counts, replies), paged lines, full-text search, deletes and activity, on every backend."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.chats.model import MessageRow, ParsedMessage, message_row
from store.base import ChatParticipant, ImportedChat
from store.errors import BadRequest, Conflict, NotFound
from store.ids import new_id
from store.mongo import imported_chats as mongo_chats
from store.sqlite import imported_chats as sqlite_chats
from tests.contract.mongo_standin import StandinClient, StandinCollection

T0 = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)


def msg(i: int, author: str = "Ann", text: str | None = None, **kw) -> MessageRow:
    when = kw.pop("time", T0 + timedelta(minutes=i))
    return message_row(ParsedMessage(time=when, author=author, **kw,
                                     text=f"message number {i}" if text is None else text))


async def begin(store, *, project_id="p1", file_id="f1", attempt=1, name="Chat",
                platform="whatsapp") -> str:
    return await store.chats.begin_chat(project_id=project_id, file_id=file_id,
                                        attempt=attempt, name=name, platform=platform,
                                        imported_by="u1")


async def imported(store, messages, *, project_id="p1", file_id=None, attempt=1,
                   name="Chat", batch=1000) -> ImportedChat:
    file_id = file_id or new_id()
    chat_id = await begin(store, project_id=project_id, file_id=file_id, attempt=attempt,
                          name=name)
    for start in range(0, len(messages), batch):
        assert await store.chats.add_lines(chat_id, attempt, start + 1,
                                           messages[start:start + batch])
    chats = await store.chats.publish_chats(file_id, attempt)
    assert [c.id for c in chats] == [chat_id]
    return chats[0]


async def all_lines(store, chat_id, **filters):
    out, cursor = [], None
    while True:
        page = await store.chats.list_lines(chat_id, cursor=cursor, limit=7, **filters)
        out += page.items
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def all_hits(store, project_id, query, limit=3, **filters):
    out, cursor = [], None
    while True:
        page = await store.chats.search(project_id, query, cursor=cursor, limit=limit,
                                        **filters)
        out += page.items
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


@pytest.fixture
def small_chunks(monkeypatch):
    """Bulk steps in chunks of a few lines, so multi-transaction paths run (SQLite)."""
    monkeypatch.setattr(sqlite_chats, "CHUNK", 7)


# -- import: hidden until published, fencing ------------------------------------------------

async def test_hidden_until_published(store):
    chat_id = await begin(store)
    assert await store.chats.add_lines(chat_id, 1, 1, [msg(1, text="secret plans"),
                                                        msg(2, text="more plans")])
    assert await store.chats.get_chat(chat_id) is None
    assert (await store.chats.list_chats("p1")).items == []
    assert (await store.chats.list_lines(chat_id)).items == []
    assert (await store.chats.search("p1", "plans")).items == []
    assert await store.chats.activity(chat_id) == []
    assert await store.chats.rename_chat(chat_id, "x") is None

    [chat] = await store.chats.publish_chats("f1", 1)
    assert chat.id == chat_id and chat.name == "Chat" and chat.platform == "whatsapp"
    assert (chat.project_id, chat.file_id, chat.imported_by) == ("p1", "f1", "u1")
    assert await store.chats.get_chat(chat_id) == chat
    assert [c.id for c in (await store.chats.list_chats("p1")).items] == [chat_id]
    assert [line.text for line in await all_lines(store, chat_id)] == ["secret plans",
                                                                       "more plans"]
    assert len((await store.chats.search("p1", "plans")).items) == 2
    # Published: the import cannot write to it any more, nor publish it twice.
    assert not await store.chats.add_lines(chat_id, 1, 3, [msg(3)])
    assert await store.chats.publish_chats("f1", 1) == [chat]


async def test_attempt_fencing_and_discard(store):
    old = await begin(store, attempt=1)
    assert await store.chats.add_lines(old, 1, 1, [msg(1)])
    assert not await store.chats.add_lines(old, 2, 2, [msg(2)])  # not its attempt
    assert not await store.chats.add_lines(new_id(), 1, 1, [msg(1)])  # no such chat

    # A restarted import drops the hidden chats, whatever their attempt, and goes on.
    await store.chats.discard_import("f1")
    assert not await store.chats.add_lines(old, 1, 2, [msg(2)])
    new = await begin(store, attempt=2)
    assert await store.chats.add_lines(new, 2, 1, [msg(1, text="fresh")])
    # The stale attempt can neither start a chat nor publish once a newer one has begun.
    with pytest.raises(Conflict):
        await begin(store, attempt=1)
    assert await store.chats.publish_chats("f1", 1) == []
    assert await store.chats.get_chat(old) is None
    [chat] = await store.chats.publish_chats("f1", 2)
    assert chat.id == new and chat.message_count == 1

    # discard_import leaves published chats alone.
    await store.chats.discard_import("f1")
    assert await store.chats.get_chat(new) == chat
    assert [line.text for line in await all_lines(store, new)] == ["fresh"]


async def test_publish_all_chats_of_the_import_in_begin_order(store):
    a = await begin(store, name="A")
    b = await begin(store, name="B")
    other = await begin(store, file_id="f2", name="other file")
    for cid in (b, a, other):
        assert await store.chats.add_lines(cid, 1, 1, [msg(1)])
    chats = await store.chats.publish_chats("f1", 1)
    assert [c.id for c in chats] == [a, b]
    assert await store.chats.get_chat(other) is None
    page = await store.chats.list_chats("p1", limit=1)
    assert [c.id for c in page.items] == [b]  # newest first
    rest = await store.chats.list_chats("p1", cursor=page.next_cursor, limit=1)
    assert [c.id for c in rest.items] == [a] and rest.next_cursor is None


async def test_participants_counts_and_times(store, small_chunks):
    messages = [msg(1, "Bea"), msg(2, "Ann"), msg(3, "Cy", kind="system", text="Cy joined"),
                msg(4, "Bea"), msg(5, "Ann"), msg(6, "Dee"), msg(7, "Ann"),
                msg(8, "System", kind="system", text="title changed")]
    chat = await imported(store, messages, batch=3)
    assert chat.participants == (ChatParticipant("Ann", 3), ChatParticipant("Bea", 2),
                                 ChatParticipant("Dee", 1))
    assert (chat.message_count, chat.system_count) == (6, 2)
    assert chat.first_time == T0 + timedelta(minutes=1)
    assert chat.last_time == T0 + timedelta(minutes=8)

    empty = await imported(store, [])
    assert (empty.participants, empty.message_count, empty.system_count) == ((), 0, 0)
    assert empty.first_time is None and empty.last_time is None


async def test_reply_source_resolves_within_the_chat(store):
    other = await imported(store, [msg(1, source_id="100", text="elsewhere")])
    messages = [msg(1, source_id="100", text="question"),
                msg(2, source_id="101", reply_source="100", text="answer"),
                msg(3, source_id="102", reply_source="999", text="to a message not exported"),
                msg(4, reply_source="101", text="answer to the answer")]
    chat = await imported(store, messages, batch=2)
    lines = await all_lines(store, chat.id)
    assert [line.reply_to for line in lines] == [None, lines[0].id, None, lines[1].id]
    assert all(line.chat_id == chat.id for line in lines)
    assert lines[0].id != (await all_lines(store, other.id))[0].id


async def test_lines_keep_every_field(store):
    when = datetime(2023, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    full = ParsedMessage(time=when, author="Zoë", text="photo ✓", kind="message",
                         author_id="42", source_id="m1",
                         attachments=[{"kind": "image", "name": "a.jpg"}],
                         reactions=[{"emoji": "👍", "count": 2}], edited=True, deleted=True)
    plain = ParsedMessage(time=when + timedelta(seconds=1), author="Bob", text="")
    chat = await imported(store, [message_row(full), message_row(plain)])
    a, b = await all_lines(store, chat.id)
    assert a.id == f"{chat.id}.1" and a.seq == 1
    assert (a.time, a.author, a.author_id, a.text, a.kind) == (when, "Zoë", "42", "photo ✓",
                                                                "message")
    assert a.source_id == "m1" and a.reply_to is None
    assert a.attachments == ({"kind": "image", "name": "a.jpg"},)
    assert a.reactions == ({"emoji": "👍", "count": 2},)
    assert a.edited and a.deleted
    assert (b.seq, b.author_id, b.source_id, b.attachments, b.reactions, b.edited,
            b.deleted) == (2, None, None, (), (), False, False)


async def test_a_batch_sent_again_replaces_its_lines(store):
    chat_id = await begin(store)
    assert await store.chats.add_lines(chat_id, 1, 1, [msg(1, text="one"), msg(2, text="two")])
    assert await store.chats.add_lines(chat_id, 1, 2, [msg(2, "Bea", text="TWO"),
                                                        msg(3, text="3")])
    [chat] = await store.chats.publish_chats("f1", 1)
    assert [line.text for line in await all_lines(store, chat_id)] == ["one", "TWO", "3"]
    assert texts((await store.chats.search("p1", "two")).items) == ["TWO"]
    # Counted once each, as they are now.
    assert chat.participants == (ChatParticipant("Ann", 2), ChatParticipant("Bea", 1))
    assert [line.text for line in await all_lines(store, chat_id, author="Ann")] == \
        ["one", "3"]
    assert await store.chats.activity(chat_id) == [("2024-05", 3)]


async def test_add_lines_rejects_bad_seq(store):
    chat_id = await begin(store)
    with pytest.raises(BadRequest):
        await store.chats.add_lines(chat_id, 1, 0, [msg(1)])


# -- reading lines -------------------------------------------------------------------------

async def test_list_lines_pages_by_seq(store):
    messages = [msg(i, author="Ann" if i % 3 else "Bob") for i in range(1, 51)]
    chat = await imported(store, messages, batch=20)
    first = await store.chats.list_lines(chat.id, limit=20)
    assert [line.seq for line in first.items] == list(range(1, 21))
    second = await store.chats.list_lines(chat.id, cursor=first.next_cursor, limit=20)
    assert [line.seq for line in second.items] == list(range(21, 41))
    third = await store.chats.list_lines(chat.id, cursor=second.next_cursor, limit=20)
    assert [line.seq for line in third.items] == list(range(41, 51))
    assert third.next_cursor is None
    assert [line.seq for line in await all_lines(store, chat.id)] == list(range(1, 51))

    bob = await all_lines(store, chat.id, author="Bob")
    assert [line.seq for line in bob] == list(range(3, 51, 3))
    window = await all_lines(store, chat.id, since=T0 + timedelta(minutes=10),
                             until=T0 + timedelta(minutes=20))
    assert [line.seq for line in window] == list(range(10, 21))  # inclusive
    both = await all_lines(store, chat.id, author="Bob", since=T0 + timedelta(minutes=10),
                           until=T0 + timedelta(minutes=20))
    assert [line.seq for line in both] == [12, 15, 18]
    assert await all_lines(store, chat.id, author="Nobody") == []
    assert await all_lines(store, chat.id, since=T0 + timedelta(days=1)) == []
    assert await all_lines(store, chat.id, until=T0 - timedelta(days=1)) == []


async def test_list_lines_around_a_message(store):
    chat = await imported(store, [msg(i, author="Ann" if i % 2 else "Bob")
                                  for i in range(1, 31)])
    page = await store.chats.list_lines(chat.id, around=f"{chat.id}.15", limit=10)
    assert [line.seq for line in page.items] == list(range(10, 20))
    rest = await store.chats.list_lines(chat.id, around=f"{chat.id}.15", limit=10,
                                        cursor=page.next_cursor)
    assert [line.seq for line in rest.items] == list(range(20, 30))
    start = await store.chats.list_lines(chat.id, around=f"{chat.id}.2", limit=10)
    assert [line.seq for line in start.items] == list(range(1, 11))
    end = await store.chats.list_lines(chat.id, around=f"{chat.id}.30", limit=10)
    assert [line.seq for line in end.items] == list(range(25, 31)) and end.next_cursor is None
    bob = await store.chats.list_lines(chat.id, around=f"{chat.id}.15", limit=4, author="Bob")
    assert [line.seq for line in bob.items] == [12, 14, 16, 18]
    for bad in (f"{chat.id}.99", f"{new_id()}.1", "garbage", f"{chat.id}.x", f"{chat.id}.²",
                f"{chat.id}.0", chat.id):
        with pytest.raises(NotFound):
            await store.chats.list_lines(chat.id, around=bad)


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "e30", "WyJzIiwgMV0", "WyJsIiwtMV0",
                                    "WyJsIiwiMSJd", "WyJsIiwxLjVd", "bnVsbA", "\u00e9t\u00e9"])
async def test_forged_line_cursor_is_a_bad_request(store, cursor):
    chat = await imported(store, [msg(1)])
    with pytest.raises(BadRequest):
        await store.chats.list_lines(chat.id, cursor=cursor)


# -- search --------------------------------------------------------------------------------

async def corpus(store, project_id="p1"):
    texts = [
        ("Ann", "Let's meet at the café tomorrow"),
        ("Bob", "Zoë said the meeting moved"),
        ("Ann", "meeting meeting meeting: all hands"),
        ("Cy", "The quick brown fox"),
        ("Bob", "quick question about the budget"),
        ("Ann", "brown paper packages"),
        ("Cy", "a OR b NEAR( stars * \" quotes"),
        ("Bob", "meetings are long"),
    ]
    return await imported(store, [msg(i, author=a, text=t) for i, (a, t) in enumerate(texts, 1)],
                          project_id=project_id)


def texts(hits):
    return [h.text for h in hits]


async def test_search_words_phrases_prefixes_and_diacritics(store):
    chat = await corpus(store)
    hits = (await store.chats.search("p1", "quick")).items
    assert sorted(texts(hits)) == ["The quick brown fox", "quick question about the budget"]
    assert texts((await store.chats.search("p1", "QUICK brown")).items) == \
        ["The quick brown fox"]  # every word must match
    assert texts((await store.chats.search("p1", '"brown fox"')).items) == \
        ["The quick brown fox"]
    assert (await store.chats.search("p1", '"fox brown"')).items == []
    assert sorted(texts((await store.chats.search("p1", "meet*")).items)) == sorted([
        "Let's meet at the café tomorrow", "Zoë said the meeting moved",
        "meeting meeting meeting: all hands", "meetings are long"])
    assert texts((await store.chats.search("p1", "zoe")).items) == ["Zoë said the meeting moved"]
    assert texts((await store.chats.search("p1", "CAFE")).items) == \
        ["Let's meet at the café tomorrow"]
    assert texts((await store.chats.search("p1", "Zoë meet*")).items) == \
        ["Zoë said the meeting moved"]
    assert (await store.chats.search("p1", "quick elephant")).items == []
    hit = (await store.chats.search("p1", "fox")).items[0]
    assert (hit.chat_id, hit.message_id, hit.author) == (chat.id, f"{chat.id}.4", "Cy")
    assert hit.time == T0 + timedelta(minutes=4) and hit.score > 0


async def test_search_snippet_marks_the_hit(store):
    await corpus(store)
    hit = (await store.chats.search("p1", "budget")).items[0]
    assert "«budget»" in hit.snippet and hit.text == "quick question about the budget"
    hit = (await store.chats.search("p1", "zoe")).items[0]
    assert "«Zoë»" in hit.snippet
    long = " ".join(f"w{i}" for i in range(200)) + " needle " + " ".join(
        f"v{i}" for i in range(200))
    await imported(store, [msg(1, text=long)], project_id="p2")
    hit = (await store.chats.search("p2", "needle")).items[0]
    assert "«needle»" in hit.snippet and len(hit.snippet) < len(long) / 4


async def test_search_ranks_more_hits_first_then_newest(store):
    await corpus(store)
    hits = (await store.chats.search("p1", "meeting")).items
    assert texts(hits)[0] == "meeting meeting meeting: all hands"
    assert hits[0].score > hits[1].score
    same = [msg(i, text="alpha beta") for i in range(1, 5)]
    chat = await imported(store, same, project_id="p3")
    hits = (await store.chats.search("p3", "alpha")).items
    assert [h.message_id for h in hits] == [f"{chat.id}.{i}" for i in (4, 3, 2, 1)]


async def test_search_filters(store):
    chat = await corpus(store)
    other = await imported(store, [msg(1, author="Bob", text="quick other chat")])
    elsewhere = await imported(store, [msg(1, text="quick other project")], project_id="p9")
    assert len((await store.chats.search("p1", "quick")).items) == 3
    assert texts((await store.chats.search("p9", "quick")).items) == ["quick other project"]
    assert elsewhere.project_id == "p9"
    only = (await store.chats.search("p1", "quick", chat_id=other.id)).items
    assert texts(only) == ["quick other chat"]
    assert (await store.chats.search("p9", "quick", chat_id=other.id)).items == []
    bob = (await store.chats.search("p1", "quick", author="Bob")).items
    assert sorted(texts(bob)) == ["quick other chat", "quick question about the budget"]
    timed = (await store.chats.search("p1", "quick", chat_id=chat.id,
                                      since=T0 + timedelta(minutes=5),
                                      until=T0 + timedelta(minutes=5))).items
    assert texts(timed) == ["quick question about the budget"]
    assert (await store.chats.search("p1", "quick", until=T0)).items == []


async def test_search_pages_without_duplicates(store):
    messages = [msg(i, author="Ann", text=("topic " * (1 + i % 4)) + f"n{i}")
                for i in range(1, 41)]
    chat = await imported(store, messages)
    hits = await all_hits(store, "p1", "topic", limit=6)
    assert len(hits) == 40 and len({h.message_id for h in hits}) == 40
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    one = (await store.chats.search("p1", "topic", limit=40)).items
    assert [h.message_id for h in one] == [h.message_id for h in hits]
    assert chat.message_count == 40


async def test_search_window_bounds_the_pages(store, monkeypatch):
    monkeypatch.setattr(sqlite_chats, "SEARCH_WINDOW", 10)
    monkeypatch.setattr(mongo_chats, "SEARCH_WINDOW", 10)
    await imported(store, [msg(i, text="common word") for i in range(1, 31)])
    hits = await all_hits(store, "p1", "common", limit=4)
    assert 10 <= len(hits) <= 30 and len({h.message_id for h in hits}) == len(hits)


async def test_a_cursor_of_another_search_is_harmless(store):
    await corpus(store)
    page = await store.chats.search("p1", "meet*", limit=1)
    assert page.next_cursor is not None
    other = await store.chats.search("p1", "quick", cursor=page.next_cursor, limit=1)
    assert all("quick" in h.text.lower() for h in other.items)


async def test_limits(store):
    chat = await corpus(store)
    for call in (store.chats.list_lines(chat.id, limit=0),
                 store.chats.search("p1", "quick", limit=0),
                 store.chats.list_chats("p1", limit=-1)):
        with pytest.raises(BadRequest):
            await call
    assert len((await store.chats.list_lines(chat.id, limit=10**9)).items) == 8
    assert len((await store.chats.search("p1", "the", limit=10**9)).items) == 4


@pytest.mark.parametrize("query", ["", "   ", "*", '"', '""', "* ** ***", "- + ( ) :", "\x00"])
async def test_search_needs_something_to_search(store, query):
    await corpus(store)
    with pytest.raises(BadRequest):
        await store.chats.search("p1", query)


@pytest.mark.parametrize("query,expected", [
    ("a OR b", ["a OR b NEAR( stars * \" quotes"]),
    ("NEAR(", ["a OR b NEAR( stars * \" quotes"]),
    ("stars *", ["a OR b NEAR( stars * \" quotes"]),
    ('"quotes', ["a OR b NEAR( stars * \" quotes"]),
    ('quotes"', ["a OR b NEAR( stars * \" quotes"]),
    ("NOT fox", []),
    ("fox AND", []),
    ("-fox", ["The quick brown fox"]),
    ("brown^ fox:", ["The quick brown fox"]),
    ("text:fox", []),
    ("{fox}", ["The quick brown fox"]),
    ("fox)", ["The quick brown fox"]),
])
async def test_operators_in_the_query_are_just_words(store, query, expected):
    await corpus(store)
    assert texts((await store.chats.search("p1", query)).items) == expected


@pytest.mark.parametrize("cursor", ["garbage", "WyJzIiwxLDIsM10x", "WyJ4IiwwLDAsMF0",
                                    "WyJzIiwtMSwwLDBd", "WyJzIiwiMCIsMCwwXQ", "e30", "\u00e9"])
async def test_forged_search_cursor_is_a_bad_request(store, cursor):
    await corpus(store)
    with pytest.raises(BadRequest):
        await store.chats.search("p1", "quick", cursor=cursor)


# -- changes, deletes, activity --------------------------------------------------------------

async def test_rename(store):
    chat = await corpus(store)
    renamed = await store.chats.rename_chat(chat.id, "Renamed")
    assert renamed is not None and renamed.name == "Renamed"
    assert await store.chats.get_chat(chat.id) == renamed
    assert await store.chats.rename_chat(new_id(), "x") is None


async def test_delete_chat_removes_lines_and_index(store, small_chunks):
    chat = await imported(store, [msg(i, text=f"gone soon {i}") for i in range(1, 30)], batch=4)
    kept = await imported(store, [msg(1, text="gone? no, kept")])
    assert len(await all_hits(store, "p1", "gone")) == 30
    assert await store.chats.delete_chat(chat.id) == chat
    assert await store.chats.delete_chat(chat.id) is None
    assert await store.chats.get_chat(chat.id) is None
    assert (await store.chats.list_lines(chat.id)).items == []
    assert texts(await all_hits(store, "p1", "gone")) == ["gone? no, kept"]
    assert await store.chats.activity(chat.id) == []
    assert [c.id for c in (await store.chats.list_chats("p1")).items] == [kept.id]


async def test_delete_file_and_project_chats(store):
    a = await imported(store, [msg(1, text="alpha one")], file_id="fa")
    hidden = await begin(store, file_id="fa", attempt=2)
    await store.chats.add_lines(hidden, 2, 1, [msg(1, text="alpha hidden")])
    b = await imported(store, [msg(1, text="alpha two")], file_id="fb")
    c = await imported(store, [msg(1, text="alpha three")], project_id="p2")
    assert sorted(await store.chats.delete_file_chats("fa")) == sorted([a.id, hidden])
    assert await store.chats.delete_file_chats("fa") == []
    assert not await store.chats.add_lines(hidden, 2, 2, [msg(2)])
    assert texts(await all_hits(store, "p1", "alpha")) == ["alpha two"]
    importing = await begin(store, file_id="fc")
    await store.chats.add_lines(importing, 1, 1, [msg(1, text="alpha importing")])
    assert sorted(await store.chats.delete_project_chats("p1")) == sorted([b.id, importing])
    assert not await store.chats.add_lines(importing, 1, 2, [msg(2)])
    assert await store.chats.publish_chats("fc", 1) == []
    assert (await store.chats.search("p1", "alpha")).items == []
    assert texts(await all_hits(store, "p2", "alpha")) == ["alpha three"]
    assert await store.chats.get_chat(c.id) == c


async def test_activity_per_month_and_day(store):
    times = [datetime(2024, 1, 31, 23, 59, tzinfo=UTC), datetime(2024, 2, 1, 0, 0, tzinfo=UTC),
             datetime(2024, 2, 1, 12, 0, tzinfo=UTC), datetime(2024, 2, 20, tzinfo=UTC),
             datetime(2024, 4, 2, tzinfo=UTC)]
    messages = [msg(i, time=t) for i, t in enumerate(times, 1)]
    messages.append(msg(9, kind="system", text="joined", time=datetime(2024, 3, 3, tzinfo=UTC)))
    chat = await imported(store, messages)
    assert await store.chats.activity(chat.id) == [("2024-01", 1), ("2024-02", 3),
                                                   ("2024-04", 1)]
    assert await store.chats.activity(chat.id, bucket="day") == [
        ("2024-01-31", 1), ("2024-02-01", 2), ("2024-02-20", 1), ("2024-04-02", 1)]
    with pytest.raises(BadRequest):
        await store.chats.activity(chat.id, bucket="week")
    assert await store.chats.activity(new_id()) == []


async def test_chunked_publish_and_purge(store, small_chunks):
    messages = [msg(i, author=f"P{i % 4}", text=f"line {i} word{i % 5}",
                    source_id=str(i), reply_source=str(i - 20) if i > 20 else None)
                for i in range(1, 60)]
    chat = await imported(store, messages, batch=9)
    assert chat.message_count == 59
    lines = await all_lines(store, chat.id)
    assert [line.seq for line in lines] == list(range(1, 60))
    assert lines[40].reply_to == lines[20].id
    assert len(await all_hits(store, "p1", "word3", limit=5)) == 12
    hidden = await begin(store, file_id="fh")
    assert await store.chats.add_lines(hidden, 1, 1, messages)
    await store.chats.discard_import("fh")
    assert await store.chats.delete_file_chats("fh") == []
    assert await store.chats.delete_chat(chat.id) == chat
    assert (await store.chats.search("p1", "line")).items == []


# -- the stand-in's $text and $merge, as MongoDB has them ------------------------------------

@pytest.fixture
async def standin_lines():
    db = StandinClient()["standin_text"]
    col = db["lines"]
    await col.create_index([("p", 1), ("text", "text")], name="p_text", default_language="none")
    await col.insert_many([
        {"_id": 1, "p": "a", "text": "meeting meeting meeting all hands"},
        {"_id": 2, "p": "a", "text": "Zoë said the meeting moved"},
        {"_id": 3, "p": "a", "text": "hello"},
        {"_id": 4, "p": "a", "text": "concatenate dogs"},
        {"_id": 5, "p": "b", "text": "hello from b"},
        {"_id": 6, "p": "a", "text": "e-mail me, ok?"}])
    return col


async def text_ids(col, search, **extra):
    cursor = await col.aggregate([
        {"$match": {"p": "a", "$text": {"$search": search}, **extra}},
        {"$addFields": {"score": {"$meta": "textScore"}}},
        {"$sort": {"score": -1, "_id": 1}}])
    return [(d["_id"], round(d["score"], 6)) for d in await cursor.to_list(None)]


async def test_standin_text_search_follows_mongodb(standin_lines):
    col = standin_lines
    # Words are ORed; scores follow FTSSpec: Σ 1/2^k × (0.5 × count / tokens + 0.5).
    assert await text_ids(col, "meeting hello") == [(1, 1.4), (3, 1.1), (2, 0.6)]
    assert await text_ids(col, "ZOE") == [(2, 0.6)]  # case and diacritics folded
    # Quoted phrases must all appear (as case/diacritics-insensitive substrings).
    assert await text_ids(col, '"meeting" "zoe"') == [(2, 1.2)]
    assert await text_ids(col, '"the meeting"') == [(2, 1.2)]
    assert await text_ids(col, '"cat" dogs') == [(4, 0.75)]  # a substring, once found
    assert await text_ids(col, '"cat"') == []  # …but the index must find a term
    assert await text_ids(col, "meeting -zoe") == [(1, 1.4)]
    assert await text_ids(col, 'meeting -"said the"') == [(1, 1.4)]
    assert await text_ids(col, "mail") == [(6, 0.625)]
    assert await text_ids(col, "meet") == []  # no stemming, no prefixes
    assert await text_ids(col, "hello", _id={"$gt": 2}) == [(3, 1.1)]


async def test_standin_text_refusals(standin_lines):
    from pymongo.errors import OperationFailure

    col = standin_lines
    with pytest.raises(OperationFailure) as err:  # the prefix field needs an equality
        await col.aggregate([{"$match": {"$text": {"$search": "hello"}}}])
    assert err.value.code == 2
    with pytest.raises(OperationFailure) as err:
        await col.aggregate([{"$match": {"p": "a"}}, {"$addFields": {
            "s": {"$meta": "textScore"}}}])
    assert err.value.code == 40218
    with pytest.raises(OperationFailure) as err:
        await col.aggregate([{"$match": {"p": "a"}},
                             {"$match": {"p": "a", "$text": {"$search": "x"}}}])
    assert err.value.code == 17313
    other = col._collection.database["no_index"]
    other.insert_one({"_id": 1, "text": "hello"})
    with pytest.raises(OperationFailure) as err:
        await StandinCollection(other).aggregate([{"$match": {"$text": {"$search": "x"}}}])
    assert err.value.code == 27
    with pytest.raises(OperationFailure) as err:
        await col.create_index([("body", "text")], default_language="none")
    assert err.value.code == 85
    # The same index again is fine (every instance creates its indexes at start).
    assert await col.create_index([("p", 1), ("text", "text")], name="p_text",
                                  default_language="none") == "p_text"


async def test_standin_merge_stage(standin_lines):
    from pymongo.errors import OperationFailure

    col = standin_lines
    cursor = await col.aggregate([
        {"$match": {"_id": {"$in": [1, 3, 99]}}}, {"$project": {"_id": 1, "tag": "x"}},
        {"$merge": {"into": "lines", "on": "_id", "whenMatched": "merge",
                    "whenNotMatched": "discard"}}])
    assert await cursor.to_list(None) == []
    tagged = await col.find({"tag": "x"}).sort("_id", 1).to_list(None)
    assert [(d["_id"], d["text"]) for d in tagged] == [(1, "meeting meeting meeting all hands"),
                                                       (3, "hello")]
    await (await col.aggregate([{"$match": {"_id": 5}}, {"$merge": "copies"}])).to_list(None)
    assert col._collection.database["copies"].count_documents({}) == 1
    with pytest.raises(OperationFailure) as err:
        await col.aggregate([{"$merge": "copies"}, {"$match": {}}])
    assert err.value.code == 40601
    with pytest.raises(OperationFailure) as err:
        await col.aggregate([{"$merge": {"into": "copies", "on": "p"}}])
    assert err.value.code == 51183
