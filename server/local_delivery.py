"""How an instance hands one push to its own sockets in a room: the part of every fan-out that
is paid per recipient.

python-socketio's manager encodes the packet once, then starts one asyncio task per recipient
to queue it, and waits for them all: for a push to 100 sockets, 100 tasks created, scheduled
and collected — more CPU than the queueing itself. The tasks buy nothing here: queueing a
packet for a socket never waits (engineio's queues are unbounded, and ours drops a socket
that stops reading instead of blocking: server/send_queue.py). So the packet is queued for
each recipient in turn, in the one task that delivers the push, which also keeps every
socket's packets in the order the pushes were delivered.
"""
from __future__ import annotations

import logging
from typing import Any

from engineio import packet as eio_packet
from socketio import AsyncManager
from socketio import packet as sio_packet

from server.room_index import RoomIndex

log = logging.getLogger("server.delivery")


async def deliver(manager: AsyncManager, event: str, data: Any, namespace: str | None,
                  room: Any, skip_sid: Any) -> None:
    """Queue ``event`` for every socket of this instance in ``room`` (a room, a sid, or a
    list of them) except ``skip_sid``; what python-socketio's emit does without a callback."""
    namespace = namespace or "/"
    if namespace not in manager.rooms:
        return
    if isinstance(data, tuple):
        args = list(data)
    elif data is not None:
        args = [data]
    else:
        args = []
    skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
    server = manager.server
    encoded = server.packet_class(sio_packet.EVENT, namespace=namespace,
                                  data=[event, *args]).encode()
    packets = [eio_packet.Packet(eio_packet.MESSAGE, p)
               for p in (encoded if isinstance(encoded, list) else [encoded])]
    send = server.eio.send_packet
    for sid, eio_sid in manager.get_participants(namespace, room):
        if sid in skip:
            continue
        try:
            for pkt in packets:
                await send(eio_sid, pkt)
        except Exception:  # one broken socket must not cost the others their push
            log.exception("queueing %s for %s failed", event, sid)


class LocalManager(RoomIndex, AsyncManager):
    """The in-process manager (no Redis) with ``deliver`` for pushes without a callback."""

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None,
                   to=None, **kwargs):
        if callback is not None:
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                                      callback=callback, to=to, **kwargs)
        await deliver(self, event, data, namespace, to or room, skip_sid)
