"""A 200 MB CSV goes through upload and import streamed: the server process's peak memory
stays far below the file's size (read from /proc, not timed)."""
from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.client import Client, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster

SIZE = 200 * 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def write_csv(path: Path) -> int:
    cell = "x" * 990
    line = ",".join([f"{cell}{i}" for i in range(8)]) + ",12.5\n"
    header = ",".join(f"c{i}" for i in range(8)) + ",amount\n"
    rows = SIZE // len(line) + 1
    with open(path, "w") as fh:
        fh.write(header)
        chunk = line * 1000
        for _ in range(rows // 1000):
            fh.write(chunk)
        fh.write(line * (rows % 1000))
    return rows


async def test_two_hundred_megabyte_csv_import_is_streamed(tmp_path):
    path = tmp_path / "big.csv"
    rows = write_csv(path)
    with Cluster(n=1, redis=False, nginx=False,
                 extra_env={**FAST, "MAX_UPLOAD_MB": "250", "LOG_LEVEL": "WARNING"}) as cluster:
        inst = cluster.instances[0]
        c = await Client(inst.url).connect()
        try:
            await c.register(unique_email("big"))
            p = await c.ok("project:create", {"name": "Big"})
            before = peak_rss_mb(inst.pid)

            async def body():
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        yield chunk

            form = aiohttp.FormData()
            form.add_field("file", body(), filename="big.csv", content_type="text/csv")
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{inst.url}/api/projects/{p['id']}/files", data=form,
                                     headers={"Authorization":
                                              f"Bearer {c.tokens['accessToken']}"}) as r:
                    assert r.status == 201, await r.text()
                    fid = (await r.json())["data"]["id"]
            out = await c.ok("table:import", {"projectId": p["id"], "fileId": fid}, timeout=300)
            assert out["rows"] == rows
            types = {col["name"]: col["type"] for col in out["table"]["columns"]}
            assert types["amount"] == "number" and types["c0"] == "text"
            page = await c.ok("table:rows", {"tableId": out["table"]["id"], "limit": 2})
            assert page["items"][0]["values"]["amount"] == 12.5
            peak = peak_rss_mb(inst.pid)
            # The file is 200 MB; a server that held it (or its rows) whole would exceed this.
            assert peak - before < 120, (before, peak)
        finally:
            await c.close()
