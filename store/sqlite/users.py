"""Users and refresh tokens on SQLite."""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import overload

from store.base import QUOTA_FIELDS, USER_FIELDS, Page, RefreshToken, TokenRepo, User, UserRepo
from store.errors import BadRequest, NotFound
from store.ids import iso, new_id, parse_iso, utcnow
from store.query import encode_cursor, last_seen
from store.sqlite.db import Database


@overload
def _user(row: sqlite3.Row) -> User: ...
@overload
def _user(row: None) -> None: ...
@overload
def _user(row: sqlite3.Row | None) -> User | None: ...
def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row["id"], email=row["email"], username=row["username"],
        password_hash=row["password_hash"], role=row["role"], is_guest=bool(row["is_guest"]),
        is_active=bool(row["is_active"]), remaining_imports=row["remaining_imports"],
        remaining_messages=row["remaining_messages"], created_at=parse_iso(row["created_at"]),
        updated_at=parse_iso(row["updated_at"]), last_login_at=parse_iso(row["last_login_at"]),
        last_seen_at=parse_iso(row["last_seen_at"]),
    )


def _lc(value: str | None) -> str | None:
    return value.lower() if value is not None else None


class SqliteUsers(UserRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_user(self, *, email, username, password_hash, role="user", is_guest=False,
                          remaining_imports=None, remaining_messages=None) -> User:
        now = iso(utcnow())
        uid = new_id()

        def tx(conn):
            conn.execute(
                "INSERT INTO users (id, email, email_lc, username, username_lc, password_hash,"
                " role, is_guest, is_active, remaining_imports, remaining_messages, created_at,"
                " updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,1,?,?,?,?)",
                (uid, email, _lc(email), username, _lc(username), password_hash, role,
                 int(is_guest), remaining_imports, remaining_messages, now, now))
            return _user(conn.execute("SELECT * FROM users WHERE id=?", (uid,)).fetchone())

        return await self.db.write(tx)

    async def get_user(self, user_id: str) -> User | None:
        return await self.db.read(
            lambda c: _user(c.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone()))

    async def get_user_by_email(self, email: str) -> User | None:
        return await self.db.read(lambda c: _user(
            c.execute("SELECT * FROM users WHERE email_lc=?", (email.lower(),)).fetchone()))

    async def get_users(self, user_ids: Sequence[str]) -> list[User]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return await self.db.read(lambda c: [
            _user(r) for r in c.execute(f"SELECT * FROM users WHERE id IN ({marks})", ids)])

    async def update_user(self, user_id: str, **fields) -> User:
        unknown = set(fields) - USER_FIELDS
        if unknown:
            raise BadRequest(f"unknown user fields: {sorted(unknown)}")
        values = dict(fields)
        for key in ("is_guest", "is_active"):
            if key in values:
                values[key] = int(values[key])
        for key in ("last_login_at", "last_seen_at"):
            if key in values:
                values[key] = iso(values[key])
        if "email" in values:
            values["email_lc"] = _lc(values["email"])
        if "username" in values:
            values["username_lc"] = _lc(values["username"])
        values["updated_at"] = iso(utcnow())
        assignments = ", ".join(f"{k}=?" for k in values)

        def tx(conn):
            cur = conn.execute(f"UPDATE users SET {assignments} WHERE id=?",
                               (*values.values(), user_id))
            if cur.rowcount == 0:
                raise NotFound("user not found")
            return _user(conn.execute("SELECT * FROM users WHERE id=?", (user_id,)).fetchone())

        return await self.db.write(tx)

    async def spend_quota(self, user_id: str, quota: str) -> int | None:
        if quota not in QUOTA_FIELDS:
            raise BadRequest(f"unknown quota {quota!r}")

        def tx(conn):
            row = conn.execute(f"SELECT {quota} FROM users WHERE id=?", (user_id,)).fetchone()
            if row is None:
                raise NotFound("user not found")
            if row[0] is None:
                return -1
            cur = conn.execute(
                f"UPDATE users SET {quota}={quota}-1 WHERE id=? AND {quota}>0 RETURNING {quota}",
                (user_id,)).fetchone()
            return None if cur is None else cur[0]

        return await self.db.write(tx)

    async def list_users(self, *, cursor=None, limit=50, q=None, role=None, active=None,
                         guest=None) -> Page[User]:
        where, args = ["1=1"], []
        if cursor:
            where.append("id > ?")
            args.append(last_seen(cursor, "u"))
        if q:
            where.append("(email_lc LIKE ? ESCAPE '\\' OR username_lc LIKE ? ESCAPE '\\')")
            escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args += [escaped + "%", escaped + "%"]
        for column, value in (("role", role), ("is_active", active), ("is_guest", guest)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(int(value) if isinstance(value, bool) else value)
        sql = f"SELECT * FROM users WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"

        def read(conn):
            rows = [_user(r) for r in conn.execute(sql, (*args, limit + 1))]
            more = len(rows) > limit
            rows = rows[:limit]
            return Page(rows, encode_cursor(["u", rows[-1].id]) if more else None)

        return await self.db.read(read)

    async def get_user_by_login(self, login):
        column = "email_lc" if "@" in login else "username_lc"
        return await self.db.read(lambda c: _user(
            c.execute(f"SELECT * FROM users WHERE {column}=?", (login.lower(),)).fetchone()))

    async def count_admins(self):
        return await self.db.read(lambda c: c.execute(
            "SELECT count(*) FROM users WHERE role='admin' AND is_active=1").fetchone()[0])

    async def list_idle_guests(self, before, limit=100):
        return await self.db.read(lambda c: [r[0] for r in c.execute(
            "SELECT id FROM users WHERE is_guest=1 AND coalesce(last_seen_at, created_at) < ?"
            " ORDER BY coalesce(last_seen_at, created_at) LIMIT ?", (iso(before), limit))])

    async def delete_user(self, user_id: str) -> bool:
        return await self.db.write(
            lambda c: c.execute("DELETE FROM users WHERE id=?", (user_id,)).rowcount > 0)

    async def count_users(self) -> int:
        return await self.db.read(lambda c: c.execute("SELECT count(*) FROM users").fetchone()[0])


def _token(row: sqlite3.Row | None) -> RefreshToken | None:
    if row is None:
        return None
    return RefreshToken(
        token_hash=row["token_hash"], user_id=row["user_id"], family_id=row["family_id"],
        expires_at=parse_iso(row["expires_at"]), created_at=parse_iso(row["created_at"]),
        used_at=parse_iso(row["used_at"]), revoked=bool(row["revoked"]))


class SqliteTokens(TokenRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_refresh_token(self, *, token_hash, user_id, family_id, expires_at):
        now = iso(utcnow())

        def tx(conn):
            conn.execute(
                "INSERT INTO refresh_tokens"
                " (token_hash, user_id, family_id, expires_at, created_at)"
                " VALUES (?,?,?,?,?)", (token_hash, user_id, family_id, iso(expires_at), now))
            return _token(conn.execute("SELECT * FROM refresh_tokens WHERE token_hash=?",
                                       (token_hash,)).fetchone())

        return await self.db.write(tx)

    async def consume_refresh_token(self, token_hash):
        now = iso(utcnow())

        def tx(conn):
            cur = conn.execute(
                "UPDATE refresh_tokens SET used_at=? WHERE token_hash=? AND used_at IS NULL"
                " AND revoked=0", (now, token_hash))
            row = conn.execute("SELECT * FROM refresh_tokens WHERE token_hash=?",
                               (token_hash,)).fetchone()
            return _token(row), cur.rowcount == 1

        return await self.db.write(tx)

    async def revoke_refresh_token(self, token_hash, user_id):
        def tx(conn):
            if not conn.execute("UPDATE refresh_tokens SET revoked=1 WHERE token_hash=? AND"
                                " user_id=?", (token_hash, user_id)).rowcount:
                return None
            return _token(conn.execute("SELECT * FROM refresh_tokens WHERE token_hash=?",
                                       (token_hash,)).fetchone())

        return await self.db.write(tx)

    async def revoke_family(self, family_id):
        return await self.db.write(lambda c: c.execute(
            "UPDATE refresh_tokens SET revoked=1 WHERE family_id=? AND revoked=0",
            (family_id,)).rowcount)

    async def revoke_user_sessions(self, user_id, keep=None):
        return await self.db.write(lambda c: sorted({r[0] for r in c.execute(
            "UPDATE refresh_tokens SET revoked=1 WHERE user_id=? AND revoked=0"
            " AND family_id IS NOT ? RETURNING family_id", (user_id, keep))}))

    async def session_live(self, family_id):
        return await self.db.read(lambda c: c.execute(
            "SELECT 1 FROM refresh_tokens WHERE family_id=? AND revoked=0 LIMIT 1",
            (family_id,)).fetchone() is not None)
