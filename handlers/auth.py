"""auth:* — accounts, tokens, and turning an anonymous socket into a signed-in one.

The same functions back the REST endpoints (``server/http.py``) for upload-only clients.
"""
from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import NamedTuple

from pydantic import Field, field_validator, model_validator

from handlers.base import Empty, Payload, event
from handlers.views import user_view
from services.container import Services
from services.security import check_password_policy, hash_refresh
from store.base import User
from store.errors import Conflict, EventError, Forbidden, Unauthorized

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PASSWORD = Field(min_length=1, max_length=256)


def _valid_email(value: str) -> str:
    value = value.strip()
    if not EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


def _valid_username(value: str | None) -> str | None:
    if value is not None and not USERNAME.match(value):
        raise ValueError("3-32 letters, digits, '_', '.' or '-'")
    return value


class Credentials(Payload):
    email: str = Field(max_length=254)
    password: str = PASSWORD

    _email = field_validator("email")(lambda cls, v: _valid_email(v))


class LoginPayload(Payload):
    login: str | None = Field(default=None, min_length=1, max_length=254)
    email: str | None = Field(default=None, min_length=1, max_length=254)
    password: str = PASSWORD

    @model_validator(mode="after")
    def _one_login(self) -> LoginPayload:
        if (self.login is None) == (self.email is None):
            raise ValueError("send login (an email or a username) or email, not both")
        return self

    @property
    def who(self) -> str:
        return (self.login or self.email or "").strip()


class UpdatePayload(Payload):
    username: str | None = None
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    currentPassword: str | None = Field(default=None, min_length=1, max_length=256)

    _username = field_validator("username")(lambda cls, v: _valid_username(v))
    _email = field_validator("email")(lambda cls, v: v if v is None else _valid_email(v))


class RegisterPayload(Credentials):
    username: str | None = None

    _username = field_validator("username")(lambda cls, v: _valid_username(v))


class UpgradePayload(RegisterPayload):
    pass


class RefreshPayload(Payload):
    refreshToken: str = Field(min_length=10, max_length=200)


class LogoutPayload(Payload):
    refreshToken: str | None = Field(default=None, max_length=200)


# -- the logic, shared with REST ----------------------------------------------------------

class Signed(NamedTuple):
    user: User
    tokens: dict  # what the client gets: accessToken, refreshToken, expiresAt, tokenType
    session_id: str  # the refresh-token family the tokens belong to


async def issue_tokens(services: Services, user: User, session_id: str | None = None) -> Signed:
    session_id = session_id or secrets.token_hex(12)
    access, exp = services.tokens.issue_access(user.id, user.role, user.is_guest, session_id)
    refresh, refresh_hash = services.tokens.new_refresh()
    await services.store.tokens.create_refresh_token(
        token_hash=refresh_hash, user_id=user.id, family_id=session_id,
        expires_at=services.clock.now() + timedelta(seconds=services.tokens.refresh_seconds))
    return Signed(user, {"accessToken": access, "refreshToken": refresh, "expiresAt": exp,
                         "tokenType": "Bearer"}, session_id)


def session(signed: Signed) -> dict:
    return {"user": user_view(signed.user), "tokens": signed.tokens}


def _username_for(email: str | None) -> str:
    """A default username from the email's local part; the suffix makes clashes unlikely."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "", (email or "user").split("@")[0])[:24] or "user"
    if len(base) < 3:
        base = f"{base}user"
    return f"{base}-{secrets.token_hex(2)}"


async def _seen(services: Services, user: User, **also) -> User:
    return await services.store.users.update_user(user.id, last_seen_at=services.clock.now(),
                                                  **also)


async def register(services: Services, email: str, password: str, username: str | None,
                   ip: str) -> Signed:
    check_password_policy(password)
    await services.signin.signup("register", ip)
    digest = await services.hasher.hash(password)
    user = await services.store.users.create_user(
        email=email, username=username or _username_for(email),
        password_hash=digest)
    return await issue_tokens(services, await _seen(services, user))


async def login(services: Services, login: str, password: str, ip: str) -> Signed:
    """``login`` is an email or a username: the limits count per account, however named."""
    guard = services.signin
    user = await services.store.users.get_user_by_login(login)
    account = user.id if user else login.lower()
    await guard.before_attempt(account, ip)
    ok = await services.hasher.verify(password, user.password_hash if user else None)
    if not ok or user is None:
        await guard.failed(account, ip, user.id if user else None, login)
        raise Unauthorized("wrong login or password")
    if not user.is_active:
        raise Forbidden("this account is deactivated", {"reason": "deactivated"})
    await guard.succeeded(account, ip)
    now = services.clock.now()
    return await issue_tokens(services, await _seen(services, user, last_login_at=now))


async def guest(services: Services, ip: str) -> Signed:
    s = services.settings
    await services.signin.signup("guest", ip)
    user = await services.store.users.create_user(
        email=None, username=f"guest-{secrets.token_hex(4)}", password_hash=None, is_guest=True,
        remaining_imports=s.guest_imports, remaining_messages=s.guest_messages)
    return await issue_tokens(services, await _seen(services, user))


async def refresh(services: Services, token: str, ip: str,
                  caller_sid: str | None = None) -> Signed:
    record, first_use = await services.store.tokens.consume_refresh_token(hash_refresh(token))
    if record is None:
        raise Unauthorized("unknown refresh token")
    if not first_use and record.used_at is None:  # revoked before any use: not a replay
        raise Unauthorized("this sign-in was ended; sign in again", {"reason": "revoked"})
    if not first_use:
        # A replay means the token leaked (or a client raced itself): end the whole sign-in,
        # on every instance, including the access tokens it issued.
        await services.store.tokens.revoke_family(record.family_id)
        await services.sessions.revoke(record.user_id, [record.family_id], "reused",
                                       spare_sid=caller_sid)
        await services.store.audit.append("refresh_reused", target_id=record.user_id, ip=ip,
                                          details={"session": record.family_id})
        raise Unauthorized("refresh token was already used; every session of this sign-in is "
                           "revoked, sign in again", {"reason": "reused"})
    if record.expires_at <= services.clock.now():
        raise Unauthorized("refresh token expired; sign in again", {"reason": "expired"})
    user = await services.store.users.get_user(record.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account not found or deactivated")
    return await issue_tokens(services, await _seen(services, user), record.family_id)


async def logout(services: Services, user_id: str, token: str | None) -> tuple[dict, list[str]]:
    """Revoke in the store; returns the ack and the sessions ended, for the caller to
    announce (after taking its own socket out of them)."""
    if token:
        # Only the caller's own token is touched: someone else's stays valid.
        record = await services.store.tokens.revoke_refresh_token(hash_refresh(token), user_id)
        if record is None:
            raise EventError("bad_request", "that refresh token is not yours")
        await services.store.tokens.revoke_family(record.family_id)
        sessions = [record.family_id]
    else:
        sessions = await services.store.tokens.revoke_user_sessions(user_id)
    return {"revoked": len(sessions)}, sessions


# -- events -------------------------------------------------------------------------------

@event("auth:register", RegisterPayload, auth=False, ack="{user, tokens}")
async def on_register(ctx, p: RegisterPayload):
    """Create an account; this socket is signed in as it."""
    return await _sign_in(ctx, await register(ctx.services, p.email, p.password, p.username,
                                              ctx.state.ip))


@event("auth:login", LoginPayload, auth=False, ack="{user, tokens}")
async def on_login(ctx, p: LoginPayload):
    """Sign in with ``login`` (an email or a username; ``email`` is accepted too) and the
    password; limited per address and per account (see Sessions in the README)."""
    return await _sign_in(ctx, await login(ctx.services, p.who, p.password, ctx.state.ip))


@event("auth:guest", Empty, auth=False, ack="{user, tokens}")
async def on_guest(ctx, p: Empty):
    """Start a guest account with limited imports and messages."""
    return await _sign_in(ctx, await guest(ctx.services, ctx.state.ip))


@event("auth:refresh", RefreshPayload, auth=False, ack="{user, tokens}")
async def on_refresh(ctx, p: RefreshPayload):
    """Rotate the refresh token; this socket continues with the new access token."""
    return await _sign_in(ctx, await refresh(ctx.services, p.refreshToken, ctx.state.ip,
                                             ctx.sid))


@event("auth:logout", LogoutPayload, ack="{revoked}")
async def on_logout(ctx, p: LogoutPayload):
    """Revoke the given refresh token's sign-in (or every one of the user's): its sockets on
    every instance get ``auth:revoked`` and are disconnected, its access tokens refused; this
    socket stays connected, signed out."""
    user_id = ctx.user_id
    out, sessions = await logout(ctx.services, user_id, p.refreshToken)
    await ctx.gateway.sign_out(ctx.sid, ctx.state)
    await ctx.services.sessions.revoke(user_id, sessions, "logout")
    return out


@event("auth:update", UpdatePayload, ack="user", emits=("auth:revoked",))
async def on_update(ctx, p: UpdatePayload):
    """Change your username, email or password; an email or password change needs
    ``currentPassword``. A new password ends your other sessions (their sockets get
    ``auth:revoked``); this one goes on."""
    services = ctx.services
    user = await ctx.store.users.get_user(ctx.user_id)
    if user is None:
        raise Unauthorized("account no longer exists")
    changes: dict = {}
    if p.username is not None and p.username != user.username:
        changes["username"] = p.username
    if p.email is not None and p.email.lower() != (user.email or "").lower():
        changes["email"] = p.email
    if p.password is not None:
        check_password_policy(p.password)
        changes["password_hash"] = await services.hasher.hash(p.password)
    if user.is_guest and ("email" in changes or "password_hash" in changes):
        raise Conflict("a guest sets an email and a password with auth:upgrade")
    if "email" in changes or "password_hash" in changes:
        await _check_current_password(ctx, user, p.currentPassword)
    if changes:
        user = await ctx.store.users.update_user(user.id, **changes)
    if "password_hash" in changes:
        ended = await ctx.store.tokens.revoke_user_sessions(user.id, keep=ctx.state.session_id)
        await services.sessions.revoke(user.id, ended, "password_changed")
    for key, kind in (("password_hash", "password_changed"), ("email", "email_changed")):
        if key in changes:
            await ctx.store.audit.append(kind, actor_id=user.id, target_id=user.id,
                                         ip=ctx.state.ip)
    return user_view(user)


async def _check_current_password(ctx, user: User, current: str | None) -> None:
    if current is None:
        raise EventError("bad_request", "currentPassword is needed to change the email or "
                         "the password", {"field": "currentPassword"})
    guard, ip = ctx.services.signin, ctx.state.ip
    await guard.before_attempt(user.id, ip)  # the same limits as signing in
    if not await ctx.services.hasher.verify(current, user.password_hash):
        await guard.failed(user.id, ip, user.id, user.email or user.username)
        raise Forbidden("the current password is wrong", {"reason": "wrong_password"})


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
    # Guest tokens carry guest claims: every guest sign-in ends, this socket continues on
    # the new one.
    guest_sessions = await ctx.store.tokens.revoke_user_sessions(user.id)
    out = await _sign_in(ctx, await issue_tokens(ctx.services, user))
    await ctx.services.sessions.revoke(user.id, guest_sessions, "upgraded")
    return out


async def _sign_in(ctx, signed: Signed) -> dict:
    await ctx.authenticate(signed.user, signed.tokens["expiresAt"], signed.session_id)
    return session(signed)


EVENTS = [on_register, on_login, on_guest, on_refresh, on_logout, on_update, on_me,
          on_upgrade]
AUTH_EVENTS = frozenset(fn.spec.name for fn in EVENTS if not fn.spec.auth)
