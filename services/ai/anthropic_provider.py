"""Anthropic's Messages API through the official SDK (``AsyncAnthropic``).

The reply is read as the SDK's raw event stream (``messages.create(stream=True)``), not
through its ``messages.stream`` helper: the helper rebuilds a snapshot of the whole message
and a text event for every delta, which the server does not need (it keeps the text itself)
and which doubles the interpreter time per token on the event loop every viewer shares.
Errors are the SDK's either way (an ``error`` event raises ``APIStatusError``).

The SDK sends through its aiohttp transport (``DefaultAioHttpClient``) rather than its
default httpx one: aiohttp is the server's own HTTP stack, and its C parser reads a stream
in about two thirds of the interpreter time (measured: 35 against 55 ms for a 500-delta
reply; first text 0.6–1.2 ms sooner), time every viewer on the instance shares.

Retries are ours, not the SDK's (its ``max_retries`` is 0): the SDK honours any
``retry-after`` however long, so a 429 asking for an hour would silently hold the reply.
Here a 429/5xx/529 or a refused connection is retried at most ``ANTHROPIC_MAX_RETRIES``
times and only before any text was streamed, waiting what ``retry-after-ms``/``retry-after``
asks up to ``ANTHROPIC_RETRY_MAX_WAIT_S`` (longer: fail at once, saying when to retry).
An attempt never hangs: ``ANTHROPIC_TIMEOUT_S`` bounds connecting and each silence between
stream chunks (httpx timeouts), ``ANTHROPIC_REPLY_TIMEOUT_S`` the whole reply. An ``error``
event mid-stream ends the reply with what was streamed kept.
"""
from __future__ import annotations

import asyncio
import logging

import anthropic

try:  # the SDK's HTTP client: httpx2 in anthropic 2.x, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx  # type: ignore[no-redef]  # the same client under its older name

from services.ai import ChatRequest, Final, OnText, Provider, ProviderError

log = logging.getLogger("services.ai.anthropic")

SYSTEM = (
    "You are the analyst of a collaborative data workspace. Answer the user's questions "
    "about their data concisely and accurately, using the files below when they are "
    "relevant. Quote figures from the profiles and summaries exactly; when something is "
    "not in the data you were given, say so instead of guessing.")


def system_prompt(request: ChatRequest) -> str:
    parts = [SYSTEM]
    for item in request.context:
        parts.append(f'<file id="{item.file_id}" name="{item.name}" kind="{item.kind}">\n'
                     f"{item.text}\n</file>")
    if request.omitted:
        names = ", ".join(f"{o.get('name', o.get('fileId'))} ({o['reason']})"
                          for o in request.omitted)
        parts.append(f"Files left out of this context: {names}.")
    return "\n\n".join(parts)


def retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name)) / scale)
        except (TypeError, ValueError):
            continue
    return None


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, anthropic.APITimeoutError):
        return False  # an attempt that timed out already spent its whole budget
    if isinstance(exc, anthropic.APIConnectionError):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        # Status 200 is an ``error`` event inside the stream: never retried (text may be out).
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def map_error(exc: Exception, waited_out: float | None = None) -> ProviderError:
    wait = waited_out if waited_out is not None else retry_after(exc)
    if isinstance(exc, anthropic.RateLimitError):
        when = f"in {wait:.0f} s" if wait else "shortly"
        return ProviderError("rate_limited", "rate_limited",
                             f"the AI provider is rate-limiting this server; try again {when}",
                             retry_after=wait)
    kind = getattr(exc, "type", None)
    if isinstance(exc, anthropic.OverloadedError) or kind == "overloaded_error":
        return ProviderError("unavailable", "overloaded",
                             "the AI provider is overloaded; try again shortly", retry_after=wait)
    if isinstance(exc, (anthropic.AuthenticationError, anthropic.PermissionDeniedError,
                        anthropic.CredentialsError)):
        return ProviderError("unavailable", "provider_auth",
                             "the AI provider refused this server's API key; an administrator "
                             "must fix ANTHROPIC_API_KEY")
    if isinstance(exc, anthropic.NotFoundError):
        return ProviderError("unavailable", "provider_config",
                             "the AI provider does not know the configured model "
                             "(ANTHROPIC_MODEL)")
    if isinstance(exc, anthropic.BadRequestError):
        detail = getattr(exc, "api_message", None) or "the request was refused"
        return ProviderError("bad_request", "provider_rejected",
                             f"the AI provider refused the request: {detail}")
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError("unavailable", "timeout", "the AI provider did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("unavailable", "provider_unreachable",
                             "the AI provider could not be reached")
    status = getattr(exc, "status_code", None)
    return ProviderError("unavailable", "provider_error",
                         f"the AI provider failed ({kind or f'HTTP {status}'})", retry_after=wait)


def sdk_client(api_key: str | None, base_url: str | None, **options) -> anthropic.AsyncAnthropic:
    """The SDK client as the server makes it (the chat benchmark's baseline makes it here
    too): no SDK retries, the aiohttp transport."""
    return anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                    http_client=anthropic.DefaultAioHttpClient(), **options)


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, settings):
        self.model = settings.anthropic_model
        self.max_retries = settings.anthropic_max_retries
        self.max_wait = settings.anthropic_retry_max_wait_s
        self.reply_timeout = settings.anthropic_reply_timeout_s
        attempt = settings.anthropic_timeout_s
        self.client = sdk_client(settings.anthropic_api_key, settings.anthropic_base_url,
                                 timeout=anthropic.Timeout(attempt, connect=min(attempt, 10.0)))

    async def reply(self, request: ChatRequest, on_text: OnText) -> Final:
        params = {"model": self.model, "max_tokens": request.max_tokens,
                  "system": system_prompt(request),
                  "messages": [{"role": t.role, "content": t.text} for t in request.history]}
        streamed = False
        try:
            async with asyncio.timeout(self.reply_timeout):
                attempt = 0
                while True:
                    try:
                        model, stop, usage = self.model, None, {}
                        async with await self.client.messages.create(stream=True,
                                                                     **params) as events:
                            async for ev in events:
                                if ev.type == "content_block_delta":
                                    if ev.delta.type == "text_delta":
                                        streamed = True
                                        await on_text(ev.delta.text)
                                elif ev.type == "message_start":
                                    model = ev.message.model
                                    usage["inputTokens"] = ev.message.usage.input_tokens
                                elif ev.type == "message_delta":
                                    stop = ev.delta.stop_reason
                                    usage["outputTokens"] = ev.usage.output_tokens
                        return Final(stop_reason=stop or "end_turn", model=model, usage=usage)
                    except anthropic.APIError as exc:
                        if streamed or attempt >= self.max_retries or not _retryable(exc):
                            raise
                        wait = retry_after(exc)
                        if wait is None:
                            wait = min(0.5 * 2 ** attempt, 8.0)
                        if wait > self.max_wait:
                            raise map_error(exc, wait) from exc
                        attempt += 1
                        log.info("anthropic retry", extra={"fields": {
                            "attempt": attempt, "wait": wait,
                            "status": getattr(exc, "status_code", None)}})
                        await asyncio.sleep(wait)
        except TimeoutError:
            raise ProviderError("unavailable", "timeout",
                                f"no complete reply within {self.reply_timeout:.0f} s") from None
        except httpx.TimeoutException:
            # A silence mid-stream surfaces as the HTTP client's own timeout, unwrapped.
            raise ProviderError("unavailable", "timeout",
                                "the AI provider stopped sending mid-reply") from None
        except httpx.TransportError:
            raise ProviderError("unavailable", "provider_unreachable",
                                "the connection to the AI provider broke mid-reply") from None
        except (anthropic.APIError, anthropic.CredentialsError) as exc:
            raise map_error(exc) from exc

    async def close(self) -> None:
        await self.client.close()
