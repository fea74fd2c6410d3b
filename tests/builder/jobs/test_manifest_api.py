"""Every trained model publishes its dataset: a real run on an upload (the API queues it,
a Celery worker process trains it) records a Croissant manifest that mlcroissant
validates and whose SHA-256 is the uploaded bytes'; the ONNX and safetensors exports carry
it; the owner and, for a published run, anyone with a share link read it and the model
card. An upload's source and licence are plain text, checked."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from realparts import Worker, finished, wait_for
from rest_framework.test import APIClient

from compute.engine.manifest import NOT_DECLARED, validate_manifest
from compute.jobs.models import Job

CSV = "a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}\n"
                              for i in range(40))
HOSTILE_NAME = "<img src=x onerror=alert(1)>**[x](javascript:alert(1))**"


def upload(api: APIClient, name: str, content: bytes, **fields: str) -> Any:
    return api.post("/api/uploads", {"file": SimpleUploadedFile(name, content), **fields},
                    format="multipart")


def csv_graph(api: APIClient, name: str = "points") -> int:
    """The mlp starter made to take the CSV's 2 features and give its 2 classes."""
    mlp = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    document = api.get(f"/api/graphs/{mlp}").json()["version"]["document"]
    nodes = {n["id"]: n for n in document["nodes"]}
    nodes["x"]["params"]["shape"] = [2]
    nodes["logits"]["params"]["out_features"] = 2
    response = api.post("/api/graphs", {"document": document, "name": name}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def run(api: APIClient, graph: int, upload_id: int, **config: Any) -> dict[str, Any]:
    response = api.post("/api/jobs", {"graph": graph, "upload": upload_id,
                                      "config": {"device": "cpu", **config}}, format="json")
    assert response.status_code == 201, response.content
    data: dict[str, Any] = response.json()
    return data


def unescaped_html(markdown: str) -> list[str]:
    """Every '<' in the card that is not backslash-escaped."""
    return re.findall(r"(?<!\\)<", markdown)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_on_an_upload_publishes_its_dataset_everywhere(
        api: APIClient, anon: APIClient, worker: Worker) -> None:
    import onnx
    from safetensors import safe_open

    raw = CSV.encode()
    made = upload(api, "points.csv", raw, source="https://example.org/points",
                  licence="CC0-1.0")
    assert made.status_code == 201, made.content
    assert made.json()["source"] == "https://example.org/points"
    graph = csv_graph(api, name=HOSTILE_NAME)
    job = run(api, graph, made.json()["id"], steps=30)
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])

    manifest = api.get(f"/api/jobs/{job['id']}/manifest").json()
    assert validate_manifest(manifest) == []
    assert manifest["shipyard:sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["distribution"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert manifest["url"] == "https://example.org/points" and manifest["license"] == "CC0-1.0"
    assert manifest["shipyard:vocabulary"] == ["no", "yes"]
    split = manifest["shipyard:split"]
    assert split["train"] + split["validation"] == manifest["shipyard:samples"] == 40

    saved = api.get(f"/api/jobs/{job['id']}/manifest", {"download": "1"})
    assert saved.status_code == 200
    assert saved["Content-Disposition"] == (
        f'attachment; filename="shipyard-run-{job["id"]}-dataset.croissant.json"')
    assert json.loads(saved.content) == manifest

    onnx_bytes = b"".join(api.get(f"/api/jobs/{job['id']}/download",
                                  {"format": "onnx"}).streaming_content)
    props = {p.key: p.value for p in onnx.load_model_from_string(onnx_bytes).metadata_props}
    assert json.loads(props["shipyard.dataset"]) == manifest
    job_row = Job.objects.get(id=job["id"])
    with safe_open(str(job_row.folder / "model.safetensors"), "pt") as weights:
        assert json.loads(weights.metadata()["shipyard.dataset"]) == manifest

    card = api.get(f"/api/jobs/{job['id']}/card").json()["markdown"]
    assert "- Licence: CC0-1.0\n" in card and "- Source: https://example.org/points\n" in card
    assert hashlib.sha256(raw).hexdigest() in card
    assert "## Intended use and limits" in card and "Parameters:" in card
    assert unescaped_html(card) == [], "a hostile graph name stays text"
    assert "\\<img src=x onerror=alert\\(1\\)\\>" in card
    text_card = api.get(f"/api/jobs/{job['id']}/card", {"format": "markdown"})
    assert text_card["Content-Type"].startswith("text/markdown")
    assert text_card.content.decode() == card

    # Share links: a published run only.
    token = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()["token"]
    shared = f"/api/shared/{token}/jobs/{job['id']}"
    assert anon.get(f"{shared}/manifest").status_code == 404
    assert anon.get(f"{shared}/card").status_code == 404
    assert anon.get(f"/api/jobs/{job['id']}/manifest").status_code == 404
    assert api.patch(f"/api/jobs/{job['id']}", {"published": True},
                     format="json").status_code == 200
    assert anon.get(f"{shared}/manifest").json() == manifest
    assert anon.get(f"{shared}/card").json()["markdown"] == card
    assert anon.get(f"/api/jobs/{job['id']}/manifest", {"share": token}).json() == manifest
    assert anon.get(f"/api/shared/not-a-token/jobs/{job['id']}/card").status_code == 404


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_run_has_its_manifest_from_before_its_first_step(
        api: APIClient, worker: Worker) -> None:
    made = upload(api, "points.csv", CSV.encode())
    job = run(api, csv_graph(api), made.json()["id"], steps=100_000)

    def running() -> bool:
        row = Job.objects.get(id=job["id"])
        return row.status == "running" and bool(row.manifest)

    wait_for(running, 120, "the run to start with its manifest")
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = finished(api, job["id"])
    assert done["status"] == "cancelled"
    manifest = api.get(f"/api/jobs/{job['id']}/manifest").json()
    assert manifest["license"] == NOT_DECLARED
    assert manifest["shipyard:source"] == NOT_DECLARED
    card = api.get(f"/api/jobs/{job['id']}/card").json()["markdown"]
    assert "Licence: not declared" in card and "Source: not declared" in card


@pytest.mark.django_db
def test_a_queued_run_has_no_manifest_yet_but_a_card(api: APIClient) -> None:
    made = upload(api, "points.csv", CSV.encode())
    response = api.post("/api/jobs", {"graph": csv_graph(api), "upload": made.json()["id"],
                                      "config": {"device": "cuda"}}, format="json")
    job = response.json()["id"]
    missing = api.get(f"/api/jobs/{job}/manifest")
    assert missing.status_code == 404 and "no dataset manifest" in missing.json()["error"]
    card = api.get(f"/api/jobs/{job}/card").json()["markdown"]
    assert "recorded no dataset manifest" in card
    assert api.get(f"/api/jobs/{job}/manifest", {"download": "maybe"}).status_code == 400
    assert api.get(f"/api/jobs/{job}/card", {"format": "html"}).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "says"), [
    ("source", "x" * 501, "no more than 500"),
    ("licence", "y" * 201, "no more than 200"),
    ("source", "javascript:alert(1)", "not an http or https one"),
    ("source", "JavaScript://%0aalert(1)", "not an http or https one"),
    ("licence", "data:text/html,<script>alert(1)</script>", "not an http or https one"),
    ("source", "https://example.org/a b", "not an http or https one"),
    ("source", "line one\nline two", "U+000A"),
    ("licence", "MIT\x1b[31m", "U+001B"),
    ("source", "right\u202eto left", "U+202E"),
])
def test_hostile_sources_and_licences_are_refused_naming_the_field(
        api: APIClient, field: str, value: str, says: str) -> None:
    response = upload(api, "points.csv", CSV.encode(), **{field: value})
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["fields"] and says in " ".join(body["fields"][field])
    assert api.get("/api/uploads").json() == []


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "content"), [
    ("tide.txt", ("The tide came in. " * 40 + "\x00 and went out.").encode()),
    ("points.csv", CSV.replace("yes", "y\x00s", 1).encode()),
])
def test_a_file_with_a_nul_character_is_refused_and_not_kept(
        api: APIClient, name: str, content: bytes) -> None:
    # Its characters would be the manifest's vocabulary, which PostgreSQL's JSON refuses.
    response = upload(api, name, content)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == (
        f"{name} holds a NUL character (byte {content.index(0):,}); a text or a CSV has "
        "none: is it a binary file?")
    assert api.get("/api/uploads").json() == []


@pytest.mark.django_db
def test_sources_in_words_or_web_addresses_are_kept(api: APIClient) -> None:
    words = upload(api, "a.csv", CSV.encode(), source="Collected by hand: my garden, 2024",
                   licence="CC-BY-4.0")
    assert words.status_code == 201, words.content
    assert words.json()["source"] == "Collected by hand: my garden, 2024"
    link = upload(api, "b.csv", CSV.encode(), source="HTTPS://Example.org/data.csv?v=1")
    assert link.status_code == 201, link.content
    assert link.json()["licence"] == ""
