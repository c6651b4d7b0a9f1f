"""The store interface: per-domain repositories with plain frozen result types.

Handlers see only these types and methods; both backends (``store.sqlite``,
``store.mongo``) implement them, and ``tests/contract`` runs one suite against each.
Method names follow get_/list_/create_/update_/delete_; lists page by time-ordered id
(the cursor holds the last id seen), which maps to an index range scan on both engines.
Every cursor is opaque (``store.query.encode_cursor``) and checked where it is read
(``decode_cursor``): a forged or garbled one is a BadRequest on either backend.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from ingest.chats.model import MessageRow  # noqa: F401  (the store keeps the ingest's row as is)
from ingest.pcap.rows import PcapPacket  # noqa: F401  (the store keeps the ingest's row as is)

T = TypeVar("T")

ROLES = ("user", "admin")
PROJECT_ROLES = ("viewer", "editor", "owner")  # ordered: each includes the rights of the previous


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and PROJECT_ROLES.index(role) >= PROJECT_ROLES.index(needed)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class User:
    id: str
    email: str | None
    username: str
    password_hash: str | None
    role: str
    is_guest: bool
    is_active: bool
    remaining_imports: int | None
    remaining_messages: int | None
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None
    last_seen_at: datetime | None = None  # the last sign-in, refresh or token connect


@dataclass(frozen=True)
class AuditEntry:
    id: str  # time-ordered: the list's cursor
    kind: str
    actor_id: str | None
    target_id: str | None
    ip: str | None
    details: dict
    at: datetime


@dataclass(frozen=True)
class SiteCounts:
    users: int  # guests included
    guests: int
    projects: int
    conversations: int
    messages: int
    files: int
    storage_bytes: int
    active_users: int  # seen since the time asked for
    jobs_running: int
    jobs_queued: int


@dataclass(frozen=True)
class Member:
    user_id: str
    role: str
    added_at: datetime


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str
    color: str | None
    owner_id: str
    created_at: datetime
    updated_at: datetime
    members: tuple[Member, ...] = field(default_factory=tuple)

    def role_of(self, user_id: str) -> str | None:
        for m in self.members:
            if m.user_id == user_id:
                return m.role
        return None


@dataclass(frozen=True)
class RefreshToken:
    token_hash: str
    user_id: str
    family_id: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class FileRecord:
    id: str
    project_id: str
    name: str
    size: int
    mime: str
    sha256: str
    uploader_id: str
    storage_key: str
    created_at: datetime


COLUMN_TYPES = ("text", "number", "bool", "datetime")


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    secret: bool = False


@dataclass(frozen=True)
class Table:
    id: str
    project_id: str
    name: str
    columns: tuple[Column, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def has_secrets(self) -> bool:
        return any(c.secret for c in self.columns)


@dataclass(frozen=True)
class Row:
    id: str
    table_id: str
    values: dict  # secret columns hold ciphertext here; handlers decrypt or mask
    version: int
    author_id: str
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class RowChange:
    """One entry of a table's history: the row before and after one change."""

    seq: int  # increasing per table
    table_id: str
    row_id: str
    version: int
    op: str  # add | update | delete | restore | import
    user_id: str
    at: datetime
    before: dict | None
    after: dict | None
    author_id: str


@dataclass(frozen=True)
class RowFilter:
    column: str
    op: str  # eq | ne | contains | lt | lte | gt | gte
    value: object


#: Fields ``update_user`` accepts.
USER_FIELDS = frozenset({
    "email", "username", "password_hash", "role", "is_guest", "is_active",
    "remaining_imports", "remaining_messages", "last_login_at", "last_seen_at",
})
PROJECT_FIELDS = frozenset({"name", "description", "color"})
QUOTA_FIELDS = frozenset({"remaining_imports", "remaining_messages"})


class UserRepo(ABC):
    @abstractmethod
    async def create_user(self, *, email: str | None, username: str, password_hash: str | None,
                          role: str = "user", is_guest: bool = False,
                          remaining_imports: int | None = None,
                          remaining_messages: int | None = None) -> User:
        """Raises ``conflict`` when the email or username is taken (case-insensitive)."""

    @abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...

    @abstractmethod
    async def get_user_by_email(self, email: str) -> User | None: ...

    @abstractmethod
    async def get_users(self, user_ids: Sequence[str]) -> list[User]: ...

    @abstractmethod
    async def update_user(self, user_id: str, **fields) -> User:
        """Raises ``not_found``; ``conflict`` when a new email/username is taken."""

    @abstractmethod
    async def spend_quota(self, user_id: str, quota: str) -> int | None:
        """Atomically take one from ``quota``; the new value, or None when it was at zero.

        Users without that quota (``None``: registered users) are unlimited and get -1.
        """

    @abstractmethod
    async def list_users(self, *, cursor: str | None = None, limit: int = 50,
                         q: str | None = None, role: str | None = None,
                         active: bool | None = None, guest: bool | None = None) -> Page[User]:
        """In id order; ``q`` is a case-insensitive prefix of the email or the username."""

    @abstractmethod
    async def get_user_by_login(self, login: str) -> User | None:
        """By email (case-insensitive) when ``login`` has an '@', else by username."""

    @abstractmethod
    async def count_admins(self) -> int:
        """Active users with the site role ``admin``."""

    @abstractmethod
    async def list_idle_guests(self, before: datetime, limit: int = 100) -> list[str]:
        """Ids of guests not seen (or, never seen, created) since ``before``."""

    @abstractmethod
    async def delete_user(self, user_id: str) -> bool: ...

    @abstractmethod
    async def count_users(self) -> int: ...


class ProjectRepo(ABC):
    @abstractmethod
    async def create_project(self, *, owner_id: str, name: str, description: str = "",
                             color: str | None = None) -> Project:
        """The owner becomes the first member, with role ``owner``."""

    @abstractmethod
    async def get_project(self, project_id: str) -> Project | None: ...

    @abstractmethod
    async def list_projects_for_user(self, user_id: str) -> list[Project]: ...

    @abstractmethod
    async def update_project(self, project_id: str, **fields) -> Project: ...

    @abstractmethod
    async def delete_project(self, project_id: str) -> bool: ...

    @abstractmethod
    async def get_member_role(self, project_id: str, user_id: str) -> str | None:
        """The hot path of every authorization check: one indexed lookup."""

    @abstractmethod
    async def set_member(self, project_id: str, user_id: str, role: str) -> Project:
        """Adds the member or changes their role."""

    @abstractmethod
    async def remove_member(self, project_id: str, user_id: str) -> Project: ...

    @abstractmethod
    async def count_projects(self) -> int: ...

    @abstractmethod
    async def set_owner(self, project_id: str, user_id: str) -> Project:
        """Make ``user_id`` the project's owner (a member with role ``owner``)."""

    @abstractmethod
    async def count_memberships(self, user_ids: Sequence[str]) -> dict[str, int]:
        """How many projects each user is a member of (absent: none)."""


class TokenRepo(ABC):
    @abstractmethod
    async def create_refresh_token(self, *, token_hash: str, user_id: str, family_id: str,
                                   expires_at: datetime) -> RefreshToken: ...

    @abstractmethod
    async def consume_refresh_token(self, token_hash: str) -> tuple[RefreshToken | None, bool]:
        """Mark the token used, atomically. Returns ``(token, first_use)``.

        ``first_use`` is False when it had been used or revoked before: a replay, which the
        caller answers by revoking the family.
        """

    @abstractmethod
    async def revoke_refresh_token(self, token_hash: str, user_id: str) -> RefreshToken | None:
        """Revoke the token if it is ``user_id``'s (in one write: someone else's token is
        left untouched); the token, or None when it is not theirs or does not exist."""

    @abstractmethod
    async def revoke_family(self, family_id: str) -> int: ...

    @abstractmethod
    async def revoke_user_sessions(self, user_id: str, keep: str | None = None) -> list[str]:
        """Revoke every token of the user but those of session ``keep``; the families
        (sessions) that were live."""

    @abstractmethod
    async def session_live(self, family_id: str) -> bool:
        """Whether the sign-in still has a token that is not revoked (logout, reuse and
        account-wide revocation revoke the whole family)."""


class StatsRepo(ABC):
    @abstractmethod
    async def site_counts(self, active_since: datetime) -> SiteCounts:
        """Kept by counters or indexed counts: never a scan of a big collection."""


class AuditRepo(ABC):
    """An append-only log of security events and admin actions."""

    @abstractmethod
    async def append(self, kind: str, *, actor_id: str | None = None,
                     target_id: str | None = None, ip: str | None = None,
                     details: dict | None = None) -> AuditEntry: ...

    @abstractmethod
    async def list_entries(self, *, cursor: str | None = None, limit: int = 50,
                           user_id: str | None = None,
                           kind: str | None = None) -> Page[AuditEntry]:
        """Newest first; ``user_id`` matches the actor or the target."""

    @abstractmethod
    async def purge(self, before: datetime) -> int:
        """Drop entries older than ``before``; how many went."""


class FileRepo(ABC):
    @abstractmethod
    async def create_file(self, *, file_id: str, project_id: str, name: str, size: int, mime: str,
                          sha256: str, uploader_id: str, storage_key: str) -> FileRecord: ...

    @abstractmethod
    async def get_file(self, file_id: str) -> FileRecord | None: ...

    async def list_files(self, project_id: str, *, cursor: str | None = None,
                         limit: int = 50) -> Page[FileRecord]:
        return await self.list_files_in([project_id], cursor=cursor, limit=limit)

    @abstractmethod
    async def list_files_in(self, project_ids: Sequence[str], *, cursor: str | None = None,
                            limit: int = 50) -> Page[FileRecord]:
        """The files of any of these projects, oldest first."""

    @abstractmethod
    async def delete_file(self, file_id: str) -> FileRecord | None:
        """Removes the record; returns it (for its storage key) or None if it was gone."""

    @abstractmethod
    async def delete_project_files(self, project_id: str) -> list[FileRecord]: ...


class TableRepo(ABC):
    """Tables, rows and their history. Every row write checks the expected version, so a
    stale writer is refused here even if the lock service lost its lock (fencing)."""

    @abstractmethod
    async def create_table(self, *, project_id: str, name: str, columns: Sequence[Column],
                           created_by: str) -> Table:
        """``conflict`` when the project already has a table of that name."""

    @abstractmethod
    async def get_table(self, table_id: str) -> Table | None: ...

    @abstractmethod
    async def list_tables(self, project_id: str) -> list[Table]: ...

    @abstractmethod
    async def rename_table(self, table_id: str, name: str) -> Table: ...

    @abstractmethod
    async def delete_table(self, table_id: str) -> bool:
        """Removes the table, its rows and its history."""

    @abstractmethod
    async def delete_project_tables(self, project_id: str) -> int: ...

    @abstractmethod
    async def add_rows(self, table_id: str, rows: Sequence[dict], user_id: str,
                       op: str = "add") -> list[Row]:
        """Insert rows (version 1) and their history in one transaction."""

    @abstractmethod
    async def get_row(self, table_id: str, row_id: str) -> Row | None: ...

    @abstractmethod
    async def update_row(self, table_id: str, row_id: str, *, expected_version: int,
                         values: dict, user_id: str, op: str = "update") -> Row:
        """Merge ``values`` into the row. ``not_found``; ``conflict`` if the version moved."""

    @abstractmethod
    async def delete_row(self, table_id: str, row_id: str, *, expected_version: int | None,
                         user_id: str) -> Row:
        """Returns the row as it was. ``not_found``; ``conflict`` if the version moved."""

    @abstractmethod
    async def list_rows(self, table_id: str, *, cursor: str | None = None, limit: int = 100,
                        sort: str | None = None, descending: bool = False,
                        filters: Sequence[RowFilter] = ()) -> Page[Row]:
        """Keyset paging on (sort value, id): no offset scans however deep the page."""

    @abstractmethod
    async def count_rows(self, table_id: str) -> int: ...

    @abstractmethod
    async def row_history(self, table_id: str, row_id: str) -> list[RowChange]: ...

    @abstractmethod
    async def table_history(self, table_id: str, *, cursor: str | None = None,
                            limit: int = 100) -> Page[RowChange]:
        """Newest first; ``cursor`` holds the last ``seq`` seen."""

    @abstractmethod
    async def rows_at(self, table_id: str, at: datetime) -> dict[str, RowChange]:
        """For each row that existed at ``at``: its last change up to then."""

    @abstractmethod
    async def restore_rows(self, table_id: str, target: dict[str, dict | None],
                           user_id: str) -> tuple[list[Row], list[Row]]:
        """Set each row id to the given values (re-creating deleted rows) or delete it (None),
        as new versions recorded with op ``restore``. Returns (written rows, deleted rows)."""


class TickRepo(ABC):
    @abstractmethod
    async def add_tick(self, value: float, at: datetime, producer: str) -> None: ...

    @abstractmethod
    async def recent_ticks(self, limit: int = 20) -> list[tuple[datetime, float, str]]: ...


# -- AI chat ------------------------------------------------------------------------------
MESSAGE_STATUSES = ("complete", "generating", "cancelled", "failed")
HISTORY_LIMIT = 200  # messages a reply's history reads at most, however short they are


class RecentTurns:
    """The rule of ``start_exchange``'s ``history``, one place for both backends and for
    the reply engine's copy of it: fed the newest message first, it takes messages until
    their content passes ``chars`` characters (the one passing it too), at most ``limit``."""

    __slots__ = ("chars", "limit", "total", "turns")

    def __init__(self, chars: int, limit: int = HISTORY_LIMIT):
        self.chars, self.limit = chars, limit
        self.total = 0
        self.turns: list[HistoryTurn] = []

    def add(self, turn: HistoryTurn) -> bool:
        """Take ``turn``, the next older one; False once no older one is wanted."""
        self.turns.append(turn)
        self.total += len(turn.content)
        return self.total <= self.chars and len(self.turns) < self.limit

    def oldest_first(self) -> tuple[HistoryTurn, ...]:
        return tuple(reversed(self.turns))

    @classmethod
    def of(cls, turns: Sequence[HistoryTurn], chars: int,
           limit: int = HISTORY_LIMIT) -> tuple[HistoryTurn, ...]:
        """The history over ``turns`` (oldest first) as the store would read it."""
        keep = cls(chars, limit)
        for turn in reversed(turns):
            if not keep.add(turn):
                break
        return keep.oldest_first()


@dataclass(frozen=True)
class Conversation:
    id: str
    project_id: str | None  # None: a private conversation, its owner's alone
    owner_id: str
    title: str | None  # None until set by hand or from the first exchange
    created_at: datetime
    updated_at: datetime
    generating_id: str | None = None  # the reply generating now: one per conversation
    lease_until: datetime | None = None  # the generating instance's claim lapses then


@dataclass(frozen=True)
class ChatMessage:
    id: str
    conversation_id: str
    role: str  # user | assistant
    content: str
    status: str  # one of MESSAGE_STATUSES
    author_id: str | None  # the sender of a user message; None for replies
    attachments: tuple[str, ...]
    metadata: dict  # usage, stopReason, durationMs, context, error…
    created_at: datetime
    updated_at: datetime
    delta_index: int = -1  # a generating reply: the last delta whose text is in ``content``
    instance: str | None = None  # the instance generating it


class HistoryTurn(NamedTuple):
    """What a reply's request needs of an earlier message (no metadata, no datetimes)."""

    id: str
    role: str
    status: str
    content: str


@dataclass(frozen=True)
class Exchange:
    """What ``start_exchange`` made: the user's message, the reply placeholder, the reply it
    displaced (one whose generating instance had stopped renewing its claim), and the
    conversation's newest messages before the user's, oldest first."""

    user: ChatMessage
    reply: ChatMessage
    displaced: ChatMessage | None = None
    history: tuple[HistoryTurn, ...] = ()
    conversation: Conversation | None = None  # as claimed


class ChatRepo(ABC):
    """Conversations and messages. The conversation holds the claim of its generating reply
    (``generating_id`` + ``lease_until``), so "one reply at a time" is one atomic check."""

    @abstractmethod
    async def create_conversation(self, *, owner_id: str, project_id: str | None,
                                  title: str | None = None) -> Conversation: ...

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    @abstractmethod
    async def get_conversation_for(self, conversation_id: str,
                                   user_id: str) -> tuple[Conversation | None, str | None]:
        """The conversation and ``user_id``'s role in its project (None when the user is
        not a member, or the conversation is private): authorizing an event is one read."""

    async def list_conversations(self, *, project_id: str | None, owner_id: str,
                                 cursor: str | None = None,
                                 limit: int = 50) -> Page[Conversation]:
        """Newest first. With ``project_id``: the project's; without: the owner's private ones."""
        if project_id is not None:
            return await self.list_readable_conversations([project_id], None, cursor=cursor,
                                                          limit=limit)
        return await self.list_readable_conversations([], owner_id, cursor=cursor, limit=limit)

    @abstractmethod
    async def list_readable_conversations(self, project_ids: Sequence[str],
                                          private_of: str | None, *,
                                          cursor: str | None = None,
                                          limit: int = 50) -> Page[Conversation]:
        """Newest first: the conversations of these projects and ``private_of``'s private
        ones."""

    @abstractmethod
    async def set_title(self, conversation_id: str, title: str, *,
                        only_if_unset: bool = False) -> Conversation | None:
        """``not_found``; None when ``only_if_unset`` and it already has a title."""

    @abstractmethod
    async def delete_conversation(self, conversation_id: str) -> bool:
        """Removes it and its messages."""

    @abstractmethod
    async def delete_project_chat(self, project_id: str) -> list[str]:
        """Removes the project's conversations, messages and file contexts; their ids."""

    @abstractmethod
    async def start_exchange(self, conversation_id: str, *, author_id: str, content: str,
                             attachments: Sequence[str], instance: str, lease_until: datetime,
                             history_chars: int = 0, history_limit: int = HISTORY_LIMIT,
                             authorize: Callable[[Conversation | None, str | None], object]
                             | None = None) -> Exchange:
        """Store the user's message and a ``generating`` reply, claiming the conversation.

        ``authorize(conversation, author's role in its project)`` runs first, with what
        ``get_conversation_for`` would return, and refuses by raising: the author's right is
        checked with the write, in one round trip (and, on SQLite, one transaction).
        ``conflict`` while another reply holds a live claim; a lapsed claim is taken over
        and its reply marked failed (returned as ``displaced``). ``not_found``.
        ``history`` holds the newest messages before the user's until their content passes
        ``history_chars`` characters (all of them if it never does), at most
        ``history_limit``: read with the claim, so a reply's request is ready the moment
        its exchange is stored, in one round trip.
        """

    @abstractmethod
    async def get_message(self, message_id: str) -> ChatMessage | None: ...

    @abstractmethod
    async def list_messages(self, conversation_id: str, *, before: str | None = None,
                            limit: int = 50) -> Page[ChatMessage]:
        """The newest ``limit`` messages older than ``before``, oldest first (newest last);
        ``next_cursor`` is the ``before`` of the next older page."""

    @abstractmethod
    async def save_progress(self, message_id: str, content: str, delta_index: int) -> bool:
        """Keep a generating reply's text so far; False once it is no longer generating."""

    @abstractmethod
    async def finish_reply(self, message_id: str, *, status: str, content: str,
                           metadata: dict, delta_index: int) -> ChatMessage | None:
        """Final state of a generating reply, releasing the claim; None if it had stopped
        generating already (reaped, displaced or deleted)."""

    @abstractmethod
    async def renew_claims(self, reply_ids: Sequence[str], lease_until: datetime) -> set[str]:
        """Extend the claims of these generating replies; the ids still held."""

    @abstractmethod
    async def fail_expired(self, now: datetime, error: dict) -> list[ChatMessage]:
        """Mark failed every generating reply whose claim lapsed before ``now`` (``error``
        goes into its metadata) and release the claims; the replies failed."""

    @abstractmethod
    async def get_file_context(self, file_id: str, sha256: str) -> dict | None:
        """A file's cached chat context (CSV profile, capture summary…)."""

    @abstractmethod
    async def put_file_context(self, *, file_id: str, project_id: str, sha256: str,
                               kind: str, data: dict) -> None: ...

    @abstractmethod
    async def count_conversations(self) -> int: ...

    @abstractmethod
    async def count_messages(self) -> int: ...


# -- PCAP analysis ------------------------------------------------------------------------
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    """The durable job of one file (a capture ingest, a chat import). ``attempt`` grows
    with every claim and fences writes: an instance that lost its lease can no longer
    write."""

    file_id: str
    project_id: str
    state: str  # one of JOB_STATES
    attempt: int
    owner: str | None  # instance holding the lease while running
    lease_until: float | None  # epoch seconds
    progress: dict  # {packets, bytes, percent, rate, etaSeconds}
    error: dict | None  # {code, reason, message}
    requested_by: str
    queue_key: str  # time-ordered: the queue's order
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    params: dict = field(default_factory=dict)  # what the run needs (a chat import's timezone)


@dataclass(frozen=True)
class PacketFilter:
    protocol: str | None = None  # the Protocol column, case-insensitive
    address: str | None = None  # Source or Destination
    port: int | None = None  # source or destination port
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, inclusive
    text: str | None = None  # substring of Info, case-insensitive
    l4: str | None = None  # with stream: one TCP/UDP stream
    stream: int | None = None


class JobQueue(ABC):
    """Durable, leased jobs, one per file (a capture ingest, a chat import): queued in
    order, claimed by one instance at a time, renewed while running, taken over once the
    lease lapses (its instance died). Every claim raises ``attempt``, which fences writes."""

    @abstractmethod
    async def queue_job(self, *, file_id: str, project_id: str, requested_by: str,
                        params: dict | None = None) -> Job:
        """Queue the file's job with ``params``. A job already queued or running is
        returned unchanged; a finished one is queued again (its data is replaced when it
        runs)."""

    @abstractmethod
    async def get_job(self, file_id: str) -> Job | None: ...

    @abstractmethod
    async def claim_job(self, *, instance: str, now: float, lease_s: float) -> Job | None:
        """Take the oldest queued job, or a running one whose lease lapsed before ``now``
        (its instance died): state running, owner ``instance``, attempt + 1."""

    @abstractmethod
    async def renew_job(self, file_id: str, *, attempt: int, lease_until: float,
                        progress: dict | None = None) -> bool:
        """Extend the lease (and keep progress); False when the job is no longer ours."""

    @abstractmethod
    async def finish_job(self, file_id: str, *, attempt: int, state: str,
                         error: dict | None = None, progress: dict | None = None) -> bool:
        """End a running job (done | failed); False when it is no longer ours."""

    @abstractmethod
    async def cancel_job(self, file_id: str) -> Job | None:
        """Cancel a queued or running job; the job as it was, or None if not cancellable."""

    @abstractmethod
    async def queue_position(self, file_id: str) -> int | None:
        """1 for the next queued job to start; None when not queued."""

    @abstractmethod
    async def count_jobs(self) -> dict[str, int]:
        """How many jobs are ``queued`` and ``running`` (on any instance): indexed counts."""

    @abstractmethod
    async def delete_job(self, file_id: str) -> None:
        """The job and what it derived (a capture's packets and statistics)."""

    @abstractmethod
    async def delete_project_jobs(self, project_id: str) -> list[str]:
        """Every job of the project and what they derived; their file ids."""


class PcapRepo(JobQueue):
    """Capture ingest jobs, packet rows (keyset-paged by frame number) and the capture's
    statistics (JSON documents by name)."""

    @abstractmethod
    async def add_packets(self, file_id: str, attempt: int,
                          packets: Sequence[PcapPacket]) -> bool:
        """Insert rows (a number already stored is kept, not duplicated). False, writing
        nothing, when ``attempt`` is not the job's running attempt."""

    @abstractmethod
    async def last_packet_number(self, file_id: str) -> int:
        """The highest frame number stored (0 if none): where a resumed ingest goes on."""

    @abstractmethod
    async def get_packet(self, file_id: str, number: int) -> PcapPacket | None: ...

    @abstractmethod
    async def list_packets(self, file_id: str, *, cursor: str | None = None,
                           limit: int = 100,
                           flt: PacketFilter = PacketFilter()) -> Page[PcapPacket]:
        """Frame-number order; ``next_cursor`` holds the last number returned (keyset: no
        offset scans, as fast on the last page as on the first)."""

    @abstractmethod
    async def stream_packets(self, file_id: str, l4: str, stream: int, limit: int,
                             through: int | None = None) -> list[PcapPacket]:
        """The packets of one TCP/UDP stream in frame order: the first ``limit``, or with
        ``through`` the last ``limit`` numbered ``through`` or lower."""

    @abstractmethod
    async def delete_packets(self, file_id: str) -> None: ...

    @abstractmethod
    async def put_stats(self, file_id: str, attempt: int, stats: dict[str, object]) -> bool:
        """Store each named statistics document (JSON-able), replacing earlier ones; False
        when ``attempt`` is not the job's running attempt."""

    @abstractmethod
    async def get_stats(self, file_id: str, name: str) -> object | None: ...


# -- imported chats (chat-history import) ------------------------------------------------

@dataclass(frozen=True)
class ChatParticipant:
    name: str
    messages: int  # kind "message" only


@dataclass(frozen=True)
class ImportedChat:
    id: str
    project_id: str
    file_id: str
    name: str
    platform: str
    participants: tuple[ChatParticipant, ...]  # most messages first
    message_count: int  # kind "message" only
    system_count: int
    first_time: datetime | None
    last_time: datetime | None
    imported_by: str
    created_at: datetime


@dataclass(frozen=True)
class ChatLine:
    """One message of an imported chat (``ChatMessage`` is the AI chat's)."""

    id: str
    chat_id: str
    seq: int  # 1, 2, … in the chat's order (oldest first)
    time: datetime
    author: str
    author_id: str | None
    text: str
    kind: str  # message | system
    reply_to: str | None  # id of a ChatLine of the same chat
    source_id: str | None  # the platform's own id
    attachments: tuple[dict, ...]
    reactions: tuple[dict, ...]
    edited: bool
    deleted: bool


@dataclass(frozen=True)
class ChatHit:
    chat_id: str
    message_id: str
    author: str
    time: datetime
    text: str
    snippet: str  # the hit marked with « »
    score: float  # higher is more relevant


class ImportedChatRepo(ABC):
    """Chats brought in from other platforms and their messages, with full-text search.

    An import writes its chats hidden (``begin_chat``, ``add_lines``) and makes them visible
    at once with ``publish_chats``, so readers never see a partial import; a failed or
    restarted import drops its hidden chats (``discard_import``). Writes carry the import's
    ``attempt``: a writer whose attempt is not the chat's is refused (returns False).
    """

    @abstractmethod
    async def begin_chat(self, *, project_id: str, file_id: str, attempt: int, name: str,
                         platform: str, imported_by: str) -> str:
        """A new hidden chat; its id. ``conflict`` when a newer attempt has begun chats of
        ``file_id`` (a stale writer)."""

    @abstractmethod
    async def add_lines(self, chat_id: str, attempt: int, first_seq: int,
                        rows: Sequence[MessageRow]) -> bool:
        """Store the messages ``rows`` (``ingest.chats.model.message_row``) as seq
        ``first_seq``, ``first_seq + 1``, …, replacing lines already stored at those seqs;
        False (nothing stored) when the chat is gone or belongs to another attempt."""

    @abstractmethod
    async def publish_chats(self, file_id: str, attempt: int) -> list[ImportedChat]:
        """Finish ``attempt``'s hidden chats of ``file_id``: count participants and kinds,
        resolve ``reply_source`` to ``reply_to`` within each chat, index for search, and
        make them visible. Returns them in the order they were begun (again on a repeated
        call); nothing, publishing nothing, when a newer attempt has begun chats of the file."""

    @abstractmethod
    async def discard_import(self, file_id: str) -> None:
        """Drop every hidden chat of ``file_id`` (any attempt) with its lines."""

    @abstractmethod
    async def get_chat(self, chat_id: str) -> ImportedChat | None:
        """A visible chat."""

    @abstractmethod
    async def list_chats(self, project_id: str, *, cursor: str | None = None,
                         limit: int = 50) -> Page[ImportedChat]:
        """A project's visible chats, newest first."""

    @abstractmethod
    async def list_lines(self, chat_id: str, *, cursor: str | None = None, limit: int = 100,
                         author: str | None = None, since: datetime | None = None,
                         until: datetime | None = None,
                         around: str | None = None) -> Page[ChatLine]:
        """Messages oldest first, keyset-paged by seq; filtered by author (exact) and time
        (inclusive). ``around`` (a message id) starts the page ``limit // 2`` messages before
        that message (``not_found`` when it is not one of the chat's); ``cursor`` wins over
        it. A cursor this server did not give out is a BadRequest."""

    @abstractmethod
    async def search(self, project_id: str, query: str, *, chat_id: str | None = None,
                     author: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, cursor: str | None = None,
                     limit: int = 20) -> Page[ChatHit]:
        """Full-text search over a project's visible chats: words (all must match),
        "quoted phrases", prefix* terms, case- and diacritics-insensitive; ranked by
        relevance, then newest first; paged by an opaque cursor, stable and bounded (the
        pages of one search reach a few thousand hits at most). A query with nothing
        searchable, or a cursor this server did not give out, raises BadRequest."""

    @abstractmethod
    async def rename_chat(self, chat_id: str, name: str) -> ImportedChat | None: ...

    @abstractmethod
    async def delete_chat(self, chat_id: str) -> ImportedChat | None:
        """Delete a chat and its lines; the chat as it was."""

    @abstractmethod
    async def delete_file_chats(self, file_id: str) -> list[str]:
        """Every chat (hidden or visible) imported from ``file_id``; their ids."""

    @abstractmethod
    async def delete_project_chats(self, project_id: str) -> list[str]: ...

    @abstractmethod
    async def activity(self, chat_id: str, *, bucket: str = "month") -> list[tuple[str, int]]:
        """Messages (kind "message") per ``bucket`` ("day" | "month", UTC: "2024-05" or
        "2024-05-17"), oldest first."""


class Store(ABC):
    """One object per process; opened and closed by the app's cleanup context."""

    users: UserRepo
    projects: ProjectRepo
    tokens: TokenRepo
    files: FileRepo
    tables: TableRepo
    ticks: TickRepo
    pcap: PcapRepo
    chat: ChatRepo
    chats: ImportedChatRepo
    chat_imports: JobQueue
    audit: AuditRepo
    stats: StatsRepo
    backend: str  # "sqlite" | "mongo", for /ready and logs

    @abstractmethod
    async def ping(self) -> None:
        """Raises when the database cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...
