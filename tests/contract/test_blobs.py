"""BlobStore contract: a directory, GridFS on the mongomock stand-in, and real GridFS when
MONGO_URL is set (a fresh database per test, dropped afterwards)."""
from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from store.blobs import BlobStore
from store.blobs.gridfs import BUCKET, GridFSBlobs
from store.blobs.local import LocalBlobs
from store.errors import BlobMissing
from store.ids import new_id
from tests.contract.conftest import MONGO_URL
from tests.contract.mongo_standin import StandinClient, StandinGridFSBucket

# GridFS runs once, like the store: on a real MongoDB when MONGO_URL is set, else the stand-in.
BLOB_BACKENDS = ["local", "gridfs-real" if MONGO_URL else "gridfs-standin"]
MIB = 1024 * 1024


class LocalCase:
    def __init__(self, tmp_path):
        self.root = tmp_path / "files"
        self.blobs = LocalBlobs(self.root)

    async def leftovers(self) -> int:
        """Stored things of any kind, finished or not."""
        return sum(1 for p in self.root.rglob("*") if p.is_file())

    async def close(self) -> None:
        await self.blobs.close()


class StandinCase:
    def __init__(self):
        self.client = StandinClient()
        db = self.client["blobs"]
        self.sync_db = db._database
        self.blobs = GridFSBlobs(bucket=StandinGridFSBucket(db, BUCKET))

    async def leftovers(self) -> int:
        return (self.sync_db[f"{BUCKET}.files"].count_documents({}) +
                self.sync_db[f"{BUCKET}.chunks"].count_documents({}))

    async def close(self) -> None:
        await self.blobs.close()


class RealCase:
    def __init__(self):
        from pymongo import AsyncMongoClient

        self.client = AsyncMongoClient(MONGO_URL)
        self.db_name = f"blobs_{uuid.uuid4().hex[:12]}"
        self.db = self.client[self.db_name]
        self.blobs = GridFSBlobs(self.db)

    async def leftovers(self) -> int:
        return (await self.db[f"{BUCKET}.files"].count_documents({}) +
                await self.db[f"{BUCKET}.chunks"].count_documents({}))

    async def close(self) -> None:
        await self.blobs.close()
        await self.client.drop_database(self.db_name)
        await self.client.close()


@pytest.fixture(params=BLOB_BACKENDS)
async def case(request, tmp_path):
    made = {"local": lambda: LocalCase(tmp_path), "gridfs-standin": StandinCase,
            "gridfs-real": RealCase}[request.param]()
    yield made
    await made.close()


@pytest.fixture
def blobs(case) -> BlobStore:
    return case.blobs


async def read_all(blobs: BlobStore, key: str, chunk_size: int | None = None) -> bytes:
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    return b"".join([chunk async for chunk in blobs.read(key, **kwargs)])


async def write(blobs: BlobStore, key: str, data: bytes, chunk: int = 64 * 1024):
    writer = await blobs.create(key)
    for i in range(0, len(data), chunk):
        await writer.write(data[i:i + chunk])
    return writer


async def test_stream_several_mib_commit_and_read_back(blobs):
    data = os.urandom(5 * MIB + 123)
    key = new_id()
    writer = await write(blobs, key, data)
    assert writer.key == key and writer.size == len(data)
    await writer.commit()
    assert await blobs.exists(key)
    assert hashlib.sha256(await read_all(blobs, key)).digest() == hashlib.sha256(data).digest()
    chunks = [c async for c in blobs.read(key, chunk_size=100_000)]
    assert all(0 < len(c) <= 100_000 for c in chunks) and b"".join(chunks) == data


async def test_abort_leaves_nothing(blobs, case):
    key = new_id()
    writer = await write(blobs, key, os.urandom(3 * MIB + 1))
    await writer.abort()
    await writer.abort()  # twice is fine
    assert not await blobs.exists(key)
    with pytest.raises(FileNotFoundError):
        await read_all(blobs, key)
    assert await case.leftovers() == 0


async def test_a_reader_never_sees_an_uncommitted_blob(blobs):
    key = new_id()
    data = os.urandom(2 * MIB + 7)
    writer = await write(blobs, key, data)
    assert not await blobs.exists(key)
    with pytest.raises(FileNotFoundError):
        await read_all(blobs, key)
    await writer.commit()
    assert await read_all(blobs, key) == data


async def test_delete_is_idempotent(blobs, case):
    key = new_id()
    await (await write(blobs, key, b"x" * 1000)).commit()
    kept = new_id()
    await (await write(blobs, kept, b"kept")).commit()
    await blobs.delete(key)
    assert not await blobs.exists(key)
    await blobs.delete(key)
    await blobs.delete(new_id())  # never existed
    assert await read_all(blobs, kept) == b"kept"
    await blobs.delete(kept)
    assert await case.leftovers() == 0


async def test_empty_blob_and_several_keys(blobs):
    empty = new_id()
    await (await blobs.create(empty)).commit()
    assert await blobs.exists(empty) and await read_all(blobs, empty) == b""
    keys = [new_id() for _ in range(3)]
    for i, key in enumerate(keys):
        await (await write(blobs, key, bytes([i]) * (i + 1) * 1000)).commit()
    for i, key in enumerate(keys):
        assert await read_all(blobs, key) == bytes([i]) * (i + 1) * 1000


async def test_local_copy(blobs):
    key = new_id()
    data = os.urandom(MIB + 3)
    await (await write(blobs, key, data)).commit()
    async with blobs.local_copy(key, suffix=".pcap") as path:
        assert path.read_bytes() == data
    with pytest.raises(FileNotFoundError):
        async with blobs.local_copy(new_id()):
            pass


async def test_a_missing_blob_is_not_found(blobs):
    """A file deleted meanwhile (with its project, say): reading its bytes raises
    BlobMissing, which callers see as ``not_found`` and readers still catch as a
    FileNotFoundError."""
    for reading in (lambda key: read_all(blobs, key), lambda key: _copy(blobs, key)):
        with pytest.raises(BlobMissing) as caught:
            await reading(new_id())
        assert caught.value.code == "not_found" and isinstance(caught.value, FileNotFoundError)


async def _copy(blobs: BlobStore, key: str) -> None:
    async with blobs.local_copy(key):
        pass


async def test_a_blob_deleted_while_its_local_copy_is_read_is_not_found(tmp_path):
    """Local blobs hand out the file itself: deleted under a reader (the race the event
    fuzzer found between table:import and project:delete), it is not_found, not an
    unexpected FileNotFoundError."""
    blobs = LocalBlobs(tmp_path / "files")
    key = new_id()
    await (await write(blobs, key, b"name\nada\n")).commit()
    with pytest.raises(BlobMissing):
        async with blobs.local_copy(key) as path:
            await blobs.delete(key)
            path.read_bytes()
    other = new_id()
    await (await write(blobs, other, b"kept")).commit()
    with pytest.raises(FileNotFoundError) as caught:  # another file missing: left as it is
        async with blobs.local_copy(other):
            (tmp_path / "nowhere").read_bytes()
    assert not isinstance(caught.value, BlobMissing)
