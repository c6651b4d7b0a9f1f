"""The minimal REST surface: health, readiness, metrics, auth for upload-only clients,
and the web console's static files. Adapters only: decode, call handlers, encode."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from handlers import all_events, auth, files, tables
from handlers.base import bad_payload
from handlers.scopes import ImportedChat
from ingest.csv_tables import write_csv
from server.asyncapi import document_json
from server.drain import DRAIN
from server.keys import METRICS, REALTIME, SETTINGS, services_of
from server.realtime import client_ip
from server.web_security import DOWNLOAD_CSP, download_type
from services import chat_export
from store.errors import EventError, Unauthorized

log = logging.getLogger("server.http")
WEB_DIR = Path(__file__).parent / "web"
READY_PROBE_TIMEOUT_S = 3.0


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except EventError as exc:
        return web.json_response({"ok": False, "error": exc.to_dict()}, status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "bad_request", 413: "too_large"}.get(exc.status,
                                                                           "bad_request")
        return web.json_response({"ok": False, "error": {"code": code, "message": exc.reason}},
                                 status=exc.status)
    except Exception:
        ref = uuid.uuid4().hex[:12]
        log.exception("request failed", extra={"fields": {"ref": ref, "path": request.path}})
        return web.json_response({"ok": False, "error": {
            "code": "internal", "message": f"internal error (ref {ref})", "details": {"ref": ref}}},
            status=500)


def ok(data, status: int = 200) -> web.Response:
    return web.json_response({"ok": True, "data": data}, status=status)


async def read_payload(request: web.Request, model: type[BaseModel]):
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EventError("bad_request", "body must be JSON") from None
    if not isinstance(body, dict):
        raise EventError("bad_request", "body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise bad_payload(exc) from None


async def bearer_user_id(request: web.Request) -> str:
    """The caller's id from a bearer access token that is still good: its sign-in not ended,
    its account there and active (read from the store on every request)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <access token>")
    services = services_of(request.app)
    user = await services.sessions.check(services.tokens.verify_access(token.strip()))
    return user.id


def _ip(request: web.Request) -> str:
    return client_ip(request, request.app[REALTIME].proxies)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "instance": request.app[SETTINGS].instance_id})


async def ready(request: web.Request) -> web.Response:
    """200 when this instance can serve: not draining, the store answers and, with Redis,
    Redis answers and both subscriptions (the Socket.IO manager's pushes, the bus) are
    reading again."""
    if request.app[DRAIN].draining:
        return web.json_response({"status": "draining", "checks": {},
                                  "instance": request.app[SETTINGS].instance_id}, status=503)
    services = services_of(request.app)
    checks: dict[str, str] = {}
    for name, probe in (("store", services.store.ping if services.store else None),
                        ("redis", services.redis.ping if services.redis is not None else None)):
        if probe is None:
            checks[name] = "not configured" if name == "redis" else "not open"
            continue
        try:
            await asyncio.wait_for(probe(), READY_PROBE_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {exc.__class__.__name__}"
    if services.redis is not None:
        manager = request.app[REALTIME].sio.manager
        checks["pushes"] = "ok" if getattr(manager, "listening", True) else "reconnecting"
        checks["bus"] = "ok" if services.bus.listening else "reconnecting"
    healthy = all(v in ("ok", "not configured") for v in checks.values())
    return web.json_response({"status": "ready" if healthy else "unavailable", "checks": checks,
                              "instance": request.app[SETTINGS].instance_id},
                             status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    # Collectors run synchronously: the store-backed figures are brought up to date first.
    await request.app[METRICS].refresh()
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def rest_register(request: web.Request) -> web.Response:
    p = await read_payload(request, auth.RegisterPayload)
    signed = await auth.register(services_of(request.app), p.email, p.password, p.username,
                                 _ip(request))
    return ok(auth.session(signed), status=201)


async def rest_login(request: web.Request) -> web.Response:
    p = await read_payload(request, auth.LoginPayload)
    signed = await auth.login(services_of(request.app), p.who, p.password, _ip(request))
    return ok(auth.session(signed))


async def rest_refresh(request: web.Request) -> web.Response:
    p = await read_payload(request, auth.RefreshPayload)
    signed = await auth.refresh(services_of(request.app), p.refreshToken, _ip(request))
    return ok(auth.session(signed))


async def rest_logout(request: web.Request) -> web.Response:
    user_id = await bearer_user_id(request)
    p = await read_payload(request, auth.LogoutPayload)
    services = services_of(request.app)
    out, sessions = await auth.logout(services, user_id, p.refreshToken)
    await services.sessions.revoke(user_id, sessions, "logout")
    return ok(out)


MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file part


async def upload(request: web.Request) -> web.Response:
    services = services_of(request.app)
    user_id = await bearer_user_id(request)
    limit = int(services.settings.max_upload_mb * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        # Refuse before reading a byte: the client can stop sending at once.
        raise EventError("too_large", f"uploads are limited to "
                         f"{services.settings.max_upload_mb:g} MB", {"limit": limit})
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise EventError("bad_request",
                         "send multipart/form-data with a field named 'file'") from None
    part: aiohttp.BodyPartReader | None = None
    try:
        while (candidate := await reader.next()) is not None:
            if isinstance(candidate, aiohttp.BodyPartReader) and candidate.name == "file":
                part = candidate
                break
            await candidate.release()
    except ConnectionError:
        raise EventError("bad_request", "the upload was cut off before its end") from None
    except (ValueError, aiohttp.ClientError, asyncio.IncompleteReadError,
            HttpProcessingError) as exc:
        raise EventError("bad_request", f"malformed multipart body: {_reason(exc)}") from None
    if part is None:
        raise EventError("bad_request", "multipart field 'file' is required")

    async def chunks():
        try:
            while chunk := await part.read_chunk(files.CHUNK):
                yield chunk
            # Only a body that reaches its closing boundary is complete: a cut-off upload
            # must not be stored as a shorter file.
            while (rest := await reader.next()) is not None:
                await rest.release()
        except (ValueError, ConnectionError, aiohttp.ClientError, asyncio.IncompleteReadError,
                HttpProcessingError):
            raise EventError("bad_request", "the upload was cut off before its end") from None

    record = await files.save_upload(services, user_id=user_id,
                                     project_id=request.match_info["project_id"],
                                     filename=part.filename, chunks=chunks(), limit=limit)
    return ok(files.file_view(record), status=201)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return text.splitlines()[0][:120]


async def download(request: web.Request) -> web.StreamResponse:
    services = services_of(request.app)
    user_id = await bearer_user_id(request)
    record = await files.file_for(services, request.match_info["file_id"], user_id, "viewer")
    etag = f'"{record.sha256}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    ascii_name = record.name.encode("ascii", "replace").decode().replace('"', "'")
    # Uploaded bytes are never rendered actively: active types go out as opaque bytes, and
    # the sandbox policy holds should a browser display one anyway.
    response = web.StreamResponse(headers={
        "Content-Type": download_type(record.mime, record.name),
        "Content-Length": str(record.size),
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(record.name)}",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    })
    await response.prepare(request)
    async for chunk in services.blobs.read(record.storage_key):
        await response.write(chunk)
    await response.write_eof()
    return response


async def export_table(request: web.Request) -> web.StreamResponse:
    services = services_of(request.app)
    user_id = await bearer_user_id(request)
    table, names, records = await tables.export_csv(services, request.match_info["table_id"],
                                                    user_id)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(table.name)}.csv",
        "Cache-Control": "private, no-cache",
    })
    await response.prepare(request)
    buffered = []
    # write_csv emits the header once; feed it records in slices to stream.
    first = True
    async for record in records:
        buffered.append(record)
        if len(buffered) >= 1000:
            await _write_csv_slice(response, names if first else None, buffered)
            first, buffered = False, []
    await _write_csv_slice(response, names if first else None, buffered)
    await response.write_eof()
    return response


async def _write_csv_slice(response, header, records) -> None:
    for piece in write_csv(header, records):
        if piece:
            await response.write(piece.encode("utf-8"))


async def export_chat(request: web.Request) -> web.StreamResponse:
    """An imported chat as JSON, CSV, Markdown or text (project viewers), streamed."""
    services = services_of(request.app)
    user_id = await bearer_user_id(request)
    fmt = request.match_info["fmt"]
    if fmt not in chat_export.FORMATS:
        raise EventError("bad_request", f"export as one of {sorted(chat_export.FORMATS)}")
    chat, _ = await ImportedChat("id", "viewer").load(services.store, user_id,
                                                      request.match_info["chat_id"])
    response = web.StreamResponse(headers={
        "Content-Type": f"{chat_export.FORMATS[fmt]}; charset=utf-8",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(chat.name)}.{fmt}",
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    })
    await response.prepare(request)
    async for piece in chat_export.render(services.store, chat, fmt):
        await response.write(piece.encode("utf-8"))
    await response.write_eof()
    return response


async def console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


async def client_library(request: web.Request) -> web.FileResponse:
    """The browser client library (an ES module; docs/DELIVERY.md)."""
    return web.FileResponse(WEB_DIR / "client.js")


async def asyncapi(request: web.Request) -> web.Response:
    """The AsyncAPI 3.0 document of the Socket.IO events (``server.asyncapi``)."""
    text = document_json(tuple(all_events()), request.app[SETTINGS])
    return web.Response(text=text, content_type="application/json")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/auth/register", rest_register)
    app.router.add_post("/api/auth/login", rest_login)
    app.router.add_post("/api/auth/refresh", rest_refresh)
    app.router.add_post("/api/auth/logout", rest_logout)
    app.router.add_post("/api/projects/{project_id}/files", upload)
    app.router.add_get("/api/files/{file_id}", download)
    app.router.add_get("/api/tables/{table_id}/export.csv", export_table)
    app.router.add_get("/api/chats/{chat_id}/export.{fmt}", export_chat)
    app.router.add_get("/", console)
    app.router.add_get("/client.js", client_library)
    app.router.add_get("/asyncapi.json", asyncapi)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False)
