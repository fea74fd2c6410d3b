"""The trained-weight tables of the SQL dialect (`tensors`, `heads`, `eval`) and what a
script does to the weights (`WeightTables.apply`), through a plain SQLite connection, on
real tiny models; and fine-tuning with frozen tensors."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from compute.engine import compile_graph, load_graph, load_starter
from compute.engine.datasets import dataset_for
from compute.engine.sql.weights import (
    TENSOR_COLUMNS,
    TrainedModel,
    WeightsError,
    WeightTables,
    head_measures,
)
from compute.engine.training import TrainConfig, train, train_graph

from .graphs import chain, document, input_node, nested, node

QUIET = {"eval_interval": 1000, "log_interval": 1000, "sample_length": 0,
         "attention_interval": 0, "checkpoint_interval": 0, "warmup_steps": 0}


def settings(**given: Any) -> TrainConfig:
    """A short run's settings that report nothing on the way."""
    return TrainConfig.model_validate({**QUIET, **given})


def tiny_gpt(*, layers: int = 2, width: int = 32, tie: bool = True) -> dict[str, Any]:
    """A pre-norm GPT on 16 characters, small enough to train in a blink."""
    body = {
        "nodes": [{"id": "x", "type": "Input"}, node("ln1", "LayerNorm"),
                  node("attn", "MultiHeadAttention", num_heads=2, causal=True),
                  node("res1", "Add"), node("ln2", "LayerNorm"),
                  node("fc", "Linear", out_features=2 * width), node("gelu", "GELU"),
                  node("proj", "Linear", out_features=width), node("res2", "Add"),
                  node("y", "Output")],
        "edges": [{"from": a, "to": b} for a, b in [
            ("x", "ln1"), ("ln1", "attn"), ("attn", "res1.a"), ("x", "res1.b"),
            ("res1", "ln2"), ("ln2", "fc"), ("fc", "gelu"), ("gelu", "proj"),
            ("proj", "res2.a"), ("res1", "res2.b"), ("res2", "y")]],
    }
    head: dict[str, Any] = {"out_features": 128, "bias": False}
    if tie:
        head["tie_to"] = "wte"
    nodes = [input_node("tokens", [16], "int64"),
             node("wte", "Embedding", num_embeddings=128, embedding_dim=width),
             node("wpe", "PositionalEmbedding", max_len=16),
             {"id": "blocks", "type": "Repeat", "params": {"times": layers}, "graph": body},
             node("ln_f", "LayerNorm"), node("head", "Linear", **head),
             node("logits", "Output")]
    ids = ["tokens", "wte", "wpe", "blocks", "ln_f", "head", "logits"]
    return {"format": "shipyard.graph/v1", "name": "tiny", "nodes": nodes,
            "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]}


def trained(doc: dict[str, Any], *, steps: int = 3, seed: int = 0, **given: Any
            ) -> TrainedModel:
    """`doc` trained for real for a few steps on harbour."""
    config = settings(steps=steps, batch_size=8, lr=1e-2, seed=seed)
    model = compile_graph(doc, seed=seed)
    train(model, dataset_for(model, "harbour", seed=seed), config)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return TrainedModel(state=state, dataset="harbour", config=config.model_dump(), seed=seed,
                        **given)


def tables(doc: dict[str, Any], model: TrainedModel) -> tuple[WeightTables, sqlite3.Connection]:
    weights = WeightTables(load_graph(doc), model)
    conn = sqlite3.connect(":memory:")
    weights.create(conn)
    for table in weights.TABLES:
        weights.fill(conn, table)
    return weights, conn


def rows(conn: sqlite3.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


@pytest.fixture(scope="module")
def gpt() -> tuple[dict[str, Any], TrainedModel]:
    doc = tiny_gpt()
    return doc, trained(doc)


# tensors


def test_every_column_of_tensors_is_right_on_a_known_tensor() -> None:
    doc = chain([4], node("fc", "Linear", out_features=2), node("bn", "BatchNorm1d"))
    state = compile_graph(doc).state_dict()
    state["fc.weight"] = torch.tensor([[0.0, 1.0, 2.0, 3.0], [-4.0, 0.0, 5e-7, -1.0]])
    _, conn = tables(doc, TrainedModel(state=state, frozen=frozenset({"fc.weight"})))
    (row,) = rows(conn, "SELECT * FROM tensors WHERE name = 'fc.weight'")
    assert [c[0] for c in TENSOR_COLUMNS] == list(row)
    values = [0.0, 1.0, 2.0, 3.0, -4.0, 0.0, 5e-7, -1.0]
    mean = sum(values) / 8
    numbers = {k: row.pop(k) for k in ("mean", "std", "min", "max", "l2", "zero_share")}
    assert numbers == pytest.approx({
        "mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / 8),
        "min": -4.0, "max": 3.0, "l2": math.sqrt(sum(v * v for v in values)),
        "zero_share": 3 / 8}, rel=1e-6)
    assert row == {
        "name": "fc.weight", "node": "fc", "path": "fc", "copy": None, "param": "weight",
        "kind": "parameter", "shape": "[2, 4]", "numel": 8, "dtype": "float32", "frozen": 1,
        "tied_to": None, "finite": 1, "scale": 1.0, "reinit": 0}
    kinds = {r["name"]: (r["kind"], r["dtype"], r["frozen"]) for r in rows(
        conn, "SELECT name, kind, dtype, frozen FROM tensors WHERE node = 'bn'")}
    assert kinds == {"bn.weight": ("parameter", "float32", 0),
                     "bn.bias": ("parameter", "float32", 0),
                     "bn.running_mean": ("buffer", "float32", 0),
                     "bn.running_var": ("buffer", "float32", 0),
                     "bn.num_batches_tracked": ("buffer", "int64", 0)}


def test_tensors_name_repeat_copies_and_tied_weights(gpt: Any) -> None:
    doc, model = gpt
    _, conn = tables(doc, model)
    assert len(rows(conn, "SELECT * FROM tensors")) == len(model.state)
    first = rows(conn, "SELECT name, node, path, copy, param FROM tensors "
                       "WHERE node LIKE 'blocks.1.%' AND param = 'qkv.weight'")
    assert first == [{"name": "blocks.1.attn.qkv.weight", "node": "blocks.1.attn",
                      "path": "blocks/attn", "copy": 1, "param": "qkv.weight"}]
    assert rows(conn, "SELECT name, tied_to FROM tensors WHERE tied_to IS NOT NULL") == [
        {"name": "head.weight", "tied_to": "wte.weight"}]
    # Statistics are of the trained values.
    (l2,) = conn.execute("SELECT l2 FROM tensors WHERE name = 'blocks.0.fc.weight'").fetchone()
    assert l2 == pytest.approx(float(model.state["blocks.0.fc.weight"].norm()), rel=1e-5)


def test_tensors_of_blocks_from_my_blocks_are_named_by_their_nested_path() -> None:
    block = nested([input_node("a", [8]), node("lin", "Linear", out_features=8),
                    node("out", "Output")], [("a", "lin"), ("lin", "out")])
    doc = document(
        [input_node("x", [8]),
         *({"id": i, "type": "Custom", "params": {"source": "12", "version": 1, "name": "Ffn"},
            "graph": block} for i in ("ffn", "ffn2")), node("y", "Output")],
        [("x", "ffn"), ("ffn", "ffn2"), ("ffn2", "y")])
    _, conn = tables(doc, TrainedModel(state=compile_graph(doc).state_dict()))
    assert rows(conn, "SELECT name, node, path, copy, param FROM tensors") == [
        {"name": f"{block}.lin.{p}", "node": f"{block}.lin", "path": f"{block}/lin",
         "copy": None, "param": p} for block in ("ffn", "ffn2") for p in ("weight", "bias")]


def test_nan_reads_as_null_and_not_finite() -> None:
    doc = chain([3], node("fc", "Linear", out_features=1))
    state = compile_graph(doc).state_dict()
    state["fc.weight"] = torch.tensor([[1.0, float("nan"), float("inf")]])
    _, conn = tables(doc, TrainedModel(state=state))
    assert rows(conn, "SELECT mean, finite FROM tensors WHERE name = 'fc.weight'") == [
        {"mean": None, "finite": 0}]


def test_weights_of_another_graph_are_refused() -> None:
    doc = chain([3], node("fc", "Linear", out_features=1))
    with pytest.raises(WeightsError, match=r"lack fc\.bias"):
        WeightTables(load_graph(doc), TrainedModel(state={"fc.weight": torch.zeros(1, 3)}))
    with pytest.raises(WeightsError, match=r"fc\.weight is \[2, 3\], the graph makes it \[1, 3\]"):
        WeightTables(load_graph(doc), TrainedModel(
            state={"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(1)}))


def test_the_schema_lists_each_column_with_its_type_and_whether_it_is_writable() -> None:
    schema = WeightTables.schema()
    assert list(schema) == ["tensors", "heads", "eval"]
    writable = {c["name"] for c in schema["tensors"]["columns"] if c["writable"]}
    assert writable == WeightTables.WRITABLE["tensors"] == {"frozen", "scale", "reinit"}
    scale = {k: v for k, v in schema["tensors"]["columns"][-2].items() if k != "doc"}
    assert scale == {"name": "scale", "type": "REAL", "writable": True}
    assert all(c["doc"] for t in schema.values() for c in t["columns"])
    assert not any(c["writable"] for c in schema["heads"]["columns"] + schema["eval"]["columns"])


def test_writable_columns_are_checked_by_sqlite(gpt: Any) -> None:
    doc, model = gpt
    _, conn = tables(doc, model)
    for sql in ("UPDATE tensors SET frozen = 2", "UPDATE tensors SET reinit = -1",
                "UPDATE tensors SET scale = 'half'", "UPDATE tensors SET scale = 9e999",
                "UPDATE tensors SET scale = NULL"):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)


# heads and eval


def test_head_measures_read_where_a_head_looks() -> None:
    t = 5
    own = torch.eye(t)[None]
    previous = torch.zeros(1, t, t)
    previous[0, 0, 0] = 1
    for i in range(1, t):
        previous[0, i, i - 1] = 1
    even = torch.tril(torch.ones(t, t))
    even = (even / even.sum(-1, keepdim=True))[None]
    a, b, c = (head_measures(w)[0] for w in (own, previous, even))
    assert a == pytest.approx({"head": 0, "queries": t, "entropy": 0, "peak": 1,
                               "mean_distance": 0, "self_share": 1, "previous_share": 0,
                               "first_share": 0, "top_offset": 0})
    assert b["previous_share"] == 1 and b["top_offset"] == 1 and b["self_share"] == 0.2
    assert b["mean_distance"] == pytest.approx(4 / 5)
    assert c["entropy"] == pytest.approx(sum(math.log(i) for i in range(1, t + 1)) / t)
    assert c["first_share"] == pytest.approx(sum(1 / i for i in range(2, t + 1)) / (t - 1))


def test_heads_has_each_head_of_each_copy_on_the_validation_example(gpt: Any) -> None:
    doc, model = gpt
    _, conn = tables(doc, model)
    found = rows(conn, "SELECT * FROM heads")
    assert [(r["node"], r["path"], r["copy"], r["head"]) for r in found] == [
        (f"blocks.{i}.attn", "blocks/attn", i, h) for i in range(2) for h in range(2)]
    for r in found:
        assert r["queries"] == 16
        assert 0 < r["entropy"] <= math.log(16)
        assert 0 < r["peak"] <= 1 and 0 <= r["mean_distance"] <= 15
        assert all(0 <= r[k] <= 1 for k in ("self_share", "previous_share", "first_share"))
        assert 0 <= r["top_offset"] <= 15  # causal: never a key after the query


def test_eval_gives_the_runs_own_validation_loss() -> None:
    doc = load_starter("mlp")
    config = settings(steps=20, batch_size=32, lr=1e-2)
    result = train_graph(doc, "digits", config)  # its final evaluation
    model = compile_graph(doc, seed=0)
    train(model, dataset_for(model, "digits", seed=0), config)
    _, conn = tables(doc, TrainedModel(state=model.state_dict(), dataset="digits",
                                       config=config.model_dump()))
    (row,) = rows(conn, "SELECT * FROM eval")
    assert row["split"] == "val" and row["dataset"] == "digits"
    assert row["loss"] == pytest.approx(result.metrics["val_loss"], rel=1e-5)
    assert row["accuracy"] == pytest.approx(result.metrics["val_accuracy"])
    assert 0.3 < row["accuracy"] <= 1  # it learned something in 20 steps
    assert (row["batches"], row["examples"]) == (4, 128)
    assert row["ms"] > 0
    assert rows(conn, "SELECT * FROM heads") == []  # an MLP shows no attention


def test_a_model_without_dataset_has_empty_heads_and_eval(gpt: Any) -> None:
    doc, model = gpt
    _, conn = tables(doc, TrainedModel(state=model.state))
    assert rows(conn, "SELECT * FROM heads") == rows(conn, "SELECT * FROM eval") == []


def test_a_dataset_that_cannot_be_made_is_a_weights_error(gpt: Any) -> None:
    doc, model = gpt
    for given in ({"dataset": "nope"}, {"dataset_options": {"symbols": 10}}):
        weights = WeightTables(load_graph(doc), dataclasses.replace(model, **given))
        conn = sqlite3.connect(":memory:")
        weights.create(conn)
        with pytest.raises(WeightsError, match="the run's dataset cannot be made"):
            weights.fill(conn, "eval")


def test_eval_of_char_gpt_untrained_is_near_uniform_guessing() -> None:
    doc = load_starter("char_gpt")
    _, conn = tables(doc, TrainedModel(state=compile_graph(doc).state_dict(),
                                       dataset="harbour"))
    (row,) = rows(conn, "SELECT loss, accuracy, examples FROM eval")
    assert row["loss"] == pytest.approx(math.log(128), rel=0.05)
    assert row["accuracy"] < 0.1 and row["examples"] == 256


# apply


def test_an_untouched_script_changes_nothing(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET scale = scale * 1, frozen = frozen")
    assert weights.apply(conn, None) is None


def test_freeze_scale_and_reinit(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET frozen = 1 WHERE node LIKE 'blocks.0.%'")
    conn.execute("UPDATE tensors SET scale = scale * 0.5 WHERE name = 'ln_f.weight'")
    conn.execute("UPDATE tensors SET scale = scale * 0.5 WHERE name = 'ln_f.weight'")
    conn.execute("UPDATE tensors SET reinit = 1, scale = 2 WHERE node = 'blocks.1.fc'")
    result = weights.apply(conn, None)
    assert result is not None
    state, frozen, summary = result
    block0 = {n for n in model.state if n.startswith("blocks.0.")}
    assert frozen == block0 and set(summary["frozen"]) == block0
    assert torch.equal(state["ln_f.weight"], model.state["ln_f.weight"] * 0.25)
    fresh = compile_graph(doc, seed=0).state_dict()
    assert torch.equal(state["blocks.1.fc.weight"], fresh["blocks.1.fc.weight"] * 2)
    assert not torch.equal(state["blocks.1.fc.weight"], model.state["blocks.1.fc.weight"] * 2)
    assert summary["reinitialized"] == ["blocks.1.fc.weight", "blocks.1.fc.bias"]
    assert {s["name"]: s["by"] for s in summary["scaled"]} == {
        "ln_f.weight": 0.25, "blocks.1.fc.weight": 2, "blocks.1.fc.bias": 2}
    untouched = set(model.state) - {"ln_f.weight", "blocks.1.fc.weight", "blocks.1.fc.bias"}
    assert all(state[n] is model.state[n] for n in untouched)
    assert summary["kept"] == len(untouched) and summary["tensors"] == len(model.state)
    json.dumps(summary)  # plain JSON


def test_unfreezing_and_frozen_buffers() -> None:
    doc = chain([4], node("fc", "Linear", out_features=2), node("bn", "BatchNorm1d"))
    state = compile_graph(doc).state_dict()
    weights, conn = tables(doc, TrainedModel(state=state, frozen=frozenset({"fc.weight"})))
    conn.execute("UPDATE tensors SET frozen = 1 - frozen")
    result = weights.apply(conn, None)
    assert result is not None
    _, frozen, summary = result
    assert frozen == {"fc.bias", "bn.weight", "bn.bias"}
    assert "bn.running_mean" in summary["notes"][0] and "buffers" in summary["notes"][0]


def test_a_tied_tensor_is_one_tensor_whichever_name_is_chosen(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET frozen = 1, scale = 3 WHERE name = 'head.weight'")
    state, frozen, _ = weights.apply(conn, None)  # type: ignore[misc]
    assert state["head.weight"] is state["wte.weight"]
    assert torch.equal(state["wte.weight"], model.state["wte.weight"] * 3)  # once, not twice
    assert {"head.weight", "wte.weight"} <= frozen
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET scale = 2 WHERE name = 'head.weight'")
    conn.execute("UPDATE tensors SET scale = 5 WHERE name = 'wte.weight'")
    with pytest.raises(WeightsError, match="one tensor"):
        weights.apply(conn, None)


def test_a_scale_that_overflows_is_refused(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET scale = 1e300 WHERE name = 'ln_f.weight'")
    with pytest.raises(WeightsError, match=r"scaling ln_f\.weight by 1e\+300 overflows its "
                                           "float32 values to infinity"):
        weights.apply(conn, None)


def test_scaling_an_integer_buffer_is_refused() -> None:
    doc = chain([4], node("bn", "BatchNorm1d"))
    weights, conn = tables(doc, TrainedModel(state=compile_graph(doc).state_dict()))
    conn.execute("UPDATE tensors SET scale = 2 WHERE name = 'bn.num_batches_tracked'")
    with pytest.raises(WeightsError, match="int64 values: only floating-point"):
        weights.apply(conn, None)


def test_growing_a_repeat_keeps_the_old_copies_bit_for_bit(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, dataclasses.replace(
        model, frozen=frozenset({"blocks.1.fc.weight"})))
    grown = copy.deepcopy(doc)
    grown["nodes"][3]["params"]["times"] = 4
    state, frozen, summary = weights.apply(conn, load_graph(grown))  # type: ignore[misc]
    fresh = compile_graph(grown, seed=0).state_dict()
    assert list(state) == list(fresh)
    for name, value in state.items():
        if name.startswith(("blocks.2.", "blocks.3.")):
            assert torch.equal(value, fresh[name]), name
        else:
            assert torch.equal(value, model.state[name]), name  # bit for bit
    assert summary["new"] == [n for n in fresh if n.startswith(("blocks.2.", "blocks.3."))]
    assert summary["kept"] == len(model.state) and summary["reshaped"] == []
    assert frozen == {"blocks.1.fc.weight"}
    assert state["head.weight"] is state["wte.weight"]  # still one tensor
    model_ = compile_graph(grown)
    model_.load_state_dict(state)  # it loads


def test_a_widened_layer_starts_fresh_and_is_said_so(gpt: Any) -> None:
    doc, model = gpt
    frozen_given = frozenset({"blocks.0.fc.weight", "blocks.0.attn.qkv.weight"})
    weights, conn = tables(doc, dataclasses.replace(model, frozen=frozen_given))
    wide = copy.deepcopy(doc)
    body = wide["nodes"][3]["graph"]["nodes"]
    next(n for n in body if n["id"] == "fc")["params"]["out_features"] = 96
    state, frozen, summary = weights.apply(conn, load_graph(wide))  # type: ignore[misc]
    fresh = compile_graph(wide, seed=0).state_dict()
    reshaped = {r["name"]: (r["was"], r["now"]) for r in summary["reshaped"]}
    for i in range(2):
        assert reshaped[f"blocks.{i}.fc.weight"] == ([64, 32], [96, 32])
        assert reshaped[f"blocks.{i}.proj.weight"] == ([32, 64], [32, 96])
        assert reshaped[f"blocks.{i}.fc.bias"] == ([64], [96])
        for part in ("fc.weight", "fc.bias", "proj.weight"):
            assert torch.equal(state[f"blocks.{i}.{part}"], fresh[f"blocks.{i}.{part}"])
        assert state[f"blocks.{i}.proj.bias"] is model.state[f"blocks.{i}.proj.bias"]
    assert frozen == {"blocks.0.attn.qkv.weight"}
    assert summary["frozen_dropped"] == ["blocks.0.fc.weight"]
    assert any("blocks.0.fc.weight" in note for note in summary["notes"])


def test_shrinking_drops_the_gone_tensors_and_their_frozen_names(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET frozen = 1 WHERE copy = 1")
    short = copy.deepcopy(doc)
    short["nodes"][3]["params"]["times"] = 1
    state, frozen, summary = weights.apply(conn, load_graph(short))  # type: ignore[misc]
    assert not any(n.startswith("blocks.1.") for n in state)
    assert summary["removed"] == [n for n in model.state if n.startswith("blocks.1.")]
    assert frozen == set() and len(summary["frozen_dropped"]) == len(summary["removed"])


def test_half_precision_weights_are_carried_as_they_are(gpt: Any) -> None:
    doc, model = gpt
    half = {k: v.half() for k, v in model.state.items()}
    weights, conn = tables(doc, TrainedModel(state=half))
    grown = copy.deepcopy(doc)
    grown["nodes"][3]["params"]["times"] = 3
    state, _, summary = weights.apply(conn, load_graph(grown))  # type: ignore[misc]
    assert state["blocks.1.fc.weight"] is half["blocks.1.fc.weight"]
    assert summary["reshaped"] == [] and summary["kept"] == len(half)
    (dtype,) = conn.execute("SELECT dtype FROM tensors WHERE name = 'wte.weight'").fetchone()
    assert dtype == "float16"


def test_a_new_tie_takes_the_embeddings_values() -> None:
    doc = tiny_gpt(tie=False)
    model = TrainedModel(state={k: v + 1 if k == "head.weight" else v
                                for k, v in compile_graph(doc).state_dict().items()})
    weights, conn = tables(doc, model)
    state, _, summary = weights.apply(conn, load_graph(tiny_gpt(tie=True)))  # type: ignore[misc]
    assert state["head.weight"] is state["wte.weight"] is model.state["wte.weight"]
    assert summary["notes"] == ["head.weight is tied to wte.weight: it takes its values"]


# fine-tuning with frozen tensors


def test_frozen_tensors_stay_bit_for_bit_through_fine_tuning(gpt: Any) -> None:
    doc, model = gpt
    weights, conn = tables(doc, model)
    conn.execute("UPDATE tensors SET frozen = 1 WHERE node NOT LIKE 'blocks.1.%'")
    grown = copy.deepcopy(doc)
    grown["nodes"][3]["params"]["times"] = 3
    state, frozen, _ = weights.apply(conn, load_graph(grown))  # type: ignore[misc]
    before = {k: v.clone() for k, v in state.items()}
    config = settings(steps=4, batch_size=8, lr=1e-2, weight_decay=0.5)
    tuned = compile_graph(grown)
    tuned.load_state_dict(state)
    train(tuned, dataset_for(tuned, "harbour"), config, frozen=frozen)
    after = tuned.state_dict()
    for name in before:
        same = torch.equal(after[name], before[name])
        assert same == (name in frozen), name
    assert all(p.requires_grad for p in tuned.parameters())  # given back after the run


def test_train_graph_takes_frozen_names(tmp_path: Path) -> None:
    doc = load_starter("mlp")
    config = settings(steps=3, batch_size=16)
    start = compile_graph(doc, seed=0).state_dict()
    frozen = set(list(start)[:2])
    result = train_graph(doc, "digits", config, frozen=frozen, out_dir=tmp_path)
    assert result.weights is not None
    end = load_file(str(result.weights))
    for name in start:
        assert torch.equal(end[name], start[name]) == (name in frozen), name


def test_freezing_an_unknown_name_or_a_buffer_is_a_clear_error() -> None:
    doc = chain([2], node("fc", "Linear", out_features=2), node("bn", "BatchNorm1d"))
    config = settings(steps=1, batch_size=4)
    model = compile_graph(doc)
    data = dataset_for(model, "moons")
    with pytest.raises(ValueError, match=r"cannot freeze 'fc\.wieght': it is not a parameter"):
        train(model, data, config, frozen={"fc.wieght"})
    with pytest.raises(ValueError, match=r"'bn\.running_mean': it is a buffer"):
        train(model, data, config, frozen={"bn.running_mean"})
    with pytest.raises(ValueError, match="every parameter is frozen: there is nothing to train"):
        train(model, data, config, frozen={"fc.weight", "fc.bias", "bn.weight", "bn.bias"})
    assert all(p.requires_grad for p in model.parameters())
