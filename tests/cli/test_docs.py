"""The documentation in the repository tells the truth about the code."""

import json
import re
from pathlib import Path

import pytest

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


def test_every_sql_example_in_the_guide_runs_on_its_starter() -> None:
    """docs/sql.md's statements run as shown: on the MLP starter where they name its layers,
    on the char GPT otherwise, with (untrained) weights where they read the weight tables."""
    from compute.engine import compile_graph, load_starter
    from compute.engine.sql import SqlError, TrainedModel, run_sql

    gpt, mlp = load_starter("char_gpt"), load_starter("mlp")
    weights = TrainedModel(state=compile_graph(gpt).state_dict(), dataset="harbour")
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    scripts = re.findall(r"```sql\n(.*?)```", text, re.S)
    assert len(scripts) >= 12
    for script in scripts:
        doc = mlp if re.search(r"hidden\d|act\d", script) else gpt
        trained = weights if re.search(r"\b(tensors|heads|eval)\b", script) else None
        if "'$.num_heads', 7" in script:  # the example of a change the engine refuses
            with pytest.raises(SqlError, match="does not split into 7 heads"):
                run_sql(doc, script, trained=trained)
            continue
        run_sql(doc, script, trained=trained)  # raises SqlError naming what is wrong
