"""python-socketio's Redis client manager, made to come back promptly after Redis did.

The library's listener retries with a backoff that doubles up to 60 s, so after a ten-second
outage an instance could stay deaf to the other instances' pushes for many seconds more while
every health check passed, and each retry opened a client without closing the last one.
Here the listener has its own client, closed before the next attempt, the backoff is capped
at ``RETRY_MAX_S``, and the manager says whether it is subscribed (``listening``, for
``/ready``) and how many times it has subscribed (``generation``): a change means pushes from
the other instances may have passed it by meanwhile.

Publishing keeps one client, which reconnects by itself (the library made a new one after
each failure and never closed the old); it retries once, so an emit during an outage does
not wait out a backoff. A push that cannot be published has already reached this instance's
sockets (the local half goes first) and is dropped for the others: pushes are not stored.
The outage is logged once, not for every push.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

import socketio
from redis.exceptions import RedisError

from server.local_delivery import deliver
from server.room_index import RoomIndex
from services.push_order import PushOrder
from services.redis_client import OutageLog, client_options

log = logging.getLogger("server.redis_manager")
RETRY_MIN_S, RETRY_MAX_S = 0.25, 2.0


class RedisManager(RoomIndex, socketio.AsyncRedisManager):
    def __init__(self, url: str, channel: str):
        super().__init__(url, channel=channel, redis_options=client_options(retries=1))
        self.listening = False
        self.generation = 0
        # The gate of numbered pushes (services/push_order.py); the app shares it with
        # services.replay.Delivery, which hands this instance's own pushes to it.
        self.order: PushOrder | None = None
        self._outage = OutageLog(log, "socket.io manager: publishing (pushes reach this "
                                      "instance's sockets only)")

    def start(self) -> None:
        """Subscribe now rather than at the first client's connection (the library's
        default), so an instance is listening from the moment it says it is ready."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    async def _handle_emit(self, message):
        """A push for this instance's sockets (from the channel, or this instance's own):
        queued per recipient without a task each (server/local_delivery.py)."""
        if message.get("callback") is not None or message.get("binary"):
            return await super()._handle_emit(message)
        data = message["data"]
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else tuple(data)
        send = partial(deliver, self, message["event"], data, message.get("namespace"),
                       message.get("room"), message.get("skip_sid"))
        order = message.get("order")
        if order is None or self.order is None:
            await send()
            return
        room, epoch, seq, fresh = order
        await self.order.offer(room, epoch, seq, bool(fresh), send)

    async def emit(self, event, data, namespace=None, room=None, skip_sid=None,
                   callback=None, to=None, **kwargs):
        if kwargs.get("ignore_queue") and callback is None:  # this instance's sockets only
            await deliver(self, event, data, namespace, to or room, skip_sid)
            return
        await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                           callback=callback, to=to, **kwargs)

    async def _publish(self, data):
        if self.redis is None:
            self._redis_connect()
        try:
            await self.redis.publish(self.channel, self.json.dumps(data))
        except RedisError as exc:
            self._outage.failed(exc)
        else:
            self._outage.ok()

    async def _redis_listen_with_retries(self):
        delay = RETRY_MIN_S
        while True:
            client = self._get_redis_module().Redis.from_url(self.redis_url, **client_options())
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.listening, delay = True, RETRY_MIN_S
                self.generation += 1
                if self.generation > 1:
                    log.warning("socket.io manager: subscribed to redis again")
                    if self.order is not None:
                        self.order.reset()  # what was published meanwhile is not coming
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    log.warning("socket.io manager: lost redis, retrying",
                                extra={"fields": {"error": str(exc)}})
                self.listening = False
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
