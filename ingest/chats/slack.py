"""Slack's workspace export (a zip): ``users.json``, ``channels.json`` (also ``groups.json``,
``mpims.json``, ``dms.json``) and one folder per conversation holding a file per day,
``YYYY-MM-DD.json``. One chat per conversation, its days in order and each day's messages by
``ts``. A day file is read whole (bounded by ``ArchiveLimits.max_buffered``); they are small.

``ts`` is the message's id; a reply in a thread (``thread_ts`` other than its own ``ts``)
answers the thread's first message, whichever day file that is in. Mentions are rendered
with real names (``<@U02>`` → ``@Real Name``, ``<#C01|general>`` → ``#general``,
``<url|text>`` → ``text``) and HTML entities unescaped.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterator

from ingest.chats.common import Context, attachment, from_epoch, kind_of
from ingest.chats.jsonio import read_whole
from ingest.chats.model import ChatFormatError, ParsedChat, ParsedMessage
from ingest.chats.source import Input

DAY_FILE = re.compile(r"^(?:(.*)/)?([^/]+)/(\d{4}-\d{2}-\d{2})\.json$")
LISTS = ("channels.json", "groups.json", "mpims.json", "dms.json")
_MARKUP = re.compile(r"<([^<>\n]*)>")
_SYSTEM = frozenset((
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "channel_convert_to_private",
    "channel_convert_to_public", "group_join", "group_leave", "group_topic", "group_purpose",
    "group_name", "group_archive", "group_unarchive", "pinned_item", "unpinned_item",
    "bot_add", "bot_remove", "bot_enable", "bot_disable", "reminder_add", "reminder_delete",
    "sh_room_created", "sh_room_shared", "huddle_thread"))


def root_of(inputs: list[Input]) -> str | None:
    """The folder of the export (``""`` at the top of the zip) if it looks like Slack's."""
    for inp in sorted(inputs, key=lambda i: i.name.count("/")):
        if inp.basename in ("channels.json", "users.json"):
            root = inp.dirname
            prefix = root + "/" if root else ""
            if any(DAY_FILE.match(i.name) and i.name.startswith(prefix) for i in inputs):
                return root
    return None


class SlackExport:
    def __init__(self, inputs: list[Input], root: str):
        prefix = root + "/" if root else ""
        self.files = {i.name[len(prefix):]: i for i in inputs if i.name.startswith(prefix)}
        self.days: dict[str, list[Input]] = {}
        for rel, inp in self.files.items():
            m = DAY_FILE.match(rel)
            if m and not m.group(1):
                self.days.setdefault(m.group(2), []).append(inp)
        for days in self.days.values():
            days.sort(key=lambda i: i.basename)
        self.users: dict[str, str] = {}
        self.channels: dict[str, str] = {}  # id → name, for <#C…> without a label
        self.titles: dict[str, str] = {}  # folder → chat name
        self.order: list[str] = []
        self.ctx: Context

    @property
    def main_inputs(self) -> list[Input]:
        return [inp for days in self.days.values() for inp in days]

    def _load(self, name: str) -> list:
        inp = self.files.get(name)
        if inp is None:
            return []
        data = read_whole(inp, self.ctx.limits.max_buffered)
        if not isinstance(data, list):
            raise ChatFormatError("not_a_chat", f"{inp.name} is not a list as in a Slack "
                                  "export", {"file": inp.name})
        return data

    def _read_lists(self) -> None:
        for user in self._load("users.json"):
            if isinstance(user, dict) and user.get("id"):
                profile = user.get("profile") or {}
                self.users[str(user["id"])] = str(
                    profile.get("real_name") or user.get("real_name")
                    or profile.get("display_name") or user.get("name") or user["id"])
        for list_name in LISTS:
            for conv in self._load(list_name):
                if not isinstance(conv, dict):
                    continue
                cid, name = str(conv.get("id") or ""), conv.get("name")
                if name and cid:
                    self.channels[cid] = str(name)
                folder = str(name or cid)
                if folder not in self.days and cid in self.days:
                    folder = cid
                if folder in self.titles:
                    continue
                if list_name in ("channels.json", "groups.json"):
                    title = f"#{name}" if name else folder
                else:
                    members = [self.users.get(str(m), str(m)) for m in conv.get("members") or ()]
                    title = ", ".join(members) if members else folder
                self.titles[folder] = title
                self.order.append(folder)

    def chats(self, ctx: Context) -> Iterator[ParsedChat]:
        self.ctx = ctx
        self._read_lists()
        folders = [f for f in self.order if f in self.days]
        folders += sorted(f for f in self.days if f not in self.titles)
        for folder in folders:
            messages = self._messages(folder)
            first = next(messages, None)
            if first is None:
                continue
            yield ParsedChat(name=self.titles.get(folder, folder), platform="slack",
                             messages=_chain(first, messages))

    def _messages(self, folder: str) -> Iterator[ParsedMessage]:
        for inp in self.days[folder]:
            day = read_whole(inp, self.ctx.limits.max_buffered, self.ctx.progress)
            if not isinstance(day, list):
                self.ctx.warn(inp.name, "a day file that is not a list was skipped")
                continue
            rows = [r for r in day if isinstance(r, dict)]
            rows.sort(key=_ts_key)
            for raw in rows:
                message = self._message(raw, inp.name)
                if message is not None:
                    yield message

    def render(self, text: str) -> str:
        if "<" in text:
            text = _MARKUP.sub(self._markup, text)
        if "&" in text:
            text = html.unescape(text)
        return text

    def _markup(self, m: re.Match) -> str:
        target, _, label = m.group(1).partition("|")
        if target.startswith("@"):
            uid = target[1:]
            return "@" + self.users.get(uid, label or uid)
        if target.startswith("#"):
            return "#" + (label or self.channels.get(target[1:], target[1:]))
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            if label:
                return label if label.startswith("@") or word == "date" else "@" + label
            return "@" + word
        if label:
            return label
        return target[7:] if target.startswith("mailto:") else target

    def _message(self, raw: dict, where: str) -> ParsedMessage | None:
        try:
            ts = str(raw["ts"])
            subtype = raw.get("subtype")
            user = raw.get("user")
            if subtype == "bot_message" or (not user and raw.get("bot_id")):
                author = str(raw.get("username") or (raw.get("bot_profile") or {}).get("name")
                             or raw.get("bot_id") or "bot")
            else:
                profile = raw.get("user_profile") or {}
                author = self.users.get(str(user)) or str(
                    profile.get("real_name") or profile.get("display_name") or user
                    or "(unknown)")
            thread = raw.get("thread_ts")
            files = [attachment(_file_kind(f), f.get("name") or f.get("title"))
                     for f in raw.get("files") or () if isinstance(f, dict)]
            reactions = [{"emoji": f":{r.get('name')}:",
                          "count": int(r.get("count") or len(r.get("users") or ()) or 1)}
                         for r in raw.get("reactions") or () if isinstance(r, dict)]
            deleted = subtype == "tombstone"
            return ParsedMessage(
                time=from_epoch(ts), author=author,
                text="" if deleted else self.render(str(raw.get("text") or "")),
                kind="system" if subtype in _SYSTEM else "message",
                author_id=str(user) if user else (str(raw["bot_id"]) if raw.get("bot_id")
                                                  else None),
                source_id=ts, reply_source=str(thread) if thread and str(thread) != ts else None,
                attachments=files, reactions=reactions, edited="edited" in raw, deleted=deleted)
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
            self.ctx.warn(f"{where} ts {raw.get('ts')}", f"a message that cannot be read was "
                          f"skipped ({e})")
            return None


def _ts_key(raw: dict) -> float:
    try:
        return float(raw.get("ts") or 0)
    except (TypeError, ValueError):
        return 0.0


def _file_kind(f: dict) -> str:
    mime = str(f.get("mimetype") or "")
    for prefix in ("image", "video", "audio"):
        if mime.startswith(prefix + "/"):
            return "gif" if mime == "image/gif" else prefix
    return kind_of(f.get("name"))


def _chain(first: ParsedMessage, rest: Iterator[ParsedMessage]) -> Iterator[ParsedMessage]:
    yield first
    yield from rest
