"""What both backends' imported-chat reads share: the user's search query as terms, opaque
page cursors, page limits. Backend-neutral, so the two stores read a query and a cursor
the same way (the backends differ only in how they run them)."""
from __future__ import annotations

import base64
import binascii
import json
import math
import unicodedata

from store.errors import BadRequest

MAX_QUERY_TERMS = 32
BAD_CURSOR = "cursor is not one this server gave out"


def searchable(text: str) -> bool:
    """Whether ``text`` holds a token: a letter, a digit, or a character outside the BMP
    (emoji), as the full-text tokenizers make them."""
    return any(ch.isalnum() or ord(ch) > 0xFFFF for ch in text)


def parse_query(query: str) -> list[tuple[str, bool]]:
    """The user's query as (text, prefix) terms: each "quoted phrase" is one term, every
    other whitespace-separated word another; a trailing ``*`` makes its last token a
    prefix. Nothing else is syntax: operators and stray characters are plain text, and a
    term without a letter or digit is dropped. BadRequest when nothing is left."""
    if not isinstance(query, str):
        raise BadRequest("query must be a string")
    query = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in query)
    terms: list[tuple[str, bool]] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            end = query.find('"', i + 1)
            end = n if end < 0 else end
            text, i = query[i + 1:end], end + 1
            prefix = i < n and query[i] == "*"
        else:
            end = i
            while end < n and not query[end].isspace() and query[end] != '"':
                end += 1
            chunk, i = query[i:end], end
            text = chunk.rstrip("*")
            prefix = text != chunk
        while i < n and query[i] == "*":
            i += 1
        if searchable(text):
            terms.append((text, prefix))
    if not terms:
        raise BadRequest("the query has nothing to search for")
    if len(terms) > MAX_QUERY_TERMS:
        raise BadRequest(f"the query has more than {MAX_QUERY_TERMS} terms")
    return terms


def page_limit(limit: int, most: int) -> int:
    if not isinstance(limit, int) or limit < 1:
        raise BadRequest("limit must be a positive integer")
    return min(limit, most)


class Scalar:
    """A cursor value that is a sort key: null, a finite number (an integer within int64)
    or text."""


CursorValue = type | type[Scalar]
# A row page's cursor: the last row's sort value and id. The value is a whole cell, so its
# text may be as long as a cell's (the event size limit bounds it before this does).
ROW_CURSOR: tuple[CursorValue, ...] = (Scalar, str)
ROW_CURSOR_TEXT = 1 << 20


def encode_cursor(values: list) -> str:
    """An opaque page cursor: ``[kind, *values]`` as base64url JSON. Every list the stores
    and handlers page is cursored this way, so every cursor is checked by ``decode_cursor``."""
    raw = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: tuple[CursorValue, ...], *,
                  longest: int = 200) -> list:
    """The values of a cursor made by ``encode_cursor([kind, *values])``, each checked
    against ``types`` (int: 0 ≤ v < 2⁶³; float: finite; str: ≤ ``longest`` characters;
    ``Scalar``: null, an int within int64, a finite float or such a str). Anything else —
    garbled, forged, of another kind — is a BadRequest, never a server error."""
    if not isinstance(cursor, str):
        raise BadRequest(BAD_CURSOR)
    try:
        raw = cursor.encode("ascii")
        values = json.loads(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise BadRequest(BAD_CURSOR) from None
    if not isinstance(values, list) or len(values) != len(types) + 1 or values[0] != kind:
        raise BadRequest(BAD_CURSOR)
    out = []
    for value, want in zip(values[1:], types):
        if want is Scalar:
            if value is not None and not _fits(value, (str, float), longest) \
                    and not _fits(value, (int,), longest, low=-(1 << 63)):
                raise BadRequest(BAD_CURSOR)
        elif want is float and type(value) is int and _fits(value, (int,), longest,
                                                              low=-(1 << 63)):
            value = float(value)
        elif not _fits(value, (want,), longest):
            raise BadRequest(BAD_CURSOR)
        out.append(value)
    return out


def _fits(value, types: tuple[type, ...], longest: int, low: int = 0) -> bool:
    kind = type(value)
    if kind not in types:
        return False
    if kind is int:
        return low <= value < 1 << 63
    if kind is float:
        return math.isfinite(value)
    if kind is str:
        return len(value) <= longest
    return False


def last_seen(cursor: str | None, kind: str, want: type = str):
    """The one value of a single-value cursor (the last id or number a page ended on);
    None without a cursor (the first page)."""
    return decode_cursor(cursor, kind, (want,))[0] if cursor else None
