"""The documentation in the repository tells the truth about the code."""

import json
import re
from pathlib import Path

from compute.engine import inspect_graph
from compute.engine.reference import blocks_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_the_block_reference_is_generated_from_the_catalog() -> None:
    on_disk = (ROOT / "docs" / "blocks.md").read_text(encoding="utf-8")
    assert on_disk == blocks_markdown(), (
        "docs/blocks.md is stale: run `shipyard blocks --markdown > docs/blocks.md`")


def test_every_json_graph_in_the_docs_is_valid() -> None:
    """Graphs shown in the docs (fenced ```json blocks that are graph documents) inspect clean."""
    checked = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```json\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            try:
                data = json.loads(block)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("format") == "shipyard.graph/v1":
                report = inspect_graph(data)
                assert report["valid"], (doc.name, report["problems"])
                checked += 1
    assert checked >= 1
