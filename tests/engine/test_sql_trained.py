"""SQL over a trained model, end to end through `run_sql`: the weight tables are filled only
when a statement needs them, a script's architecture and tensor changes carry the weights,
and the result fine-tunes with its frozen tensors untouched."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from compute.engine import compile_graph
from compute.engine.datasets import dataset_for
from compute.engine.sql import SqlError, TrainedModel, run_sql, sql_schema
from compute.engine.training import train

from .test_sql_weights import settings, tiny_gpt, trained


@pytest.fixture(scope="module")
def gpt() -> tuple[dict[str, Any], TrainedModel]:
    doc = tiny_gpt()
    return doc, trained(doc)


def test_updating_every_tensor_without_a_where_clause(gpt: Any) -> None:
    doc, model = gpt
    result = run_sql(doc, "UPDATE tensors SET frozen = 1", trained=model)
    assert result.state is not None and result.frozen is not None
    parameters = {n for n, _ in compile_graph(doc).named_parameters()}
    assert parameters <= result.frozen | {"head.weight"}  # head.weight is wte's table
    assert result.document is None  # the architecture did not change
    assert result.change is not None and result.change["weights"]["frozen"]


def test_weight_tables_join_the_architecture(gpt: Any) -> None:
    doc, model = gpt
    got = run_sql(doc, "SELECT n.type, count(*) FROM tensors t LEFT JOIN nodes n "
                       "ON n.path = t.path GROUP BY n.type", trained=model).statements[0].rows
    assert {row[0] for row in got} == {"Embedding", "PositionalEmbedding", "LayerNorm",
                                       "MultiHeadAttention", "Linear"}  # every one joins
    assert sum(row[1] for row in got) == len(model.state)


def test_weight_tables_are_read_only_but_for_their_actions(gpt: Any) -> None:
    doc, model = gpt
    for sql, says in [("UPDATE tensors SET mean = 0", "tensors.mean is read-only"),
                      ("DELETE FROM tensors", "cannot be added or removed"),
                      ("INSERT INTO eval (split) VALUES ('x')", "cannot be added or removed"),
                      ("UPDATE heads SET entropy = 0", "read-only")]:
        with pytest.raises(SqlError) as caught:
            run_sql(doc, sql, trained=model)
        assert says in caught.value.message


def test_eval_is_computed_when_read_and_the_time_limit_leaves_it_out(gpt: Any) -> None:
    from compute.engine.sql import SqlLimits

    doc, model = gpt
    result = run_sql(doc, "SELECT split, loss, accuracy FROM eval", trained=model,
                     limits=SqlLimits(timeout_ms=20))
    (split, loss, accuracy), = result.statements[0].rows
    assert split == "val" and 0 < loss < 100 and 0 <= accuracy <= 1


def test_unknown_columns_of_weight_tables_are_listed(gpt: Any) -> None:
    doc, model = gpt
    with pytest.raises(SqlError) as caught:
        run_sql(doc, "SELECT nonsense FROM tensors", trained=model)
    assert "tensors has name, node" in caught.value.message


def test_grow_the_gpt_and_fine_tune_only_the_new_layer(gpt: Any) -> None:
    """docs/sql.md's last example: every trained tensor frozen, one more copy in the
    Repeat; fine-tuning changes the new copy alone, and the old copies are the run's."""
    doc, model = gpt
    result = run_sql(doc, "UPDATE tensors SET frozen = 1;"
                          "UPDATE nodes SET params = json_set(params, '$.times', 3) "
                          "WHERE id = 'blocks'", trained=model)
    assert result.document is not None and result.state is not None
    assert result.frozen is not None
    summary = result.change["weights"] if result.change else {}
    assert all(name.startswith("blocks.2.") for name in summary["new"]) and summary["new"]
    for name, value in model.state.items():
        assert torch.equal(result.state[name], value), name  # kept bit for bit
    tuned = compile_graph(result.document)
    tuned.load_state_dict(result.state)
    train(tuned, dataset_for(tuned, "harbour"), settings(steps=3, batch_size=8, lr=1e-2),
          frozen=result.frozen)
    after = tuned.state_dict()
    for name, value in result.state.items():
        assert torch.equal(after[name], value) == (name in result.frozen), name


def test_the_schema_of_a_trained_model_adds_the_weight_tables() -> None:
    tables = sql_schema(trained=True)["tables"]
    assert {"tensors", "heads", "eval"} <= set(tables)
    writable = {c["name"] for c in tables["tensors"]["columns"] if c["writable"]}
    assert writable == {"frozen", "scale", "reinit"}
    assert any(e["trained"] for e in sql_schema(trained=True)["examples"])
    assert not any(e["trained"] for e in sql_schema()["examples"])
