"""Imported chats (chat-history import) on SQLite, with FTS5 full-text search.

Layout:

- ``imported_chats``: one row per chat. ``num`` (AUTOINCREMENT, never reused) is the chat's
  small integer key; ``state`` is hidden → visible, or deleting while its lines are purged;
  ``publishing`` stops ``add_lines`` once ``publish_chats`` has started; ``indexed`` is the
  highest seq whose line is in ``chat_fts``, ``chat_author_keys``, ``chat_days`` and
  ``chat_tally`` (0: none); ``replies``: whether a line answers another (publish resolves
  replies only then).
- ``chat_lines``: one row per message, ``key = num << 32 | seq`` as the rowid, so a chat is
  one contiguous rowid range: paging by seq is a range scan, and the line id
  ``"<chat id>.<seq>"`` needs no index of its own. Times are integer milliseconds (UTC).
  No secondary index: storing a batch is a plain append (``executemany`` binding only the
  columns the batch fills).
- ``chat_fts``: FTS5 over ``chat_lines.text`` (external content, rowid = key, tokenizer
  ``unicode61 remove_diacritics 2``: case- and diacritics-insensitive; ``columnsize=0``:
  no per-line size rows, search ranks without ``bm25()``).
- ``chat_author_keys`` (chat, author, key): ``list_lines``' author filter's index (a page
  of one author's messages is one range), written a batch at a time in (author, key)
  order (an index maintained row by row on append would double its cost). ``search``
  checks the author of each match by its line instead: it stops with the window, a key
  set would not.
- ``chat_days``: per chat and UTC day, the messages (kind "message") and the first and last
  key of the day's lines: ``activity`` reads it, and a ``since``/``until`` filter starts and
  ends its scan at those keys instead of at the chat's ends.
- ``chat_tally``: per chat, author and kind, the lines and their first and last time:
  publish's participants and counts.

A batch is indexed in the transaction that stores it (``add_lines``: ``INSERT … SELECT``
into the search index, author keys, days and tally), while the parser reads on in its own
process, so publishing only counts up. A hidden chat's lines are in the index but no
reader sees them: every read joins visible chats, and their statistics do not rank (see
below). A batch sent again replaces its lines: their old index entries go first, and the
chat's days and tally are counted again. ``publish_chats`` indexes what an earlier version
stored without indexing (in transactions of at most ``CHUNK`` lines), resolves replies with
one ``UPDATE`` from a keyed temporary table, sets the counts from the tally and flips every
chat of the import visible in one last transaction. Deleting marks the chats ``deleting``
(gone for readers at once), then purges lines with their index entries chunk by chunk;
each chunk removes a line and its index entry together, so an interrupted purge simply
resumes, and a failed or cancelled import is dropped the same way.

Search reads the index once: the newest ``SEARCH_WINDOW`` matching lines (FTS5 walks the
matches by descending rowid and stops there), with their text, time and author by key.
Those lines are ranked in Python by relevance, then newest first (``store.chat_text``:
BM25's term-frequency part, normalized by line length, without weighing terms by rarity),
and the page's snippets are marked there too. FTS5's own ``bm25()`` would count every
term's matches over the whole index first (its IDF), and ``snippet()`` would evaluate the
query again per line: for a common word, phrase or prefix either cost more than the whole
search. The window (lowest and highest matching key) and the offset travel in the opaque
cursor, so the pages of one search are stable and bounded, even while other imports change
the index. The user's query never reaches FTS5 as syntax: every term is a quoted string
(see ``fts_expression``).
"""
from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

from ingest.chats.model import EPOCH, MS
from store.base import (
    ChatHit,
    ChatLine,
    ChatParticipant,
    ImportedChat,
    ImportedChatRepo,
    MessageRow,
    Page,
)
from store.chat_text import relevance, snippet, terms_of, token_spans
from store.errors import BadRequest, Conflict, NotFound
from store.ids import iso, new_id, parse_iso, utcnow
from store.query import (
    BAD_CURSOR,
    decode_cursor,
    encode_cursor,
    last_seen,
    page_limit,
    parse_query,
)
from store.sqlite.db import Database

SEQ_BITS = 32
MAX_SEQ = (1 << SEQ_BITS) - 1
#: Lines per transaction of the bulk steps (catching up with indexing, purging).
CHUNK = 50_000
#: Search ranks at most this many matches (the newest); pages go no further.
SEARCH_WINDOW = 2_000
MAX_LINES_PAGE = 1000
MAX_HITS_PAGE = 100

EPOCH_DAY = date(1970, 1, 1)
DAY_MS = 86_400_000



# -- conversions --------------------------------------------------------------------------

def to_ms(dt: datetime) -> int:
    """Milliseconds since the epoch (floor); a naive datetime is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // MS


def ceil_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return -((EPOCH - dt) // MS)


def from_ms(ms: int) -> datetime:
    return EPOCH + ms * MS


def _day(ms: int) -> int:
    return ms // DAY_MS


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _extra(r: MessageRow) -> str | None:
    """A row's attachments, reactions and flags as one JSON text (None: none of them)."""
    attachments, reactions, edited, deleted = r[7], r[8], r[9], r[10]
    if not (attachments or reactions or edited or deleted):
        return None
    extra: dict[str, Any] = {}
    if attachments:
        extra["a"] = attachments
    if reactions:
        extra["r"] = reactions
    if edited:
        extra["e"] = 1
    if deleted:
        extra["d"] = 1
    return _dumps(extra)


def line_id(chat_id: str, seq: int) -> str:
    return f"{chat_id}.{seq}"


def split_line_id(message_id: str) -> tuple[str, int] | None:
    chat_id, dot, seq = message_id.rpartition(".")
    if not dot or not chat_id or not (seq.isascii() and seq.isdigit()) or len(seq) > 10:
        return None
    n = int(seq)
    return (chat_id, n) if 1 <= n <= MAX_SEQ else None


def fts_expression(query: str) -> str:
    """An FTS5 MATCH expression: every term a quoted string (so FTS5 syntax typed by the
    user is just text), ANDed; a prefix term is the string followed by ``*``."""
    return " ".join('"' + text.replace('"', '""') + '"' + ("*" if prefix else "")
                    for text, prefix in parse_query(query))


# -- rows ---------------------------------------------------------------------------------

_CHAT_COLS = ("num, id, project_id, file_id, attempt, state, indexed, replies, name, platform,"
              " participants, message_count, system_count, first_time, last_time,"
              " imported_by, created_at")
_LINE_COLS = "key, time, author, author_id, text, kind, reply_to, source_id, extra"
_LINE_COLS_L = ", ".join(f"l.{c}" for c in _LINE_COLS.split(", "))


def _chat(r: sqlite3.Row) -> ImportedChat:
    return ImportedChat(
        id=r["id"], project_id=r["project_id"], file_id=r["file_id"], name=r["name"],
        platform=r["platform"],
        participants=tuple(ChatParticipant(name, n) for name, n in json.loads(r["participants"])),
        message_count=r["message_count"], system_count=r["system_count"],
        first_time=None if r["first_time"] is None else from_ms(r["first_time"]),
        last_time=None if r["last_time"] is None else from_ms(r["last_time"]),
        imported_by=r["imported_by"], created_at=parse_iso(r["created_at"]))


def _line(chat_id: str, r: sqlite3.Row) -> ChatLine:
    extra = json.loads(r["extra"]) if r["extra"] else {}
    reply = r["reply_to"]
    return ChatLine(
        id=line_id(chat_id, r["key"] & MAX_SEQ), chat_id=chat_id, seq=r["key"] & MAX_SEQ,
        time=from_ms(r["time"]), author=r["author"], author_id=r["author_id"], text=r["text"],
        kind=r["kind"], reply_to=None if reply is None else line_id(chat_id, reply & MAX_SEQ),
        source_id=r["source_id"], attachments=tuple(extra.get("a", ())),
        reactions=tuple(extra.get("r", ())), edited=bool(extra.get("e")),
        deleted=bool(extra.get("d")))


def _chat_row(conn, where: str, *args) -> sqlite3.Row | None:
    return conn.execute(f"SELECT {_CHAT_COLS} FROM imported_chats WHERE {where}",
                        args).fetchone()


def _newer_attempt(conn, file_id: str, attempt: int) -> bool:
    return conn.execute("SELECT 1 FROM imported_chats WHERE file_id=? AND attempt>? LIMIT 1",
                        (file_id, attempt)).fetchone() is not None


def _bounds(num: int) -> tuple[int, int]:
    return num << SEQ_BITS, (num << SEQ_BITS) | MAX_SEQ


# -- publishing steps (each one transaction) ------------------------------------------------

def _publishable(conn, file_id: str, attempt: int) -> list[int] | None:
    """The import's hidden chats, or None when a newer attempt owns the file."""
    if _newer_attempt(conn, file_id, attempt):
        return None
    nums = [r[0] for r in conn.execute(
        "SELECT num FROM imported_chats WHERE file_id=? AND attempt=? AND state='hidden'"
        " ORDER BY num", (file_id, attempt))]
    conn.execute("UPDATE imported_chats SET publishing=1 WHERE file_id=? AND attempt=?"
                 " AND state='hidden'", (file_id, attempt))  # no more add_lines
    return nums


def _ours(conn, num: int, attempt: int) -> sqlite3.Row | None:
    row = _chat_row(conn, "num=?", num)
    if row is None or row["state"] != "hidden" or row["attempt"] != attempt \
            or _newer_attempt(conn, row["file_id"], attempt):
        return None
    return row


def _index_lines(conn, num: int, first: int, end: int, *, counts: bool = True) -> None:
    """Index the lines of keys ``first``..``end`` of chat ``num``: search index, author
    keys, and (``counts``) days and tally."""
    conn.execute("INSERT INTO chat_fts (rowid, text) SELECT key, text FROM chat_lines"
                 " WHERE key BETWEEN ? AND ?", (first, end))
    conn.execute("INSERT INTO chat_author_keys (chat, author, key) SELECT ?, author, key"
                 " FROM chat_lines WHERE key BETWEEN ? AND ? ORDER BY author, key",
                 (num, first, end))
    if counts:
        _count_lines(conn, num, first, end)


def _count_lines(conn, num: int, first: int, end: int) -> None:
    """Add the lines of keys ``first``..``end`` to the chat's days and tally."""
    conn.execute(
        "INSERT INTO chat_days (chat, day, messages, first_key, last_key)"
        " SELECT ?1, CASE WHEN time >= 0 THEN time / ?4 ELSE (time - ?4 + 1) / ?4 END AS d,"
        " sum(kind='message'), min(key), max(key) FROM chat_lines"
        " WHERE key BETWEEN ?2 AND ?3 GROUP BY d"
        " ON CONFLICT (chat, day) DO UPDATE SET messages=messages+excluded.messages,"
        " first_key=min(first_key, excluded.first_key),"
        " last_key=max(last_key, excluded.last_key)", (num, first, end, DAY_MS))
    conn.execute(
        "INSERT INTO chat_tally (chat, author, kind, n, first_time, last_time)"
        " SELECT ?, author, kind, count(*), min(time), max(time) FROM chat_lines"
        " WHERE key BETWEEN ? AND ? GROUP BY author, kind"
        " ON CONFLICT (chat, author, kind) DO UPDATE SET n=n+excluded.n,"
        " first_time=min(first_time, excluded.first_time),"
        " last_time=max(last_time, excluded.last_time)", (num, first, end))


def _unindex_lines(conn, num: int, first: int, end: int) -> None:
    """Take the indexed lines of keys ``first``..``end`` out of the search index and the
    author keys, and drop the chat's days and tally (``_count_lines`` makes them again)."""
    conn.execute("INSERT INTO chat_fts (chat_fts, rowid, text) SELECT 'delete', key, text"
                 " FROM chat_lines WHERE key BETWEEN ? AND ?", (first, end))
    conn.execute("DELETE FROM chat_author_keys WHERE chat=? AND key BETWEEN ? AND ?",
                 (num, first, end))
    conn.execute("DELETE FROM chat_days WHERE chat=?", (num,))
    conn.execute("DELETE FROM chat_tally WHERE chat=?", (num,))


_OPTIONAL_COLS = (("author_id", 4), ("source_id", 5), ("reply_source", 6))
_NO_IDS = {(None, None, None)}
_IDS, _EXTRAS = itemgetter(4, 5, 6), itemgetter(7, 8, 9, 10)


def _insert_rows(conn, first: int, rows: Sequence[MessageRow]) -> None:
    """Store ``rows`` as keys ``first``, ``first + 1``, … (replacing lines there). Only the
    columns some row of the batch fills are bound: binding costs per value, and most
    exports fill few of them (a WhatsApp line has no ids)."""
    cols = ["key", "time", "author", "text", "kind"]
    extras = any(map(any, map(_EXTRAS, rows)))
    if not extras and _NO_IDS.issuperset(map(_IDS, rows)):  # the common case, quickest
        params: list[tuple] = [(k, t, a, x, kind) for k, (t, a, x, kind, _, _, _, _, _, _, _)
                               in zip(range(first, first + len(rows)), rows)]
    else:
        picks = [0, 1, 2, 3]
        for name, i in _OPTIONAL_COLS:
            if any(r[i] is not None for r in rows):
                cols.append(name)
                picks.append(i)
        pick = itemgetter(*picks)
        if extras:
            cols.append("extra")
            params = [(first + n, *pick(r), _extra(r)) for n, r in enumerate(rows)]
        else:
            params = [(first + n, *pick(r)) for n, r in enumerate(rows)]
    conn.executemany(f"INSERT OR REPLACE INTO chat_lines ({', '.join(cols)})"
                     f" VALUES ({','.join('?' * len(cols))})", params)


def _index_step(conn, num: int, attempt: int) -> bool | None:
    """Index the next CHUNK seqs of a hidden chat stored but not indexed yet (``add_lines``
    indexes as it stores; this catches up with lines an earlier version stored). True when
    every line is; None when the chat is no longer this attempt's."""
    row = _ours(conn, num, attempt)
    if row is None:
        return None
    lo, hi = _bounds(num)
    first = conn.execute("SELECT min(key) FROM chat_lines WHERE key BETWEEN ? AND ?",
                         (lo | (row["indexed"] + 1), hi)).fetchone()[0]
    if first is None:
        return True
    end = min(first + CHUNK - 1, hi)
    _index_lines(conn, num, first, end)
    conn.execute("UPDATE imported_chats SET indexed=? WHERE num=?", (end & MAX_SEQ, num))
    return end == hi


def _replies_step(conn, num: int, attempt: int) -> bool:
    """``reply_to`` = the first line of the same chat whose ``source_id`` is the line's
    ``reply_source``: the ids answered are collected once into a keyed temporary table
    (first line wins), then one UPDATE sets every reply from it."""
    row = _ours(conn, num, attempt)
    if row is None:
        return False
    if not row["replies"]:  # no line answers another
        return True
    lo, hi = _bounds(num)
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS chat_reply_src"
                 " (source_id TEXT PRIMARY KEY, key INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.chat_reply_src")
    conn.execute(
        "INSERT OR IGNORE INTO temp.chat_reply_src (source_id, key)"
        " SELECT source_id, key FROM chat_lines WHERE key BETWEEN ?1 AND ?2 AND source_id IN"
        " (SELECT reply_source FROM chat_lines WHERE key BETWEEN ?1 AND ?2"
        "  AND reply_source IS NOT NULL) ORDER BY key", (lo, hi))
    conn.execute(
        "UPDATE chat_lines SET reply_to=(SELECT key FROM temp.chat_reply_src"
        " WHERE source_id=chat_lines.reply_source) WHERE key BETWEEN ? AND ?"
        " AND reply_source IN (SELECT source_id FROM temp.chat_reply_src)", (lo, hi))
    conn.execute("DELETE FROM temp.chat_reply_src")
    return True


def _set_tally(conn, num: int, attempt: int) -> bool:
    """The chat's participants (kind "message", most first), counts and first/last time,
    from its tally (kept as lines were indexed)."""
    if _ours(conn, num, attempt) is None:
        return False
    authors: dict[str, int] = {}
    messages = system = 0
    first = last = None
    for author, kind, n, t0, t1 in conn.execute(
            "SELECT author, kind, n, first_time, last_time FROM chat_tally WHERE chat=?",
            (num,)):
        if kind == "message":
            authors[author] = authors.get(author, 0) + n
            messages += n
        elif kind == "system":
            system += n
        first = t0 if first is None else min(first, t0)
        last = t1 if last is None else max(last, t1)
    participants = sorted(authors.items(), key=lambda a: (-a[1], a[0]))
    conn.execute("UPDATE imported_chats SET participants=?, message_count=?, system_count=?,"
                 " first_time=?, last_time=? WHERE num=?",
                 (_dumps(participants), messages, system, first, last, num))
    return True


def _show(conn, file_id: str, attempt: int, nums: list[int]) -> list[ImportedChat]:
    """Flip the import's chats visible at once (or none, if the import lost the file)."""
    if _newer_attempt(conn, file_id, attempt):
        return []
    marks = ",".join("?" * len(nums))
    conn.execute(f"UPDATE imported_chats SET state='visible' WHERE num IN ({marks})"
                 " AND state='hidden' AND attempt=?", (*nums, attempt))
    return [_chat(r) for r in conn.execute(
        f"SELECT {_CHAT_COLS} FROM imported_chats WHERE file_id=? AND attempt=?"
        " AND state='visible' ORDER BY num", (file_id, attempt))]


# -- deleting --------------------------------------------------------------------------------

def _doom(conn, where: str, args: tuple, states: tuple[str, ...]) -> tuple[list, list[int]]:
    """Mark the chats matching ``where`` deleting (gone for readers); returns the rows of
    those that were not already, and the nums of every chat to purge."""
    marks = ",".join("?" * len(states))
    rows = conn.execute(f"SELECT {_CHAT_COLS} FROM imported_chats WHERE ({where})"
                        f" AND state IN ({marks})", (*args, *states)).fetchall()
    if rows:
        conn.execute(f"UPDATE imported_chats SET state='deleting' WHERE num IN"
                     f" ({','.join('?' * len(rows))})", [r["num"] for r in rows])
    doomed = [r["num"] for r in conn.execute(
        f"SELECT num FROM imported_chats WHERE ({where}) AND state='deleting'", args)]
    return [r for r in rows if r["state"] != "deleting"], doomed


def _purge_step(conn, num: int) -> bool:
    """Remove the next CHUNK seqs of a deleting chat, lines and index entries together, and
    up to CHUNK of its author keys; the chat row goes with the last of them. True when the
    chat is gone."""
    row = conn.execute("SELECT indexed, state FROM imported_chats WHERE num=?",
                       (num,)).fetchone()
    if row is None or row["state"] != "deleting":
        return True
    lo, hi = _bounds(num)
    authors = conn.execute(
        "DELETE FROM chat_author_keys WHERE (chat, author, key) IN"
        " (SELECT chat, author, key FROM chat_author_keys WHERE chat=? LIMIT ?)",
        (num, CHUNK)).rowcount
    first = conn.execute("SELECT min(key) FROM chat_lines WHERE key BETWEEN ? AND ?",
                         (lo, hi)).fetchone()[0]
    if first is None:
        if authors:
            return False
        conn.execute("DELETE FROM chat_days WHERE chat=?", (num,))
        conn.execute("DELETE FROM chat_tally WHERE chat=?", (num,))
        conn.execute("DELETE FROM imported_chats WHERE num=?", (num,))
        return True
    end = min(first + CHUNK - 1, hi)
    indexed_end = min(end, lo | row["indexed"])
    if indexed_end >= first:
        conn.execute("INSERT INTO chat_fts (chat_fts, rowid, text) SELECT 'delete', key, text"
                     " FROM chat_lines WHERE key BETWEEN ? AND ?", (first, indexed_end))
    conn.execute("DELETE FROM chat_lines WHERE key BETWEEN ? AND ?", (first, end))
    return False


class SqliteImportedChats(ImportedChatRepo):
    def __init__(self, db: Database):
        self.db = db

    # -- import ---------------------------------------------------------------------------

    async def begin_chat(self, *, project_id, file_id, attempt, name, platform,
                         imported_by) -> str:
        chat_id = new_id()
        now = iso(utcnow())

        def tx(conn):
            if _newer_attempt(conn, file_id, attempt):
                raise Conflict("a newer import of this file is under way")
            conn.execute(
                "INSERT INTO imported_chats (id, project_id, file_id, attempt, state, replies,"
                " name, platform, imported_by, created_at)"
                " VALUES (?,?,?,?,'hidden',0,?,?,?,?)",
                (chat_id, project_id, file_id, attempt, name, platform, imported_by, now))
            return chat_id

        return await self.db.write(tx)

    async def add_lines(self, chat_id, attempt, first_seq,
                        rows: Sequence[MessageRow]) -> bool:
        if not isinstance(first_seq, int) or first_seq < 1 \
                or first_seq + len(rows) - 1 > MAX_SEQ:
            raise BadRequest(f"seq must be between 1 and {MAX_SEQ}")

        def tx(conn):
            row = conn.execute("SELECT num, state, attempt, publishing, indexed"
                               " FROM imported_chats WHERE id=?", (chat_id,)).fetchone()
            if row is None or row["state"] != "hidden" or row["attempt"] != attempt \
                    or row["publishing"]:
                return False
            if not rows:
                return True
            num, indexed = row["num"], row["indexed"]
            lo = num << SEQ_BITS
            first, last = lo | first_seq, lo | (first_seq + len(rows) - 1)
            again = first_seq <= indexed  # a batch sent again: its old lines leave the index
            if again:
                _unindex_lines(conn, num, first, min(last, lo | indexed))
            _insert_rows(conn, first, rows)
            # Indexed here, in the same transaction, while the parser reads on: publishing
            # is then only counting up. Lines stored before and not indexed yet come along.
            start = min(first, lo | (indexed + 1))
            _index_lines(conn, num, start, last, counts=not again)
            if again:
                _count_lines(conn, num, lo + 1, max(last, lo | indexed))
            replies = any(r[6] is not None for r in rows)
            conn.execute("UPDATE imported_chats SET indexed=max(indexed, ?),"
                         " replies=max(replies, ?) WHERE num=?",
                         (last & MAX_SEQ, int(replies), num))
            return True

        return await self.db.write(tx)

    async def publish_chats(self, file_id, attempt) -> list[ImportedChat]:
        nums = await self.db.write(_publishable, file_id, attempt)
        if nums is None:
            return []
        for num in nums:
            while True:
                done = await self.db.write(_index_step, num, attempt)
                if done is None:
                    return []
                if done:
                    break
            if not await self.db.write(_replies_step, num, attempt):
                return []
            if not await self.db.write(_set_tally, num, attempt):
                return []
        return await self.db.write(_show, file_id, attempt, nums)

    async def discard_import(self, file_id) -> None:
        await self._delete("file_id=?", (file_id,), ("hidden",))

    async def _delete(self, where: str, args: tuple,
                      states: tuple[str, ...]) -> list[ImportedChat]:
        rows, doomed = await self.db.write(_doom, where, args, states)
        for num in doomed:
            while not await self.db.write(_purge_step, num):
                pass
        return [_chat(r) for r in rows]

    # -- reading --------------------------------------------------------------------------

    async def get_chat(self, chat_id) -> ImportedChat | None:
        def read(conn):
            row = _chat_row(conn, "id=? AND state='visible'", chat_id)
            return _chat(row) if row else None

        return await self.db.read(read)

    async def list_chats(self, project_id, *, cursor=None, limit=50) -> Page[ImportedChat]:
        limit = page_limit(limit, MAX_LINES_PAGE)

        def read(conn):
            where, args = "project_id=? AND state='visible'", [project_id]
            if cursor:
                where += " AND id<?"
                args.append(last_seen(cursor, "k"))
            rows = conn.execute(f"SELECT {_CHAT_COLS} FROM imported_chats WHERE {where}"
                                " ORDER BY id DESC LIMIT ?", (*args, limit + 1)).fetchall()
            items = [_chat(r) for r in rows[:limit]]
            return Page(items, encode_cursor(["k", items[-1].id]) if len(rows) > limit
                        else None)

        return await self.db.read(read)

    async def list_lines(self, chat_id, *, cursor=None, limit=100, author=None, since=None,
                         until=None, around=None) -> Page[ChatLine]:
        limit = page_limit(limit, MAX_LINES_PAGE)
        after = last_seen(cursor, "l", int)
        target = None
        if around is not None and after is None:
            target = split_line_id(str(around))
            if target is None or target[0] != chat_id:
                raise NotFound("message not found")

        def read(conn):
            row = conn.execute("SELECT num FROM imported_chats WHERE id=? AND state='visible'",
                               (chat_id,)).fetchone()
            if row is None:
                if target is not None:
                    raise NotFound("message not found")
                return Page([], None)
            num = row[0]
            lo, hi = _bounds(num)
            # Keyed on k: the line's key, or (author filter) the author key's. The key range
            # is one BETWEEN (SQLite would range-scan on one bound of several).
            source, k = "chat_lines l", "l.key"
            where, args = [], []
            if author is not None:
                source, k = "chat_author_keys a JOIN chat_lines l ON l.key=a.key", "a.key"
                where, args = ["a.chat=? AND a.author=?"], [num, author]
            low, high = lo + 1, hi
            if since is not None:
                t = ceil_ms(since)
                start = conn.execute("SELECT min(first_key) FROM chat_days WHERE chat=?"
                                     " AND day>=?", (num, _day(t))).fetchone()[0]
                low = max(low, hi + 1 if start is None else start)
                where.append("l.time>=?")
                args.append(t)
            if until is not None:
                t = to_ms(until)
                end = conn.execute("SELECT max(last_key) FROM chat_days WHERE chat=?"
                                   " AND day<=?", (num, _day(t))).fetchone()[0]
                high = min(high, lo if end is None else end)
                where.append("l.time<=?")
                args.append(t)
            select = f"SELECT {_LINE_COLS_L} FROM {source} WHERE " + " AND ".join(
                [*where, f"{k} BETWEEN ? AND ?"])
            if target is not None:
                key = lo | target[1]
                if conn.execute("SELECT 1 FROM chat_lines WHERE key=?",
                                (key,)).fetchone() is None:
                    raise NotFound("message not found")
                before = conn.execute(f"{select} ORDER BY {k} DESC LIMIT ?",
                                      (*args, low, min(high, key - 1), limit // 2)).fetchall()
                rest = limit - len(before)
                rows = conn.execute(f"{select} ORDER BY {k} LIMIT ?",
                                    (*args, max(low, key), high, rest + 1)).fetchall()
                more = len(rows) > rest
                rows = before[::-1] + rows[:rest]
            else:
                if after:
                    low = max(low, (lo | min(after, MAX_SEQ)) + 1)
                rows = conn.execute(f"{select} ORDER BY {k} LIMIT ?",
                                    (*args, low, high, limit + 1)).fetchall()
                more = len(rows) > limit
                rows = rows[:limit]
            items = [_line(chat_id, r) for r in rows]
            return Page(items, encode_cursor(["l", items[-1].seq]) if more and items else None)

        return await self.db.read(read)

    async def search(self, project_id, query, *, chat_id=None, author=None, since=None,
                     until=None, cursor=None, limit=20) -> Page[ChatHit]:
        expression = fts_expression(query)
        terms = terms_of(query)
        limit = page_limit(limit, MAX_HITS_PAGE)
        window = decode_cursor(cursor, "s", (int, int, int)) if cursor else None
        if window is not None and not (window[0] <= SEARCH_WINDOW and window[1] <= window[2]):
            raise BadRequest(BAD_CURSOR)

        def read(conn):
            where, args = ["chat_fts MATCH ?"], [expression]
            chats: dict[int, str] = {}
            low, high = 0, (1 << 63) - 1  # one rowid range: FTS5 seeks on one of each bound
            if chat_id is not None:
                row = conn.execute("SELECT num, id FROM imported_chats WHERE id=? AND"
                                   " project_id=? AND state='visible'",
                                   (chat_id, project_id)).fetchone()
                if row is None:
                    return Page([], None)
                chats[row[0]] = row[1]
                low, high = _bounds(row[0])
            else:
                where.append("(f.rowid >> 32) IN (SELECT num FROM imported_chats"
                             " WHERE project_id=? AND state='visible')")
                args.append(project_id)
            # Filters read each match's line by its key (the rowid, joined anyway for the
            # text): cheaper than building the author's whole key set when matches are few,
            # and the scan stops with the window.
            if author is not None:
                where.append("l.author=?")
                args.append(author)
            if since is not None or until is not None:
                if since is not None:
                    where.append("l.time>=?")
                    args.append(ceil_ms(since))
                if until is not None:
                    where.append("l.time<=?")
                    args.append(to_ms(until))
            cond = " AND ".join([*where, "f.rowid BETWEEN ? AND ?"])
            if window is None:
                offset, floor, ceil = 0, low, high
            else:
                offset, floor, ceil = window
            if offset >= SEARCH_WINDOW:
                return Page([], None)
            # The index is read once: the newest matches with their lines, ranked here.
            found = conn.execute(
                f"SELECT f.rowid, l.time, l.author, l.text FROM chat_fts f"
                f" JOIN chat_lines l ON l.key=f.rowid WHERE {cond}"
                " ORDER BY f.rowid DESC LIMIT ?",
                (*args, max(low, floor), min(high, ceil), SEARCH_WINDOW)).fetchall()
            if not found:
                return Page([], None)
            if window is None:
                floor, ceil = found[-1][0], found[0][0]
            scores = relevance([r[3] for r in found], terms)
            # Most relevant first, then newest (by time, then by key).
            order = heapq.nsmallest(offset + limit, zip(
                [-s for s in scores], [-r[1] for r in found], [-r[0] for r in found],
                range(len(found))))
            page = [i for *_, i in order[offset:]]
            more = offset + limit < len(found)
            missing = {found[i][0] >> SEQ_BITS for i in page} - chats.keys()
            if missing:
                chats.update(conn.execute(
                    f"SELECT num, id FROM imported_chats WHERE num IN"
                    f" ({','.join('?' * len(missing))})", list(missing)).fetchall())
            marks = [(t.words, t.prefix) for t in terms]
            items = []
            for i in page:
                k, t, a, text = found[i]
                chat = chats[k >> SEQ_BITS]
                items.append(ChatHit(chat_id=chat, message_id=line_id(chat, k & MAX_SEQ),
                                     author=a, time=from_ms(t), text=text,
                                     snippet=snippet(text, token_spans(text), marks),
                                     score=scores[i]))
            return Page(items, encode_cursor(["s", offset + limit, floor, ceil])
                        if more else None)

        return await self.db.read(read)

    async def activity(self, chat_id, *, bucket="month") -> list[tuple[str, int]]:
        if bucket not in ("day", "month"):
            raise BadRequest('bucket must be "day" or "month"')

        def read(conn):
            return conn.execute(
                "SELECT d.day, d.messages FROM chat_days d JOIN imported_chats c"
                " ON c.num=d.chat WHERE c.id=? AND c.state='visible' AND d.messages>0"
                " ORDER BY d.day", (chat_id,)).fetchall()

        out: list[tuple[str, int]] = []
        for day, n in await self.db.read(read):
            label = (EPOCH_DAY + timedelta(days=day)).isoformat()
            if bucket == "month":
                label = label[:7]
                if out and out[-1][0] == label:
                    out[-1] = (label, out[-1][1] + n)
                    continue
            out.append((label, n))
        return out

    # -- changes --------------------------------------------------------------------------

    async def rename_chat(self, chat_id, name) -> ImportedChat | None:
        def tx(conn):
            conn.execute("UPDATE imported_chats SET name=? WHERE id=? AND state='visible'",
                         (name, chat_id))
            row = _chat_row(conn, "id=? AND state='visible'", chat_id)
            return _chat(row) if row else None

        return await self.db.write(tx)

    async def delete_chat(self, chat_id) -> ImportedChat | None:
        gone = await self._delete("id=?", (chat_id,), ("hidden", "visible"))
        return gone[0] if gone else None

    async def delete_file_chats(self, file_id) -> list[str]:
        return [c.id for c in await self._delete("file_id=?", (file_id,),
                                                 ("hidden", "visible"))]

    async def delete_project_chats(self, project_id) -> list[str]:
        return [c.id for c in await self._delete("project_id=?", (project_id,),
                                                 ("hidden", "visible"))]

