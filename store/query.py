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


def encode_cursor(values: list) -> str:
    raw = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: tuple[type, ...]) -> list:
    """The values of a cursor made by ``encode_cursor([kind, *values])``, each checked
    against ``types`` (int: 0 ≤ v < 2⁶³; float: finite; str: ≤ 200 characters). Anything
    else — garbled, forged, of another kind — is a BadRequest, never a server error."""
    try:
        raw = cursor.encode("ascii")
        values = json.loads(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise BadRequest(BAD_CURSOR) from None
    if not isinstance(values, list) or len(values) != len(types) + 1 or values[0] != kind:
        raise BadRequest(BAD_CURSOR)
    out = []
    for value, want in zip(values[1:], types):
        if want is float and type(value) in (int, float) and math.isfinite(value):
            value = float(value)
        elif want is int and type(value) is int and 0 <= value < 1 << 63:
            pass
        elif want is str and type(value) is str and len(value) <= 200:
            pass
        else:
            raise BadRequest(BAD_CURSOR)
        out.append(value)
    return out
