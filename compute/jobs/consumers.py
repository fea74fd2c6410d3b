"""`/ws/jobs/{id}/`: a run's events, live.

On connect the client gets `{"type": "state", "job": {...}, "last_seq": N}`, then every
event the run reports (see events.py), each a message of its own, in sequence order.
Anything it misses (a reconnect, a slow connection) it asks for at
`GET /api/jobs/{id}/metrics?since=SEQ`. Closes with 4401 when nobody is logged in and
4404 when the run is not the user's (nor published to a share link the client names as
`?share=TOKEN`). The consumer reads, never writes.

Access is checked again whenever a service says it may have changed (builder/access.py: a
link revoked, the run unpublished, its graph deleted, the API token revoked) and every
SHIPYARD_WS_RECHECK_SECONDS besides; once it is gone the socket gets an error message and
closes with 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.serializers.json import DjangoJSONEncoder

from builder import access
from builder.accounts.auth import token_id_user

from . import events, selectors
from .schema import JobBody
from .serializers import job_data

log = logging.getLogger(__name__)

WITHDRAWN = ("you may no longer watch this run: its share link was revoked, it was "
             "unpublished or deleted, or your API token was revoked")


class StateMessage(TypedDict):
    """The first message: the run as it is, and the sequence number its events start after."""

    type: Literal["state"]
    job: JobBody
    last_seq: int


class ErrorMessage(TypedDict):
    """Why the socket closes."""

    type: Literal["error"]
    error: str


def _error(text: str) -> ErrorMessage:
    return {"type": "error", "error": text}


def _state(user: Any, job_id: int, share: str | None) -> StateMessage | None:
    job = selectors.watchable_job(user, job_id, share)
    if job is None:
        return None
    return {"type": "state", "job": job_data(job), "last_seq": job.last_seq}


@dataclass(frozen=True)
class Access:
    """What a socket was let in with: its user (None: nobody), the API token it showed
    (None: a session or nothing), and the share link it named."""

    user_id: int | None
    token_id: int | None
    job_id: int
    share: str | None


def _may_watch(access: Access) -> bool:
    """Whether the socket's credentials, as they are now, still show it the run."""
    if access.token_id is not None:
        user = token_id_user(access.token_id)
    elif access.user_id is not None:
        user = get_user_model().objects.filter(id=access.user_id, is_active=True).first()
    else:
        user = None
    return selectors.watchable_job(user or AnonymousUser(), access.job_id,
                                   access.share) is not None


class JobConsumer(AsyncJsonWebsocketConsumer):
    access: Access
    groups_joined: list[str]
    rechecks: asyncio.Task[None] | None = None

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)  # the state has datetimes

    async def connect(self) -> None:
        user = self.scope.get("user")
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        share = (query.get("share") or [None])[0]
        self.groups_joined = []
        await self.accept()
        if not share and not (user and user.is_authenticated):
            await self.send_json(_error("log in, or send an API token as "
                                        "'Authorization: Bearer <token>'"))
            await self.close(code=4401)
            return
        self.access = Access(user.pk if user.is_authenticated else None,
                             self.scope.get("auth_token"), job_id, share)
        # Join before reading the state: nothing said between the two is lost.
        await self.join(events.group_name(job_id))
        if self.access.token_id is not None:
            await self.join(access.token_group(self.access.token_id))
        state = await database_sync_to_async(_state)(user, job_id, share)
        if state is None:
            await self.leave_groups()
            await self.send_json(_error("no such run"))
            await self.close(code=4404)
            return
        await self.join(access.graph_group(state["job"]["graph"]))
        await self.send_json(state)
        self.rechecks = asyncio.create_task(self.recheck_every(
            settings.SHIPYARD_WS_RECHECK_SECONDS))

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def leave_groups(self) -> None:
        groups, self.groups_joined = self.groups_joined, []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.rechecks is not None:
            self.rechecks.cancel()
        await self.leave_groups()

    async def recheck_every(self, seconds: float) -> None:
        """The backstop for a change whose message was lost (Redis restarting)."""
        while self.groups_joined:
            await asyncio.sleep(seconds)
            try:
                await self.access_changed({"type": "access.changed"})
            except Exception:  # the database away for a moment: the next round checks
                log.warning("could not check a watcher's access", exc_info=True)

    async def access_changed(self, message: dict[str, Any]) -> None:
        if not self.groups_joined or await database_sync_to_async(_may_watch)(self.access):
            return
        await self.leave_groups()
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.send_json(_error(WITHDRAWN))
        await self.close(code=4403)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Events touch no database: skip the per-message close_old_connections hop that
        # Channels makes through Django's one sync thread (it dominates a 50-client fan-out).
        if message["type"] == "job.events":
            await self.job_events(cast(events.EventsMessage, message))
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: Any) -> None:
        """The stream is one way (backfill is over REST): what a client sends is dropped
        unread, so no frame (JSON nested thousands deep, say) can make the socket fail."""

    async def job_events(self, message: events.EventsMessage) -> None:
        for event in message["events"]:
            await self.send_json(event)
