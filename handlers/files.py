"""file:* — files in a project. Bytes arrive over REST (``POST /api/projects/{id}/files``,
decoded in ``server/http.py``); listing and deletion are events; every change is pushed to
the project room."""
from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import AsyncIterator

import filetype
from pydantic import Field

from handlers.base import Cursor, Int, Payload, event
from handlers.scopes import File, Project, ProjectOrPrivate, Role
from store.base import FileRecord
from store.errors import EventError, TooLarge
from store.ids import iso, new_id

MAX_NAME_BYTES = 255
CHUNK = 256 * 1024
SNIFF_BYTES = 8192
# Capture formats the generic sniffer does not know, by their magic numbers.
MAGIC = [
    (b"\xd4\xc3\xb2\xa1", "application/vnd.tcpdump.pcap"),
    (b"\xa1\xb2\xc3\xd4", "application/vnd.tcpdump.pcap"),
    (b"\x4d\x3c\xb2\xa1", "application/vnd.tcpdump.pcap"),
    (b"\xa1\xb2\x3c\x4d", "application/vnd.tcpdump.pcap"),
    (b"\x0a\x0d\x0d\x0a", "application/x-pcapng"),
]


def clean_filename(raw: str | None) -> str:
    """A display name that is safe anywhere: no directories, no control characters.

    The name is only ever shown and sent back in Content-Disposition; storage uses the id.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    while len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if dot and len(ext) < 16 and stem else name[:-1]
    return name or "upload"


def sniff_mime(head: bytes, name: str) -> str:
    for magic, mime in MAGIC:
        if head.startswith(magic):
            return mime
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    guessed, _ = mimetypes.guess_type(name)
    if _looks_like_text(head):
        if guessed and (guessed.startswith("text/") or guessed in ("application/json",
                                                                   "application/xml")):
            return guessed
        return "text/plain"
    if guessed and not guessed.startswith("text/") and guessed not in ("application/json",
                                                                       "application/xml"):
        return guessed  # a binary format the sniffer does not know, named by its extension
    return "application/octet-stream"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a multi-byte character cut by the sniff window


def file_view(record: FileRecord) -> dict:
    return {"id": record.id, "projectId": record.project_id, "name": record.name,
            "size": record.size, "mime": record.mime, "sha256": record.sha256,
            "uploaderId": record.uploader_id, "createdAt": iso(record.created_at)}


async def save_upload(services, *, user_id: str, project_id: str, filename: str | None,
                      chunks: AsyncIterator[bytes], limit: int) -> FileRecord:
    """Stream one upload into the blob store; commit only a complete, in-limit, non-empty file.

    Raises ``too_large`` past ``limit`` bytes and ``bad_request`` for an empty file; on any
    failure (including the client going away) the partial blob is removed.
    """
    await Project("projectId", "editor").load(services.store, user_id, project_id)
    name = clean_filename(filename)
    file_id = new_id()
    writer = await services.blobs.create(file_id)
    digest = hashlib.sha256()
    head = b""
    committed = False
    try:
        async for chunk in chunks:
            if writer.size + len(chunk) > limit:
                raise TooLarge(f"file is larger than the {limit // (1024 * 1024)} MB limit",
                               {"limit": limit})
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
            digest.update(chunk)
            await writer.write(chunk)
        if writer.size == 0:
            raise EventError("bad_request", "the file is empty")
        await writer.commit()
        committed = True
        record = await services.store.files.create_file(
            file_id=file_id, project_id=project_id, name=name, size=writer.size,
            mime=sniff_mime(head, name), sha256=digest.hexdigest(), uploader_id=user_id,
            storage_key=file_id)
    except BaseException:
        if committed:
            await services.blobs.delete(file_id)
        else:
            await writer.abort()
        raise
    await services.gateway.push_project(project_id, "file:added", {"file": file_view(record)})
    for hook in services.hooks.file_added:
        await hook(record)
    return record


async def file_for(services, file_id: str, user_id: str, role: Role) -> FileRecord:
    """The file, if the user has ``role`` in its project; not_found otherwise."""
    record, _ = await File("id", role).load(services.store, user_id, file_id)
    return record


async def delete_file(services, record: FileRecord) -> None:
    if await services.store.files.delete_file(record.id) is not None:
        await services.blobs.delete(record.storage_key)
        await services.gateway.push_project(record.project_id, "file:deleted",
                                             {"id": record.id})
        for hook in services.hooks.file_deleted:
            await hook(record)


class ListPayload(Payload):
    projectId: str | None = Field(default=None, min_length=1, max_length=64)
    cursor: str | None = Cursor
    limit: int = Int(50, ge=1, le=200)


class IdPayload(Payload):
    id: str = Field(min_length=1, max_length=64)


@event("file:list", ListPayload,
       scope=ProjectOrPrivate("projectId", "viewer", otherwise="all your projects"),
       ack="{items: [file], nextCursor}")
async def on_list(ctx, p: ListPayload):
    """The project's files, or without ``projectId`` the files of every project you are a
    member of; oldest first, paged."""
    if p.projectId is not None:
        projects = [p.projectId]
    else:
        projects = [pr.id for pr in await ctx.store.projects.list_projects_for_user(ctx.user_id)]
    page = await ctx.store.files.list_files_in(projects, cursor=p.cursor, limit=p.limit)
    return {"items": [file_view(f) for f in page.items], "nextCursor": page.next_cursor}


@event("file:delete", IdPayload, scope=File("id", "editor"), ack="{id}", emits=("file:deleted",))
async def on_delete(ctx, p: IdPayload):
    """Delete a file (project editors)."""
    record = ctx.resource
    await delete_file(ctx.services, record)
    return {"id": record.id}


EVENTS = [on_list, on_delete]
