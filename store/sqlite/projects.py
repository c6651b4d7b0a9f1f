"""Projects and their members on SQLite."""
from __future__ import annotations

import sqlite3

from store.base import PROJECT_FIELDS, Member, Project, ProjectRepo
from store.errors import BadRequest, NotFound
from store.ids import iso, new_id, parse_iso, utcnow
from store.sqlite.db import Database


def _load(conn: sqlite3.Connection, project_id: str) -> Project | None:
    row = conn.execute("SELECT * FROM projects WHERE id=?", (project_id,)).fetchone()
    if row is None:
        return None
    members = conn.execute(
        "SELECT user_id, role, added_at FROM project_members WHERE project_id=? ORDER BY added_at,"
        " user_id", (project_id,)).fetchall()
    return _project(row, members)


def _project(row: sqlite3.Row, members) -> Project:
    return Project(
        id=row["id"], name=row["name"], description=row["description"], color=row["color"],
        owner_id=row["owner_id"], created_at=parse_iso(row["created_at"]),
        updated_at=parse_iso(row["updated_at"]),
        members=tuple(Member(m["user_id"], m["role"], parse_iso(m["added_at"])) for m in members))


def _must(project: Project | None) -> Project:
    if project is None:
        raise NotFound("project not found")
    return project


class SqliteProjects(ProjectRepo):
    def __init__(self, db: Database):
        self.db = db

    async def create_project(self, *, owner_id, name, description="", color=None) -> Project:
        now = iso(utcnow())
        pid = new_id()

        def tx(conn):
            conn.execute("INSERT INTO projects (id, name, description, color, owner_id, created_at,"
                         " updated_at) VALUES (?,?,?,?,?,?,?)",
                         (pid, name, description, color, owner_id, now, now))
            conn.execute("INSERT INTO project_members (project_id, user_id, role, added_at)"
                         " VALUES (?,?,'owner',?)", (pid, owner_id, now))
            return _load(conn, pid)

        return await self.db.write(tx)

    async def get_project(self, project_id) -> Project | None:
        return await self.db.read(_load, project_id)

    async def list_projects_for_user(self, user_id) -> list[Project]:
        def read(conn):
            rows = conn.execute(
                "SELECT p.* FROM projects p JOIN project_members m ON m.project_id=p.id"
                " WHERE m.user_id=? ORDER BY p.id", (user_id,)).fetchall()
            if not rows:
                return []
            ids = [r["id"] for r in rows]
            marks = ",".join("?" * len(ids))
            members: dict[str, list] = {i: [] for i in ids}
            for m in conn.execute(
                    f"SELECT project_id, user_id, role, added_at FROM project_members"
                    f" WHERE project_id IN ({marks}) ORDER BY added_at, user_id", ids):
                members[m["project_id"]].append(m)
            return [_project(r, members[r["id"]]) for r in rows]

        return await self.db.read(read)

    async def update_project(self, project_id, **fields) -> Project:
        unknown = set(fields) - PROJECT_FIELDS
        if unknown:
            raise BadRequest(f"unknown project fields: {sorted(unknown)}")
        values = {**fields, "updated_at": iso(utcnow())}
        assignments = ", ".join(f"{k}=?" for k in values)

        def tx(conn):
            cur = conn.execute(f"UPDATE projects SET {assignments} WHERE id=?",
                               (*values.values(), project_id))
            if cur.rowcount == 0:
                raise NotFound("project not found")
            return _load(conn, project_id)

        return await self.db.write(tx)

    async def delete_project(self, project_id) -> bool:
        return await self.db.write(
            lambda c: c.execute("DELETE FROM projects WHERE id=?", (project_id,)).rowcount > 0)

    async def get_member_role(self, project_id, user_id) -> str | None:
        def read(conn):
            row = conn.execute("SELECT role FROM project_members WHERE project_id=? AND user_id=?",
                               (project_id, user_id)).fetchone()
            return row[0] if row else None

        return await self.db.read(read)

    async def set_member(self, project_id, user_id, role) -> Project:
        now = iso(utcnow())

        def tx(conn):
            _must(_load(conn, project_id))
            conn.execute(
                "INSERT INTO project_members (project_id, user_id, role, added_at) VALUES (?,?,?,?)"
                " ON CONFLICT(project_id, user_id) DO UPDATE SET role=excluded.role",
                (project_id, user_id, role, now))
            conn.execute("UPDATE projects SET updated_at=? WHERE id=?", (now, project_id))
            return _load(conn, project_id)

        return await self.db.write(tx)

    async def remove_member(self, project_id, user_id) -> Project:
        now = iso(utcnow())

        def tx(conn):
            _must(_load(conn, project_id))
            cur = conn.execute("DELETE FROM project_members WHERE project_id=? AND user_id=?",
                               (project_id, user_id))
            if cur.rowcount == 0:
                raise NotFound("not a member of this project")
            conn.execute("UPDATE projects SET updated_at=? WHERE id=?", (now, project_id))
            return _load(conn, project_id)

        return await self.db.write(tx)

    async def set_owner(self, project_id, user_id) -> Project:
        now = iso(utcnow())

        def tx(conn):
            _must(_load(conn, project_id))
            conn.execute(
                "INSERT INTO project_members (project_id, user_id, role, added_at)"
                " VALUES (?,?,'owner',?)"
                " ON CONFLICT(project_id, user_id) DO UPDATE SET role='owner'",
                (project_id, user_id, now))
            conn.execute("UPDATE projects SET owner_id=?, updated_at=? WHERE id=?",
                         (user_id, now, project_id))
            return _load(conn, project_id)

        return await self.db.write(tx)

    async def count_memberships(self, user_ids) -> dict[str, int]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return await self.db.read(lambda c: dict(c.execute(
            f"SELECT user_id, count(*) FROM project_members WHERE user_id IN ({marks})"
            " GROUP BY user_id", ids).fetchall()))

    async def count_projects(self) -> int:
        return await self.db.read(
            lambda c: c.execute("SELECT count(*) FROM projects").fetchone()[0])
