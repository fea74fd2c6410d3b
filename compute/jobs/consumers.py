"""`/ws/jobs/{id}/`: a run's events, live.

On connect the client gets `{"type": "state", "job": {...}, "last_seq": N}`, then every
event the run reports (see events.py), each a message of its own, in sequence order.
Anything it misses (a reconnect, a slow connection) it asks for at
`GET /api/jobs/{id}/metrics?since=SEQ`. Closes with 4401 when nobody is logged in and
4404 when the run is not the user's (nor published to a share link the client names as
`?share=TOKEN`). The consumer reads, never writes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.serializers.json import DjangoJSONEncoder

from . import events, selectors


def _state(user: Any, job_id: int, share: str | None) -> dict[str, Any] | None:
    from .api import job_data

    job = selectors.watchable_job(user, job_id, share)
    if job is None:
        return None
    return {"type": "state", "job": job_data(job), "last_seq": job.last_seq}


class JobConsumer(AsyncJsonWebsocketConsumer):
    group = ""

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)  # the state has datetimes

    async def connect(self) -> None:
        user = self.scope.get("user")
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        share = (query.get("share") or [None])[0]
        await self.accept()
        if not share and not (user and user.is_authenticated):
            await self.send_json({"type": "error", "error": "log in, or send an API token "
                                  "as 'Authorization: Bearer <token>'"})
            await self.close(code=4401)
            return
        # Join before reading the state: nothing said between the two is lost.
        self.group = events.group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        state = await database_sync_to_async(_state)(user, job_id, share)
        if state is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = ""
            await self.send_json({"type": "error", "error": "no such run"})
            await self.close(code=4404)
            return
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Events touch no database: skip the per-message close_old_connections hop that
        # Channels makes through Django's one sync thread (it dominates a 50-client fan-out).
        if message["type"] == "job.events":
            await self.job_events(message)
            return
        await super().dispatch(message)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass  # the stream is one way; backfill is over REST

    async def job_events(self, message: dict[str, Any]) -> None:
        for event in message["events"]:
            await self.send_json(event)
