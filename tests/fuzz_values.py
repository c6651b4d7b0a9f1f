"""Payload values for the event fuzzer (``tests/integration/test_fuzz.py``), generated from
an event's pydantic model.

One catalogue per type: ``boundaries`` lists the valid, boundary and hostile values of a
field (from its type and constraints: one past each bound, beyond 2⁵³ and int64, NaN and
infinities, lone surrogates, empty and very long strings, times out of range, forged
cursors, ids of resources that exist and do not, wrong types); ``values`` is the same as a
hypothesis strategy, mixed with random values of the type and arbitrary JSON;
``payloads`` draws whole payloads (the valid sample, the sample with one field changed or
dropped, a payload drawn field by field with unknown fields, or no object at all).
``paths`` walks a model into its nested models, so the sweep reaches ``filter.tcpStream``.
"""
from __future__ import annotations

import base64
import json
import math
import types
import typing
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from handlers.base import MAX_INT, EventSpec
from store.ids import new_id
from tests.client import unique_email
from tests.world import Res


def forged_cursor(value) -> str:
    """What a cursor looks like (base64url JSON), holding ``value``."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def nested(depth: int) -> list:
    out: list = []
    for _ in range(depth - 1):
        out = [out]
    return out


TEXTS = ["", " ", "\x00", "\ud800", "\u202egnp.exe😀", "../../etc/passwd", "'; DROP TABLE x; --",
         '{"$gt": ""}', "$where", "x" * 100_000, "9" * 30, "²٣", "%_\\", "a.b.c", "__proto__"]
INTS = [0, -1, MAX_INT, MAX_INT + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**99]
FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0]
TIMES = ["2024-03-12T09:16:00Z", "2024-03-12", "0001-01-01T00:00:00+01:00",
         "9999-12-31T23:59:59-01:00", "0001-01-01", "2024-02-30T00:00:00Z", "now", 1e20,
         -1e20, 0, "2024-03-12T09:16:00+25:00"]
CURSORS = ["not a cursor!", "²٣", "9" * 20, "AAAA", forged_cursor({"a": 1}), forged_cursor([]),
           forged_cursor(["x", 1]), base64.urlsafe_b64encode(b'["p",NaN]').decode(),
           base64.urlsafe_b64encode(b'["r",1e999,"x"]').decode(), forged_cursor(["h", 2**64]),
           forged_cursor(["l", -1]), forged_cursor(["f", "0" * 24]),
           forged_cursor(["r", {"$gt": ""}, "x"]), forged_cursor(["bytes", "x", 0])]
# Values of a table cell (or any JSON a payload relays).
CELLS = [10**99, -(2**63) - 1, MAX_INT + 1, 1e308, -0.0, "x" * 100_001, "", True, [1], {"a": 1},
         nested(10), "2024-13-45", "2024-03-12T09:16:00+25:00", None, b"\x00\xff"]
# Values of the wrong type for any field, and JSON a store might take for an operator.
# Around the dispatcher's nesting limit (64) and far past it.
DEEP = [nested(64), nested(65), nested(300)]
# Values of the wrong type for any field (bytes travel as Socket.IO binary attachments).
WRONG = [None, True, 1.5, "7", [1, "a"], {"$gt": ""}, {"a.b": 1, "": 2}, b"\x00\xff"]


class Pools:
    """Names the values draw from: the event's resources (less ``spared`` kinds), another
    project's, ids of nothing, emails, and the columns of the event's table."""

    KINDS = ("project", "table", "row", "file", "capture", "conversation", "generating",
             "chat", "export", "member")

    def __init__(self, mine: Res, theirs: Res, spared: set[str]):
        # Ids of every kind (so an id of another kind is tried too); of another project
        # and of nothing a few (the authorization matrix tries every kind of those).
        self.ids = ([getattr(mine, k) for k in self.KINDS if k not in spared] +
                    [theirs.table, new_id(), "x" * 65])
        self.emails = [mine.outsider_email, mine.world.login_email, unique_email("fuzz"),
                       "a@b", "x" * 250 + "@example.com"]
        self.columns = ["name", "n", "missing"]


def _bounds(info: FieldInfo | None) -> tuple[int | None, int | None, int | None]:
    """(ge, le, max_length) of a field."""
    meta = info.metadata if info else []
    pick = [next((getattr(m, a) for m in meta if getattr(m, a, None) is not None), None)
            for a in ("ge", "le", "max_length")]
    return pick[0], pick[1], pick[2]


def unwrap(annotation) -> list:
    """The members of ``annotation``: a union's, or itself (Annotated stripped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in unwrap(a)]
    return [annotation]


def boundaries(annotation, info: FieldInfo | None, name: str, pools: Pools) -> list:
    """A field's valid, boundary and hostile values, then values of the wrong type."""
    out: list = []
    for member in unwrap(annotation):
        out += _typed(member, info, name, pools)
    return out + [v for v in WRONG if v not in out]


def _typed(kind, info: FieldInfo | None, name: str, pools: Pools) -> list:
    origin = typing.get_origin(kind)
    ge, le, longest = _bounds(info)
    if origin is typing.Literal:
        return [*typing.get_args(kind), "nope"]
    if origin is list:
        item = typing.get_args(kind)[0]
        one = plain(item, name)
        return [[], [one], [one] * ((longest or 200) + 1), [None], "not a list"]
    if origin is dict or kind is dict or kind is Any:
        # each column (a table's, and one it has not) with each cell value in turn
        return [{column: cell} for column in pools.columns for cell in CELLS] + [
            {"$set": 1, "a\x00b": 2, "": 3}, {"a.b": {"$gt": ""}}, *DEEP]
    if kind is type(None):
        return [None]
    if kind is bool:
        return [True, False]
    if kind is int:
        low, high = (ge if ge is not None else -MAX_INT), (le if le is not None else MAX_INT)
        return [low, low - 1, high, high + 1, *INTS]
    if kind is float:
        return [ge or 0.001, le or 1e9, *FLOATS]
    if kind is datetime:
        return TIMES
    if kind is str:
        extra = ["x" * longest, "x" * (longest + 1)] if longest else []
        if name == "cursor":
            return [*CURSORS, *extra]
        if name == "email":
            return [*pools.emails, *extra]
        if name in ("column", "sort") or name.endswith("Columns"):
            return [*pools.columns, *TEXTS]
        if name == "id" or name.endswith("Id") or name in ("chats", "attachments"):
            return [*pools.ids, "", "\ud800"]
        return [*TEXTS, *extra]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [minimal(kind), {}]
    return WRONG


def plain(annotation, name: str = "") -> Any:
    """A valid value of a type, for the base of a nested model (a column filter's column is
    one the table has)."""
    member = next(m for m in unwrap(annotation) if m is not type(None))
    origin = typing.get_origin(member)
    if origin is typing.Literal:
        return typing.get_args(member)[0]
    if origin is list:
        return []
    if isinstance(member, type) and issubclass(member, BaseModel):
        return minimal(member)
    return {bool: False, int: 1, float: 1.0, datetime: "2024-03-12T09:16:00Z",
            str: "n" if name == "column" else "x"}.get(member, "x")


def minimal(model: type[BaseModel]) -> dict:
    return {info.alias or name: plain(info.annotation, name)
            for name, info in model.model_fields.items() if info.is_required()}


# -- the sweep: every field of every (nested) model ----------------------------------------

Path = tuple[str | int, ...]


Where = tuple[Path, Any, FieldInfo, str, dict]


def paths(model: type[BaseModel], base: dict, at: Path = ()) -> Iterator[Where]:
    """(path, annotation, field, name, the payload to set it in) for each field, nested
    models included: a nested model's fields are reached through a minimal valid one."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        yield (*at, key), info.annotation, info, name, base
        for member in unwrap(info.annotation):
            inner = member
            index: Path = ()
            if typing.get_origin(member) is list:
                inner, index = typing.get_args(member)[0], (0,)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                holder = set_path(base, (*at, key), [minimal(inner)] if index else
                                  minimal(inner))
                yield from paths(inner, holder, (*at, key, *index))


def set_path(payload: dict, path: Path, value) -> dict:
    """A copy of ``payload`` with ``value`` at ``path`` (keys and list indexes)."""
    def put(node, rest):
        if not rest:
            return value
        head, tail = rest[0], rest[1:]
        if isinstance(head, int):
            items = list(node) if isinstance(node, list) else []
            items[head:head + 1] = [put(items[head] if head < len(items) else {}, tail)]
            return items
        out = dict(node) if isinstance(node, dict) else {}
        out[head] = put(out.get(head, {}), tail)
        return out

    return put(payload, path)


# -- hypothesis strategies -----------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.sampled_from(INTS) | st.integers() |
           st.sampled_from(FLOATS) | st.floats() | st.sampled_from(TEXTS) | st.text(max_size=30) |
           st.binary(max_size=8))
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                        st.dictionaries(st.text(max_size=10), inner, max_size=4),
                        max_leaves=12) | st.sampled_from(WRONG + DEEP)


def values(annotation, info: FieldInfo | None, name: str, pools: Pools):
    """A field's values: its boundary catalogue, random values of its type, or any JSON."""
    random = [_random(m, info) for m in unwrap(annotation)]
    return st.one_of(st.sampled_from(boundaries(annotation, info, name, pools)),
                     *[r for r in random if r is not None], anything)


def _random(kind, info: FieldInfo | None):
    ge, le, longest = _bounds(info)
    if kind is int:
        low = ge if ge is not None else -MAX_INT
        return st.integers(low, le if le is not None else MAX_INT)
    if kind is float:
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind is str:
        return st.text(max_size=(longest or 50) + 2)
    if kind is datetime:
        return st.datetimes().map(datetime.isoformat)
    return None


@st.composite
def model_payloads(draw, model: type[BaseModel], pools: Pools):
    """A payload drawn field by field: most fields present (required ones more often),
    sometimes an unknown one."""
    out = {}
    for name, info in model.model_fields.items():
        if draw(st.integers(0, 9)) < (9 if info.is_required() else 5):
            out[info.alias or name] = draw(values(info.annotation, info, name, pools))
    if draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(TEXTS) | st.text(max_size=10))] = draw(anything)
    return out


@st.composite
def payloads(draw, spec: EventSpec, valid: dict, pools: Pools):
    """The valid sample, the sample with one (possibly nested) field changed or dropped, a
    payload drawn from the model, or no object at all."""
    kind = draw(st.sampled_from(["sample", "mutant", "mutant", "model", "garbage"]))
    if kind == "sample":
        return valid
    if kind == "garbage":
        return draw(anything)
    where = list(paths(spec.model, valid))
    if kind == "model" or not where:
        return draw(model_payloads(spec.model, pools))
    path, annotation, info, name, base = draw(st.sampled_from(where))
    if len(path) == 1 and draw(st.integers(0, 4)) == 0:
        return {k: v for k, v in base.items() if k != path[0]}
    return set_path(base, path, draw(values(annotation, info, name, pools)))
