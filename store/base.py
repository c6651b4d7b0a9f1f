"""The store interface: per-domain repositories with plain frozen result types.

Handlers see only these types and methods; both backends (``store.sqlite``,
``store.mongo``) implement them, and ``tests/contract`` runs one suite against each.
Method names follow get_/list_/create_/update_/delete_; lists page by time-ordered id
(``cursor`` = last id seen), which maps to an index range scan on both engines.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

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
    "remaining_imports", "remaining_messages", "last_login_at",
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
                         q: str | None = None) -> Page[User]: ...

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
    async def revoke_refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    @abstractmethod
    async def revoke_family(self, family_id: str) -> int: ...

    @abstractmethod
    async def revoke_user_tokens(self, user_id: str) -> int: ...


class FileRepo(ABC):
    @abstractmethod
    async def create_file(self, *, file_id: str, project_id: str, name: str, size: int, mime: str,
                          sha256: str, uploader_id: str, storage_key: str) -> FileRecord: ...

    @abstractmethod
    async def get_file(self, file_id: str) -> FileRecord | None: ...

    @abstractmethod
    async def list_files(self, project_id: str, *, cursor: str | None = None,
                         limit: int = 50) -> Page[FileRecord]: ...

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
    async def table_history(self, table_id: str, *, cursor: int | None = None,
                            limit: int = 100) -> Page[RowChange]:
        """Newest first; ``cursor`` is the last ``seq`` seen."""

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


class Store(ABC):
    """One object per process; opened and closed by the app's cleanup context."""

    users: UserRepo
    projects: ProjectRepo
    tokens: TokenRepo
    files: FileRepo
    tables: TableRepo
    ticks: TickRepo
    backend: str  # "sqlite" | "mongo", for /ready and logs

    @abstractmethod
    async def ping(self) -> None:
        """Raises when the database cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...
