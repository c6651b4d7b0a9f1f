"""Capture ingest jobs, packet rows and capture statistics on SQLite.

Each capture gets a small integer ``cap`` (in its job row) and its own packet table
``pcap_packets_<cap>`` whose rowid is the frame number. The ingest fills it without
secondary indexes (an index updated row by row costs several times the insert itself);
``finish_job(state="done")`` builds them in one sort each, and deleting a capture drops
the table instead of deleting row by row. Every index entry is (value, frame number), so a
filtered page is one index range scan from the cursor.
Writes of an ingest carry its attempt and are checked against the job in the same
transaction, so an instance that lost its lease cannot write after the new owner started.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from store.base import PacketFilter, Page, PcapPacket, PcapRepo
from store.query import encode_cursor, last_seen
from store.sqlite.db import Database
from store.sqlite.jobs import SqliteJobs

_COLS = ("id, ts, len, caplen, src, dst, sport, dport, l4, stream, proto, info, off, reclen,"
         " sec")
_INDEXES = {"proto": "proto COLLATE NOCASE", "src": "src", "dst": "dst", "sport": "sport",
            "dport": "dport", "stream": "l4, stream"}


def _cap(conn, file_id: str) -> int | None:
    row = conn.execute("SELECT cap FROM pcap_jobs WHERE file_id=?", (file_id,)).fetchone()
    return row[0] if row else None


def _table(conn, file_id: str) -> str | None:
    """The capture's packet table, if it exists (the name holds only an integer)."""
    cap = _cap(conn, file_id)
    if cap is None:
        return None
    name = f"pcap_packets_{int(cap)}"
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                         (name,)).fetchone()
    return name if found else None


def _create_table(conn, file_id: str) -> str:
    cap = _cap(conn, file_id)
    if cap is None:  # only called after _owns() found the job's row
        raise TypeError(f"no pcap job for file {file_id!r}")
    name = f"pcap_packets_{int(cap)}"
    conn.execute(f"""CREATE TABLE IF NOT EXISTS {name} (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, len INTEGER NOT NULL,
        caplen INTEGER NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, sport INTEGER,
        dport INTEGER, l4 TEXT, stream INTEGER, proto TEXT NOT NULL, info TEXT NOT NULL,
        off INTEGER, reclen INTEGER, sec INTEGER NOT NULL DEFAULT 0)""")
    return name


def _index(conn, file_id: str) -> None:
    name = _table(conn, file_id)
    if name is not None:
        for suffix, columns in _INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_{suffix} ON {name}({columns})")


def _delete_packets(conn, file_id: str) -> None:
    name = _table(conn, file_id)
    if name is not None:
        conn.execute(f"DROP TABLE {name}")


def _packet(r) -> PcapPacket:
    return PcapPacket(number=r[0], ts=r[1], length=r[2], caplen=r[3], src=r[4], dst=r[5],
                      sport=r[6], dport=r[7], l4=r[8], stream=r[9], protocol=r[10], info=r[11],
                      offset=r[12], reclen=r[13], section=r[14])


class SqlitePcap(SqliteJobs, PcapRepo):
    def __init__(self, db: Database):
        super().__init__(db, "pcap_jobs")

    # -- what a capture's job adds --------------------------------------------------------

    def _new_columns(self, conn):
        # The capture's packet table is named after this small integer.
        return {"cap": conn.execute("SELECT COALESCE(MAX(cap), 0) + 1 FROM pcap_jobs")
                .fetchone()[0]}

    def _on_done(self, conn, file_id):
        _index(conn, file_id)

    def _on_delete(self, conn, file_id):
        _delete_packets(conn, file_id)
        conn.execute("DELETE FROM pcap_stats WHERE file_id=?", (file_id,))

    # -- packets --------------------------------------------------------------------------

    async def add_packets(self, file_id, attempt, packets: Sequence[PcapPacket]) -> bool:
        def tx(conn):
            if not self._owns(conn, file_id, attempt):
                return False
            name = _create_table(conn, file_id)
            conn.executemany(
                f"INSERT OR IGNORE INTO {name} (id, ts, len, caplen, src, dst, sport, dport,"
                " l4, stream, proto, info, off, reclen, sec)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(p.number, p.ts, p.length, p.caplen, p.src, p.dst, p.sport, p.dport, p.l4,
                  p.stream, p.protocol, p.info, p.offset, p.reclen, p.section)
                 for p in packets])
            return True

        return await self.db.write(tx)

    async def last_packet_number(self, file_id) -> int:
        def read(conn):
            name = _table(conn, file_id)
            if name is None:
                return 0
            return conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {name}").fetchone()[0]

        return await self.db.read(read)

    async def get_packet(self, file_id, number) -> PcapPacket | None:
        def read(conn):
            name = _table(conn, file_id)
            if name is None:
                return None
            row = conn.execute(f"SELECT {_COLS} FROM {name} WHERE id=?", (number,)).fetchone()
            return _packet(row) if row else None

        return await self.db.read(read)

    async def list_packets(self, file_id, *, cursor=None, limit=100,
                           flt: PacketFilter = PacketFilter()) -> Page[PcapPacket]:
        where, args = ["id>?"], [last_seen(cursor, "p", int) or 0]
        if flt.protocol:
            where.append("proto=? COLLATE NOCASE")
            args.append(flt.protocol)
        if flt.address:
            where.append("(src=? OR dst=?)")
            args += [flt.address, flt.address]
        if flt.port is not None:
            where.append("(sport=? OR dport=?)")
            args += [flt.port, flt.port]
        if flt.since is not None:
            where.append("ts>=?")
            args.append(flt.since)
        if flt.until is not None:
            where.append("ts<=?")
            args.append(flt.until)
        if flt.text:
            where.append("info LIKE ? ESCAPE '\\' COLLATE NOCASE")
            args.append("%" + flt.text.replace("\\", "\\\\").replace("%", "\\%")
                        .replace("_", "\\_") + "%")
        if flt.l4 is not None:
            where.append("l4=? AND stream=?")
            args += [flt.l4, flt.stream]

        def read(conn):
            name = _table(conn, file_id)
            if name is None:
                return Page([], None)
            rows = conn.execute(f"SELECT {_COLS} FROM {name} WHERE {' AND '.join(where)}"
                                " ORDER BY id LIMIT ?", (*args, limit + 1)).fetchall()
            items = [_packet(r) for r in rows[:limit]]
            return Page(items, encode_cursor(["p", items[-1].number]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def stream_packets(self, file_id, l4, stream, limit,
                             through=None) -> list[PcapPacket]:
        if through is None:
            page = await self.list_packets(file_id, limit=limit,
                                           flt=PacketFilter(l4=l4, stream=stream))
            return page.items

        def read(conn):
            name = _table(conn, file_id)
            if name is None:
                return []
            rows = conn.execute(f"SELECT {_COLS} FROM {name} WHERE l4=? AND stream=? AND id<=?"
                                " ORDER BY id DESC LIMIT ?", (l4, stream, through, limit))
            return [_packet(r) for r in reversed(rows.fetchall())]

        return await self.db.read(read)

    async def delete_packets(self, file_id) -> None:
        await self.db.write(_delete_packets, file_id)

    # -- statistics -----------------------------------------------------------------------

    async def put_stats(self, file_id, attempt, stats: dict) -> bool:
        encoded = [(file_id, name, json.dumps(value, separators=(",", ":")))
                   for name, value in stats.items()]

        def tx(conn):
            if not self._owns(conn, file_id, attempt):
                return False
            conn.executemany("INSERT OR REPLACE INTO pcap_stats (file_id, name, part, data)"
                             " VALUES (?,?,0,?)", encoded)
            return True

        return await self.db.write(tx)

    async def get_stats(self, file_id, name):
        def read(conn):
            row = conn.execute("SELECT data FROM pcap_stats WHERE file_id=? AND name=? AND"
                               " part=0", (file_id, name)).fetchone()
            return json.loads(row[0]) if row else None

        return await self.db.read(read)
