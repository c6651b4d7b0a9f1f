"""PcapRepo contract: its jobs fencing packet writes (the queue itself: test_job_queue.py),
packet rows (idempotent inserts, keyset paging with every filter) and statistics, on every
backend."""
from __future__ import annotations

import time

from store.base import PacketFilter, PcapPacket
from store.ids import new_id


def packet(n: int, **over) -> PcapPacket:
    base = dict(number=n, ts=1_700_000_000.0 + n, length=60 + n, caplen=60 + n,
                src=f"10.0.0.{n % 3}", dst="10.0.0.9", sport=1000 + n % 2, dport=80,
                l4="tcp", stream=n % 2, protocol="TCP" if n % 5 else "HTTP",
                info=f"frame {n} {'GET /x' if n % 7 == 0 else 'ack'}", offset=24 + 100 * n,
                reclen=100, section=0)
    base.update(over)
    return PcapPacket(**base)


async def running(store, file_id=None, project_id="p1"):
    file_id = file_id or new_id()
    await store.pcap.queue_job(file_id=file_id, project_id=project_id, requested_by="u1")
    job = await store.pcap.claim_job(instance="i1", now=time.time(), lease_s=30)
    assert job.file_id == file_id
    return job


async def test_a_lapsed_lease_is_taken_over_and_fences_the_old_owner(store):
    pcap = store.pcap
    job = await running(store)
    assert await pcap.add_packets(job.file_id, job.attempt, [packet(1), packet(2)])
    assert await pcap.claim_job(instance="i2", now=time.time(), lease_s=30) is None
    later = time.time() + 31
    taken = await pcap.claim_job(instance="i2", now=later, lease_s=30)
    assert (taken.file_id, taken.owner, taken.attempt) == (job.file_id, "i2", job.attempt + 1)
    assert not await pcap.add_packets(job.file_id, job.attempt, [packet(3)])
    assert not await pcap.put_stats(job.file_id, job.attempt, {"summary": {}})
    assert not await pcap.renew_job(job.file_id, attempt=job.attempt, lease_until=later)
    # The new owner re-sends frames already stored: kept once.
    assert await pcap.add_packets(job.file_id, taken.attempt, [packet(2), packet(3)])
    assert await pcap.last_packet_number(job.file_id) == 3
    page = await pcap.list_packets(job.file_id, limit=10)
    assert [p.number for p in page.items] == [1, 2, 3] and page.next_cursor is None


async def test_cancel(store):
    pcap = store.pcap
    job = await running(store)
    cancelled = await pcap.cancel_job(job.file_id)
    assert cancelled.state == "running"  # as it was
    assert (await pcap.get_job(job.file_id)).state == "cancelled"
    assert await pcap.cancel_job(job.file_id) is None
    assert not await pcap.add_packets(job.file_id, job.attempt, [packet(1)])
    queued = await pcap.queue_job(file_id=new_id(), project_id="p", requested_by="u")
    assert (await pcap.cancel_job(queued.file_id)).state == "queued"
    assert await pcap.claim_job(instance="i", now=time.time(), lease_s=5) is None


async def test_packets_page_by_number_with_filters(store):
    pcap = store.pcap
    job = await running(store)
    fid = job.file_id
    await pcap.add_packets(fid, job.attempt, [packet(n) for n in range(1, 51)])
    assert await pcap.get_packet(fid, 7) == packet(7)
    assert await pcap.get_packet(fid, 99) is None
    seen, cursor = [], None
    while True:
        page = await pcap.list_packets(fid, cursor=cursor, limit=15)
        seen += [p.number for p in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(range(1, 51))

    async def numbers(**flt):
        return [p.number for p in (await pcap.list_packets(fid, limit=100,
                                                           flt=PacketFilter(**flt))).items]

    assert await numbers(protocol="http") == [n for n in range(1, 51) if n % 5 == 0]
    assert await numbers(address="10.0.0.1") == [n for n in range(1, 51) if n % 3 == 1]
    assert await numbers(address="10.0.0.9") == list(range(1, 51))
    assert await numbers(port=1001) == [n for n in range(1, 51) if n % 2 == 1]
    assert await numbers(since=1_700_000_010.0, until=1_700_000_012.0) == [10, 11, 12]
    assert await numbers(text="get /X") == [7, 14, 21, 28, 35, 42, 49]
    assert await numbers(text="100%_") == []
    assert await numbers(l4="tcp", stream=0) == list(range(2, 51, 2))
    assert await numbers(protocol="TCP", port=1000, text="get") == [14, 28, 42]
    assert [p.number for p in await pcap.stream_packets(fid, "tcp", 1, 3)] == [1, 3, 5]
    assert [p.number for p in await pcap.stream_packets(fid, "tcp", 1, 3, through=20)] == \
        [15, 17, 19]
    assert [p.number for p in await pcap.stream_packets(fid, "tcp", 1, 9, through=4)] == [1, 3]
    tcp = PacketFilter(protocol="tcp")
    page = await pcap.list_packets(fid, limit=45)  # a cursor holds a frame number:
    page = await pcap.list_packets(fid, cursor=page.next_cursor, limit=3, flt=tcp)
    assert [p.number for p in page.items] == [46, 47, 48]  # it carries over to a filter
    rest = await pcap.list_packets(fid, cursor=page.next_cursor, limit=3, flt=tcp)
    assert [p.number for p in rest.items] == [49] and rest.next_cursor is None
    await pcap.delete_packets(fid)
    assert await pcap.last_packet_number(fid) == 0


async def test_stats_and_deletion(store):
    pcap = store.pcap
    job = await running(store, project_id="gone")
    fid = job.file_id
    doc = {"a": [1, 2.5, None, "x"], "nested": {"k": True}}
    assert await pcap.put_stats(fid, job.attempt, {"summary": doc, "io": {"base": 0.01}})
    assert await pcap.get_stats(fid, "summary") == doc
    assert await pcap.get_stats(fid, "missing") is None
    assert await pcap.put_stats(fid, job.attempt, {"summary": {"b": 1}})
    assert await pcap.get_stats(fid, "summary") == {"b": 1}
    big = {"items": ["y" * 1000] * 20_000}  # ~20 MB: above one BSON document
    assert await pcap.put_stats(fid, job.attempt, {"conversations:tcp": big})
    assert await pcap.get_stats(fid, "conversations:tcp") == big
    await pcap.add_packets(fid, job.attempt, [packet(1)])
    other = await pcap.queue_job(file_id=new_id(), project_id="kept", requested_by="u")
    assert await pcap.delete_project_jobs("gone") == [fid]
    assert await pcap.get_job(fid) is None and await pcap.get_stats(fid, "summary") is None
    assert await pcap.get_packet(fid, 1) is None
    assert (await pcap.get_job(other.file_id)).state == "queued"
