"""Web hardening on one instance: security headers on every kind of response, uploads that
are never served as active content, and the Origin check of Socket.IO handshakes."""
from __future__ import annotations

import aiohttp
import pytest

from server.web_security import CONSOLE_CSP, DOWNLOAD_CSP, RESOURCE_CSP
from tests.client import Client, unique_email
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import download, upload
from tests.origin_helpers import EVIL, handshake, opened


async def fetch(method: str, url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, **kwargs) as r:
            return r.status, dict(r.headers), await r.read()


def assert_hardened(headers: dict, csp: str) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == csp
    assert "frame-ancestors 'none'" in csp
    assert headers["Server"] == "collab"  # no Python or aiohttp version


async def test_console_static_files_and_rest_answers_carry_the_headers(server):
    status, headers, body = await fetch("GET", server.url + "/")
    assert status == 200 and b"<html" in body
    assert_hardened(headers, CONSOLE_CSP)
    assert "script-src 'self'" in CONSOLE_CSP and "unsafe-inline" not in CONSOLE_CSP

    status, headers, _ = await fetch("GET", server.url + "/static/app.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    assert_hardened(headers, RESOURCE_CSP)

    status, headers, _ = await fetch("GET", server.url + "/health")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert_hardened(headers, RESOURCE_CSP)

    # An error answer and the router's own 404 too.
    status, headers, body = await fetch("POST", server.url + "/api/auth/login", data=b"nope")
    assert status == 400 and b"bad_request" in body
    assert_hardened(headers, RESOURCE_CSP)
    status, headers, _ = await fetch("GET", server.url + "/static/nothing-here.js")
    assert status == 404
    assert_hardened(headers, RESOURCE_CSP)


async def test_a_revalidated_console_keeps_its_policy(server):
    """A 304's headers replace the cached page's: it must not bring the resource policy."""
    _, first, _ = await fetch("GET", server.url + "/")
    status, headers, _ = await fetch("GET", server.url + "/", headers={
        "If-Modified-Since": first["Last-Modified"]})
    assert status == 304
    assert "Content-Security-Policy" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("name", "data", "served"), [
    ("page.html", b"<html><body><script>alert(document.domain)</script></body></html>",
     "application/octet-stream"),
    ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "application/octet-stream"),
    ("feed.xml", b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml"/>',
     "application/octet-stream"),
    ("app.js", b"alert(1)\n", "application/octet-stream"),
    ("rows.csv", b"id,name\n1,ann\n", "text/csv"),  # inert types keep their type
    ("notes.txt", b"<svg onload=alert(1)>\n", "text/plain"),
])
async def test_uploads_are_never_served_as_active_content(server, name, data, served):
    c = await Client(server.url).connect()
    try:
        await c.register(unique_email("up"))
        project = await c.ok("project:create", {"name": "Uploads"})
        status, out = await upload(server.url, c.tokens["accessToken"], project["id"], data, name)
        assert status == 201, out
        status, body, headers = await download(server.url, c.tokens["accessToken"],
                                               out["data"]["id"])
        assert status == 200 and body == data
        assert headers["Content-Type"].split(";")[0] == served
        assert headers["Content-Disposition"].startswith("attachment;")
        assert_hardened(headers, DOWNLOAD_CSP)
        assert "sandbox" in DOWNLOAD_CSP and "default-src 'none'" in DOWNLOAD_CSP
    finally:
        await c.close()


# -- Socket.IO handshakes and Origin ----------------------------------------------------------

async def polling_handshake(url: str, origin: str | None) -> tuple[int, dict]:
    status, headers, _ = await fetch("GET", url + "/socket.io/?EIO=4&transport=polling",
                                     headers={"Origin": origin} if origin else {})
    return status, headers


async def test_handshakes_are_checked_against_the_servers_own_origin(server):
    assert opened(await handshake(server.url, origin=server.url))
    assert await handshake(server.url, origin=EVIL) == 400
    # Another port on the same host is another origin.
    assert await handshake(server.url, origin="http://127.0.0.1:1") == 400
    # X-Forwarded-Proto is believed only from a trusted proxy (none configured here), and
    # X-Forwarded-Host from nobody.
    https = server.url.replace("http:", "https:")
    assert await handshake(server.url, origin=https, headers={
        "X-Forwarded-Proto": "https"}) == 400
    assert await handshake(server.url, origin=EVIL, headers={
        "X-Forwarded-Host": "evil.example"}) == 400
    # Long-polling handshakes are checked alike; an accepted one gets its CORS header.
    assert (await polling_handshake(server.url, EVIL))[0] == 400
    status, headers = await polling_handshake(server.url, server.url)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == server.url
    # Clients that are not browsers send no Origin: they keep working, signed in.
    status, headers = await polling_handshake(server.url, None)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    client = await Client(server.url).connect()
    try:
        await client.register(unique_email("nobrowser"))
        assert (await client.ok("auth:me"))["id"] == client.user["id"]
    finally:
        await client.close()


@pytest.fixture
async def configured(tmp_path):
    srv = await RunningServer(make_settings(
        tmp_path, cors_origins="https://app.example, http://localhost:5173/",
        trusted_proxies="127.0.0.1/32")).start()
    yield srv
    await srv.stop()


async def test_configured_origins_and_a_trusted_proxys_forwarded_origin(configured):
    url = configured.url
    assert opened(await handshake(url, origin="https://app.example"))
    assert opened(await handshake(url, origin="http://localhost:5173"))
    assert opened(await handshake(url, origin=url))  # its own origin as well
    assert await handshake(url, origin=EVIL) == 400
    assert await handshake(url, origin="http://app.example") == 400  # scheme counts
    # From a trusted proxy (a TLS-terminating one here), the scheme is the forwarded one
    # and the host the Host header it passed on.
    forwarded = {"X-Forwarded-Proto": "https", "Host": "collab.example"}
    assert opened(await handshake(url, origin="https://collab.example", headers=forwarded))
    assert opened(await handshake(url, origin="https://collab.example:443", headers=forwarded))
    assert await handshake(url, origin="http://collab.example", headers=forwarded) == 400
    assert await handshake(url, origin=EVIL, headers={
        **forwarded, "X-Forwarded-Host": "evil.example"}) == 400


@pytest.fixture
async def dev_server(tmp_path):
    srv = await RunningServer(make_settings(tmp_path, env="dev")).start()
    yield srv
    await srv.stop()


async def test_dev_mode_without_cors_origins_accepts_any_origin(dev_server):
    assert opened(await handshake(dev_server.url, origin=EVIL))
