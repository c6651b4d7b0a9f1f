"""Sign-ins (sessions) and their revocation across instances.

A session is a refresh-token family: every access token carries its id (the ``sid``
claim). Revoking one — logout, a refresh token replayed, a deactivated, deleted or
re-passworded account — is written to the store (the family's tokens are revoked) and
published on the bus, so every instance disconnects the session's sockets with
``auth:revoked`` at once and refuses its access tokens until they expire:
- on each event, from the set of revoked sessions each instance keeps in memory (a dict
  lookup; entries live as long as an access token can, then go);
- on connect and on REST, also from the store (an instance started after the revocation,
  or one that missed the message during a Redis outage, still refuses the token).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from services.bus import Bus
from services.clock import Clock
from services.security import AccessClaims
from store.base import Store, User
from store.errors import Forbidden, Unauthorized

log = logging.getLogger("services.sessions")
REVOKED = "session:revoked"
#: Called on every instance with (user id, session ids, reason, spared socket id) to end
#: the local sockets of those sessions.
SocketsRevoker = Callable[[str, frozenset[str], str, str | None], Awaitable[None]]


class Sessions:
    def __init__(self, store: Store, bus: Bus, clock: Clock, access_seconds: float):
        self.store, self.bus, self.clock = store, bus, clock
        self.access_seconds = access_seconds
        self._revoked: dict[str, float] = {}  # session id -> clock.time() it can be forgotten
        self._revokers: list[SocketsRevoker] = []

    def attach(self) -> None:
        self.bus.on(REVOKED, self._on_revoked)

    def on_revoked(self, revoker: SocketsRevoker) -> None:
        self._revokers.append(revoker)

    # -- checks ---------------------------------------------------------------------------

    def is_revoked(self, session_id: str | None) -> bool:
        until = self._revoked.get(session_id or "")
        return until is not None and until > self.clock.time()

    async def check(self, claims: AccessClaims) -> User:
        """The token's account, if the token may still be used: its session live, the
        account there and active."""
        if self.is_revoked(claims.session_id):
            raise Unauthorized("this sign-in was ended; sign in again", {"reason": "revoked"})
        user = await self.store.users.get_user(claims.user_id)
        if user is None:
            raise Unauthorized("account not found", {"reason": "deleted"})
        if not user.is_active:
            raise Forbidden("this account is deactivated", {"reason": "deactivated"})
        if not await self.store.tokens.session_live(claims.session_id):
            self._remember([claims.session_id])
            raise Unauthorized("this sign-in was ended; sign in again", {"reason": "revoked"})
        return user

    # -- revocation -----------------------------------------------------------------------

    async def revoke(self, user_id: str, session_ids: Iterable[str], reason: str,
                     spare_sid: str | None = None) -> None:
        """Tell every instance (this one at once) that these sessions are over. The
        store's tokens must already be revoked. ``spare_sid``: the socket whose event
        caused this is signed out rather than disconnected, so it still gets its answer."""
        sessions = sorted(set(session_ids))
        if not sessions:
            return
        self._remember(sessions)
        await self.bus.publish(REVOKED, {"userId": user_id, "sessions": sessions,
                                         "reason": reason, "spareSid": spare_sid})

    async def revoke_user(self, user_id: str, reason: str) -> int:
        """End every session of the account; how many there were."""
        sessions = await self.store.tokens.revoke_user_sessions(user_id)
        await self.revoke(user_id, sessions, reason)
        return len(sessions)

    async def _on_revoked(self, msg: dict) -> None:
        sessions = [s for s in msg.get("sessions", ()) if isinstance(s, str)]
        self._remember(sessions)
        for revoker in self._revokers:
            await revoker(str(msg.get("userId", "")), frozenset(sessions),
                          str(msg.get("reason", "revoked")), msg.get("spareSid"))

    def _remember(self, sessions: Iterable[str]) -> None:
        now = self.clock.time()
        until = now + self.access_seconds
        for session_id in sessions:
            self._revoked[session_id] = until
        if len(self._revoked) > 1024:  # forget what no live token can carry any more
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}
