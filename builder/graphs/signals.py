"""What graphs tell the apps that use them, which graphs never import (compute.jobs
connects its receivers in its AppConfig.ready)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by services.delete_graph inside its transaction, before the graph's rows are
# deleted, with `graph`. A receiver stops what uses the graph; files it must remove it
# removes with transaction.on_commit, so that nothing is lost if the deletion fails.
graph_deleting = Signal()
