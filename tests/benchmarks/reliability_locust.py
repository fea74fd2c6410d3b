"""The locustfile of reliability.py's load part: one API client per locust user, each with
its own account and graph, saving, loading and inspecting it. Run by reliability.py in a
process of its own (locust patches the standard library with gevent), never by pytest.

Environment: RELIAB_TOKENS (comma-separated Bearer tokens, one per user), RELIAB_DOC (the
path of the graph document, JSON), RELIAB_WAIT (seconds a user pauses between requests, on
average; 0: none).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from typing import Any

from locust import HttpUser, between, constant, task

TOKENS = os.environ["RELIAB_TOKENS"].split(",")
with open(os.environ["RELIAB_DOC"]) as _f:
    DOCUMENT: dict[str, Any] = json.load(_f)
WAIT = float(os.environ.get("RELIAB_WAIT", "1"))
_next_user = itertools.count()


class ApiClient(HttpUser):
    wait_time = between(WAIT / 2, WAIT * 1.5) if WAIT > 0 else constant(0)

    def on_start(self) -> None:
        index = next(_next_user)
        self.client.headers["Authorization"] = f"Bearer {TOKENS[index % len(TOKENS)]}"
        self.moves = 0
        created = self.client.post("/api/graphs", json={"document": DOCUMENT,
                                                        "name": f"load {index}"},
                                   name="create")
        body = created.json() if created.status_code == 201 else {}
        self.graph_id = body.get("id")
        self.head = 1

    @task
    def save(self) -> None:
        if self.graph_id is None:
            return
        self.moves += 1
        edited = copy.deepcopy(DOCUMENT)
        first = edited["nodes"][0]["id"]
        edited["layout"] = {**edited.get("layout", {}), first: [self.moves, self.moves]}
        with self.client.post(f"/api/graphs/{self.graph_id}/versions", name="save",
                              json={"document": edited, "base_version": self.head,
                                    "message": f"move {self.moves}"},
                              catch_response=True) as response:
            if response.status_code == 201:
                self.head = response.json()["version"]["number"]
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task
    def load(self) -> None:
        if self.graph_id is not None:
            self.client.get(f"/api/graphs/{self.graph_id}", name="load")

    @task
    def inspect(self) -> None:
        with self.client.post("/api/inspect", json=DOCUMENT, name="inspect",
                              catch_response=True) as response:
            if response.status_code != 200 or not response.json().get("valid"):
                response.failure(f"{response.status_code}: {response.text[:200]}")
