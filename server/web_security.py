"""Browser-facing hardening: security headers on every HTTP response, how an uploaded file
is served, and which origins may open a Socket.IO connection.

The headers are added in ``on_response_prepare`` rather than a middleware so that every
response gets them: static files, the router's own 404/405, Engine.IO's polling answers and
websocket handshakes included. A handler that sets one of them itself (a download's
sandbox policy) keeps its own.
"""
from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any

from aiohttp import web

from services.config import Settings

SERVER_NAME = "collab"  # aiohttp's default names the Python and aiohttp versions

# The console (server/web): scripts and styles only from its own files (no inline code; the
# few style attributes it sets go through the CSSOM, which CSP does not govern), the socket
# and fetch() to its own origin (CSP3 'self' covers ws:/wss: of that origin), the favicon as
# a data: URL, never framed.
CONSOLE_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
# Everything that is not the console's HTML (JSON, scripts, styles, metrics): nothing to run
# if someone navigates to it.
RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'"
# Uploaded files: a unique origin with nothing allowed, should a browser render one anyway.
DOWNLOAD_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

# Uploads keep their sniffed type only when a browser cannot run anything in it; HTML, SVG,
# XML, scripts, PDF and anything unknown go out as opaque bytes.
INLINE_SAFE_TYPES = frozenset({
    "text/plain", "text/csv", "application/json",
    "image/png", "image/jpeg", "image/gif", "image/webp",
    "application/vnd.tcpdump.pcap", "application/x-pcapng",
})


def download_type(mime: str, name: str) -> str:
    """The Content-Type a stored file is served with: its sniffed type when both that and
    the type its name suggests (if any) are inline-safe. The name counts because it decides
    how the saved file is opened, and the sniffer labels text formats it does not know (SVG)
    as text/plain."""
    named, _ = mimetypes.guess_type(name)
    if _bare(mime) in INLINE_SAFE_TYPES and (named is None or _bare(named) in INLINE_SAFE_TYPES):
        return mime
    return "application/octet-stream"


def _bare(mime: str) -> str:
    return mime.split(";")[0].strip().lower()


async def add_security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Server"] = SERVER_NAME
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    # A 304 has no body or type, and its headers replace the cached response's: it keeps the
    # policy the cached page was served with.
    if "Content-Security-Policy" not in headers and response.status != 304:
        headers["Content-Security-Policy"] = \
            CONSOLE_CSP if response.content_type == "text/html" else RESOURCE_CSP


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)


# -- Socket.IO handshakes -----------------------------------------------------------------

def handshake_origins(settings: Settings,
                      trusted_proxy: Callable[[str], bool]) -> Any:
    """``cors_allowed_origins`` for python-engineio: which ``Origin`` may open a socket.

    A browser always sends Origin on a websocket handshake and a page cannot forge it, so
    checking it stops another site from opening a socket with a victim's browser. Clients
    that are not browsers (python-socketio, curl) send none; engineio lets those through,
    and must: they carry their own token and no ambient credentials.

    ``*`` in CORS_ORIGINS accepts any origin; in ENV=dev with none configured the check is
    off (engineio's ``[]``). Otherwise an origin is accepted when it is listed in
    CORS_ORIGINS or is the server's own origin as the browser addressed it.
    """
    configured = {_normal(o) for o in settings.cors_origins}
    if "*" in configured:
        return "*"
    if settings.env == "dev" and not configured:
        return []

    def allowed(origin: str | None, environ: dict) -> bool:
        if not origin:  # asked for the CORS headers of a request without Origin
            return False
        origin = _normal(origin)
        if origin in configured:
            return True
        request = environ.get("aiohttp.request")
        return request is not None and origin == own_origin(request, trusted_proxy)

    return allowed


def own_origin(request: web.BaseRequest, trusted_proxy: Callable[[str], bool]) -> str:
    """scheme://host[:port] the client used to reach us: the Host header the browser sent,
    and the scheme of its connection.

    Behind a proxy, the proxy must pass the browser's Host on (nginx: ``proxy_set_header
    Host $http_host``, which keeps the port) and say the scheme in X-Forwarded-Proto, which
    is believed only from a trusted proxy (TRUSTED_PROXIES; engineio's own check takes it
    from anyone). X-Forwarded-Host is not used: nginx passes a client's own through.
    """
    scheme = request.scheme
    if request.remote and trusted_proxy(request.remote):
        scheme = _first(request.headers.get("X-Forwarded-Proto")) or scheme
    return _normal(f"{scheme}://{request.host}")


def _first(value: str | None) -> str:
    return value.split(",")[0].strip() if value else ""


def _normal(origin: str) -> str:
    origin = origin.strip().rstrip("/").lower()
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[:-len(port)]
    return origin
