"""The floor for bench/fanout.py: a bare aiohttp + python-socketio server doing the same
room broadcast as this project's ``project:broadcast``, and nothing else.

Same wire contract as the real server, so the benchmark's clients cannot tell them apart:
``project:join {id}`` enters room ``project:<id>``; ``project:broadcast {id, event, data}``
pushes ``project:broadcast {projectId, userId, event, data}`` to that room, skipping the
sender, and acks ``{"ok": true, "data": null}``. No auth, validation, rate limit, metrics
or logging: that is exactly the overhead the benchmark puts a number on.

The AsyncServer is configured like ``server.realtime`` (aiohttp, same ping and buffer
settings; ``AsyncRedisManager`` when REDIS_URL is set), so a two-instance run goes through
Redis pub/sub just as the real cluster does.

    HOST=127.0.0.1 PORT=8100 [REDIS_URL=redis://127.0.0.1:6379/0] python -m bench.bare_server

With ``ANTHROPIC_BASE_URL`` set it also streams chat replies (``_chat``), the floor for
bench/chat_stream.py.
"""
from __future__ import annotations

import os

import socketio
from aiohttp import web


def create_app(redis_url: str | None = None) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url, channel="bench:sio") if redis_url else None
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=[],
        max_http_buffer_size=16 << 20,
        ping_interval=20,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )
    users: dict[str, str] = {}

    @sio.event
    async def connect(sid, environ, auth=None):
        # The real server names the sender by user id; a stand-in of the same shape.
        user_id = auth.get("userId") if isinstance(auth, dict) else None
        users[sid] = user_id or sid
        return True

    @sio.event
    async def disconnect(sid, reason=None):
        users.pop(sid, None)

    @sio.on("project:join")
    async def join(sid, data):
        await sio.enter_room(sid, f"project:{data['id']}")
        return {"ok": True, "data": {"id": data["id"]}}

    @sio.on("project:broadcast")
    async def broadcast(sid, data):
        project_id = data["id"]
        await sio.emit("project:broadcast",
                       {"projectId": project_id, "userId": users.get(sid), "event": data["event"],
                        "data": data.get("data")},
                       to=f"project:{project_id}", skip_sid=sid)
        return {"ok": True, "data": None}

    if os.environ.get("ANTHROPIC_BASE_URL"):
        _chat(sio)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "instance": "bare"})

    app = web.Application()
    sio.attach(app)
    app.router.add_get("/health", health)
    return app


def _chat(sio: socketio.AsyncServer) -> None:
    """The floor for bench/chat_stream.py: ``message:send`` acks at once and streams the
    model's text to the sender as ``message:delta`` straight from the SDK (the same client
    as the real server's), then ``message:done``. The request is set beforehand, untimed,
    with ``bare:body`` (the real server's last request, as the fake received it)."""
    from services.ai.anthropic_provider import sdk_client

    sdk = sdk_client(os.environ.get("ANTHROPIC_API_KEY"), os.environ["ANTHROPIC_BASE_URL"])
    bodies: dict[str, dict] = {}
    count = iter(range(1, 1 << 62))

    @sio.on("bare:body")
    async def body(sid, data):
        bodies[sid] = {k: data[k] for k in ("model", "max_tokens", "messages", "system")
                       if k in data}
        return {"ok": True, "data": None}

    @sio.on("message:send")
    async def send(sid, data):
        mid = f"bare{next(count)}"

        async def stream() -> None:
            index = 0
            async with await sdk.messages.create(stream=True, **bodies[sid]) as events:
                async for ev in events:
                    if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                        await sio.emit("message:delta", {"messageId": mid, "index": index,
                                                         "text": ev.delta.text}, to=sid)
                        index += 1
            await sio.emit("message:done", {"messageId": mid}, to=sid)

        sio.start_background_task(stream)
        return {"ok": True, "data": {"replyId": mid}}


def main() -> None:
    app = create_app(os.environ.get("REDIS_URL") or None)
    web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"),
                port=int(os.environ.get("PORT", "8100")), print=None, access_log=None,
                shutdown_timeout=5)


if __name__ == "__main__":
    main()
