"""Guided paths: every step's solution passes its check and the state before it does not;
checks read structure and shapes (not ids), and never raise for a bad document."""

from __future__ import annotations

import copy
import itertools
import json
import random
import time
from typing import Any

import pytest

from compute.engine import FORMAT, compile_graph, inspect_graph
from compute.engine.datasets import check_fit, dataset_for
from compute.engine.paths import PATHS, check_step, load_path, path_names, path_summary
from compute.engine.training import TrainConfig, train

from .training.test_loop import Recorder

EMPTY = {"format": FORMAT, "nodes": [], "edges": []}


def _steps(name: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = load_path(name)["steps"]
    return steps


def _canvas_steps() -> list[tuple[str, int]]:
    return [(name, i) for name in PATHS for i, s in enumerate(_steps(name))
            if s["check"] == "canvas"]


def _solution(name: str, step_id: str) -> dict[str, Any]:
    return next(s["solution"] for s in _steps(name) if s["id"] == step_id)


def _node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in document["nodes"] if n["id"] == node_id)
    return found


def _renamed(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The same graph with every node id changed (and no layout): checks must not care."""
    out = copy.deepcopy(document)
    out.pop("layout", None)
    for node in out["nodes"]:
        node["id"] = prefix + node["id"]
        if "graph" in node:
            node["graph"] = _renamed(node["graph"], prefix)
    for edge in out["edges"]:
        edge["from"], edge["to"] = prefix + edge["from"], prefix + edge["to"]
    return out


def test_the_paths_are_gpt_then_digits_with_their_datasets() -> None:
    assert path_names() == ["gpt", "digits"]
    assert PATHS["gpt"] == "Build a GPT from scratch"
    assert path_summary("gpt")["dataset"] == "shakespeare"
    assert path_summary("digits")["dataset"] == "digits"
    assert 10 <= path_summary("gpt")["steps"] <= 14 and path_summary("digits")["steps"] == 5


def test_a_path_is_json_data_and_a_fresh_copy_each_time() -> None:
    for name in PATHS:
        path = load_path(name)
        assert json.loads(json.dumps(path)) == path
        ids = [s["id"] for s in path["steps"]]
        assert len(ids) == len(set(ids))
        for step in path["steps"]:
            assert step["title"] and step["text"] and step["task"]
            assert step["check"] in ("canvas", "run", "attention", "generate")
        path["steps"][0]["solution"]["nodes"].clear()
        assert load_path(name)["steps"][0]["solution"]["nodes"]


def test_the_gpt_path_ends_with_train_attention_and_generate() -> None:
    assert [s["check"] for s in _steps("gpt")][-3:] == ["run", "attention", "generate"]


@pytest.mark.parametrize(("name", "index"), _canvas_steps())
def test_each_canvas_steps_solution_passes_and_the_state_before_it_does_not(
        name: str, index: int) -> None:
    steps = _steps(name)
    step = steps[index]
    assert check_step(name, step["id"], step["solution"])["passed"] is True
    before = steps[index - 1]["solution"] if index else EMPTY
    result = check_step(name, step["id"], before)
    assert result["passed"] is False
    assert result["message"].endswith(".") and result["message"].count(". ") == 0


@pytest.mark.parametrize("name", list(PATHS))
def test_later_solutions_pass_every_earlier_step_also_with_other_ids_and_no_layout(
        name: str) -> None:
    steps = _steps(name)
    for later, earlier in itertools.combinations_with_replacement(range(len(steps)), 2):
        later, earlier = max(later, earlier), min(later, earlier)
        solution = steps[later]["solution"]
        assert check_step(name, steps[earlier]["id"], solution)["passed"], (later, earlier)
    for step in steps:
        moved = _renamed(step["solution"], "my_")
        assert check_step(name, step["id"], moved)["passed"], step["id"]


@pytest.mark.parametrize("name", list(PATHS))
def test_every_solution_is_a_valid_graph(name: str) -> None:
    for step in _steps(name):
        report = inspect_graph(step["solution"])
        assert report["valid"], (step["id"], report["problems"])


def test_the_final_solutions_fit_their_paths_datasets() -> None:
    for name in PATHS:
        model = compile_graph(_steps(name)[-1]["solution"])
        assert check_fit(model, dataset_for(model, path_summary(name)["dataset"])) == []


def test_an_embedding_too_small_for_the_characters_is_named_with_the_fix() -> None:
    document = _solution("gpt", "embedding")
    _node(document, "wte")["params"]["num_embeddings"] = 64
    result = check_step("gpt", "embedding", document)
    assert result == {"passed": False, "node": "wte", "message": (
        "The Embedding 'wte' has 64 rows but the characters are ids from 0 to 127: set "
        "num_embeddings to 128.")}


def test_attention_that_sees_the_future_is_refused_inside_the_repeat_too() -> None:
    document = _solution("gpt", "head")
    _node(_node(document, "blocks")["graph"], "attn")["params"]["causal"] = False
    result = check_step("gpt", "head", document)
    assert not result["passed"] and result["node"] == "blocks/attn"
    assert "turn causal on" in result["message"]


def test_a_residual_that_adds_the_normalized_stream_is_refused() -> None:
    document = _solution("gpt", "residual")
    document["edges"] = [e for e in document["edges"] if e["to"] != "res1.a"]
    document["edges"].append({"from": "ln1", "to": "res1.a"})
    result = check_step("gpt", "residual", document)
    assert not result["passed"] and result["node"] == "res1"
    assert "'wpe'" in result["message"]


def test_building_more_than_asked_still_passes() -> None:
    """A Dropout after the embedding and an Init node: more than the step asked."""
    document = _solution("gpt", "head")
    document["nodes"] += [{"id": "drop", "type": "Dropout"},
                          {"id": "init", "type": "Init"}]
    document["edges"] = [e for e in document["edges"] if e["to"] != "wpe"]
    document["edges"] += [{"from": "wte", "to": "drop"}, {"from": "drop", "to": "wpe"}]
    assert inspect_graph(document)["valid"]
    assert check_step("gpt", "head", document)["passed"]
    assert check_step("gpt", "generate", document)["passed"]


@pytest.mark.parametrize("step, dangling", [("attention", "attn"), ("mlp", "res2"),
                                             ("repeat", "blocks")])
def test_a_chain_that_stops_short_of_the_output_names_where_it_stops(
        step: str, dangling: str) -> None:
    """The block to wire on is named, not the Input far above it."""
    document = _solution("gpt", step)
    document["edges"] = [e for e in document["edges"] if e["to"] != "logits"]
    result = check_step("gpt", step, document)
    assert not result["passed"] and result["node"] == dangling
    assert f"its chain stops at '{dangling}', so wire '{dangling}' into an Output" in (
        result["message"])


def test_an_mlp_without_its_gelu_is_told_to_put_one_between_the_linears() -> None:
    document = _solution("gpt", "mlp")
    document["nodes"] = [n for n in document["nodes"] if n["id"] != "gelu"]
    document["edges"] = [e for e in document["edges"] if "gelu" not in (e["from"], e["to"])]
    document["edges"].append({"from": "fc", "to": "proj"})
    result = check_step("gpt", "mlp", document)
    assert result["node"] == "proj" and not result["passed"]
    assert "'fc' and 'proj' follow each other" in result["message"]
    assert "put a GELU between them" in result["message"]


def test_an_mlp_no_wider_than_the_stream_is_told_its_width() -> None:
    document = _solution("gpt", "mlp")
    _node(document, "fc")["params"]["out_features"] = 64
    result = check_step("gpt", "mlp", document)
    assert result["node"] == "fc" and not result["passed"]
    assert "gives 64 features, no more than the stream's 64" in result["message"]
    assert "set its out_features to 256" in result["message"]


def test_a_two_linear_model_without_activation_is_told_to_add_a_relu() -> None:
    document = _solution("digits", "hidden")
    document["nodes"] = [n for n in document["nodes"] if n["id"] != "act1"]
    document["edges"] = [e for e in document["edges"] if "act1" not in (e["from"], e["to"])]
    document["edges"].append({"from": "hidden1", "to": "scores"})
    result = check_step("digits", "hidden", document)
    assert not result["passed"] and result["node"] == "scores"
    assert "put a ReLU between them" in result["message"]


def test_a_run_step_says_whether_the_canvas_is_ready_to_train() -> None:
    assert check_step("gpt", "train", _solution("gpt", "head"))["passed"]
    broken = _solution("gpt", "head")
    _node(broken, "head")["params"]["out_features"] = 0
    result = check_step("gpt", "train", broken)
    assert not result["passed"]


def test_unknown_paths_and_steps_raise_key_error() -> None:
    with pytest.raises(KeyError):
        load_path("nope")
    with pytest.raises(KeyError):
        check_step("nope", "tokens", EMPTY)
    with pytest.raises(KeyError):
        check_step("gpt", "nope", EMPTY)
    with pytest.raises(KeyError):
        check_step(["gpt"], "tokens", EMPTY)  # type: ignore[arg-type]


def _many_nodes(count: int) -> dict[str, Any]:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [4]}}]
    nodes += [{"id": f"n{i}", "type": "ReLU"} for i in range(count)]
    edges = [{"from": "x", "to": "n0"}]
    edges += [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(count - 1)]
    return {"format": FORMAT, "nodes": nodes, "edges": edges}


HOSTILE: list[Any] = [
    None, 42, "text", [], ["nodes"], b"\xff",
    {}, {"nodes": "many"}, {"format": FORMAT, "nodes": {"a": 1}, "edges": 3},
    {"format": FORMAT, "nodes": [1, "x", None, []], "edges": [{"from": 1}]},
    {"format": FORMAT, "nodes": [{"id": "tokens", "type": "Input",
                                  "params": {"shape": "32", "dtype": 7}}], "edges": []},
    {"format": FORMAT, "nodes": [{"id": "e", "type": "Embedding",
                                  "params": {"num_embeddings": 1e999}}], "edges": []},
    {"format": FORMAT, "nodes": [{"id": "r", "type": "Repeat", "graph": "nope"}], "edges": []},
    {"format": FORMAT, "nodes": [{"id": "a", "type": "Add"}],
     "edges": [{"from": "a", "to": "a.a"}]},
    {"format": FORMAT, "nodes": [], "edges": [], "meta": {"x": [[[[[[[[[[[[]]]]]]]]]]]]}},
]


@pytest.mark.parametrize("document", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_documents_fail_the_check_without_raising(document: Any) -> None:
    for name in PATHS:
        for step in _steps(name):
            result = check_step(name, step["id"], document)
            assert result["passed"] is False and result["message"]


def test_a_document_over_the_node_limit_is_refused_quickly() -> None:
    started = time.monotonic()
    result = check_step("gpt", "head", _many_nodes(10_000))
    assert not result["passed"] and "SHIPYARD_MAX_NODES" in result["message"]
    assert time.monotonic() - started < 10


def test_a_long_chain_under_the_limit_is_checked_in_bounded_time() -> None:
    started = time.monotonic()
    assert not check_step("gpt", "head", _many_nodes(4_000))["passed"]
    assert time.monotonic() - started < 30


def test_a_long_chain_that_stops_short_of_the_output_is_named_in_bounded_time() -> None:
    """Where the chain stops is found from each block's readers, not a walk from each block
    (5,000 Dropouts took 3.5 s that way)."""
    document = {"format": FORMAT, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [32], "dtype": "int64"}},
        {"id": "o", "type": "Output"}], "edges": []}
    previous = "x"
    for i in range(4_990):
        document["nodes"].append({"id": f"d{i}", "type": "Dropout"})
        document["edges"].append({"from": previous, "to": f"d{i}"})
        previous = f"d{i}"
    started = time.monotonic()
    result = check_step("gpt", "tokens", document)
    assert result["node"] == "d4989" and "its chain stops at 'd4989'" in result["message"]
    assert time.monotonic() - started < 2


@pytest.mark.slow
def test_the_gpt_paths_final_model_learns_shakespeare_with_the_default_settings() -> None:
    """The path ends in a run the newcomer can watch: the validation loss falls at every
    evaluation of the default run."""
    model = compile_graph(_steps("gpt")[-1]["solution"])
    recorder = Recorder()
    config = TrainConfig(sample_length=0, attention_interval=0)
    train(model, dataset_for(model, "shakespeare"), config, recorder)
    val = recorder.values("val_loss")
    assert len(val) == config.steps // config.eval_interval
    assert all(later < earlier for earlier, later in itertools.pairwise(val)), val
    assert val[-1] < 2.5, val  # 2.33 at step 300 in a run here; uniform guessing is 4.85


def test_the_gpt_paths_final_model_starts_learning_in_a_few_steps() -> None:
    """The quick version of the run above (which takes minutes on a CPU): its loss falls
    from guessing within 40 steps."""
    model = compile_graph(_steps("gpt")[-1]["solution"])
    recorder = Recorder()
    config = TrainConfig(steps=40, batch_size=32, eval_interval=20, eval_batches=2,
                         sample_length=0, attention_interval=0)
    train(model, dataset_for(model, "shakespeare"), config, recorder)
    losses = recorder.values("train_loss")
    assert losses[0] > 4.0  # about ln(128) = 4.85: uniform over the ids
    val = recorder.values("val_loss")
    assert val[1] < val[0] < 3.6, val


def test_many_candidate_blocks_are_checked_in_bounded_time() -> None:
    """4,000 Linear-GELU pairs after the residual: every pair looks like an MLP's start,
    and each is weighed without a walk of the whole graph per candidate."""
    document = _solution("gpt", "residual")
    document["edges"] = [e for e in document["edges"] if e["to"] != "logits"]
    previous = "res1"
    for i in range(2_000):
        document["nodes"] += [{"id": f"l{i}", "type": "Linear"},
                              {"id": f"g{i}", "type": "GELU"}]
        document["edges"] += [{"from": previous, "to": f"l{i}"},
                              {"from": f"l{i}", "to": f"g{i}"}]
        previous = f"g{i}"
    document["edges"].append({"from": previous, "to": "logits"})
    started = time.monotonic()
    result = check_step("gpt", "head", document)
    assert not result["passed"] and result["node"] == "l0" and "LayerNorm" in result["message"]
    assert time.monotonic() - started < 20


def test_many_walks_along_one_long_chain_of_repeats_are_checked_in_bounded_time() -> None:
    """1,000 Repeats in a row, each passing its input through, then 1,900 blocks reading
    the last: every block's source lies at the chain's far end. Each check took 5 to 10 s
    when every walk followed the chain anew (inspecting the document takes 0.2 s)."""
    document = _solution("gpt", "positions")
    document["edges"] = [e for e in document["edges"] if e["to"] != "logits"]
    previous = "wpe"
    for i in range(1_000):
        body = {"nodes": [{"id": "x", "type": "Input"}, {"id": "y", "type": "Output"}],
                "edges": [{"from": "x", "to": "y"}]}
        document["nodes"].append({"id": f"r{i}", "type": "Repeat", "graph": body})
        document["edges"].append({"from": previous, "to": f"r{i}"})
        previous = f"r{i}"
    for i in range(1_900):
        document["nodes"].append({"id": f"u{i}", "type": "ReLU"})
        document["edges"].append({"from": previous, "to": f"u{i}"})
    document["edges"].append({"from": previous, "to": "logits"})
    started = time.monotonic()
    for step in _steps("gpt"):
        result = check_step("gpt", step["id"], document)
        assert result["passed"] is (step["id"] in ("tokens", "embedding", "positions"))
    assert time.monotonic() - started < 20


def _mutations(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(document)
    nodes, edges = out["nodes"], out["edges"]
    odd: list[Any] = [None, -1, 0, 1e308, "x", [], {}, True, 2**70]
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        if choice == 0 and nodes:
            nodes.pop(rng.randrange(len(nodes)))
        elif choice == 1 and edges:
            edges.pop(rng.randrange(len(edges)))
        elif choice == 2 and nodes:
            node = rng.choice(nodes)
            name = rng.choice([*node.get("params", {}), "num_heads", "times", "shape"])
            node.setdefault("params", {})[name] = rng.choice(odd)
        elif choice == 3 and nodes:
            rng.choice(nodes)["type"] = rng.choice(["Add", "Repeat", "Input", "Output",
                                                    "Embedding", "Nope", 3])
        elif edges:
            rng.choice(edges)["to"] = rng.choice(["wte", "blocks", "res1.b", "x.y", 7])
    return out


@pytest.mark.parametrize("name", list(PATHS))
def test_mangled_solutions_never_make_a_check_raise(name: str) -> None:
    rng = random.Random(17)
    steps = _steps(name)
    for _ in range(60):
        document = _mutations(rng.choice(steps)["solution"], rng)
        step = rng.choice(steps)
        result = check_step(name, step["id"], document)
        assert isinstance(result["passed"], bool) and result["message"]
        assert result["node"] is None or isinstance(result["node"], str)


def test_a_freshly_dropped_input_is_told_its_dtype_then_its_shape() -> None:
    """What a newcomer draws first in the editor: an Input with the defaults (float32, no
    shape) wired into an Output."""
    document: dict[str, Any] = {"format": FORMAT, "nodes": [{"id": "x", "type": "Input"},
                                            {"id": "out", "type": "Output"}],
                "edges": [{"from": "x", "to": "out"}]}
    result = check_step("gpt", "tokens", document)
    assert result["node"] == "x" and "set its dtype to int64" in result["message"]
    document["nodes"][0]["params"] = {"dtype": "int64"}
    result = check_step("gpt", "tokens", document)
    assert result["node"] == "x" and "set its shape to [32]" in result["message"]
    document["nodes"][0]["params"]["shape"] = [32]
    assert check_step("gpt", "tokens", document)["passed"]
    digits = check_step("digits", "neuron", {**document, "nodes": [
        {"id": "x", "type": "Input"}, {"id": "out", "type": "Output"}]})
    assert digits["node"] == "x" and "set its shape to [64]" in digits["message"]
