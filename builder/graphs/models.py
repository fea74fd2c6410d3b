"""Graphs, their immutable versions, and share links."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models


def hash_token(raw: str) -> str:
    """What is stored of a share link's token: its SHA-256, never the token."""
    return hashlib.sha256(raw.encode()).hexdigest()


class Graph(models.Model):
    """A user's model. Its content lives in versions; `head` is the number of the latest."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="graphs")
    name = models.CharField(max_length=200)
    head = models.PositiveIntegerField(default=0, help_text="Number of the latest version.")
    forked_from = models.ForeignKey("GraphVersion", null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="forks")
    # The origin's title when it was forked: the fork's owner sees no later renames.
    forked_from_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.name


class InitialWeights(models.Model):
    """Weights a graph's versions start from instead of seeded ones (an imported ONNX
    file's, or a model derived with SQL from a trained run): a safetensors file, kept once
    and shared by every version they fit, with the names fine-tuning keeps frozen."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="initial_weights")
    data = models.BinaryField(help_text="A safetensors file: the model's whole state dict.")
    sha256 = models.CharField(max_length=64)
    frozen = models.JSONField(default=list, blank=True, help_text="State-dict names that "
                              "fine-tuning keeps as they are (set with SQL: UPDATE tensors "
                              "SET frozen = 1 ...).")
    lineage = models.JSONField(default=dict, blank=True, help_text="Where they came from, "
                               "for a model derived with SQL: {run, graph, version, "
                               "statements, dataset, dataset_options, config}; empty for an "
                               "imported model's.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.graph} initial weights ({len(self.data):,} bytes)"


class GraphVersion(models.Model):
    """One save. Never changed after it is written: restoring an old one makes a new one."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # The document as accepted, as JSON text: a JSON column would reorder its keys.
    document_json = models.TextField()
    content_hash = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="+")
    message = models.CharField(max_length=500, blank=True)
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    # What runs of this version start from when they are given no other weights; carried to
    # a later version as long as they fit it exactly (same names and shapes).
    initial_weights = models.ForeignKey(InitialWeights, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="versions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["graph", "number"], name="one_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.graph} v{self.number}"

    @property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.document_json)
        return loaded


class ShareLink(models.Model):
    """Read-only access to one graph for whoever has the token. Only its SHA-256 is stored."""

    graph = models.ForeignKey(Graph, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    version = models.ForeignKey(GraphVersion, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+", help_text="Pinned version; empty follows "
                                "the latest.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        pinned = f"v{self.version.number}" if self.version_id else "latest"
        return f"{self.graph} ({pinned}, {self.prefix}…)"


class PathProgress(models.Model):
    """How far a user has walked a guided path (compute.engine.paths): the steps done and
    the one they are on. One row per user and path."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="path_progress")
    path = models.CharField(max_length=64)
    done = models.JSONField(default=list, blank=True, help_text="Ids of the steps done.")
    current = models.CharField(max_length=64, blank=True, help_text="The step the user is on.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "path"], name="one_progress_per_path"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.path}"
