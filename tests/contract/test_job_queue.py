"""JobQueue contract, for every kind of job (capture ingests, chat imports) on every backend:
queue, positions, claim, lease renewal, takeover, fencing, finish, cancel, requeue."""
from __future__ import annotations

import time

import pytest

from store.ids import new_id


@pytest.fixture(params=["pcap", "chat_imports"])
def queue(request, store):
    return getattr(store, request.param)


async def test_queue_claim_renew_finish(queue):
    pcap = queue
    a, b = new_id(), new_id()
    ja = await pcap.queue_job(file_id=a, project_id="p1", requested_by="u1")
    assert (ja.state, ja.attempt, ja.owner, ja.progress) == ("queued", 0, None, {})
    await pcap.queue_job(file_id=b, project_id="p1", requested_by="u1")
    assert await pcap.queue_position(a) == 1 and await pcap.queue_position(b) == 2
    again = await pcap.queue_job(file_id=a, project_id="p1", requested_by="u2")
    assert again == ja  # an active job is returned unchanged

    now = time.time()
    claimed = await pcap.claim_job(instance="i1", now=now, lease_s=30)
    assert (claimed.file_id, claimed.state, claimed.owner, claimed.attempt) == (a, "running",
                                                                                "i1", 1)
    assert claimed.lease_until == now + 30
    assert await pcap.queue_position(a) is None and await pcap.queue_position(b) == 1
    assert await pcap.renew_job(a, attempt=1, lease_until=now + 60, progress={"packets": 5})
    assert (await pcap.get_job(a)).progress == {"packets": 5}
    assert not await pcap.renew_job(a, attempt=0, lease_until=now + 60)
    assert await pcap.finish_job(a, attempt=1, state="done", progress={"percent": 100.0})
    done = await pcap.get_job(a)
    assert (done.state, done.owner, done.progress, done.error) == ("done", None,
                                                                   {"percent": 100.0}, None)
    assert done.finished_at is not None
    assert not await pcap.finish_job(a, attempt=1, state="failed")

    # Requeueing a finished job keeps its attempt count (attempts fence across runs).
    requeued = await pcap.queue_job(file_id=a, project_id="p1", requested_by="u1")
    assert (requeued.state, requeued.attempt) == ("queued", 1)
    assert await pcap.queue_position(a) == 2  # behind b


async def test_takeover_after_the_lease_lapses_fences_the_old_owner(queue):
    file_id = new_id()
    await queue.queue_job(file_id=file_id, project_id="p1", requested_by="u1")
    first = await queue.claim_job(instance="i1", now=time.time(), lease_s=30)
    assert await queue.claim_job(instance="i2", now=time.time(), lease_s=30) is None
    later = time.time() + 31
    taken = await queue.claim_job(instance="i2", now=later, lease_s=30)
    assert (taken.file_id, taken.owner, taken.attempt) == (file_id, "i2", first.attempt + 1)
    assert not await queue.renew_job(file_id, attempt=first.attempt, lease_until=later)
    assert not await queue.finish_job(file_id, attempt=first.attempt, state="done")
    assert await queue.finish_job(file_id, attempt=taken.attempt, state="failed",
                                  error={"code": "bad_request"})
    assert (await queue.get_job(file_id)).error == {"code": "bad_request"}


async def test_cancel_delete_and_project_jobs(queue):
    a = await queue.queue_job(file_id=new_id(), project_id="p1", requested_by="u")
    b = await queue.queue_job(file_id=new_id(), project_id="p2", requested_by="u")
    assert (await queue.cancel_job(a.file_id)).state == "queued"  # as it was
    assert (await queue.get_job(a.file_id)).state == "cancelled"
    assert await queue.cancel_job(a.file_id) is None
    assert await queue.claim_job(instance="i", now=time.time(), lease_s=5) is not None  # b
    assert await queue.delete_project_jobs("p1") == [a.file_id]
    assert await queue.get_job(a.file_id) is None
    await queue.delete_job(b.file_id)
    assert await queue.get_job(b.file_id) is None


async def test_kinds_do_not_share_a_queue(store):
    file_id = new_id()
    await store.chat_imports.queue_job(file_id=file_id, project_id="p", requested_by="u")
    assert await store.pcap.get_job(file_id) is None
    assert await store.pcap.claim_job(instance="i", now=time.time(), lease_s=5) is None


async def test_params_travel_with_the_job(queue):
    file_id = new_id()
    job = await queue.queue_job(file_id=file_id, project_id="p", requested_by="u",
                                params={"timezone": "Europe/Paris", "platform": None})
    assert job.params == {"timezone": "Europe/Paris", "platform": None}
    claimed = await queue.claim_job(instance="i", now=time.time(), lease_s=5)
    assert claimed.params == job.params
    plain = await queue.queue_job(file_id=new_id(), project_id="p", requested_by="u")
    assert plain.params == {}


async def test_count_jobs_counts_queued_and_running_only(queue):
    assert await queue.count_jobs() == {"queued": 0, "running": 0}
    a, b, c = new_id(), new_id(), new_id()
    for file_id in (a, b, c):
        await queue.queue_job(file_id=file_id, project_id="p1", requested_by="u1")
    claimed = await queue.claim_job(instance="i1", now=time.time(), lease_s=30)
    assert await queue.count_jobs() == {"queued": 2, "running": 1}
    assert await queue.finish_job(claimed.file_id, attempt=claimed.attempt, state="done")
    await queue.cancel_job(c if claimed.file_id != c else b)
    assert await queue.count_jobs() == {"queued": 1, "running": 0}
