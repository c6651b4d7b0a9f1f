"""Tokens and password hashes.

Access tokens are short-lived HS256 JWTs checked on every event; refresh tokens are
opaque random strings stored only as their sha256, rotated on each use.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass

import bcrypt
import jwt

from services.clock import Clock, SystemClock
from store.errors import BadRequest, TokenExpired, Unauthorized

ALGORITHM = "HS256"
BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    role: str
    is_guest: bool
    expires_at: float
    session_id: str  # the refresh-token family this token was issued with


class TokenService:
    """Issues and checks access tokens against ``clock`` (the system clock by default): the
    time claims (exp, iat, nbf) are checked here, not by PyJWT, which reads the system
    clock."""

    def __init__(self, secret: str, access_minutes: float, refresh_days: float,
                 clock: Clock | None = None):
        self._secret = secret
        self.access_seconds = access_minutes * 60
        self.refresh_seconds = refresh_days * 86400
        self.clock = clock or SystemClock()

    def issue_access(self, user_id: str, role: str, is_guest: bool,
                     session_id: str) -> tuple[str, float]:
        now = self.clock.time()
        exp = now + self.access_seconds
        token = jwt.encode({"sub": user_id, "sid": session_id, "role": role, "guest": is_guest,
                            "iat": int(now), "exp": exp, "typ": "access"}, self._secret,
                           algorithm=ALGORITHM)
        return token, exp

    def verify_access(self, token: object) -> AccessClaims:
        if not isinstance(token, str) or not token:
            raise Unauthorized("missing access token")
        try:
            # Pinning algorithms rejects alg=none and any key-confusion trick.
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub", "sid"],
                                         "verify_exp": False,
                                         "verify_iat": False, "verify_nbf": False})
            self._check_times(claims, self.clock.time())
        except jwt.ExpiredSignatureError:
            raise TokenExpired("access token expired: call auth:refresh") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid access token ({exc.__class__.__name__})") from None
        if claims.get("typ") != "access":
            raise Unauthorized("not an access token")
        return AccessClaims(str(claims["sub"]), str(claims.get("role", "user")),
                            bool(claims.get("guest", False)), float(claims["exp"]),
                            str(claims["sid"]))

    @staticmethod
    def _check_times(claims: dict, now: float) -> None:
        """PyJWT's own checks of exp, iat and nbf (leeway 0), made against ``now``."""
        times = {}
        for name, error in (("exp", jwt.DecodeError), ("iat", jwt.InvalidIssuedAtError),
                            ("nbf", jwt.DecodeError)):
            if name in claims:
                try:
                    times[name] = int(claims[name])
                except (ValueError, TypeError, OverflowError):
                    raise error(f"the {name} claim must be an integer") from None
        if times["exp"] <= now:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if times.get("iat", now) > now or times.get("nbf", now) > now:
            raise jwt.ImmatureSignatureError("The token is not yet valid")

    @staticmethod
    def new_refresh() -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, hash_refresh(token)


def hash_refresh(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password_policy(password: str) -> None:
    # bcrypt silently ignores everything past 72 bytes; refusing is the honest answer.
    size = len(password.encode("utf-8"))
    if size > BCRYPT_MAX_BYTES:
        raise BadRequest(f"password is {size} bytes in UTF-8; the limit is {BCRYPT_MAX_BYTES}",
                         {"field": "password"})
    if len(password) < 8:
        raise BadRequest("password must be at least 8 characters", {"field": "password"})


class PasswordHasher:
    """bcrypt off the event loop (a hash costs ~250 ms of CPU at 12 rounds)."""

    def __init__(self, rounds: int = 12):
        self.rounds = rounds
        # Checked against for unknown emails: hashed at the configured cost, so an unknown
        # email costs as much as a wrong password and timing does not reveal which exist.
        self._dummy: bytes | None = None

    async def hash(self, password: str) -> str:
        pw = password.encode("utf-8")
        if len(pw) > BCRYPT_MAX_BYTES:
            raise BadRequest("password longer than 72 bytes")
        digest = await asyncio.to_thread(bcrypt.hashpw, pw, bcrypt.gensalt(self.rounds))
        return digest.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        pw = password.encode("utf-8")
        if hashed:
            target = hashed.encode()
        else:
            if self._dummy is None:
                self._dummy = await asyncio.to_thread(
                    bcrypt.hashpw, b"not-a-real-password", bcrypt.gensalt(self.rounds))
            target = self._dummy
        if len(pw) > BCRYPT_MAX_BYTES:
            return False  # could never have been set: see check_password_policy
        ok = await asyncio.to_thread(bcrypt.checkpw, pw, target)
        return ok and hashed is not None
