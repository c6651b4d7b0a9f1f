"""HTTP helpers for the file endpoints, shared by single- and multi-instance tests."""
from __future__ import annotations

import aiohttp


async def upload(base: str, token: str | None, project_id: str, data: bytes,
                 filename: str = "data.bin", field: str = "file") -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/projects/{project_id}/files", data=form,
                             headers=headers) as r:
            return r.status, await r.json()


async def download(base: str, token: str, file_id: str) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/files/{file_id}",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, await r.read(), dict(r.headers)


async def upload_raw(base: str, token: str, project_id: str, params: bytes,
                     data: bytes) -> tuple[int, dict]:
    """A hand-built multipart body (``params`` follow ``form-data; name="file"; ``), for
    filenames a well-behaved client refuses to send."""
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; ' + params +
            b'\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n--B--\r\n")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/projects/{project_id}/files", data=body,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": "multipart/form-data; boundary=B"}) as r:
            return r.status, await r.json()
