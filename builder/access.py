"""Telling open WebSockets that access to what they watch may have gone.

A live stream is authorised once, at its handshake. When a share link is revoked, a run
unpublished, a graph deleted or an API token revoked, the service that did it names the
channel-layer group of the sockets concerned; each of them checks its access again, in the
database, and closes (4403) if it is gone. Sent after the transaction commits, so that the
check sees the change. A message lost with Redis is caught by the sockets' periodic check.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

MESSAGE = {"type": "access.changed"}


def graph_group(graph_id: int) -> str:
    """Every socket watching a run of the graph."""
    return f"graph-{graph_id}-access"


def token_group(token_id: int) -> str:
    """Every socket that authenticated with the API token."""
    return f"token-{token_id}-access"


def access_changed(group: str) -> None:
    transaction.on_commit(lambda: _send(group))


def _send(group: str) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, MESSAGE)
    except Exception:  # Redis down: the sockets' own periodic check closes them later
        log.warning("could not tell the sockets of %s that access changed", group,
                    exc_info=True)
