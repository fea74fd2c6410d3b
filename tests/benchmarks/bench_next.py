"""How fast "what comes next" answers (issue 17), through the whole stack, on the CPU.

    .venv/bin/python tests/benchmarks/bench_next.py [--repeat 30] [--steps 50]

Trains the char GPT starter briefly on its dataset (shakespeare), stores it as a finished
run of a throwaway user on a throwaway SQLite database (bench_api's setup), and times
through Django's test client (routing, middleware, Bearer authentication, the ORM, the
engine), side by side in one run:

- POST /api/jobs/{id}/next, first for a run: the model built and its weights read, then
  the prediction (the run's dataset is not read: a text's vocabulary is known), for two
  runs of the same weights (the first request of the process, and the next);
- POST /api/jobs/{id}/next, warm: the loaded model kept (a new prompt each time);
- GET /api/jobs/{id}/edges, warm: the figures of every edge's value;
- a plain forward pass of the same model on the same prompt (no HTTP, no attention capture),
  the floor the endpoint stands on.

Prints medians and 90th percentiles against the target (under a second, first and warm);
exit code 0 whatever the times (this is a report). Never collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import setup_django  # noqa: E402
from report import Row, percentile, print_table  # noqa: E402

PROMPTS = ["ROMEO:\nWhat light", "To be, or not to be, that is", "KING HENRY:\nOnce more"]


def timed(fn: Callable[[int], object], repeat: int) -> list[float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    if len(samples) == 1:
        return f"{samples[0]:.1f} ms"
    return f"{statistics.median(samples):.1f} ms (p90 {percentile(samples, 90):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20, help="training steps before timing")
    args = parser.parse_args()

    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    setup_django(None)
    from django.contrib.auth.models import User
    from django.test import Client

    from builder.accounts.services import issue_token
    from builder.graphs.models import GraphVersion
    from compute.engine import STARTER_DATASETS, compile_graph, load_starter
    from compute.engine.training import TrainConfig, train_graph
    from compute.jobs.models import Job

    user = User.objects.create_user(f"bench-{os.getpid()}", password="a-long-bench-password-1")
    _, raw = issue_token(user=user, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    document = load_starter("char_gpt")
    created = client.post("/api/graphs", {"document": document},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    version = GraphVersion.objects.get(graph_id=created.json()["id"], number=1)
    dataset = STARTER_DATASETS["char_gpt"]
    config = TrainConfig(steps=args.steps, seed=0, device="cpu", sample_length=0,
                         attention_interval=0)
    jobs = [Job.objects.create(owner=user, graph=version.graph, version=version,
                               dataset=dataset, config=config.model_dump(), time_limit=3600,
                               total_steps=args.steps, step=args.steps, status="succeeded",
                               files={"weights": "model.safetensors"},
                               finished_at=dt.datetime.now(dt.UTC)) for _ in range(2)]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        train_graph(document, dataset, config, out_dir=Path(scratch))
        for job in jobs:
            job.folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(scratch) / "model.safetensors", job.folder / "model.safetensors")
    trained_s = time.perf_counter() - began
    job = jobs[1]

    def asker(run: Job) -> Callable[[int], None]:
        def ask(i: int) -> None:
            response = client.post(f"/api/jobs/{run.id}/next",
                                   {"prompt": PROMPTS[i % len(PROMPTS)]},
                                   content_type="application/json")
            assert response.status_code == 200, response.content
            assert len(response.json()["top"]) == 5
        return ask

    first = timed(asker(jobs[0]), 1) + timed(asker(job), 1)
    warm = timed(asker(job), args.repeat)

    def edges(i: int) -> None:
        response = client.get(f"/api/jobs/{job.id}/edges")
        assert response.status_code == 200, response.content

    edge_first = timed(edges, 1)  # the run's dataset made again, for its example
    edge_samples = timed(edges, max(3, args.repeat // 3))

    model = compile_graph(document, seed=0)
    model.load_state_dict(load_file(str(job.folder / "model.safetensors")))
    model.eval()

    def forward(i: int) -> None:
        ids = torch.tensor([[ord(c) for c in PROMPTS[i % len(PROMPTS)]]])
        with torch.no_grad():
            model(ids)

    forward(0)
    plain = timed(forward, args.repeat)
    print(f"char GPT starter, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"trained {args.steps} steps on {dataset} in {trained_s:.1f} s; "
          f"{torch.get_num_threads()} CPU threads")
    rows = [
        Row("next, first request for a run", " / ".join(f"{t:.1f} ms" for t in first),
            "< 1000 ms", max(first) < 1000),
        Row("next, warm", summary(warm), "< 1000 ms", statistics.median(warm) < 1000),
        Row("edges, first (dataset made)", summary(edge_first)),
        Row("edges, warm", summary(edge_samples)),
        Row("plain forward pass, same prompt", summary(plain)),
        Row("next warm / plain forward",
            f"{statistics.median(warm) / statistics.median(plain):.1f}x"),
    ]
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
