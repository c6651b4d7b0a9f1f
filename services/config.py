"""Configuration from the environment (SPEC §4), validated once at start.

Every wrong value is reported with the variable's name, all at once, so an operator
fixes a deployment in one pass instead of one restart per typo.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _env(name: str, default=None, *, doc: str = ""):
    return field(default=default, metadata={"env": name, "doc": doc})


@dataclass(frozen=True)
class Settings:
    env: str = _env("ENV", "dev", doc="dev, test or production")
    host: str = _env("HOST", "127.0.0.1", doc="address to listen on")
    port: int = _env("PORT", 8000, doc="port to listen on")
    data_dir: Path = _env("DATA_DIR", Path("./data"), doc="embedded store, files, dev secret")
    mongo_url: str | None = _env("MONGO_URL", None,
                                 doc="use MongoDB instead of the embedded SQLite file")
    mongo_db: str = _env("MONGO_DB", "collab", doc="database name in MongoDB")
    redis_url: str | None = _env("REDIS_URL", None, doc="enables multi-instance mode")
    jwt_secret: str | None = _env("JWT_SECRET", None, doc="required when ENV=production")
    access_token_minutes: float = _env("ACCESS_TOKEN_MINUTES", 30.0, doc="access JWT lifetime")
    refresh_token_days: float = _env("REFRESH_TOKEN_DAYS", 7.0, doc="refresh token lifetime")
    cors_origins: tuple[str, ...] = _env(
        "CORS_ORIGINS", (), doc="comma-separated origins (scheme://host[:port]) that may open a "
        "Socket.IO connection besides the server's own; * for any; ENV=dev with none set "
        "accepts any")
    max_upload_mb: float = _env("MAX_UPLOAD_MB", 100.0, doc="largest upload; larger gets 413")
    anthropic_api_key: str | None = _env("ANTHROPIC_API_KEY", None,
                                         doc="enables the Anthropic provider")
    anthropic_model: str = _env("ANTHROPIC_MODEL", "claude-sonnet-4-6", doc="model for AI chat")
    anthropic_base_url: str | None = _env("ANTHROPIC_BASE_URL", None,
                                          doc="alternative API endpoint")
    lock_edit_timeout_s: float = _env("LOCK_EDIT_TIMEOUT_S", 900.0,
                                      doc="row lock expires without activity")
    lock_cooldown_s: float = _env("LOCK_COOLDOWN_S", 15.0,
                                  doc="re-lock delay after a timeout or break")
    lock_lease_s: float = _env("LOCK_LEASE_S", 30.0,
                               doc="lock lease renewed by the holder's instance")
    lock_grace_s: float = _env("LOCK_GRACE_S", 10.0, doc="locks survive a disconnect this long")
    ticker_interval_s: float = _env("TICKER_INTERVAL_S", 5.0, doc="ticker period")
    secrets_key: str | None = _env("SECRETS_KEY", None,
                                   doc="base64 AES key for secret columns; required in production")
    anthropic_max_retries: int = _env("ANTHROPIC_MAX_RETRIES", 2,
                                  doc="retries of a 429/5xx/529 or lost connection before any text")
    anthropic_retry_max_wait_s: float = _env("ANTHROPIC_RETRY_MAX_WAIT_S", 10.0,
                                           doc="longest retry-after honoured; longer fails at once")
    anthropic_timeout_s: float = _env("ANTHROPIC_TIMEOUT_S", 30.0,
                                      doc="one attempt: connect, and silence between stream chunks")
    anthropic_reply_timeout_s: float = _env("ANTHROPIC_REPLY_TIMEOUT_S", 300.0,
                                            doc="a whole reply, retries included")
    chat_max_tokens: int = _env("CHAT_MAX_TOKENS", 2048, doc="longest reply, in tokens")
    chat_history_tokens: int = _env("CHAT_HISTORY_TOKENS", 12000,
                                    doc="history sent with a message (oldest turns dropped first)")
    chat_context_tokens: int = _env("CHAT_CONTEXT_TOKENS", 6000,
                                    doc="file context (profiles, summaries, excerpts) per message")
    chat_lease_s: float = _env("CHAT_LEASE_S", 20.0,
                             doc="a generating reply whose instance stops renewing this long fails")
    chat_offline_delay_ms: float = _env("CHAT_OFFLINE_DELAY_MS", 12.0,
                                        doc="pause between the offline analyst's streamed chunks")
    ingest_concurrency: int = _env("INGEST_CONCURRENCY", 2,
                                   doc="capture ingests running at once per instance")
    ingest_lease_s: float = _env("INGEST_LEASE_S", 15.0,
                                 doc="lease of a running ingest; once lapsed another instance "
                                     "resumes it")
    ingest_tshark_procs: int = _env("INGEST_TSHARK_PROCS", 0,
                                    doc="tshark processes dissecting one large capture at once "
                                        "(flow-partitioned parts); 0: the cores, at most 4")
    dissect_sessions: int = _env(
        "DISSECT_SESSIONS", 3, doc="captures kept open in a sharkd process each for pcap:packet "
        "(least recently used closed first; ~64 MB each plus ~3x the capture's size); 0: "
        "every frame is dissected from its stream's context")
    dissect_session_max_mb: float = _env(
        "DISSECT_SESSION_MAX_MB", 64.0, doc="larger captures get no session: their frames are "
        "dissected from their stream's context")
    dissect_idle_s: float = _env("DISSECT_IDLE_S", 300.0,
                                 doc="a capture's sharkd session unused this long is closed")
    dissect_queue: int = _env("DISSECT_QUEUE", 16,
                              doc="pcap:packet requests waiting for one session; more are "
                                  "refused (unavailable, reason busy)")
    dissect_load_wait_s: float = _env(
        "DISSECT_LOAD_WAIT_S", 1.0, doc="a pcap:packet finding its capture's session still "
        "loading waits this long, then is answered from the stream's context")
    sharkd: str = _env("SHARKD", "sharkd", doc="Wireshark's sharkd (packet dissection)")
    guest_imports: int = _env("GUEST_IMPORTS", 2, doc="imports a guest may run")
    guest_messages: int = _env("GUEST_MESSAGES", 20, doc="chat messages a guest may send")
    instance_id: str = _env("INSTANCE_ID", "", doc="defaults to host:pid")
    log_level: str = _env("LOG_LEVEL", "INFO", doc="INFO logs one JSON line per event")
    max_event_kb: float = _env("MAX_EVENT_KB", 1024.0, doc="largest event payload answered")
    send_queue_max_kb: float = _env(
        "SEND_QUEUE_MAX_KB", 8192.0, doc="messages queued for one socket; a client that "
        "stops reading is disconnected past it (at least MAX_EVENT_KB)")
    broadcast_max_bytes: int = _env("BROADCAST_MAX_BYTES", 16384,
                                    doc="largest project:broadcast data")
    broadcast_rate: float = _env("BROADCAST_RATE", 100.0, doc="per socket, messages/s")
    broadcast_burst: int = _env("BROADCAST_BURST", 200)
    login_max_failures: int = _env(
        "LOGIN_MAX_FAILURES", 10, doc="failed sign-ins per account per window (from any "
        "address) after which each attempt waits a growing delay; never a refusal")
    login_max_failures_ip: int = _env(
        "LOGIN_MAX_FAILURES_IP", 5, doc="failed sign-ins per account from one address per "
        "window; past it that address is refused for the account")
    login_max_delay_s: float = _env("LOGIN_MAX_DELAY_S", 30.0,
                                    doc="longest wait between attempts on a throttled account")
    login_max_attempts_ip: int = _env("LOGIN_MAX_ATTEMPTS_IP", 60, doc="per IP per window")
    login_window_s: float = _env("LOGIN_WINDOW_S", 900.0)
    signups_per_ip: int = _env("SIGNUPS_PER_IP", 20, doc="auth:register per address per hour")
    guests_per_ip: int = _env("GUESTS_PER_IP", 30, doc="auth:guest per address per hour")
    auth_timeout_s: float = _env("AUTH_TIMEOUT_S", 30.0,
                                 doc="a socket not signed in this long is closed")
    anon_sockets_per_ip: int = _env("ANON_SOCKETS_PER_IP", 100,
                                    doc="sockets not signed in, per address, per instance")
    guest_ttl_days: float = _env("GUEST_TTL_DAYS", 30.0,
                                 doc="guests not seen this long are deleted with their data")
    audit_days: float = _env("AUDIT_DAYS", 180.0, doc="audit log entries are kept this long")
    event_rate_read: float = _env("EVENT_RATE_READ", 50.0,
                                  doc="read events per user per second (burst 5 s' worth)")
    event_rate_write: float = _env("EVENT_RATE_WRITE", 20.0,
                                   doc="write events per user per second (burst 5 s' worth)")
    event_rate_heavy: float = _env("EVENT_RATE_HEAVY", 2.0,
                                   doc="heavy events (AI messages, imports, search, "
                                       "dissection) per user per second (burst 10)")
    max_sockets_per_ip: int = _env("MAX_SOCKETS_PER_IP", 500,
                                   doc="sockets per address, per instance")
    max_sockets_per_user: int = _env("MAX_SOCKETS_PER_USER", 30,
                                     doc="signed-in sockets per user, per instance")
    handshake_concurrency: int = _env(
        "HANDSHAKE_CONCURRENCY", 16, doc="new Socket.IO connections handshaking at once (upgrade, "
        "Engine.IO open, CONNECT with its token); the next one starts when one is done")
    handshake_queue: int = _env(
        "HANDSHAKE_QUEUE", 4096, doc="new connections waiting for a handshake place; past it "
        "they are answered 503 (unavailable, reason busy) with Retry-After, and reconnect")
    drain_timeout_s: float = _env("DRAIN_TIMEOUT_S", 20.0,
                                  doc="on SIGTERM, sockets are moved off over this long")
    trusted_proxies: tuple[str, ...] = _env(
        "TRUSTED_PROXIES", (), doc="comma-separated CIDRs of reverse proxies; the client is "
        "the rightmost X-Forwarded-For hop outside them")
    presence_ttl_s: float = _env("PRESENCE_TTL_S", 30.0,
                                 doc="a silent instance's users vanish after this")
    bcrypt_rounds: int = _env("BCRYPT_ROUNDS", 12, doc="password hashing cost")
    replay_max_events: int = _env("REPLAY_MAX_EVENTS", 10000,
                                  doc="pushes kept per room for sync after a reconnect")
    replay_window_s: float = _env("REPLAY_WINDOW_S", 300.0,
                                  doc="how far back sync replays, and how long a requestId "
                                      "is remembered")
    sequence_pushes: bool = _env("SEQUENCE_PUSHES", True,
                                 doc="number room pushes (room/seq/epoch) and keep them for "
                                     "sync; off only to measure what it costs")

    @property
    def production(self) -> bool:
        return self.env == "production"

    def event_budget(self, cls: str) -> tuple[float, int]:
        """(rate per second, burst) of an event class."""
        if cls == "heavy":
            return self.event_rate_heavy, max(10, round(self.event_rate_heavy * 5))
        rate = self.event_rate_write if cls == "write" else self.event_rate_read
        return rate, max(1, round(rate * 5))

    @property
    def max_event_bytes(self) -> int:
        return int(self.max_event_kb * 1024)

    @property
    def send_queue_max_bytes(self) -> int:
        return int(self.send_queue_max_kb * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        environ = os.environ if environ is None else environ
        values, problems = {}, []
        for f in fields(cls):
            name = f.metadata["env"]
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _convert(f.type, raw)
            except ValueError as exc:
                problems.append(f"{name}={raw!r}: {exc}")
        settings = cls(**values)
        problems += settings._problems()
        if problems:
            raise ConfigError(problems)
        if not settings.instance_id:
            settings = _replace(settings, instance_id=f"{socket.gethostname()}:{os.getpid()}")
        return settings

    def _problems(self) -> list[str]:
        out = []
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                out.append(f"TRUSTED_PROXIES: {cidr!r} is not an address or CIDR")
        if self.env not in ("dev", "test", "production"):
            out.append(f"ENV={self.env!r}: must be dev, test or production")
        if self.production and not self.secrets_key:
            out.append("SECRETS_KEY is required when ENV=production (encrypts secret columns)")
        if self.secrets_key is not None and not _is_aes_key(self.secrets_key):
            out.append("SECRETS_KEY must be 32 bytes, base64-encoded "
                       "(e.g. `openssl rand -base64 32`)")
        if self.production and not self.jwt_secret:
            out.append("JWT_SECRET is required when ENV=production (no default secret outside dev)")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            out.append("JWT_SECRET must be at least 32 characters")
        if not 0 < self.port < 65536:
            out.append(f"PORT={self.port}: must be 1..65535")
        for name in ("access_token_minutes", "refresh_token_days", "max_upload_mb",
                     "lock_edit_timeout_s", "max_event_kb", "broadcast_rate", "login_window_s",
                     "presence_ttl_s", "lock_lease_s", "ticker_interval_s", "chat_lease_s",
                     "anthropic_retry_max_wait_s", "anthropic_timeout_s",
                     "anthropic_reply_timeout_s", "chat_max_tokens", "chat_history_tokens",
                     "chat_context_tokens", "ingest_concurrency", "ingest_lease_s",
                     "login_max_failures", "login_max_failures_ip", "login_max_delay_s",
                     "signups_per_ip", "guests_per_ip", "auth_timeout_s", "anon_sockets_per_ip",
                     "guest_ttl_days", "audit_days", "drain_timeout_s", "event_rate_read",
                     "event_rate_write", "event_rate_heavy", "max_sockets_per_ip",
                     "max_sockets_per_user", "dissect_idle_s", "dissect_queue",
                     "handshake_concurrency"):
            if getattr(self, name) <= 0:
                out.append(f"{_env_name(name)} must be greater than 0")
        for name in ("lock_cooldown_s", "lock_grace_s", "guest_imports", "guest_messages",
                     "anthropic_max_retries", "chat_offline_delay_ms", "ingest_tshark_procs",
                     "dissect_sessions", "dissect_session_max_mb", "dissect_load_wait_s",
                     "handshake_queue"):
            if getattr(self, name) < 0:
                out.append(f"{_env_name(name)} must not be negative")
        if self.send_queue_max_kb < self.max_event_kb:
            out.append("SEND_QUEUE_MAX_KB must be at least MAX_EVENT_KB (one relayed event "
                       "must fit in a socket's queue)")
        if not 4 <= self.bcrypt_rounds <= 16:
            out.append("BCRYPT_ROUNDS must be 4..16")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            out.append(f"REDIS_URL={self.redis_url!r}: must start with redis://, rediss:// or unix://")
        if self.mongo_url and not self.mongo_url.startswith(("mongodb://", "mongodb+srv://")):
            out.append("MONGO_URL: must start with mongodb:// or mongodb+srv://")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            out.append(f"LOG_LEVEL={self.log_level!r}: must be DEBUG, INFO, WARNING or ERROR")
        return out


def _is_aes_key(value: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _env_name(attr: str) -> str:
    return next(f.metadata["env"] for f in fields(Settings) if f.name == attr)


def _replace(settings: Settings, **changes) -> Settings:
    return Settings(**{**{f.name: getattr(settings, f.name) for f in fields(Settings)}, **changes})


def _convert(kind, raw: str):
    kind = str(kind)
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind.startswith("float"):
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    if kind.startswith("bool"):
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    if kind.startswith("Path"):
        return Path(raw)
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def env_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for the README."""
    def shown(value) -> str:
        if value is None or value == ():
            return "—"
        return "./data" if isinstance(value, Path) else str(value)

    return [(f.metadata["env"], shown(f.default), f.metadata["doc"]) for f in fields(Settings)]


def resolve_jwt_secret(settings: Settings) -> str:
    """The configured secret, or in dev/test one made once and kept in DATA_DIR.

    Kept on disk so tokens survive a restart and every process sharing DATA_DIR agrees.
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.production:  # validated already; belt and braces
        raise ConfigError(["JWT_SECRET is required when ENV=production"])
    return _dev_secret(Path(settings.data_dir) / "jwt_secret", lambda: secrets.token_urlsafe(48))


def resolve_secrets_key(settings: Settings) -> bytes:
    """The AES key for secret columns: SECRETS_KEY, or in dev/test one kept in DATA_DIR."""
    import base64

    if settings.secrets_key:
        return base64.b64decode(settings.secrets_key)
    if settings.production:
        raise ConfigError(["SECRETS_KEY is required when ENV=production"])
    encoded = _dev_secret(Path(settings.data_dir) / "secrets_key",
                          lambda: base64.b64encode(os.urandom(32)).decode())
    return base64.b64decode(encoded)


def _dev_secret(path: Path, make) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write aside, then link into place: link fails if another process won the race,
        # and nobody ever reads a half-written secret.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ConfigError([f"{path} is damaged: delete it to make a new dev secret"])
    return secret
