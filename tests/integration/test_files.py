"""Files over REST + events on one instance: streaming, sniffing, limits, bad input."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest

from tests.client import Client, unique_email, unstamped
from tests.conftest import RunningServer, make_settings
from tests.files_helpers import download, upload, upload_raw
from tests.pcap_files import PCAPS


@pytest.fixture
async def small(tmp_path):
    """A server with a 1 MB upload limit."""
    srv = await RunningServer(make_settings(tmp_path, max_upload_mb=1)).start()
    yield srv
    await srv.stop()


async def owner_with_project(url):
    c = await Client(url).connect()
    await c.register(unique_email("owner"))
    p = await c.ok("project:create", {"name": "Files"})
    await c.ok("project:join", {"id": p["id"]})
    return c, p


def stored_blobs(settings) -> list[Path]:
    root = Path(settings.data_dir) / "files"
    return [p for p in root.rglob("*") if p.is_file()]


async def test_upload_list_download_delete(server):
    c, p = await owner_with_project(server.url)
    try:
        body = b"id,name\n1,\xc3\xa9l\xc3\xa8ve\n" * 5000
        status, out = await upload(server.url, c.tokens["accessToken"], p["id"], body, "people.csv")
        assert status == 201, out
        f = out["data"]
        assert f["size"] == len(body) and f["sha256"] == hashlib.sha256(body).hexdigest()
        assert f["mime"] == "text/csv" and f["name"] == "people.csv"
        added = await c.wait_for("file:added")
        assert added["projectId"] == p["id"] and added["file"]["id"] == f["id"]
        listed = await c.ok("file:list", {"projectId": p["id"]})
        assert [x["id"] for x in listed["items"]] == [f["id"]] and listed["nextCursor"] is None
        status, data, headers = await download(server.url, c.tokens["accessToken"], f["id"])
        assert status == 200 and data == body
        assert "people.csv" in headers["Content-Disposition"]
        await c.ok("file:delete", {"id": f["id"]})
        deleted = await c.wait_for("file:deleted")
        assert unstamped(deleted) == {"projectId": p["id"], "id": f["id"]}
        assert (await download(server.url, c.tokens["accessToken"], f["id"]))[0] == 404
        assert stored_blobs(server.settings) == []
    finally:
        await c.close()


async def test_mime_is_sniffed_from_content_not_name(server):
    c, p = await owner_with_project(server.url)
    token = c.tokens["accessToken"]
    try:
        cases = [((PCAPS / "dns-udp.pcap").read_bytes(), "capture.txt",
                  "application/vnd.tcpdump.pcap"),
                 ((PCAPS / "tcpdump-empty.pcapng").read_bytes(), "x", "application/x-pcapng"),
                 (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "picture.csv", "image/png"),
                 (b'{"a": 1}', "doc.json", "application/json"),
                 (b"\x00\x01\x02binary", "blob.csv", "application/octet-stream")]
        for data, name, mime in cases:
            status, out = await upload(server.url, token, p["id"], data, name)
            assert status == 201 and out["data"]["mime"] == mime, (name, out)
    finally:
        await c.close()


async def test_paging(server):
    c, p = await owner_with_project(server.url)
    try:
        ids = []
        for i in range(5):
            ids.append((await upload(server.url, c.tokens["accessToken"], p["id"], b"x%d" % i,
                                     f"f{i}.txt"))[1]["data"]["id"])
        page1 = await c.ok("file:list", {"projectId": p["id"], "limit": 3})
        page2 = await c.ok("file:list", {"projectId": p["id"], "limit": 3,
                                         "cursor": page1["nextCursor"]})
        assert [f["id"] for f in page1["items"] + page2["items"]] == ids
        assert page2["nextCursor"] is None
    finally:
        await c.close()


async def test_permissions(server):
    owner, p = await owner_with_project(server.url)
    viewer = await Client(server.url).connect()
    stranger = await Client(server.url).connect()
    try:
        await viewer.register(unique_email("viewer"))
        await stranger.register(unique_email("stranger"))
        await owner.ok("project:member:add", {"id": p["id"], "email": viewer.user["email"],
                                              "role": "viewer"})
        status, out = await upload(server.url, None, p["id"], b"abc")
        assert status == 401 and out["error"]["code"] == "unauthorized"
        status, out = await upload(server.url, viewer.tokens["accessToken"], p["id"], b"abc")
        assert status == 403 and out["error"]["code"] == "forbidden"
        status, out = await upload(server.url, stranger.tokens["accessToken"], p["id"], b"abc")
        assert status == 404 and out["error"]["code"] == "not_found"
        status, out = await upload(server.url, owner.tokens["accessToken"], p["id"], b"abc")
        fid = out["data"]["id"]
        assert (await download(server.url, viewer.tokens["accessToken"], fid))[0] == 200
        assert (await download(server.url, stranger.tokens["accessToken"], fid))[0] == 404
        assert (await viewer.err("file:delete", {"id": fid}))["code"] == "forbidden"
        assert (await stranger.err("file:delete", {"id": fid}))["code"] == "not_found"
        assert (await stranger.err("file:list", {"projectId": p["id"]}))["code"] == "not_found"
        assert stored_blobs(server.settings) != []
    finally:
        for c in (owner, viewer, stranger):
            await c.close()


async def test_over_the_limit_gets_413_and_leaves_nothing(small):
    c, p = await owner_with_project(small.url)
    token = c.tokens["accessToken"]
    try:
        status, out = await upload(small.url, token, p["id"], b"x" * (2 * 1024 * 1024))
        assert status == 413 and out["error"]["code"] == "too_large"
        # Without Content-Length (chunked), the limit trips mid-stream.

        async def gen():
            yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n"
            for _ in range(40):
                yield b"y" * 65536
            yield b"\r\n--B--\r\n"

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{small.url}/api/projects/{p['id']}/files", data=gen(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "multipart/form-data; boundary=B"}) as r:
                assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"
        assert stored_blobs(small.settings) == []
        assert (await c.ok("file:list", {"projectId": p["id"]}))["items"] == []
    finally:
        await c.close()


async def test_cut_off_body_leaves_nothing(server, monkeypatch):
    from handlers import files as file_handlers
    from store.errors import EventError

    # The positive markers: the server began storing the file; its upload handling ended
    # (and with what).
    ended = asyncio.get_running_loop().create_future()
    started = asyncio.Event()
    save_upload = file_handlers.save_upload

    async def watched(*args, **kwargs):
        started.set()
        try:
            return await save_upload(*args, **kwargs)
        except BaseException as exc:
            if not ended.done():
                ended.set_result(exc)
            raise

    monkeypatch.setattr(file_handlers, "save_upload", watched)
    c, p = await owner_with_project(server.url)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"cut.bin\"\r\n\r\n" + b"z" * 300_000)
        head = (f"POST /api/projects/{p['id']}/files HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {c.tokens['accessToken']}\r\n"
                f"Content-Type: multipart/form-data; boundary=B\r\n"
                f"Content-Length: {len(body) + 500_000}\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        await asyncio.wait_for(started.wait(), 10)
        writer.close()  # the client goes away mid-upload
        failure = await asyncio.wait_for(ended, 10)
        assert isinstance(failure, EventError) and "cut off" in failure.message, failure
        assert stored_blobs(server.settings) == []
        assert (await c.ok("file:list", {"projectId": p["id"]}))["items"] == []
        parts = list((Path(server.settings.data_dir) / "files" / ".parts").iterdir())
        assert parts == []
    finally:
        await c.close()


async def test_hostile_filename_empty_file_and_malformed_requests(server):
    c, p = await owner_with_project(server.url)
    token = c.tokens["accessToken"]
    try:
        # Raw control characters in a part header: refused as malformed, clearly.
        status, out = await upload_raw(server.url, token, p["id"], b'filename="a\x01b"',
                                       b"data")
        assert status == 400 and "malformed multipart" in out["error"]["message"]
        # The same, percent-encoded (RFC 5987): accepted, and the name is made harmless.
        status, out = await upload_raw(
            server.url, token, p["id"],
            b"filename*=UTF-8''..%2F..%2F..%5Cetc%2F%01pass%1B%5B31m%7Fwd%09..%00", b"data")
        assert status == 201, out
        assert out["data"]["name"] == "pass[31mwd"
        status, out = await upload_raw(server.url, token, p["id"], b'filename="../.."', b"data")
        assert status == 201 and out["data"]["name"] == "upload"
        assert all(p.parent.parent == Path(server.settings.data_dir) / "files"
                   for p in stored_blobs(server.settings))
        status, out = await upload(server.url, token, p["id"], b"", "empty.txt")
        assert status == 400 and "empty" in out["error"]["message"]
        status, out = await upload(server.url, token, p["id"], b"abc", field="other")
        assert status == 400 and "'file'" in out["error"]["message"]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/api/projects/{p['id']}/files", json={"a": 1},
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 400
        assert len(stored_blobs(server.settings)) == 2
    finally:
        await c.close()


async def test_project_delete_removes_its_files(server):
    c, p = await owner_with_project(server.url)
    try:
        await upload(server.url, c.tokens["accessToken"], p["id"], b"keep me?", "a.txt")
        assert len(stored_blobs(server.settings)) == 1
        await c.ok("project:delete", {"id": p["id"]})
        assert stored_blobs(server.settings) == []
    finally:
        await c.close()
