"""The event catalogue as Markdown, generated from the registry (``python -m server events``)."""
from __future__ import annotations

from handlers.base import EventSpec
from services.replay import UNNUMBERED_PUSHES


def _type(schema: dict, defs: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        shape = defs.get(name, {})
        # a definition that says nothing of its shape (pydantic's JsonValue): any JSON
        return name if set(shape) - {"title", "description"} else "any"
    if "enum" in schema:
        return " \\| ".join(repr(v).replace("'", '"') for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        parts = [_type(s, defs) for s in schema["anyOf"]]
        return " \\| ".join(p for p in parts if p != "null") + ("?" if "null" in parts else "")
    kind = schema.get("type")
    if kind == "array":
        return f"[{_type(schema.get('items', {}), defs)}]"
    if kind is None:
        return "any"
    return str(kind)


def payload_summary(spec: EventSpec) -> str:
    schema = spec.model.model_json_schema()
    props = schema.get("properties", {})
    if not props:
        return "—"
    required = set(schema.get("required", []))
    defs = schema.get("$defs", {})
    parts = []
    for name, prop in props.items():
        opt = "" if name in required else "?"
        parts.append(f"`{name}{opt}`: {_type(prop, defs)}")
    if spec.idempotent:  # docs/DELIVERY.md: a retry with it is answered, not applied again
        parts.append("`requestId?`: string")
    return ", ".join(parts)


def render(specs: list[EventSpec]) -> str:
    lines = [
        "Every push carries `room`, `seq` and `epoch` (docs/DELIVERY.md) except those marked "
        "*(not numbered)*; every mutating event takes an optional `requestId`.",
        "",
        "| event | payload | who may call | ack `data` | pushes | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for spec in specs:
        emits = ", ".join(f"`{e}`" + (" *(not numbered)*" if e in UNNUMBERED_PUSHES else "")
                          for e in spec.emits) or "—"
        lines.append(f"| `{spec.name}` | {payload_summary(spec)} | {spec.access} | "
                     f"{spec.ack or '—'} | {emits} | {spec.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
