"""`/ws/jobs/{id}/`: a run's events, live (JobConsumer); `/ws/admin/queue/`: the compute
queue for the administrators' queue page (QueueConsumer, at the end).

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

from . import events, queue, selectors
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


# `/ws/admin/queue/`: the administrators' queue page, live.


class SnapshotMessage(TypedDict):
    """The whole queue as it is now (compute.jobs.queue.snapshot())."""

    type: Literal["snapshot"]
    snapshot: dict[str, Any]


def _may_manage(user_id: int) -> bool:
    """Whether the user may see the queue page now: active staff who may view runs."""
    user = get_user_model().objects.filter(id=user_id, is_active=True, is_staff=True).first()
    return user is not None and user.has_perm("jobs.view_job")


def _staff_snapshot(user_id: int) -> SnapshotMessage | None:
    if not _may_manage(user_id):
        return None
    return {"type": "snapshot", "snapshot": queue.snapshot()}


class QueueConsumer(AsyncJsonWebsocketConsumer):
    """Sends the queue's snapshot on connect, then again after every change the queue
    reports on its group (`{"type": "queue.changed"}`), coalesced: at most one snapshot per
    MIN_GAP seconds, however many changes came meanwhile. Every REFRESH_SECONDS it sends
    one anyway: a worker turns "lost" by keeping quiet, which no message announces, and a
    message lost with Redis is caught up. Staff sessions only (the admin's own login, no
    API token): 4401 without a login, 4403 for anyone else, and 4403 as soon as the user is
    no longer staff (checked with every snapshot). What the client sends is dropped: the
    actions are the page's POSTs (queue_page.py)."""

    MIN_GAP = 0.3
    REFRESH_SECONDS = 5.0
    user_id: int
    joined = False
    dirty = False
    last_sent = 0.0
    sender: asyncio.Task[None] | None = None
    refresher: asyncio.Task[None] | None = None

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if self.scope.get("auth_token") is not None:
            await self.refuse("the queue page takes an administrator's session, not an "
                              "API token", 4403)
            return
        if not (user and user.is_authenticated):
            await self.refuse("log in to the admin first", 4401)
            return
        self.user_id = user.pk
        if not await database_sync_to_async(_may_manage)(self.user_id):
            await self.refuse("the queue page is for staff who may view runs", 4403)
            return
        # Join before the first snapshot: no change between the two is lost.
        await self.channel_layer.group_add(queue.QUEUE_GROUP, self.channel_name)
        self.joined = True
        if await self.send_snapshot():
            self.refresher = asyncio.create_task(self.refresh_every(self.REFRESH_SECONDS))

    async def refuse(self, text: str, code: int) -> None:
        await self.send_json(_error(text))
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        for task in (self.sender, self.refresher):
            if task is not None:
                task.cancel()
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(queue.QUEUE_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: Any) -> None:
        """Dropped unread (see the class)."""

    async def queue_changed(self, message: dict[str, Any]) -> None:
        self.dirty = True
        if self.sender is None or self.sender.done():
            self.sender = asyncio.create_task(self.send_changes())

    async def send_changes(self) -> None:
        loop = asyncio.get_running_loop()
        while self.dirty and self.joined:
            wait = self.last_sent + self.MIN_GAP - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.dirty = False  # a change from here on asks for one more round
            try:
                await self.send_snapshot()
            except Exception:  # the database away for a moment: the refresh catches up
                log.warning("could not send the queue's snapshot", exc_info=True)
                return

    async def refresh_every(self, seconds: float) -> None:
        while self.joined:
            await asyncio.sleep(seconds)
            await self.queue_changed({"type": "queue.changed"})

    async def send_snapshot(self) -> bool:
        """Send the snapshot, or close (4403) if the user may no longer see it."""
        message = await database_sync_to_async(_staff_snapshot)(self.user_id)
        self.last_sent = asyncio.get_running_loop().time()
        if not self.joined:
            return False
        if message is None:
            self.joined = False
            await self.channel_layer.group_discard(queue.QUEUE_GROUP, self.channel_name)
            with contextlib.suppress(Exception):
                await self.refuse("you may no longer see the queue page", 4403)
            return False
        await self.send_json(message)
        return True
