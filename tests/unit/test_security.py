from __future__ import annotations

import time

import jwt
import pytest

from services.security import PasswordHasher, TokenService, check_password_policy
from store.errors import BadRequest, TokenExpired, Unauthorized

SECRET = "s" * 40


def test_access_token_round_trip_and_rejections():
    svc = TokenService(SECRET, 1, 1)
    token, exp = svc.issue_access("u1", "admin", False, "fam1")
    claims = svc.verify_access(token)
    assert claims.user_id == "u1" and claims.role == "admin" and claims.expires_at == exp
    assert claims.session_id == "fam1"
    sessionless = jwt.encode({"sub": "u1", "typ": "access", "exp": time.time() + 60}, SECRET,
                             algorithm="HS256")
    none = jwt.encode({"sub": "u1", "typ": "access", "exp": time.time() + 60}, None,
                      algorithm="none")
    for bad in (none, token + "x", "", None, 42, sessionless,
                jwt.encode({"sub": "u1", "exp": time.time() + 60}, SECRET, algorithm="HS256")):
        with pytest.raises(Unauthorized):
            svc.verify_access(bad)
    expired = jwt.encode({"sub": "u1", "sid": "f", "typ": "access", "exp": time.time() - 1},
                         SECRET,
                         algorithm="HS256")
    with pytest.raises(TokenExpired):
        svc.verify_access(expired)


def test_password_policy_counts_bytes_not_characters():
    check_password_policy("a" * 72)
    with pytest.raises(BadRequest, match="73 bytes"):
        check_password_policy("a" * 73)
    with pytest.raises(BadRequest, match="74 bytes"):
        check_password_policy("€" * 24 + "ab")  # 24 characters of 3 bytes each


async def test_hash_and_verify_off_loop():
    hasher = PasswordHasher(rounds=4)
    digest = await hasher.hash("correct horse")
    assert await hasher.verify("correct horse", digest)
    assert not await hasher.verify("wrong horse", digest)
    assert not await hasher.verify("anything", None)  # unknown account: same work, False
    # A 72-byte prefix match must not pass: bcrypt would truncate, we never do.
    long_pw = "x" * 72
    digest = await hasher.hash(long_pw)
    assert not await hasher.verify(long_pw + "tail", digest)
