"""The built-in offline analyst: used when no ANTHROPIC_API_KEY is set.

Not a language model, and it says so in every reply. It reads the question for a few
intents (summary, missing values, columns, statistics, top talkers, protocols,
conversations, one named column) and answers from the figures in the grounding context:
CSV column profiles, capture statistics, text excerpts. Deterministic: the same question
over the same data gives the same words, streamed in the same chunks.
"""
from __future__ import annotations

import re

from services.ai import ChatRequest, ContextItem, Final, OnText, Provider, estimate_tokens
from services.clock import Clock, SystemClock

MODEL = "offline-analyst"
INTRO = "**Offline analyst** (built in, not an AI model): "
INTENTS = {
    "writers": r"who (wrote|writes|sent|posted|talked)|most (messages|active)|"
               r"most often|chattiest|participants?|members?",
    "when": r"\bwhen\b|busiest|activity|over time|per month|which (month|day|year)|period",
    "count": r"how many|number of|count",
    "missing": r"missing|null|empty|blank|\bnan\b|incomplete|gaps?\b",
    "talkers": r"talker|endpoint|top hosts?|top ips?|busiest|chattiest|who (talks|sends)",
    "protocols": r"protocol|services?\b|ports?\b",
    "conversations": r"conversation|flows?\b|connections?|streams?\b|sessions?\b",
    "columns": r"columns?|fields?|schema|types?\b|headers?",
    "stats": r"average|mean|minimum|maximum|\bmin\b|\bmax\b|stat|range|numeric|distribution",
    "summary": r"summar|overview|describe|what('s| is) in|tell me about|explain",
}
CHUNK_WORDS = 3


def n(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.2f}"
    if isinstance(value, (int, float)):
        return f"{int(value):,}"
    return str(value)


def intents(question: str) -> list[str]:
    low = question.lower()
    found = [name for name, pattern in INTENTS.items() if re.search(pattern, low)]
    return found or ["summary"]


# -- CSV ----------------------------------------------------------------------------------

def _named_columns(question: str, columns: list[dict]) -> list[dict]:
    low = question.lower()
    return [c for c in columns
            if len(c["name"]) > 1 and re.search(r"(?<![\w])" + re.escape(c["name"].lower())
                                                 + r"(?![\w])", low)]


def _column_line(c: dict) -> str:
    parts = [f"`{c['name']}` ({c['type']}): {n(c['count'])} values"]
    if c["missing"]:
        parts.append(f"{n(c['missing'])} missing")
    parts.append(f"{n(c['distinct'])}{'+' if c.get('distinctAtLeast') else ''} distinct")
    if c["type"] == "number" and "mean" in c:
        parts.append(f"min {n(c['min'])}, max {n(c['max'])}, mean {n(c['mean'])}")
    elif c["type"] == "datetime" and "min" in c:
        parts.append(f"from {c['min']} to {c['max']}")
    elif c.get("top"):
        parts.append("most common: " + ", ".join(f"{t['value']!r} ({n(t['count'])})"
                                                 for t in c["top"][:3]))
    return "- " + "; ".join(parts)


def _csv(item: ContextItem, wanted: list[str], question: str) -> list[str]:
    d = item.data
    if "error" in d:
        return [f"**{item.name}**: I could not read it as CSV ({d['error']})."]
    cols = d["columns"]
    head = (f"**{item.name}** is a CSV file with {n(d['rows'])} rows and {len(cols)} columns"
            + (f" ({n(d['badRows'])} malformed rows skipped)" if d.get("badRows") else "") + ".")
    out = [head]
    named = _named_columns(question, cols)
    if named:
        out += [_column_line(c) for c in named]
    if "missing" in wanted:
        gaps = sorted((c for c in cols if c["missing"]), key=lambda c: (-c["missing"], c["name"]))
        if gaps:
            out.append(f"{len(gaps)} of {len(cols)} columns have missing values:")
            out += [f"- `{c['name']}`: {n(c['missing'])} missing of {n(d['rows'])} rows "
                    f"({100 * c['missing'] / max(d['rows'], 1):.1f}%)" for c in gaps]
        else:
            out.append("No column has missing values.")
    if "columns" in wanted and not named:
        out.append("Columns:")
        out += [_column_line(c) for c in cols]
    if "stats" in wanted and not named:
        numeric = [c for c in cols if c["type"] in ("number", "datetime") and "min" in c]
        if numeric:
            out.append("Ranges:")
            out += [_column_line(c) for c in numeric]
        else:
            out.append("It has no numeric or date columns.")
    if "summary" in wanted and not named:
        kinds: dict[str, list[str]] = {}
        for c in cols:
            kinds.setdefault(c["type"], []).append(f"`{c['name']}`")
        out.append("Column types: " + "; ".join(f"{k}: {', '.join(v)}"
                                                 for k, v in sorted(kinds.items())) + ".")
        gaps = [f"`{c['name']}` ({n(c['missing'])})" for c in cols if c["missing"]]
        out.append(f"Missing values in: {', '.join(gaps)}." if gaps
                   else "No column has missing values.")
        out += [_column_line(c) for c in cols[:8]]
        if len(cols) > 8:
            out.append(f"…and {len(cols) - 8} more columns.")
    return out


# -- captures -----------------------------------------------------------------------------

def _pcap(item: ContextItem, wanted: list[str]) -> list[str]:
    d = item.data
    if "error" in d:
        return [f"**{item.name}**: I could not read it as a capture ({d['error']})."]
    s = d["summary"]
    line = (f"**{item.name}** is a packet capture with {n(s['packets'])} packets and "
            f"{n(s['bytes'])} bytes")
    if s.get("firstTime"):
        line += (f", from {s['firstTime']} to {s['lastTime']} "
                 f"({n(s.get('durationSeconds') or 0.0)} s)")
    line += f"; link type {', '.join(s.get('linkTypes') or ['unknown'])}."
    out = [line]
    if s.get("truncated"):
        out.append("The file is cut short: the last packet is incomplete.")
    talkers, protocols = d.get("topTalkers", []), d.get("protocols", [])
    conversations = d.get("conversations", [])
    summary = "summary" in wanted
    if "talkers" in wanted or summary:
        if talkers:
            out.append("Top talkers (IP endpoints by bytes, sent + received):")
            out += [f"{i}. {t['address']}: {n(t['bytes'])} bytes in {n(t['packets'])} packets"
                    + (f" (sent {n(t['txBytes'])}, received {n(t['rxBytes'])})"
                       if "txBytes" in t else "")
                    for i, t in enumerate(talkers[:3 if summary else 5], 1)]
        else:
            out.append("It has no IP traffic, so no talkers to rank.")
    if "protocols" in wanted or summary:
        if protocols:
            out.append("Protocols (packets, bytes): " + ", ".join(
                f"{p['name']} {n(p['packets'])} / {n(p['bytes'])}"
                for p in protocols[:4 if summary else 10]) + ".")
        if d.get("services") and not summary:
            out.append("By well-known port: " + ", ".join(
                f"{x['name']} {n(x['packets'])} packets" for x in d["services"]) + ".")
    if "conversations" in wanted or summary:
        if conversations:
            total = d.get("conversationCount", len(conversations))
            out.append(f"{n(total)} TCP/UDP conversations; the largest:")
            out += [f"- {c['protocol']} {c['a']} ↔ {c['b']}: {n(c['bytes'])} bytes in "
                    f"{n(c['packets'])} packets" for c in conversations[:3 if summary else 5]]
        elif "conversations" in wanted:
            out.append("It has no TCP or UDP conversations.")
    return out


# -- imported chats -----------------------------------------------------------------------

def _chat(item: ContextItem, wanted: list[str]) -> list[str]:
    d = item.data
    people = d["participants"]
    out = [f"**{item.name}** is a {d['platform']} chat with {n(d['messageCount'])} messages "
           f"from {len(people)} participants, from {d['firstTime'] or '—'} to "
           f"{d['lastTime'] or '—'}"
           + (f" ({n(d['systemCount'])} system notices besides)." if d["systemCount"]
              else ".")]
    summary = "summary" in wanted
    if people and {"writers", "talkers", "count"} & set(wanted) or summary and people:
        top = people[0]
        share = 100 * top["messages"] / d["messageCount"] if d["messageCount"] else 0
        out.append(f"{top['name']} wrote the most: {n(top['messages'])} messages "
                   f"({share:.0f}%).")
        out += [f"- {p['name']}: {n(p['messages'])}" for p in people[:10]]
    activity = d.get("activity") or []
    if activity and ("when" in wanted or summary):
        busiest = max(activity, key=lambda a: (a[1], a[0]))
        out.append(f"The busiest month was {busiest[0]} with {n(busiest[1])} messages; "
                   "per month: " + ", ".join(f"{m} {n(c)}" for m, c in activity[-12:]) + ".")
    hits = d.get("relevant") or []
    if hits:
        out.append("Messages that match the question best:")
        out += [f"- {h['time']} {h['author']}: “{h['text'][:200]}”" for h in hits[:5]]
    return out


# -- the rest -----------------------------------------------------------------------------

def _text(item: ContextItem) -> list[str]:
    d = item.data
    excerpt = " ".join(d.get("excerpt", "").split())[:400]
    out = [f"**{item.name}** is a text file of {n(d.get('lines', 0))} lines "
           f"({n(d.get('size', 0))} bytes)."]
    if excerpt:
        out.append(f"It begins: “{excerpt}{'…' if len(excerpt) == 400 else ''}”")
    return out


def _other(item: ContextItem) -> list[str]:
    d = item.data
    return [f"**{item.name}** ({d.get('mime', 'unknown type')}, {n(d.get('size', 0))} bytes): "
            "I can't read inside this type of file; I only know its name, type and size."]


def compose(request: ChatRequest) -> str:
    question = request.question
    if not request.context:
        text = (INTRO + "I answer only from the data attached to a message, and this one has "
                "none. Attach a CSV file, a packet capture or a text file (or send with the "
                "project's files included) and ask, for example, “summarise this file”, “which "
                "columns have missing values” or “who are the top talkers”. For free-form "
                "answers from a language model, an administrator can set ANTHROPIC_API_KEY.")
        if request.omitted:
            text += "\n\n" + _omitted(request.omitted)
        return text
    wanted = intents(question)
    blocks = [INTRO + f"here is what the data says ({', '.join(wanted)})."]
    for item in request.context:
        lines = (_csv(item, wanted, question) if item.kind == "csv"
                 else _pcap(item, wanted) if item.kind == "pcap"
                 else _chat(item, wanted) if item.kind == "chat"
                 else _text(item) if item.kind == "text" else _other(item))
        if item.truncated:
            lines.append("(Its details were cut to fit the context budget.)")
        blocks.append("\n".join(lines))
    if request.omitted:
        blocks.append(_omitted(request.omitted))
    return "\n\n".join(blocks)


def _omitted(omitted) -> str:
    return "Left out: " + ", ".join(f"{o.get('name') or o.get('fileId')} ({o['reason']})"
                                    for o in omitted) + "."


def chunks(text: str) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i:i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]


class OfflineAnalyst(Provider):
    name = "offline"
    model = MODEL

    def __init__(self, delay_s: float = 0.012, clock: Clock | None = None):
        self.delay_s = delay_s
        self.clock = clock or SystemClock()

    async def reply(self, request: ChatRequest, on_text: OnText) -> Final:
        text = compose(request)
        for piece in chunks(text):
            await on_text(piece)
            if self.delay_s:
                await self.clock.sleep(self.delay_s)
        read = sum(estimate_tokens(t.text) for t in request.history) + \
            sum(item.tokens for item in request.context)
        return Final(stop_reason="end_turn", model=MODEL,
                     usage={"inputTokens": read, "outputTokens": estimate_tokens(text)})
