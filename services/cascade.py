"""What deleting a project takes with it besides the project itself: its files (and their
blobs) and its tables (rows, history, row locks). Captures and chats register their own
parts (``services/captures.py``, ``services/replies.py``)."""
from __future__ import annotations

from services.container import Core
from services.locks import LockService


def attach_project_cascade(core: Core, locks: LockService) -> None:
    store, blobs = core.store, core.blobs

    async def files_gone(project_id: str) -> None:
        for record in await store.files.delete_project_files(project_id):
            await blobs.delete(record.storage_key)

    async def tables_gone(project_id: str) -> None:
        for table in await store.tables.list_tables(project_id):
            await locks.drop_table(table.id)
        await store.tables.delete_project_tables(project_id)

    core.hooks.project_deleted.extend([files_gone, tables_gone])
