"""HTML pages: the home page (your graphs), the editor (a new model, a saved one, or a
shared one read-only) and forking from a share link. The editor itself is the frontend's
bundle; these views only hand it what it starts from."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_http_methods

from compute.engine import STARTERS, inspect_graph

from . import selectors, services

STARTER_LABELS = {"mlp": "MLP", "cnn": "CNN", "resnet": "ResNet-style",
                  "transformer_classifier": "Transformer classifier",
                  "char_gpt": "Character GPT"}


# The metric a list shows for a run: the first of these it reported.
HEADLINE_METRICS = ("val_loss", "val_accuracy", "train_loss")


def run_summary(run: selectors.LastRun | None) -> str:
    """A run in a few words: "succeeded · val_loss 1.93"; "" for no run."""
    if run is None:
        return ""
    parts = [run.status]
    name = next((m for m in HEADLINE_METRICS if m in run.metrics), None)
    if name is not None:
        value = run.metrics[name]
        parts.append(f"{name} {'not finite' if value is None else f'{value:.3g}'}")
    return " · ".join(parts)


def home(request: HttpRequest) -> HttpResponse:
    rows = []
    if request.user.is_authenticated:
        for graph in selectors.graphs_with_last_run(request.user):
            run = selectors.last_run(graph)
            rows.append({"graph": graph, "run": run, "run_summary": run_summary(run)})
    starters = [{"name": name, "title": title, "label": STARTER_LABELS.get(name, name)}
                for name, title in STARTERS.items()]
    return render(request, "graphs/home.html", {"rows": rows, "starters": starters})


def _editor(request: HttpRequest, boot: dict[str, Any], extra: dict[str, Any] | None = None,
            ) -> HttpResponse:
    user = request.user
    back = urlencode({"next": request.get_full_path()}, safe="/")
    boot = {
        "graphId": None, "starter": None, "shareToken": None,
        "user": {"username": user.get_username()} if user.is_authenticated else None,
        # Both come back here afterwards (a shared page's visitor, to fork it).
        "loginUrl": f"{resolve_url(settings.LOGIN_URL)}?{back}",
        "signupUrl": f"{resolve_url('signup')}?{back}",
        **boot,
    }
    built = (settings.EDITOR_DIST / "manifest.json").exists()
    context = {"boot": boot, "editor_built": built or settings.DJANGO_VITE["default"]["dev_mode"]}
    return render(request, "graphs/editor.html", {**context, **(extra or {})})


def new_graph(request: HttpRequest) -> HttpResponse:
    """A blank canvas, or a starter (`?starter=char_gpt`), not saved until the first save.
    Open to visitors without an account: they draw, see shapes and read the code, their
    drawing kept in the browser; saving, sharing and running ask them to sign up, and the
    editor saves the drawing as their first model when they come back (`?claim=1`)."""
    starter = request.GET.get("starter") or None
    if starter is not None and starter not in STARTERS:
        raise Http404(f"no starter named {starter!r}")
    return _editor(request, {"starter": starter})


@login_required
def edit_graph(request: HttpRequest, graph_id: int) -> HttpResponse:
    graph = selectors.graph_of(request.user, graph_id)
    return _editor(request, {"graphId": graph.id}, {"title": graph.name})


@login_required
@require_http_methods(["GET", "POST"])
def delete_graph(request: HttpRequest, graph_id: int) -> HttpResponse:
    """GET asks to confirm, naming the model and what goes with it; POST deletes it."""
    graph = selectors.graph_of(request.user, graph_id)
    if request.method == "POST":
        name = graph.name
        services.delete_graph(graph=graph)
        messages.success(request, f"Deleted {name}.")
        return redirect("home")
    return render(request, "graphs/delete.html", {
        "graph": graph, "runs": selectors.run_count(graph),
        "links": graph.share_links.filter(revoked_at__isnull=True).count()})


def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    """The editor, read-only, on the version the link shows; without JavaScript, a table."""
    link, version = selectors.shared(token)
    report = inspect_graph(version.document)
    rows = []

    def walk(nodes: dict, depth: int) -> None:
        for node_id, entry in nodes.items():
            outs = list(entry["outputs"].values()) or [entry["inputs"].get("in")]
            shape = " ".join("[" + ", ".join(map(str, out["shape"])) + "]"
                             for out in outs if out)  # a Split's ports, each in turn
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
        back = urlencode({"next": resolve_url("shared", token)}, safe="/")
        return redirect(f"{resolve_url(settings.LOGIN_URL)}?{back}")
    _, version = selectors.shared(token)
    graph = services.fork_version(version=version, owner=request.user)
    return redirect(f"/g/{graph.id}")
