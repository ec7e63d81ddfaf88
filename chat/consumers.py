"""`/event/realtime`: the AppSync Events WebSocket protocol, served by Channels.

The consumer authenticates in `connect` (the Django session; the `header-…` subprotocol a
real AppSync client sends for auth is ignored), checks each frame with `chat.protocol`,
and hands inbound publishes to `chat.turns`, which runs them as tasks on the event loop.
Answers come back through the user's outbound group and leave as `data` frames. Nothing here
blocks the event loop: a turn's blocking steps run in thread pools.
"""
from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import OrderedDict
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import protocol
from chat.flood import publish_allowed
from chat.local_delivery import subscriber_add, subscriber_discard
from chat.protocol import BAD_REQUEST, THROTTLED, UNAUTHORIZED, UNSUPPORTED, ProtocolError
from chat.turns import publish_inbound, running_turns
from dataplane.channels import may_subscribe, outbound_group_name

logger = logging.getLogger("chat.consumers")

UNHANDLED_FRAME = "The server could not handle this frame."
MAX_SUBSCRIPTIONS = 20
REMEMBERED_IDS = 10_000  # publish ids kept to refuse reuse; the oldest are forgotten first


class EventsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.subscriptions: dict[str, str] = {}  # subscription id -> channel
        self.publish_ids: OrderedDict[str, None] = OrderedDict()
        self.turns: weakref.WeakSet = weakref.WeakSet()  # cancel events of turns this connection started
        self.keepalive_task: asyncio.Task | None = None
        self.strikes = 0
        self.sub = ""
        self.serving = False  # true between an authenticated accept and our own close
        subprotocol = protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in self.scope.get("subprotocols", []) else None
        user = self.scope.get("user")
        # Accept first, then close: a close before accepting becomes an HTTP 403 and the
        # client would never see why.
        await self.accept(subprotocol)
        if user is None or not user.is_authenticated:
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
            return
        self.sub, self.username = user.sub, user.get_username()
        self.serving = True

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler: a thread hop
        # through asgiref's executor for each message, outbound chunks included. Nothing here
        # touches the database after the connect (the user is resolved by the middleware),
        # so only the connect pays for it.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None or message["type"] == "websocket.connect":
            await super().dispatch(message)
        else:
            await handler(message)

    async def disconnect(self, code: int) -> None:
        self._client_gone()
        if self.subscriptions:
            self.subscriptions.clear()
            subscriber_discard(self.sub, self)
            await self.channel_layer.group_discard(outbound_group_name(self.sub), self.channel_name)

    def _client_gone(self) -> None:
        """Stop this connection's turns (the data plane bills what streamed) and its
        keep-alive. Idempotent: a failed send and the disconnect that follows both call it."""
        self.serving = False
        for cancel in list(self.turns):
            cancel.set()
        if self.keepalive_task is not None:
            self.keepalive_task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.serving:
            return
        try:
            await self._receive(text_data, bytes_data)
        except Exception:
            # An escaping exception would end the consumer without `disconnect`, leaving its
            # turns running and billed in full; the client gets a plain error instead.
            logger.exception("frame from %s could not be handled", self.sub)
            await self._refuse("error", None, ProtocolError(BAD_REQUEST, UNHANDLED_FRAME))

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        try:
            frame = protocol.parse_frame(text_data, bytes_data)
        except ProtocolError as error:
            await self._refuse("error", None, error)
            return
        handler = {
            "connection_init": self._connection_init,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "publish": self._publish,
        }.get(frame["type"])
        if handler is None:
            unknown = ProtocolError(UNSUPPORTED, f"Unknown message type {frame['type'][:64]!r}.")
            await self._refuse("error", _echo_id(frame), unknown)
            return
        await handler(frame)

    # --- client messages ----------------------------------------------------------------

    async def _connection_init(self, frame: dict[str, Any]) -> None:
        self.strikes = 0
        await self._reply(protocol.connection_ack())
        if self.keepalive_task is None:
            interval = float(settings.CHAT_KEEPALIVE_SECONDS)
            self.keepalive_task = asyncio.ensure_future(self._keepalive(interval))

    def _subscription_wanted(self, frame: dict[str, Any]) -> tuple[str, str]:
        """The new subscription's id and channel; a ProtocolError says why there is none."""
        frame_id = self._fresh_id(frame)
        channel = protocol.channel_path(frame)
        if not may_subscribe(self.sub, channel):
            raise ProtocolError(
                UNAUTHORIZED, "You can only subscribe to your own outbound channel, /outbound/<your id>."
            )
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError(BAD_REQUEST, f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection.")
        return frame_id, channel

    async def _subscribe(self, frame: dict[str, Any]) -> None:
        try:
            frame_id, channel = self._subscription_wanted(frame)
        except ProtocolError as error:
            await self._refuse("subscribe_error", _echo_id(frame), error)
            return
        if not self.subscriptions:
            await self.channel_layer.group_add(outbound_group_name(self.sub), self.channel_name)
            subscriber_add(self.sub, self)
        self.subscriptions[frame_id] = channel
        self.strikes = 0
        await self._reply(protocol.answer("subscribe_success", frame_id))

    def _subscription_held(self, frame: dict[str, Any]) -> str:
        """The id of the subscription to end; a ProtocolError when this connection has none such."""
        frame_id = protocol.message_id(frame)
        if frame_id not in self.subscriptions:
            raise ProtocolError(BAD_REQUEST, "There is no subscription with this id on this connection.")
        return frame_id

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        try:
            frame_id = self._subscription_held(frame)
        except ProtocolError as error:
            await self._refuse("unsubscribe_error", _echo_id(frame), error)
            return
        del self.subscriptions[frame_id]
        if not self.subscriptions:
            subscriber_discard(self.sub, self)
            await self.channel_layer.group_discard(outbound_group_name(self.sub), self.channel_name)
        self.strikes = 0
        await self._reply(protocol.answer("unsubscribe_success", frame_id))

    async def _publish_accepted(self, frame: dict[str, Any]) -> tuple[str, str, protocol.PublishOutcome]:
        """The publish's id, channel and checked events; a ProtocolError when it is refused whole."""
        frame_id = self._fresh_id(frame)
        if not await publish_allowed(self.sub):
            raise ProtocolError(THROTTLED, "Too many publishes; wait a moment and try again.")
        channel, outcome = protocol.inbound_publish(self.sub, frame)
        return frame_id, channel, outcome

    async def _publish(self, frame: dict[str, Any]) -> None:
        try:
            frame_id, channel, outcome = await self._publish_accepted(frame)
        except ProtocolError as error:
            await self._refuse("publish_error", _echo_id(frame), error)
            return
        self._remember(frame_id)
        self.strikes = 0
        started = await publish_inbound(sub=self.sub, username=self.username, channel=channel, events=outcome.accepted)
        self.turns.update(started)
        await self._reply(
            protocol.answer("publish_success", frame_id, successful=outcome.successful(), failed=outcome.failed)
        )

    # --- group messages -----------------------------------------------------------------

    async def outbound_event(self, message: dict[str, Any]) -> None:
        for subscription_id, channel in list(self.subscriptions.items()):
            if channel == message["channel"]:
                # The event arrives encoded for the frame (see chat.outbound): written, not
                # serialised again, once per subscription.
                await self._send_text(protocol.data_frame(subscription_id, message["event"]))

    async def turn_cancel(self, message: dict[str, Any]) -> None:
        running_turns.cancel(self.sub, message["conversationId"])

    # --- helpers ------------------------------------------------------------------------

    async def _keepalive(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._reply(protocol.keepalive())

    def _fresh_id(self, frame: dict[str, Any]) -> str:
        frame_id = protocol.message_id(frame)
        if frame_id in self.subscriptions or frame_id in self.publish_ids:
            raise ProtocolError(BAD_REQUEST, "This id was already used on this connection; ids must be unique.")
        return frame_id

    def _remember(self, frame_id: str) -> None:
        self.publish_ids[frame_id] = None
        while len(self.publish_ids) > REMEMBERED_IDS:
            self.publish_ids.popitem(last=False)

    async def _refuse(self, kind: str, frame_id: str | None, error: ProtocolError) -> None:
        await self._reply(protocol.failure(kind, frame_id, error))
        # Refusals in a row are abuse past a point; any accepted frame resets the count.
        self.strikes += 1
        if self.strikes >= settings.CHAT_ABUSE_STRIKES:
            self.serving = False
            await self.close(code=protocol.CLOSE_ABUSE)

    async def _reply(self, message: dict[str, Any]) -> None:
        await self._send_text(json.dumps(message))

    async def _send_text(self, text: str) -> None:
        try:
            await self.send(text_data=text)
        except Exception:  # noqa: BLE001 - the socket closed under us ("send on a closed protocol")
            self._client_gone()


def _echo_id(frame: dict[str, Any]) -> str | None:
    value = frame.get("id")
    return value[:128] if isinstance(value, str) else None
