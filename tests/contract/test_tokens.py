"""TokenRepo contract: every backend behaves the same."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from store.base import RefreshToken
from store.errors import Conflict
from store.ids import new_id, utcnow


def expiry():
    return utcnow() + timedelta(days=7)


async def test_create_and_consume_once(store, make_user):
    u = await make_user()
    expires = expiry()
    t = await store.tokens.create_refresh_token(token_hash="h1", user_id=u.id, family_id="fam",
                                                expires_at=expires)
    assert isinstance(t, RefreshToken)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.revoked = True
    assert (t.token_hash, t.user_id, t.family_id, t.used_at, t.revoked) == ("h1", u.id, "fam",
                                                                            None, False)
    assert t.expires_at == expires.replace(microsecond=expires.microsecond // 1000 * 1000)
    assert t.expires_at.utcoffset() == timedelta(0) and t.created_at.utcoffset() == timedelta(0)

    used, first = await store.tokens.consume_refresh_token("h1")
    assert first is True
    assert used == dataclasses.replace(t, used_at=used.used_at)
    assert used.used_at.utcoffset() == timedelta(0)
    assert abs(used.used_at - utcnow()) < timedelta(seconds=10)

    replay, first = await store.tokens.consume_refresh_token("h1")
    assert first is False and replay == used  # the first use is kept, not overwritten
    assert await store.tokens.consume_refresh_token("nope") == (None, False)


async def test_duplicate_hash_and_unknown_user_conflict(store, make_user):
    u = await make_user()
    await store.tokens.create_refresh_token(token_hash="h", user_id=u.id, family_id="f",
                                            expires_at=expiry())
    with pytest.raises(Conflict):
        await store.tokens.create_refresh_token(token_hash="h", user_id=u.id, family_id="g",
                                                expires_at=expiry())
    with pytest.raises(Conflict):
        await store.tokens.create_refresh_token(token_hash="h2", user_id=new_id(), family_id="f",
                                                expires_at=expiry())
    assert await store.tokens.consume_refresh_token("h2") == (None, False)


async def test_concurrent_consume_has_exactly_one_first_use(store, backend, make_user):
    u = await make_user()
    await store.tokens.create_refresh_token(token_hash="race", user_id=u.id, family_id="f",
                                            expires_at=expiry())
    other = await backend.open()
    try:
        results = await asyncio.gather(
            *(s.tokens.consume_refresh_token("race") for s in [store, other] * 5))
    finally:
        await other.close()
    assert [first for _, first in results].count(True) == 1
    assert len({tok.used_at for tok, _ in results}) == 1


async def test_revoke_token(store, make_user):
    u = await make_user()
    await store.tokens.create_refresh_token(token_hash="r", user_id=u.id, family_id="f",
                                            expires_at=expiry())
    other = await make_user()
    # Someone else's token is neither revoked nor reported.
    assert await store.tokens.revoke_refresh_token("r", other.id) is None
    assert (await store.tokens.consume_refresh_token("r"))[1] is True
    await store.tokens.create_refresh_token(token_hash="r2", user_id=u.id, family_id="f",
                                            expires_at=expiry())
    revoked = await store.tokens.revoke_refresh_token("r2", u.id)
    assert revoked.revoked is True and revoked.used_at is None
    tok, first = await store.tokens.consume_refresh_token("r2")
    assert first is False and tok == revoked  # a revoked token is never consumed
    assert await store.tokens.revoke_refresh_token("nope", u.id) is None


async def test_revoke_family(store, make_user):
    u = await make_user()
    for h, fam in (("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")):
        await store.tokens.create_refresh_token(token_hash=h, user_id=u.id, family_id=fam,
                                                expires_at=expiry())
    await store.tokens.revoke_refresh_token("a3", u.id)
    assert await store.tokens.revoke_family("A") == 2  # counts only newly revoked tokens
    assert await store.tokens.revoke_family("A") == 0
    assert await store.tokens.revoke_family("none") == 0
    for h in ("a1", "a2", "a3"):
        assert (await store.tokens.consume_refresh_token(h))[1] is False
    assert (await store.tokens.consume_refresh_token("b1"))[1] is True


async def test_revoke_user_sessions(store, make_user):
    u, v = await make_user(), await make_user()
    for h, owner, family in (("u1", u, "fu1"), ("u2", u, "fu2"), ("u3", u, "fu2"),
                             ("v1", v, "fv1")):
        await store.tokens.create_refresh_token(token_hash=h, user_id=owner.id, family_id=family,
                                                expires_at=expiry())
    assert await store.tokens.session_live("fu1") and await store.tokens.session_live("fu2")
    assert await store.tokens.revoke_user_sessions(u.id) == ["fu1", "fu2"]
    assert await store.tokens.revoke_user_sessions(u.id) == []
    assert not await store.tokens.session_live("fu1")
    assert not await store.tokens.session_live("fu2")
    assert await store.tokens.session_live("fv1")
    assert not await store.tokens.session_live("never")
    assert (await store.tokens.consume_refresh_token("u1"))[0].revoked is True
    assert (await store.tokens.consume_refresh_token("u2"))[1] is False
    assert (await store.tokens.consume_refresh_token("v1"))[1] is True


async def test_session_live_follows_rotation_and_family_revocation(store, make_user):
    u = await make_user()
    await store.tokens.create_refresh_token(token_hash="r1", user_id=u.id, family_id="fam",
                                            expires_at=expiry())
    await store.tokens.consume_refresh_token("r1")  # rotated: used, not revoked
    await store.tokens.create_refresh_token(token_hash="r2", user_id=u.id, family_id="fam",
                                            expires_at=expiry())
    assert await store.tokens.session_live("fam")
    await store.tokens.revoke_family("fam")
    assert not await store.tokens.session_live("fam")


async def test_revoke_user_sessions_can_keep_one(store, make_user):
    u = await make_user()
    for h, family in (("k1", "keep"), ("k2", "keep"), ("o1", "other")):
        await store.tokens.create_refresh_token(token_hash=h, user_id=u.id, family_id=family,
                                                expires_at=expiry())
    assert await store.tokens.revoke_user_sessions(u.id, keep="keep") == ["other"]
    assert await store.tokens.session_live("keep")
    assert not await store.tokens.session_live("other")
