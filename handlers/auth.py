"""auth:* — accounts, tokens, and turning an anonymous socket into a signed-in one.

The same functions back the REST endpoints (``server/http.py``) for upload-only clients.
"""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

from pydantic import Field, field_validator

from handlers.base import Empty, Payload, event
from handlers.views import user_view
from services.container import Services
from services.security import check_password_policy, hash_refresh
from store.base import User
from store.errors import Conflict, EventError, Forbidden, RateLimited, Unauthorized

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PASSWORD = Field(min_length=1, max_length=256)


class Credentials(Payload):
    email: str = Field(max_length=254)
    password: str = PASSWORD

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if not EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value


class RegisterPayload(Credentials):
    username: str | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and not USERNAME.match(value):
            raise ValueError("3-32 letters, digits, '_', '.' or '-'")
        return value


class UpgradePayload(RegisterPayload):
    pass


class RefreshPayload(Payload):
    refreshToken: str = Field(min_length=10, max_length=200)


class LogoutPayload(Payload):
    refreshToken: str | None = Field(default=None, max_length=200)


# -- the logic, shared with REST ----------------------------------------------------------

async def issue_tokens(services: Services, user: User, family_id: str | None = None) -> dict:
    access, exp = services.tokens.issue_access(user.id, user.role, user.is_guest)
    refresh, refresh_hash = services.tokens.new_refresh()
    await services.store.tokens.create_refresh_token(
        token_hash=refresh_hash, user_id=user.id, family_id=family_id or secrets.token_hex(12),
        expires_at=services.clock.now() + timedelta(seconds=services.tokens.refresh_seconds))
    return {"accessToken": access, "refreshToken": refresh, "expiresAt": exp,
            "tokenType": "Bearer"}


def session(user: User, tokens: dict) -> dict:
    return {"user": user_view(user), "tokens": tokens}


Signed = tuple[User, dict]  # the account and its fresh tokens


def _username_for(email: str | None) -> str:
    """A default username from the email's local part; the suffix makes clashes unlikely."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "", (email or "user").split("@")[0])[:24] or "user"
    if len(base) < 3:
        base = f"{base}user"
    return f"{base}-{secrets.token_hex(2)}"


async def register(services: Services, email: str, password: str, username: str | None) -> Signed:
    check_password_policy(password)
    digest = await services.hasher.hash(password)
    user = await services.store.users.create_user(
        email=email, username=username or _username_for(email),
        password_hash=digest)
    return user, await issue_tokens(services, user)


async def login(services: Services, email: str, password: str, ip: str) -> Signed:
    s = services.settings
    ip_count, ip_wait = await services.counter.hit(f"login:ip:{ip}", s.login_window_s)
    if ip_count > s.login_max_attempts_ip:
        raise RateLimited("too many sign-in attempts from this address",
                          {"retryAfter": round(ip_wait, 1)})
    account_key = f"login:acct:{email.lower()}"
    failures, wait = await services.counter.peek(account_key, s.login_window_s)
    if failures >= s.login_max_failures:
        raise RateLimited("too many failed sign-ins for this account",
                          {"retryAfter": round(wait, 1)})
    user = await services.store.users.get_user_by_email(email)
    ok = await services.hasher.verify(password, user.password_hash if user else None)
    if not ok or user is None:
        await services.counter.hit(account_key, s.login_window_s)
        raise Unauthorized("wrong email or password")
    if not user.is_active:
        raise Forbidden("this account is deactivated", {"reason": "deactivated"})
    await services.counter.reset(account_key)
    user = await services.store.users.update_user(user.id, last_login_at=services.clock.now())
    return user, await issue_tokens(services, user)


async def guest(services: Services) -> Signed:
    s = services.settings
    user = await services.store.users.create_user(
        email=None, username=f"guest-{secrets.token_hex(4)}", password_hash=None, is_guest=True,
        remaining_imports=s.guest_imports, remaining_messages=s.guest_messages)
    return user, await issue_tokens(services, user)


async def refresh(services: Services, token: str) -> Signed:
    record, first_use = await services.store.tokens.consume_refresh_token(hash_refresh(token))
    if record is None:
        raise Unauthorized("unknown refresh token")
    if not first_use:
        # A replay means the token leaked (or a client raced itself): end the whole family.
        await services.store.tokens.revoke_family(record.family_id)
        raise Unauthorized("refresh token was already used; every session of this sign-in is "
                           "revoked, sign in again", {"reason": "reused"})
    if record.expires_at <= services.clock.now():
        raise Unauthorized("refresh token expired; sign in again", {"reason": "expired"})
    user = await services.store.users.get_user(record.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account not found or deactivated")
    return user, await issue_tokens(services, user, record.family_id)


async def logout(services: Services, user_id: str, token: str | None) -> dict:
    if token:
        # Only the caller's own token is touched: someone else's stays valid.
        record = await services.store.tokens.revoke_refresh_token(hash_refresh(token), user_id)
        if record is None:
            raise EventError("bad_request", "that refresh token is not yours")
        revoked = await services.store.tokens.revoke_family(record.family_id) + 1
    else:
        revoked = await services.store.tokens.revoke_user_tokens(user_id)
    return {"revoked": revoked}


# -- events -------------------------------------------------------------------------------

@event("auth:register", RegisterPayload, auth=False, ack="{user, tokens}")
async def on_register(ctx, p: RegisterPayload):
    """Create an account; this socket is signed in as it."""
    return await _sign_in(ctx, await register(ctx.services, p.email, p.password, p.username))


@event("auth:login", Credentials, auth=False, ack="{user, tokens}")
async def on_login(ctx, p: Credentials):
    """Sign in with email and password (rate-limited per account and per IP)."""
    return await _sign_in(ctx, await login(ctx.services, p.email, p.password, ctx.state.ip))


@event("auth:guest", Empty, auth=False, ack="{user, tokens}")
async def on_guest(ctx, p: Empty):
    """Start a guest account with limited imports and messages."""
    return await _sign_in(ctx, await guest(ctx.services))


@event("auth:refresh", RefreshPayload, auth=False, ack="{user, tokens}")
async def on_refresh(ctx, p: RefreshPayload):
    """Rotate the refresh token; this socket continues with the new access token."""
    return await _sign_in(ctx, await refresh(ctx.services, p.refreshToken))


@event("auth:logout", LogoutPayload, ack="{revoked}")
async def on_logout(ctx, p: LogoutPayload):
    """Revoke the given refresh token's sign-in (or every one of the user's); the socket
    becomes anonymous."""
    out = await logout(ctx.services, ctx.user_id, p.refreshToken)
    await ctx.gateway.sign_out(ctx.sid, ctx.state)
    return out


@event("auth:me", Empty, ack="user")
async def on_me(ctx, p: Empty):
    """The signed-in user."""
    user = await ctx.store.users.get_user(ctx.user_id)
    if user is None:
        raise Unauthorized("account no longer exists")
    return user_view(user)


@event("auth:upgrade", UpgradePayload, ack="{user, tokens}")
async def on_upgrade(ctx, p: UpgradePayload):
    """Turn the signed-in guest into a registered user, keeping all their data."""
    user = await ctx.store.users.get_user(ctx.user_id)
    if user is None or not user.is_guest:
        raise Conflict("only a guest account can be upgraded")
    check_password_policy(p.password)
    digest = await ctx.services.hasher.hash(p.password)
    changes = {"email": p.email, "password_hash": digest, "is_guest": False,
               "remaining_imports": None, "remaining_messages": None}
    if p.username:
        changes["username"] = p.username
    user = await ctx.store.users.update_user(user.id, **changes)
    await ctx.store.tokens.revoke_user_tokens(user.id)  # guest tokens carry guest claims
    return await _sign_in(ctx, (user, await issue_tokens(ctx.services, user)))


async def _sign_in(ctx, signed: Signed) -> dict:
    user, tokens = signed
    await ctx.authenticate(user, tokens["expiresAt"])
    return session(user, tokens)


EVENTS = [on_register, on_login, on_guest, on_refresh, on_logout, on_me, on_upgrade]
AUTH_EVENTS = frozenset(fn.spec.name for fn in EVENTS if not fn.spec.auth)
