"""An upload through one instance is listed, downloaded and deleted through another, and
the project room hears about it on every instance (embedded store shared on one host)."""
from __future__ import annotations

import hashlib
import os

from tests.client import unique_email
from tests.files_helpers import download, upload


async def test_upload_on_a_list_download_delete_on_b(cluster, connect):
    a = await connect(cluster.instances[0].url, name="a@0")
    b = await connect(cluster.instances[1].url, name="b@1")
    await a.register(unique_email("a"))
    await b.register(unique_email("b"))
    p = await a.ok("project:create", {"name": "Shared files"})
    await a.ok("project:member:add", {"id": p["id"], "email": b.user["email"], "role": "editor"})
    await b.ok("project:join", {"id": p["id"]})

    body = os.urandom(3 * 1024 * 1024 + 17)
    status, out = await upload(cluster.instances[0].url, a.tokens["accessToken"], p["id"], body,
                               "blob.bin")
    assert status == 201, out
    fid = out["data"]["id"]
    added = await b.wait_for("file:added", lambda d: d["file"]["id"] == fid)
    assert added["file"]["sha256"] == hashlib.sha256(body).hexdigest()

    listed = await b.ok("file:list", {"projectId": p["id"]})
    assert [f["id"] for f in listed["items"]] == [fid]
    status, data, _ = await download(cluster.instances[1].url, b.tokens["accessToken"], fid)
    assert status == 200 and data == body
    # Through the load balancer too.
    status, data, _ = await download(cluster.url, a.tokens["accessToken"], fid)
    assert status == 200 and data == body

    await a.ok("project:join", {"id": p["id"]})
    await b.ok("file:delete", {"id": fid})
    await a.wait_for("file:deleted", lambda d: d["id"] == fid)
    assert (await download(cluster.instances[0].url, a.tokens["accessToken"], fid))[0] == 404
