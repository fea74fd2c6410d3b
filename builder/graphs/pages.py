"""HTML pages: the home page (your graphs) and the read-only page behind a share link."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from compute.engine import inspect_graph

from . import selectors, services


def home(request: HttpRequest) -> HttpResponse:
    graphs = selectors.graphs_of(request.user) if request.user.is_authenticated else []
    return render(request, "graphs/home.html", {"graphs": graphs})


def shared_page(request: HttpRequest, token: str) -> HttpResponse:
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
    return render(request, "graphs/shared.html", {
        "link": link, "graph": link.graph, "version": version, "token": token,
        "document": version.document, "report": report, "rows": rows,
    })


@require_http_methods(["POST"])
def fork_shared(request: HttpRequest, token: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"/accounts/login/?next=/s/{token}")
    _, version = selectors.shared(token)
    graph = services.fork_version(version=version, owner=request.user)
    return redirect(f"/?forked={graph.id}")
