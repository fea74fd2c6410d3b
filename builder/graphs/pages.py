"""HTML pages: the home page (your graphs), the editor (a new model, a saved one, or a
shared one read-only) and forking from a share link. The editor itself is the frontend's
bundle; these views only hand it what it starts from."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_http_methods

from compute.engine import STARTERS, inspect_graph

from . import selectors, services

STARTER_LABELS = {"mlp": "MLP", "cnn": "CNN", "resnet": "ResNet-style",
                  "transformer_classifier": "Transformer classifier",
                  "char_gpt": "Character GPT"}


def home(request: HttpRequest) -> HttpResponse:
    graphs = selectors.graphs_of(request.user) if request.user.is_authenticated else []
    starters = [{"name": name, "title": title, "label": STARTER_LABELS.get(name, name)}
                for name, title in STARTERS.items()]
    return render(request, "graphs/home.html", {"graphs": graphs, "starters": starters})


def _editor(request: HttpRequest, boot: dict[str, Any], extra: dict[str, Any] | None = None,
            ) -> HttpResponse:
    user = request.user
    boot = {
        "graphId": None, "starter": None, "shareToken": None,
        "user": {"username": user.get_username()} if user.is_authenticated else None,
        "loginUrl": f"{resolve_url(settings.LOGIN_URL)}?next={quote(request.get_full_path())}",
        **boot,
    }
    built = (settings.EDITOR_DIST / "manifest.json").exists()
    context = {"boot": boot, "editor_built": built or settings.DJANGO_VITE["default"]["dev_mode"]}
    return render(request, "graphs/editor.html", {**context, **(extra or {})})


@login_required
def new_graph(request: HttpRequest) -> HttpResponse:
    """A blank canvas, or a starter (`?starter=char_gpt`), not saved until the first save."""
    starter = request.GET.get("starter") or None
    if starter is not None and starter not in STARTERS:
        raise Http404(f"no starter named {starter!r}")
    return _editor(request, {"starter": starter})


@login_required
def edit_graph(request: HttpRequest, graph_id: int) -> HttpResponse:
    graph = selectors.graph_of(request.user, graph_id)
    return _editor(request, {"graphId": graph.id}, {"title": graph.name})


def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    """The editor, read-only, on the version the link shows; without JavaScript, a table."""
    link, version = selectors.shared(token)
    report = inspect_graph(version.document)
    rows = []

    def walk(nodes: dict, depth: int) -> None:
        for node_id, entry in nodes.items():
            out = entry["outputs"].get("out") or entry["inputs"].get("in")
            shape = "[" + ", ".join(map(str, out["shape"])) + "]" if out else ""
            times = f" ×{entry['times']}" if "times" in entry else ""
            rows.append({"id": node_id, "type": entry["type"] + times, "shape": shape,
                         "params": entry["params"], "indent": depth})
            if "body" in entry:
                walk(entry["body"]["nodes"], depth + 1)

    walk(report["nodes"], 0)
    # The editor starts from this report instead of asking for it again.
    return _editor(request, {"shareToken": token, "report": report}, {
        "title": link.graph.name, "shared": True,
        "link": link, "graph": link.graph, "version": version, "token": token,
        "document": version.document, "report": report, "rows": rows,
    })


@require_http_methods(["POST"])
def fork_shared(request: HttpRequest, token: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next=/s/{token}")
    _, version = selectors.shared(token)
    graph = services.fork_version(version=version, owner=request.user)
    return redirect(f"/g/{graph.id}")
