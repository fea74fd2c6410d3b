"""Writing side of graphs: every change to a graph, its versions or its share links.

Functions take keyword-only arguments, check what they are given, and raise the domain
errors below; the API turns those into responses.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from safetensors.torch import save as save_tensors

from builder import access
from builder.rest import ApiError
from compute import exports
from compute.engine import GraphError, Problem, load_graph, weight_shapes
from compute.engine.training import unshared

from . import blocks
from .models import Graph, GraphVersion, InitialWeights, ShareLink, hash_token
from .serializers import version_data
from .signals import graph_deleting

SHARE_TOKEN_BYTES = 32  # 256 bits


class InvalidGraph(ApiError):
    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {"error": "the graph is not valid; see problems",
                "problems": [p.to_dict() for p in self.problems]}


class GraphTooLarge(ApiError):
    def __init__(self, size: int, limit: int):
        super().__init__(f"the graph is {size:,} bytes; the limit is {limit:,} bytes "
                         "(SHIPYARD_MAX_GRAPH_BYTES)", status=413)


class ImportRefused(ApiError):
    """An ONNX file that cannot be imported: every reason, and the operators without a
    block counted by name."""

    def __init__(self, problems: list[Problem], unmapped: dict[str, int]):
        super().__init__(problems[0].message if problems else "the file cannot be imported")
        self.problems = problems
        self.unmapped = unmapped

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "problems": [p.to_dict() for p in self.problems],
                "unmapped": self.unmapped}


class Conflict(ApiError):
    """A save based on a version that is no longer the latest."""

    def __init__(self, current: GraphVersion, base: int | None):
        super().__init__(f"this graph has changed since version {base}: the latest is "
                         f"version {current.number}; reload it (or fork) before saving",
                         status=409)
        self.current = current

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "current_version": version_data(self.current)}


def canonical_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def accept_document(document: Any) -> str:
    """Check a graph document at the edge; returns it as JSON text, exactly as given."""
    if not isinstance(document, dict):
        raise InvalidGraph([Problem("a graph document is a JSON object")])
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        raise InvalidGraph([Problem(f"a string holds a lone surrogate "
                                    f"({exc.object[exc.start]!a}), which is not a Unicode "
                                    "character")]) from None
    except ValueError:
        # Checked here, before anything is stored: a document holding one could be saved
        # but never sent back, as JSON has no spelling for it.
        raise InvalidGraph([Problem("numbers must be finite: JSON has no NaN or "
                                    "Infinity")]) from None
    if size > settings.SHIPYARD_MAX_GRAPH_BYTES:
        raise GraphTooLarge(size, settings.SHIPYARD_MAX_GRAPH_BYTES)
    try:
        load_graph(document)
    except GraphError as exc:
        raise InvalidGraph(exc.problems) from None
    return text


def _title(document: dict[str, Any], fallback: str = "Untitled model") -> str:
    name = document.get("name")
    if not isinstance(name, str):
        return fallback
    name = "".join(ch for ch in name if ch.isprintable()).strip()  # no NULs into text columns
    return name[:200] or fallback


def check_blocks(document: dict[str, Any], *, user: AbstractBaseUser, graph_id: int | None,
                 accepted: tuple[dict[str, Any], ...] = ()) -> None:
    """InvalidGraph (400) if a Custom node of the document names a version `user` cannot
    use, holds another copy, or contains the graph being saved (see `blocks`)."""
    problems = blocks.block_problems(document, user=user, graph_id=graph_id,
                                     accepted=accepted)
    if problems:
        raise InvalidGraph(problems)


@transaction.atomic
def create_graph(*, owner: AbstractBaseUser, document: Any, name: str | None = None,
                 message: str = "", forked_from: GraphVersion | None = None) -> Graph:
    text = accept_document(document)
    check_blocks(document, user=owner, graph_id=None,
                 accepted=(forked_from.document,) if forked_from is not None else ())
    graph = Graph.objects.create(
        owner=owner, name=(name or _title(document))[:200], head=1, forked_from=forked_from,
        forked_from_name=forked_from.graph.name if forked_from is not None else "")
    GraphVersion.objects.create(graph=graph, number=1, document_json=text,
                                content_hash=content_hash(document), author=owner,
                                message=message[:500])
    return graph


def import_onnx_graph(*, owner: AbstractBaseUser, data: bytes, name: str | None = None
                      ) -> Graph:
    """A new graph from an ONNX file: its first version holds the imported document and
    starts from the file's weights. Raises ImportRefused listing why a file cannot be
    imported; nothing is stored then."""
    from safetensors.torch import save

    from compute.engine.onnx_import import OnnxImportError, import_onnx

    try:
        imported = import_onnx(data, name=name)
    except OnnxImportError as exc:
        raise ImportRefused(exc.problems, exc.unmapped) from None
    blob = save({k: v.contiguous() for k, v in imported.weights.items()})
    with transaction.atomic():
        graph = create_graph(owner=owner, document=imported.document, name=name,
                             message="Imported from ONNX")
        weights = InitialWeights.objects.create(graph=graph, data=blob,
                                                sha256=hashlib.sha256(blob).hexdigest())
        graph.versions.filter(number=1).update(initial_weights=weights)
    return graph


def _same_weights(before: GraphVersion, document: dict[str, Any]) -> bool:
    """Whether `document`'s model has exactly the weight names and shapes of `before`'s, so
    that weights which fit one fit the other (compared on the meta device: no weights file
    is read)."""
    try:
        return weight_shapes(before.document) == weight_shapes(document)
    except GraphError:
        return False


def _locked(graph_id: int) -> Graph:
    return Graph.objects.select_for_update().get(id=graph_id)


@dataclass(frozen=True)
class NewWeights:
    """Initial weights to store with a new version: a whole state dict of its model, the
    names fine-tuning keeps frozen, and where they came from (InitialWeights.lineage)."""

    state: Mapping[str, torch.Tensor]
    frozen: Collection[str] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)


def store_weights(*, graph: Graph, weights: NewWeights) -> InitialWeights:
    blob = save_tensors(unshared(weights.state))
    return InitialWeights.objects.create(graph=graph, data=blob,
                                         sha256=hashlib.sha256(blob).hexdigest(),
                                         frozen=sorted(weights.frozen),
                                         lineage=dict(weights.lineage))


@transaction.atomic
def save_version(*, graph: Graph, author: AbstractBaseUser, document: Any, base_version: int,
                 message: str = "", restored_from: int | None = None,
                 accepted: tuple[dict[str, Any], ...] = (),
                 weights: NewWeights | None = None) -> tuple[GraphVersion, bool]:
    """Save `document` as the next version, if `base_version` is still the latest.

    Returns the version and whether it is new: saving what the latest version already holds
    makes no new version. Raises Conflict for a stale base, InvalidGraph for a bad document
    (its Custom nodes included: those of the latest version and of `accepted` documents,
    checked when they were saved, are not checked for access again). `weights`: the new
    version's initial weights (a SQL change of a model with weights), instead of those of
    the version it follows.
    """
    text = accept_document(document)
    locked = _locked(graph.id)  # one save at a time per graph
    current = locked.versions.get(number=locked.head)
    if base_version != locked.head:
        raise Conflict(current, base_version)
    digest = content_hash(document)
    if digest == current.content_hash and weights is None:
        return current, False  # (new weights on the same document are a new version)
    check_blocks(document, user=author, graph_id=locked.id,
                 accepted=(current.document, *accepted))
    # A restored version brings back the weights it started from; any other save keeps
    # the latest version's.
    source = current
    if restored_from is not None:
        source = locked.versions.filter(number=restored_from).first() or current
    kept = source.initial_weights_id
    if kept is not None and not _same_weights(source, document):
        kept = None  # the new version's model has other names or shapes: fresh weights
    try:
        with transaction.atomic():
            if weights is not None:
                kept = store_weights(graph=locked, weights=weights).id
            version = GraphVersion.objects.create(
                graph=locked, number=locked.head + 1, document_json=text, content_hash=digest,
                author=author, message=message[:500], restored_from=restored_from,
                initial_weights_id=kept)
    except IntegrityError:
        # Where the row lock does nothing (SQLite), two saves can still race: the unique
        # (graph, number) constraint lets one win, and the other is a stale save.
        raise Conflict(graph.versions.order_by("-number").first() or current,
                       base_version) from None
    locked.head = version.number
    locked.save(update_fields=["head", "updated_at"])
    graph.head = locked.head
    return version, True


def restore_version(*, graph: Graph, author: AbstractBaseUser, number: int,
                    base_version: int | None = None, message: str = ""
                    ) -> tuple[GraphVersion, bool]:
    """Make version `number`'s document the latest, as a new version (history is kept)."""
    old = graph.versions.get(number=number)
    return save_version(graph=graph, author=author, document=old.document,
                        base_version=graph.head if base_version is None else base_version,
                        message=message or f"Restored version {number}", restored_from=number,
                        accepted=(old.document,))


def rename_graph(*, graph: Graph, name: str) -> Graph:
    """The title in the user's list; the saved documents are left as they are."""
    graph.name = name.strip()[:200]
    graph.save(update_fields=["name", "updated_at"])
    return graph


def delete_graph(*, graph: Graph) -> None:
    """The graph, its versions and its links, and what other apps keep of it: they hear
    `graph_deleting` first (compute.jobs cancels the graph's runs, whose rows go with it,
    and removes their folders once the deletion is committed)."""
    with transaction.atomic():
        graph_deleting.send(sender=Graph, graph=graph)
        access.access_changed(access.graph_group(graph.id))
        versions = list(graph.versions.values_list("id", flat=True))
        graph.delete()
    exports.remove(root=settings.EXPORTS_DIR, versions=versions)


def create_share_link(*, graph: Graph, created_by: AbstractBaseUser,
                      version: GraphVersion | None = None) -> tuple[ShareLink, str]:
    """A new link to `graph` (pinned to `version`, or following the latest). Returns the row
    and the raw token, which is never stored."""
    raw = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
    link = ShareLink.objects.create(graph=graph, token_hash=hash_token(raw), prefix=raw[:8],
                                    version=version, created_by=created_by)
    return link, raw


def revoke_share_link(*, graph: Graph, link_id: int) -> bool:
    changed = ShareLink.objects.filter(id=link_id, graph=graph, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    access.access_changed(access.graph_group(graph.id))  # who watched through it stops
    return changed == 1


@transaction.atomic
def fork_version(*, version: GraphVersion, owner: AbstractBaseUser) -> Graph:
    """A new graph for `owner` holding `version`'s document (and its initial weights, as a
    copy of the fork's own), recording where it came from."""
    graph = create_graph(owner=owner, document=version.document,
                         name=f"{version.graph.name} (fork)",
                         message=f"Forked from {version.graph.name} v{version.number}",
                         forked_from=version)
    source = version.initial_weights
    if source is not None:
        weights = InitialWeights.objects.create(graph=graph, data=source.data,
                                                sha256=source.sha256, frozen=source.frozen,
                                                lineage=source.lineage)
        graph.versions.filter(number=1).update(initial_weights=weights)
    return graph


@transaction.atomic
def create_derived_graph(*, owner: AbstractBaseUser, name: str, document: Any,
                         weights: NewWeights, message: str = "") -> Graph:
    """A new graph for `owner` whose first version holds `document` and starts from
    `weights`: a model derived with SQL from a trained run (its lineage says which run,
    and which statements)."""
    graph = create_graph(owner=owner, document=document, name=name, message=message)
    stored = store_weights(graph=graph, weights=weights)
    graph.versions.filter(number=1).update(initial_weights=stored)
    return graph
