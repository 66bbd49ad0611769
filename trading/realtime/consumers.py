"""The one websocket endpoint, /ws/: signed-in users only; ping and subscribe.

Messages reach a socket two ways:

- through the channel layer: ``trading.realtime.broadcast.publish`` in any process
  (engine, web, worker) sends to a group, and every subscribed socket gets it;
- through this process's local relay (``trading.realtime.relay``), which reads what the
  database already holds and pushes it to this process's sockets (see there).
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from trading.realtime.groups import is_valid_group
from trading.realtime.relay import RELAY


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Messages in: ``{"type": "ping"}``, ``{"type": "subscribe", "groups": [...]}``,
    ``{"type": "unsubscribe", "groups": [...]}``. Messages out: JSON with a ``type``.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined: set[str] = set()
        await self.accept()
        RELAY.attach(self)

    async def disconnect(self, code: int) -> None:
        RELAY.detach(self)
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})
        elif kind in ("subscribe", "unsubscribe"):
            await self._change_subscriptions(kind, content.get("groups"))
        else:
            await self.send_json({"type": "error", "error": f"unknown message type {kind!r}"})

    async def _change_subscriptions(self, kind: str, groups: object) -> None:
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            await self.send_json({"type": "error", "error": "groups must be a list of names"})
            return
        invalid = [g for g in groups if not is_valid_group(g)]
        if invalid:
            await self.send_json({"type": "error", "error": f"unknown groups: {invalid}"})
            return
        for group in groups:
            if kind == "subscribe" and group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.add(group)
            elif kind == "unsubscribe" and group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)
        await self.send_json({"type": kind + "d", "groups": sorted(self.groups_joined)})

    async def broadcast(self, event: dict) -> None:
        """Handler for group messages sent by ``trading.realtime.broadcast.publish``."""
        await self.send_json(event["message"])
