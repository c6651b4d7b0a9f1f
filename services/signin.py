"""Who may try a password, and how soon (OWASP ASVS V2.2): limits that stop guessing
without letting anyone lock an account's owner out.

- Per address: at most ``LOGIN_MAX_ATTEMPTS_IP`` attempts per window, any account.
- Per (account, address): ``LOGIN_MAX_FAILURES_IP`` failures, then that address is refused
  for that account until the window ends. A guesser is stopped; the owner elsewhere is not.
- Per account, across addresses: past ``LOGIN_MAX_FAILURES`` failures every attempt takes a
  slot in a queue whose slots are a growing delay apart (1 s, doubling, at most
  ``LOGIN_MAX_DELAY_S``), so a botnet gets a few guesses a minute while the owner still
  signs in after at most that wait. An address the account signed in from before (30 days)
  skips the queue: an attack from elsewhere does not slow the owner at all.
- Sign-ups (``auth:register``, ``auth:guest``): per address per hour.
Counters live in Redis when it is configured, so every instance enforces the same limits.
Failures and blocks go to the audit log.
"""
from __future__ import annotations

from services.clock import Clock
from services.config import Settings
from services.ratelimit import Counter
from store.base import AuditRepo
from store.errors import RateLimited

KNOWN_ADDRESS_S = 30 * 86400
SIGNUP_WINDOW_S = 3600.0


class SignInGuard:
    def __init__(self, counter: Counter, clock: Clock, settings: Settings, audit: AuditRepo):
        self.counter, self.clock, self.settings, self.audit = counter, clock, settings, audit

    async def before_attempt(self, account: str, ip: str) -> None:
        """Raises ``RateLimited``, or returns once this attempt may check the password
        (after waiting its turn when the account is under attack). ``account``: the user's
        id, or for an unknown login the login itself."""
        s = self.settings
        count, wait = await self.counter.hit(f"login:ip:{ip}", s.login_window_s)
        if count > s.login_max_attempts_ip:
            raise RateLimited("too many sign-in attempts from this address",
                              {"retryAfter": round(wait, 1)})
        failures, wait = await self.counter.peek(f"login:pair:{account}:{ip}", s.login_window_s)
        if failures >= s.login_max_failures_ip:
            raise RateLimited("too many failed sign-ins for this account from this address",
                              {"retryAfter": round(wait, 1)})
        known, _ = await self.counter.peek(f"login:known:{account}:{ip}", KNOWN_ADDRESS_S)
        if known:
            return
        failures, _ = await self.counter.peek(f"login:acct:{account}", s.login_window_s)
        if failures < s.login_max_failures:
            return
        delay = min(2.0 ** (failures - s.login_max_failures), s.login_max_delay_s)
        turn = await self.counter.reserve(f"login:acct:{account}", delay, s.login_window_s,
                                          s.login_max_delay_s)
        if turn > s.login_max_delay_s:
            raise RateLimited("this account is receiving many failed sign-ins; try again soon",
                              {"retryAfter": round(turn, 1)})
        await self.clock.sleep(turn)

    async def failed(self, account: str, ip: str, user_id: str | None, login: str) -> None:
        s = self.settings
        pair, _ = await self.counter.hit(f"login:pair:{account}:{ip}", s.login_window_s)
        failures, _ = await self.counter.hit(f"login:acct:{account}", s.login_window_s)
        await self.audit.append("login_failed", target_id=user_id, ip=ip,
                                details={"login": login[:254], "accountFailures": failures})
        if pair == s.login_max_failures_ip:
            await self.audit.append("login_blocked", target_id=user_id, ip=ip,
                                    details={"login": login[:254]})

    async def succeeded(self, account: str, ip: str) -> None:
        # The account's failure count stays: an attack elsewhere goes on being slowed.
        await self.counter.reset(f"login:pair:{account}:{ip}")
        await self.counter.hit(f"login:known:{account}:{ip}", KNOWN_ADDRESS_S)

    async def signup(self, kind: str, ip: str) -> None:
        limit = self.settings.signups_per_ip if kind == "register" else \
            self.settings.guests_per_ip
        count, wait = await self.counter.hit(f"signup:{kind}:{ip}", SIGNUP_WINDOW_S)
        if count > limit:
            what = "accounts" if kind == "register" else "guest sessions"
            raise RateLimited(f"too many new {what} from this address",
                              {"retryAfter": round(wait, 1)})
