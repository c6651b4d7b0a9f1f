"""ChatRepo contract: conversations, messages, the one-reply claim, leases and reaping."""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from store.base import ChatMessage, Conversation, HistoryTurn, RecentTurns
from store.errors import Conflict, Forbidden, NotFound
from store.ids import new_id, utcnow

LOST = {"code": "unavailable", "reason": "instance_lost", "message": "gone"}


def soon(seconds: float = 30):
    return utcnow() + timedelta(seconds=seconds)


async def test_create_get_list_rename_delete(store, make_user):
    u, v = await make_user(), await make_user()
    pid = new_id()
    private = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    assert isinstance(private, Conversation) and private.title is None
    assert private.generating_id is None and private.lease_until is None
    shared = [await store.chat.create_conversation(owner_id=u.id, project_id=pid, title=f"T{i}")
              for i in range(3)]
    other = await store.chat.create_conversation(owner_id=v.id, project_id=None, title="v's")
    assert await store.chat.get_conversation(private.id) == private
    assert await store.chat.get_conversation(new_id()) is None

    page = await store.chat.list_conversations(project_id=pid, owner_id=v.id, limit=2)
    assert [c.id for c in page.items] == [shared[2].id, shared[1].id]  # newest first
    rest = await store.chat.list_conversations(project_id=pid, owner_id=v.id,
                                               cursor=page.next_cursor, limit=2)
    assert [c.id for c in rest.items] == [shared[0].id] and rest.next_cursor is None
    mine = await store.chat.list_conversations(project_id=None, owner_id=u.id)
    assert [c.id for c in mine.items] == [private.id]
    theirs = await store.chat.list_conversations(project_id=None, owner_id=v.id)
    assert [c.id for c in theirs.items] == [other.id]

    await asyncio.sleep(0.002)
    renamed = await store.chat.set_title(private.id, "Named")
    assert renamed.title == "Named" and renamed.updated_at > private.updated_at
    assert await store.chat.set_title(private.id, "Auto", only_if_unset=True) is None
    assert (await store.chat.get_conversation(private.id)).title == "Named"
    with pytest.raises(NotFound):
        await store.chat.set_title(new_id(), "x")

    ex = await store.chat.start_exchange(private.id, author_id=u.id, content="hi",
                                         attachments=[], instance="i1", lease_until=soon())
    assert await store.chat.delete_conversation(private.id) is True
    assert await store.chat.delete_conversation(private.id) is False
    assert await store.chat.get_message(ex.user.id) is None
    assert await store.chat.count_conversations() == 4


async def test_exchange_claims_the_conversation(store, make_user):
    u = await make_user()
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    ex = await store.chat.start_exchange(conv.id, author_id=u.id, content="How many rows?",
                                         attachments=["f1", "f2"], instance="i1",
                                         lease_until=soon())
    assert isinstance(ex.user, ChatMessage) and ex.displaced is None
    assert (ex.user.role, ex.user.status, ex.user.content, ex.user.author_id) == \
        ("user", "complete", "How many rows?", u.id)
    assert ex.user.attachments == ("f1", "f2")
    assert (ex.reply.role, ex.reply.status, ex.reply.content, ex.reply.instance) == \
        ("assistant", "generating", "", "i1")
    assert ex.reply.id > ex.user.id
    # What it returns is what is stored.
    assert await store.chat.get_message(ex.user.id) == ex.user
    assert await store.chat.get_message(ex.reply.id) == ex.reply
    claimed = await store.chat.get_conversation(conv.id)
    assert claimed.generating_id == ex.reply.id and claimed.lease_until > utcnow()

    with pytest.raises(Conflict) as caught:
        await store.chat.start_exchange(conv.id, author_id=u.id, content="again",
                                        attachments=[], instance="i2", lease_until=soon())
    assert caught.value.details == {"messageId": ex.reply.id}
    with pytest.raises(NotFound):
        await store.chat.start_exchange(new_id(), author_id=u.id, content="x", attachments=[],
                                        instance="i1", lease_until=soon())

    assert await store.chat.save_progress(ex.reply.id, "Forty", 3) is True
    partial = await store.chat.get_message(ex.reply.id)
    assert (partial.content, partial.delta_index, partial.status) == ("Forty", 3, "generating")

    done = await store.chat.finish_reply(ex.reply.id, status="complete", content="Forty-two.",
                                         metadata={"stopReason": "end_turn",
                                                   "usage": {"outputTokens": 3}},
                                         delta_index=4)
    assert (done.status, done.content, done.delta_index) == ("complete", "Forty-two.", 4)
    assert done.metadata == {"stopReason": "end_turn", "usage": {"outputTokens": 3}}
    assert await store.chat.get_message(ex.reply.id) == done
    assert (await store.chat.get_conversation(conv.id)).generating_id is None
    # Finished replies cannot be finished or progressed again.
    assert await store.chat.finish_reply(ex.reply.id, status="cancelled", content="",
                                         metadata={}, delta_index=0) is None
    assert await store.chat.save_progress(ex.reply.id, "x", 9) is False
    second = await store.chat.start_exchange(conv.id, author_id=u.id, content="next",
                                             attachments=[], instance="i2", lease_until=soon())
    assert second.reply.status == "generating"
    assert await store.chat.count_messages() == 4


async def test_concurrent_exchanges_only_one_wins(store, backend, make_user):
    u = await make_user()
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    stores = [store] + [await backend.open() for _ in range(2)]
    try:
        results = await asyncio.gather(*(
            s.chat.start_exchange(conv.id, author_id=u.id, content=f"m{i}", attachments=[],
                                  instance=f"i{i}", lease_until=soon())
            for i, s in enumerate(stores * 3)), return_exceptions=True)
    finally:
        for s in stores[1:]:
            await s.close()
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert len(wins) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r not in wins)
    assert (await store.chat.get_conversation(conv.id)).generating_id == wins[0].reply.id


async def test_lapsed_claims_are_reaped_or_taken_over(store, make_user):
    u = await make_user()
    a = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    b = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    c = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    past = utcnow() - timedelta(seconds=5)
    ea = await store.chat.start_exchange(a.id, author_id=u.id, content="a", attachments=[],
                                         instance="dead", lease_until=past)
    eb = await store.chat.start_exchange(b.id, author_id=u.id, content="b", attachments=[],
                                         instance="dead", lease_until=past)
    ec = await store.chat.start_exchange(c.id, author_id=u.id, content="c", attachments=[],
                                         instance="alive", lease_until=past)
    await store.chat.save_progress(ea.reply.id, "half a", 1)
    # The live instance renews its claim in time; unknown ids are simply not held.
    assert await store.chat.renew_claims([ec.reply.id, "nope"], soon()) == {ec.reply.id}

    # A new message in b takes over b's lapsed claim and fails the old reply.
    eb2 = await store.chat.start_exchange(b.id, author_id=u.id, content="b2", attachments=[],
                                          instance="alive", lease_until=soon())
    assert eb2.displaced is not None and eb2.displaced.id == eb.reply.id
    assert eb2.displaced.status == "failed"
    assert eb2.displaced.metadata["error"]["reason"] == "instance_lost"

    failed = await store.chat.fail_expired(utcnow(), LOST)
    assert [m.id for m in failed] == [ea.reply.id]
    assert failed[0].status == "failed" and failed[0].content == "half a"
    assert failed[0].metadata == {"error": LOST}
    assert (await store.chat.get_conversation(a.id)).generating_id is None
    assert (await store.chat.get_conversation(c.id)).generating_id == ec.reply.id
    assert await store.chat.fail_expired(utcnow(), LOST) == []
    # The dead instance cannot finish what was reaped, and no longer holds the claim.
    assert await store.chat.finish_reply(ea.reply.id, status="complete", content="late",
                                         metadata={}, delta_index=5) is None
    assert await store.chat.renew_claims([ea.reply.id], soon()) == set()


async def test_messages_page_newest_last(store, make_user):
    u = await make_user()
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    ids = []
    for i in range(3):
        ex = await store.chat.start_exchange(conv.id, author_id=u.id, content=f"q{i}",
                                             attachments=[], instance="i", lease_until=soon())
        await store.chat.finish_reply(ex.reply.id, status="complete", content=f"a{i}",
                                      metadata={}, delta_index=0)
        ids += [ex.user.id, ex.reply.id]
    page = await store.chat.list_messages(conv.id, limit=4)
    assert [m.id for m in page.items] == ids[2:]
    assert [m.content for m in page.items] == ["q1", "a1", "q2", "a2"]
    older = await store.chat.list_messages(conv.id, before=page.next_cursor, limit=4)
    assert [m.id for m in older.items] == ids[:2] and older.next_cursor is None
    assert (await store.chat.list_messages(new_id())).items == []


async def test_project_chat_and_file_contexts_cascade(store, make_user):
    u = await make_user()
    pid, keep = new_id(), new_id()
    gone = await store.chat.create_conversation(owner_id=u.id, project_id=pid)
    kept = await store.chat.create_conversation(owner_id=u.id, project_id=keep)
    ex = await store.chat.start_exchange(gone.id, author_id=u.id, content="x", attachments=[],
                                         instance="i", lease_until=soon())
    profile = {"rows": 3, "columns": [{"name": "a", "nulls": 1}]}
    await store.chat.put_file_context(file_id="f1", project_id=pid, sha256="s1", kind="csv",
                                      data=profile)
    await store.chat.put_file_context(file_id="f2", project_id=keep, sha256="s2", kind="text",
                                      data={"excerpt": "hello"})
    assert await store.chat.get_file_context("f1", "s1") == profile
    assert await store.chat.get_file_context("f1", "other-sha") is None
    await store.chat.put_file_context(file_id="f1", project_id=pid, sha256="s1", kind="csv",
                                      data={"rows": 4})
    assert await store.chat.get_file_context("f1", "s1") == {"rows": 4}

    assert await store.chat.delete_project_chat(pid) == [gone.id]
    assert await store.chat.get_conversation(gone.id) is None
    assert await store.chat.get_message(ex.reply.id) is None
    assert await store.chat.get_file_context("f1", "s1") is None
    assert await store.chat.get_conversation(kept.id) == kept
    assert await store.chat.get_file_context("f2", "s2") == {"excerpt": "hello"}


async def test_an_exchange_reads_the_history_before_it_up_to_the_budget(store, make_user):
    u = await make_user()
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    ids = []
    for _ in range(25):  # 50 messages of 400 characters
        ex = await store.chat.start_exchange(conv.id, author_id=u.id, content="q" * 400,
                                             attachments=[], instance="i", lease_until=soon())
        await store.chat.finish_reply(ex.reply.id, status="complete", content="a" * 400,
                                      metadata={}, delta_index=0)
        assert ex.history == ()  # no budget asked: nothing read
        ids += [ex.user.id, ex.reply.id]

    async def exchange(**budget):
        ex = await store.chat.start_exchange(conv.id, author_id=u.id, content="next",
                                             attachments=[], instance="i", lease_until=soon(),
                                             **budget)
        await store.chat.finish_reply(ex.reply.id, status="complete", content="",
                                      metadata={}, delta_index=0)
        return ex

    # Newest first until the content passes the budget (the message crossing it included),
    # returned oldest first, without the exchange's own message.
    ex = await exchange(history_chars=2000)
    assert [t.id for t in ex.history] == ids[-6:]
    assert ex.history[-1] == (ids[-1], "assistant", "complete", "a" * 400)
    assert [t.role for t in ex.history] == ["user", "assistant"] * 3
    ids += [ex.user.id, ex.reply.id]
    # The budget is never passed: everything, up to the limit.
    ex = await exchange(history_chars=10 ** 6)
    assert [t.id for t in ex.history] == ids
    ids += [ex.user.id, ex.reply.id]
    ex = await exchange(history_chars=10 ** 6, history_limit=7)
    assert [t.id for t in ex.history] == ids[-7:]


async def test_the_history_read_is_recent_turns_over_the_messages(store, make_user):
    """``RecentTurns.of`` (what the reply engine keeps between exchanges) reads exactly
    what ``start_exchange`` reads, on every backend: any lengths, statuses and budgets."""
    rng = random.Random(7)
    u = await make_user()
    conv = await store.chat.create_conversation(owner_id=u.id, project_id=None)
    seen: list[HistoryTurn] = []
    for _ in range(40):
        chars, limit = rng.choice([0, 1, 50, 300, 2000, 10 ** 6]), rng.choice([3, 12, 200])
        content = "q" * rng.randint(1, 120)
        ex = await store.chat.start_exchange(conv.id, author_id=u.id, content=content,
                                             attachments=[], instance="i", lease_until=soon(),
                                             history_chars=chars, history_limit=limit)
        assert ex.history == (RecentTurns.of(seen, chars, limit) if chars else ())
        status = rng.choice(["complete", "complete", "cancelled", "failed"])
        answer = "a" * rng.randint(0, 150)
        done = await store.chat.finish_reply(ex.reply.id, status=status, content=answer,
                                             metadata={}, delta_index=0)
        assert done is not None
        seen += [HistoryTurn(ex.user.id, "user", "complete", content),
                 HistoryTurn(ex.reply.id, "assistant", status, answer)]


async def test_a_conversation_comes_with_the_callers_project_role(store, make_user):
    owner, viewer, stranger = await make_user(), await make_user(), await make_user()
    project = await store.projects.create_project(owner_id=owner.id, name="p")
    await store.projects.set_member(project.id, viewer.id, "viewer")
    conv = await store.chat.create_conversation(owner_id=owner.id, project_id=project.id)
    private = await store.chat.create_conversation(owner_id=owner.id, project_id=None)
    assert await store.chat.get_conversation_for(conv.id, owner.id) == (conv, "owner")
    assert await store.chat.get_conversation_for(conv.id, viewer.id) == (conv, "viewer")
    assert await store.chat.get_conversation_for(conv.id, stranger.id) == (conv, None)
    assert await store.chat.get_conversation_for(private.id, owner.id) == (private, None)
    assert await store.chat.get_conversation_for(new_id(), owner.id) == (None, None)


async def test_an_exchange_is_authorized_with_the_write(store, make_user):
    owner, viewer = await make_user(), await make_user()
    project = await store.projects.create_project(owner_id=owner.id, name="p")
    await store.projects.set_member(project.id, viewer.id, "viewer")
    conv = await store.chat.create_conversation(owner_id=owner.id, project_id=project.id)
    seen = []

    def only_owners(c, role):
        seen.append((c, role))
        if role != "owner":
            raise Forbidden("owners only")

    async def send(user, conversation_id=conv.id):
        return await store.chat.start_exchange(
            conversation_id, author_id=user.id, content="hi", attachments=[], instance="i",
            lease_until=soon(), authorize=only_owners)

    with pytest.raises(Forbidden):
        await send(viewer)
    assert seen == [(conv, "viewer")]
    # Refused: nothing stored, nothing claimed.
    assert (await store.chat.list_messages(conv.id)).items == []
    assert (await store.chat.get_conversation(conv.id)).generating_id is None
    with pytest.raises(Forbidden):
        await send(owner, new_id())
    assert seen[-1] == (None, None)

    ex = await send(owner)
    assert seen[-1] == (conv, "owner")
    # The conversation comes back as claimed: what a read returns now.
    assert ex.conversation == await store.chat.get_conversation(conv.id)
    assert ex.conversation.generating_id == ex.reply.id
