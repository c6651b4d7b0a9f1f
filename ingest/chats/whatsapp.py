"""WhatsApp's "Export chat" text (``WhatsApp Chat with X.txt``, or ``_chat.txt`` in the iOS
zip), streamed line by line.

A message starts with a header line: Android ``31/12/2023, 23:59 - Name: text`` (US
``12/31/23, 11:59 PM - ``), iOS ``[31/12/23, 23:59:59] Name: text``; the date may be day- or
month-first with ``/``, ``.`` or ``-`` and a 2- or 4-digit year (or year-first), the time
12-hour (``PM``, ``p. m.``, often after U+202F) or 24-hour, and iOS sprinkles U+200E marks.
Any other line continues the message before it. One compiled regex is tried per line.

Day-first or month-first is decided before the messages are read, by a first pass over the
dates (it stops at the first date that settles it: a first or second number above 12; when
none does, the order that keeps the dates going forward wins, then the locale's habit).
Times are local to the import's zone and stored in UTC.

Lines without ``Name:`` (and iOS lines whose text starts with U+200E that are not media) are
system messages; media placeholders become attachments; ``<This message was edited>`` and
"This message was deleted" set ``edited``/``deleted``.
"""
from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

from ingest.chats.common import Context, attachment, kind_of
from ingest.chats.jsonio import undecodable
from ingest.chats.model import ChatFormatError, ParsedChat, ParsedMessage
from ingest.chats.source import Input

_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_SP = "[ \u00a0\u202f]"
# groups: 1 "[", 2 date, 3-5 its numbers (4 the separator, then 5 and 6), 7 hour, 8 minute,
# 9 second, 10 a/p
HEAD = re.compile(
    rf"[{_MARKS}]*(\[)?[{_MARKS}]*"
    r"((\d{1,4})([./-])(\d{1,2})\4(\d{1,4}))\.?(?:,|" + _SP + r"(?:à|um|om|klo|kl\.|at))?"
    + _SP + r"+"
    r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
    rf"(?:{_SP}*([AaPp])\.?{_SP}?[Mm]\.?)?"
    rf"(?(1){_SP}*\]{_SP}*|{_SP}+[-\u2013]{_SP}+)"
)
_UNSEEN: tuple[int, int, int] = (0, 0, 0)
_STRIP_MARKS = str.maketrans("", "", _MARKS)
_OMITTED = re.compile(
    r"^<?(?:(.*?)\s*\u2022.*?\s)?(image|video|audio|sticker|GIF|document|Contact card|media"
    r"|video note|voice message)\s+omitted>?$", re.I)
_OMITTED_KIND = {"image": "image", "video": "video", "audio": "audio", "sticker": "sticker",
                 "gif": "gif", "document": "file", "contact card": "contact", "media": "media",
                 "video note": "video", "voice message": "audio"}
_ATTACHED = re.compile(r"<attached: ([^>]+)>")
_FILE_ATTACHED = re.compile(r"^(.+?) \(file attached\)$")
_DELETED = {"this message was deleted", "you deleted this message"}
_EDITED = "<This message was edited>"
_ENCRYPTION = re.compile(r"^(Messages and calls are end-to-end encrypted|Messages (you send )?to "
                         r"this (group|chat) are now secured with end-to-end encryption)", re.I)
_NOT_A_NAME = re.compile("[\"\u201c\u201d\u00ab\u00bb]")
_CHAT_NAME = re.compile(
    r"^(?:WhatsApp[ -]Chat (?:with|mit|-|met|con|com|avec|z|с) |Chat de WhatsApp con "
    r"|Conversa do WhatsApp com |Discussion WhatsApp avec |Conversazione WhatsApp con )(.+)$",
    re.I)


def chat_name(*names: str) -> str:
    """The chat's name from a file name ("WhatsApp Chat with X.txt"), else "WhatsApp chat"."""
    for name in names:
        stem = re.sub(r"(\.txt|\.zip)+$", "", name.rsplit("/", 1)[-1], flags=re.I).strip()
        m = _CHAT_NAME.match(stem)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return "WhatsApp chat"


def sniff(text: str) -> bool:
    """Whether the start of a text looks like a WhatsApp export: its first non-blank line is a
    message header, or three of its first ten are."""
    lines = [line for line in text.splitlines()[:200] if line.strip(_MARKS + " \t\r")][:10]
    found = [m is not None and _plausible(m) for m in map(HEAD.match, lines)]
    return bool(found) and (found[0] or sum(found) >= 3)


def _plausible(m: re.Match) -> bool:
    a, b, c = int(m.group(3)), int(m.group(5)), int(m.group(6))
    if len(m.group(3)) == 4:
        return 1 <= b <= 12 and 1 <= c <= 31
    return 1 <= a <= 31 and 1 <= b <= 31 and (a <= 12 or b <= 12) and int(m.group(7)) <= 24


class WhatsAppChat:
    """One exported chat: a text input, its encoding and the chat's name."""

    def __init__(self, inp: Input, encoding: str, name: str, ctx: Context):
        self.inp, self.encoding, self.name, self.ctx = inp, encoding, name, ctx
        # What each header's name reads as (a chat has few authors; reading one is
        # several string passes): the author, or None when it cannot be a name.
        self._authors: dict[str, str | None] = {}

    def chat(self) -> ParsedChat:
        return ParsedChat(name=self.name, platform="whatsapp", messages=self.messages())

    def _open(self, counted: bool) -> io.TextIOWrapper:
        raw = self.inp.open(self.ctx.progress if counted else None)
        return io.TextIOWrapper(raw, encoding=self.encoding, newline=None)

    def _undecodable(self, e: UnicodeDecodeError) -> ChatFormatError:
        """The error for the first bad byte, found again (the text layer reads ahead in
        chunks, so its own line count is not where the byte is)."""
        decoder = codecs.getincrementaldecoder(self.encoding)()
        offset, lines = 0, 1
        with self.inp.open() as raw:
            while chunk := raw.read(1 << 16):
                pending = len(decoder.getstate()[0])  # bytes of a character cut between reads
                try:
                    lines += decoder.decode(chunk).count("\n")
                except UnicodeDecodeError as bad:
                    good = bad.object[: bad.start]
                    lines += codecs.decode(good, self.encoding, "ignore").count("\n")
                    at = offset - pending + bad.start
                    return ChatFormatError(
                        "undecodable", f"{self.inp.name} is not valid "
                        f"{_label(self.encoding)} text at line {lines} (byte "
                        f"0x{bad.object[bad.start]:02X} at offset {at}); exports are expected "
                        "in UTF-8 or UTF-16", {"file": self.inp.name, "line": lines})
                offset += len(chunk)
        return undecodable(self.inp.name, e)

    def date_order(self) -> str:
        """"dmy", "mdy" or "ymd", from the dates of the whole file."""
        match = HEAD.match
        prev_dmy = prev_mdy = (0, 0, 0)
        back_dmy = back_mdy = 0
        ampm = dots = False
        lineno = 0
        with self._open(counted=False) as text:
            try:
                for line in text:
                    lineno += 1
                    m = match(line)
                    if m is None:
                        continue
                    first, sep, second, third = m.group(3, 4, 5, 6)
                    if len(first) == 4:
                        return "ymd"
                    a, b, c = int(first), int(second), int(third)
                    if a > 12 >= b:
                        return "dmy"
                    if b > 12 >= a:
                        return "mdy"
                    if a > 12 or b > 12:
                        continue
                    ampm = ampm or m.group(10) is not None
                    dots = dots or sep == "."
                    dmy, mdy = (c, b, a), (c, a, b)
                    back_dmy += dmy < prev_dmy
                    back_mdy += mdy < prev_mdy
                    prev_dmy, prev_mdy = dmy, mdy
            except UnicodeDecodeError as e:
                raise self._undecodable(e) from None
        if back_dmy != back_mdy:
            return "dmy" if back_dmy < back_mdy else "mdy"
        return "mdy" if ampm and not dots else "dmy"

    def messages(self) -> Iterator[ParsedMessage]:
        order = self.date_order()
        ctx = self.ctx
        tz, utc = ctx.tz, ctx.utc
        match = HEAD.match
        days: dict[str, tuple[int, int, int] | None] = {}
        pending: tuple[datetime, str, bool] | None = None
        extra: list[str] = []
        lineno = 0
        with self._open(counted=True) as text:
            try:
                for line in text:
                    lineno += 1
                    m = match(line)
                    if m is not None:
                        g = m.groups()
                        day = days.get(g[1], _UNSEEN)
                        if day is _UNSEEN:
                            day = self._day(g, order, lineno)
                            if len(days) < 100_000:
                                days[g[1]] = day
                        if day is not None:
                            hour = int(g[6])
                            if g[9] is not None:
                                hour = hour % 12 + (12 if g[9] in "Pp" else 0)
                            try:
                                t = datetime(day[0], day[1], day[2], hour, int(g[7]),
                                             int(g[8]) if g[8] else 0, tzinfo=tz)
                            except ValueError:
                                ctx.warn(f"line {lineno}",
                                         f"a time that cannot be read ({line.strip()[:60]!r}); "
                                         "kept as text of the message before")
                            else:
                                if pending is not None:
                                    yield self._message(*pending, extra)
                                    extra = []
                                pending = (t if utc else t.astimezone(UTC),
                                           line[m.end():].rstrip("\n"), g[0] is not None)
                                continue
                    if pending is None:
                        if line.strip(_MARKS + " \t\r\n"):
                            ctx.warn(f"line {lineno}", "text before the first message skipped: "
                                     f"{line.strip()[:60]!r}")
                        continue
                    extra.append(line.rstrip("\n"))
            except UnicodeDecodeError as e:
                raise self._undecodable(e) from None
        if pending is not None:
            yield self._message(*pending, extra)

    def _day(self, g: tuple, order: str, lineno: int) -> tuple[int, int, int] | None:
        a, b, c = int(g[2]), int(g[4]), int(g[5])
        if len(g[2]) == 4 or order == "ymd":
            y, mo, d = a, b, c
        elif order == "dmy":
            d, mo, y = a, b, c
        else:
            mo, d, y = a, b, c
        if y < 100:
            y += 2000
        if 1 <= mo <= 12 and 1 <= d <= 31:
            return y, mo, d
        if 1 <= d <= 12 and 1 <= mo <= 31 and order != "ymd":
            self.ctx.warn(f"line {lineno}", f"the date {g[1]} does not fit the file's "
                          f"{'day' if order == 'dmy' else 'month'}-first dates; read the other "
                          "way round")
            return y, d, mo
        self.ctx.warn(f"line {lineno}", f"a date that cannot be read ({g[1]}); kept as text "
                      "of the message before")
        return None

    def _message(self, t: datetime, rest: str, ios: bool, extra: list[str]) -> ParsedMessage:
        i = rest.find(": ")
        author: str | None = None
        body = ""
        if i > 0:
            raw = rest[:i]
            authors = self._authors
            if raw in authors:
                author = authors[raw]
            else:
                author = _author(raw)
                if len(authors) < 10_000:
                    authors[raw] = author
            if author is not None:
                body = rest[i + 2:]
        elif rest.endswith(":") and 0 < len(rest) <= 121 and not _NOT_A_NAME.search(rest):
            author = _clean_author(rest[:-1])
        if author is None:
            text = rest.translate(_STRIP_MARKS).strip()
            if extra:
                text = "\n".join((text, *extra))
            return ParsedMessage(time=t, author="", text=text, kind="system")
        lrm = False  # iOS starts the text of system lines and media with U+200E
        if not body.isascii():
            lrm = ios and body.startswith("\u200e")
            if "\u200e" in body:
                body = body.replace("\u200e", "")
        text = body if not extra else "\n".join((body, *extra))
        # cheap substring tests first: most messages have none of the markers
        if lrm or "<" in body or "omitted" in body or "delete" in body or "attached" in body \
                or "end-to-end" in body or body.startswith(("Location: ", "POLL:")):
            return self._special(t, author, text, lrm)
        return ParsedMessage(t, author, text)

    def _special(self, t: datetime, author: str, text: str, lrm: bool) -> ParsedMessage:
        edited = deleted = False
        attachments: list[dict] = []
        if text.rstrip().endswith(_EDITED):
            text = text.rstrip()[: -len(_EDITED)].rstrip()
            edited = True
        if text.strip().rstrip(".").lower() in _DELETED:
            return ParsedMessage(time=t, author=author, text="", deleted=True, edited=edited)
        if _ENCRYPTION.match(text):
            return ParsedMessage(time=t, author="", text=text, kind="system")
        first, newline, tail = text.partition("\n")
        first = first.strip()
        m = _OMITTED.match(first)
        if m:
            kind = _OMITTED_KIND[m.group(2).lower()]
            attachments.append(attachment(kind, m.group(1) or None))
            text = tail
        elif (m := _ATTACHED.search(first)) is not None:
            name = m.group(1).strip()
            attachments.append(attachment(_attached_kind(name), name))
            first = (first[: m.start()] + first[m.end():]).strip()
            text = first + newline + tail if first else tail
        elif (m := _FILE_ATTACHED.match(first)) is not None:
            name = m.group(1).strip()
            attachments.append(attachment(_attached_kind(name), name))
            text = tail
        elif first.startswith("Location: "):
            attachments.append(attachment("location"))
        elif first.startswith("POLL:"):
            attachments.append(attachment("poll"))
        elif lrm and not edited:  # iOS writes the group's name as the author of its events
            return ParsedMessage(time=t, author="" if author == self.name else author,
                                 text=text.strip(), kind="system")
        return ParsedMessage(time=t, author=author, text=text, attachments=attachments,
                             edited=edited, deleted=deleted)


def _author(raw: str) -> str | None:
    """The author a header names, or None when ``raw`` cannot be a name (the text of a
    system line with a colon in it)."""
    if len(raw) > 120 or ('"' in raw if raw.isascii() else _NOT_A_NAME.search(raw) is not None):
        return None
    return _clean_author(raw)


def _clean_author(author: str) -> str:
    """Without marks, iOS's ``~`` before a name that is not a contact, or edge spaces."""
    if not author.isascii():
        author = author.translate(_STRIP_MARKS)
    if author[:1] == "~" and author[1:2] in (" ", "\u202f", "\u00a0"):
        author = author[2:]
    return author.strip(" \u202f\u00a0")


def _attached_kind(name: str) -> str:
    upper = name.upper()
    for tag, kind in (("-PHOTO-", "image"), ("-VIDEO-", "video"), ("-AUDIO-", "audio"),
                      ("-STICKER-", "sticker"), ("-GIF-", "gif"), ("IMG-", "image"),
                      ("VID-", "video"), ("PTT-", "audio"), ("AUD-", "audio"),
                      ("STK-", "sticker")):
        if tag in upper:
            return kind
    return kind_of(name)


def _label(encoding: str) -> str:
    return encoding.upper().replace("-SIG", "").replace("-LE", "").replace("-BE", "")
