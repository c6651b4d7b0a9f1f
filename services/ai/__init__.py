"""AI chat providers behind one small interface.

A provider turns a ``ChatRequest`` (history + grounding context) into streamed text: it
calls ``on_text`` once per piece, in order, and returns the ``Final`` (stop reason, usage).
It raises ``ProviderError`` with a SPEC §2 code and a specific ``reason`` for anything that
ends a reply early; cancelling the task that runs ``reply`` stops it and closes whatever it
had open. A third provider (a local model, say) is one new module plus a line in
``make_provider``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

OnText = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    text: str


@dataclass(frozen=True)
class ContextItem:
    """One file as the reply's grounding: ``text`` is what a model reads, ``data`` the
    structured figures (CSV profile, capture statistics…) the offline analyst reads."""

    file_id: str
    name: str
    kind: str  # csv | pcap | text | other
    text: str
    data: dict
    tokens: int
    truncated: bool = False


@dataclass(frozen=True)
class ChatRequest:
    history: Sequence[Turn]  # oldest first; ends with the user's new message
    context: Sequence[ContextItem] = ()
    omitted: Sequence[dict] = ()  # files left out of the context, with the reason
    max_tokens: int = 1024

    @property
    def question(self) -> str:
        return self.history[-1].text if self.history else ""


@dataclass(frozen=True)
class Final:
    stop_reason: str
    model: str
    usage: dict = field(default_factory=dict)  # inputTokens, outputTokens


class ProviderError(Exception):
    """A reply that could not be (fully) generated. ``code`` is a SPEC §2 code; ``reason``
    says which case (rate_limited, overloaded, provider_auth, timeout…)."""

    def __init__(self, code: str, reason: str, message: str, *,
                 retry_after: float | None = None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.retry_after = retry_after

    def to_dict(self) -> dict:
        out: dict[str, object] = {"code": self.code, "reason": self.reason,
                                  "message": self.message}
        if self.retry_after is not None:
            out["retryAfter"] = round(self.retry_after, 3)
        return out


class Provider(ABC):
    name: str
    model: str

    @abstractmethod
    async def reply(self, request: ChatRequest, on_text: OnText) -> Final: ...

    async def close(self) -> None:
        pass


CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About four characters per token (English prose and code; figures run denser). Used
    for budgets only: never billed, so an estimate that errs high is the safe side."""
    return len(text) // CHARS_PER_TOKEN + 1


def chars_for_tokens(budget: int) -> int:
    """Characters whose estimate surely passes ``budget`` tokens: how much text to read to
    fill it (``estimate_tokens`` never counts fewer than ``len // CHARS_PER_TOKEN``)."""
    return budget * CHARS_PER_TOKEN


def fit_history(turns: Sequence[Turn], budget: int) -> tuple[list[Turn], int]:
    """The newest turns that fit ``budget`` tokens, oldest dropped first; the latest turn
    is always kept. The result starts with a user turn and alternates roles, as the
    Messages API requires. Returns (turns, how many were dropped)."""
    merged: list[Turn] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, merged[-1].text + "\n\n" + turn.text)
        else:
            merged.append(turn)
    kept: list[Turn] = []
    used = 0
    for turn in reversed(merged):
        cost = estimate_tokens(turn.text) + 4
        if kept and used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    while len(kept) > 1 and kept[0].role != "user":
        kept.pop(0)
    return kept, len(merged) - len(kept)


def make_provider(settings, clock=None) -> Provider:
    """Anthropic when a key is configured, else the offline analyst (paced on ``clock``).
    Decided from config before any client exists: the SDK raises while resolving credentials
    when there are none."""
    if settings.anthropic_api_key:
        from services.ai.anthropic_provider import AnthropicProvider

        return AnthropicProvider(settings)
    from services.ai.offline import OfflineAnalyst

    return OfflineAnalyst(delay_s=settings.chat_offline_delay_ms / 1000, clock=clock)
