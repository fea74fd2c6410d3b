"""What a user reads when a graph is wrong: every problem, on the right node, in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compute.engine import GraphError, inspect_graph, load_graph, load_starter
from compute.engine.graph import document_depth

from .graphs import chain, document, input_node, nested, node, problems_of, repeat


def only_problem(doc: dict) -> tuple[str | None, str | None, str]:
    report = inspect_graph(doc)
    assert report["valid"] is False
    problems = problems_of(report)
    assert len(problems) == 1, problems
    with pytest.raises(GraphError):
        load_graph(doc)
    return problems[0]


def test_int_into_linear_names_the_node_the_source_and_the_dtype() -> None:
    doc = chain([64], node("hidden", "Linear", out_features=8), dtype="int64")
    node_id, _, message = only_problem(doc)
    assert node_id == "hidden"
    assert message == ("Linear expects a float input, but x gives int64 [B, 64]: put an "
                       "Embedding before it to turn token ids into vectors, or set the Input's "
                       "dtype to float32")


def test_float_into_embedding_says_to_make_the_input_int64() -> None:
    node_id, _, message = only_problem(chain([16], node("wte", "Embedding")))
    assert node_id == "wte"
    assert "Embedding expects integer ids (int64)" in message
    assert "x gives float32 [B, 16]" in message
    assert "set the Input's dtype to int64" in message


def test_graph_error_lists_every_problem_as_node_colon_message() -> None:
    doc = chain([64], node("hidden", "Linear", out_features=0), node("out", "Linaer"))
    with pytest.raises(GraphError) as caught:
        load_graph(doc)
    text = str(caught.value)
    assert text.startswith(f"{len(caught.value.problems)} problems in the graph:")
    assert "hidden (out_features): out_features must be at least 1, got 0" in text
    assert "out (type): unknown block type 'Linaer'; did you mean 'Linear'?" in text


def test_cycle_is_reported_with_its_path() -> None:
    doc = document(
        [input_node("x", [8]), node("a", "Add"), node("r", "ReLU"), node("s", "SiLU"),
         node("y", "Output")],
        [("x", "a.a"), ("s", "a.b"), ("a", "r"), ("r", "s"), ("r", "y")])
    report = inspect_graph(doc)
    cycle = [p for p in report["problems"] if "cycle" in p["message"]]
    assert len(cycle) == 1
    message = cycle[0]["message"]
    path = message.split("cycle: ")[1].split(";")[0].split(" → ")
    assert path == ["r", "s", "a", "r"] and cycle[0]["node"] == "r"
    assert "acyclic" in message
    with pytest.raises(GraphError):
        load_graph(doc)


def test_a_node_wired_into_itself_is_a_cycle() -> None:
    doc = document([input_node("x", [8]), node("a", "Add"), node("y", "Output")],
                   [("x", "a.a"), ("a", "a.b"), ("a", "y")])
    messages = [m for _, _, m in problems_of(inspect_graph(doc))]
    assert any("cycle: a → a" in m for m in messages), messages


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("Linaer", "'Linear'"), ("Conv2D", "'Conv2d'"), ("relu", "'ReLU'"),
    ("MultiheadAttention", "'MultiHeadAttention'"), ("Layernorm", "'LayerNorm'")])
def test_unknown_type_suggests_the_close_names(typo: str, suggestion: str) -> None:
    report = inspect_graph(chain([8], node("thing", typo)))
    problem = next(p for p in report["problems"] if p["node"] == "thing")
    assert problem["field"] == "type"
    assert f"unknown block type {typo!r}; did you mean" in problem["message"]
    assert suggestion in problem["message"]


def test_unknown_type_far_from_any_lists_the_known_types() -> None:
    report = inspect_graph(chain([8], node("thing", "Quux")))
    message = next(p["message"] for p in report["problems"] if p["node"] == "thing")
    assert "known types:" in message and "Linear" in message and "Repeat" in message


def test_top_level_input_without_shape_is_a_problem_on_its_shape() -> None:
    doc = document([input_node("x"), node("h", "Linear"), node("y", "Output")],
                   [("x", "h"), ("h", "y")])
    node_id, field, message = only_problem(doc)
    assert (node_id, field) == ("x", "shape")
    assert "an Input needs a shape" in message and "[3, 32, 32]" in message
    report = inspect_graph(doc)
    assert report["nodes"]["h"]["status"] == "skipped"


def test_unknown_and_wrongly_typed_parameters_are_named() -> None:
    doc = chain([8], node("h", "Linear", out_features="8", bias=1, width=3))
    problems = {(n, f): m for n, f, m in problems_of(inspect_graph(doc))}
    assert problems[("h", "out_features")] == 'out_features must be a whole number, got "8"'
    assert problems[("h", "bias")] == "bias must be true or false, got 1"
    assert problems[("h", "width")] == (
        "Linear has no parameter 'width'; it takes out_features, bias, tie_to, init, init_std")


def test_out_of_range_and_enum_parameters_say_what_is_allowed() -> None:
    doc = chain([8], node("d", "Dropout", p=1.5), node("g", "GELU", approximate="fast"))
    problems = {(n, f): m for n, f, m in problems_of(inspect_graph(doc))}
    assert problems[("d", "p")].startswith("p must be less than 1")
    assert problems[("d", "p")].endswith("got 1.5")
    assert problems[("g", "approximate")] == (
        "approximate must be one of 'none' or 'tanh', got 'fast'")


def test_wrong_dtype_name_on_an_input_is_refused() -> None:
    node_id, field, message = only_problem(chain([8], node("h", "Linear"), dtype="float8"))
    assert (node_id, field) == ("x", "dtype")
    assert "float32" in message and "int64" in message


def test_shapes_that_do_not_broadcast_into_add_name_both_sources() -> None:
    doc = document([input_node("x", [8]), input_node("z", [5]), node("sum", "Add"),
                    node("y", "Output")], [("x", "sum.a"), ("z", "sum.b"), ("sum", "y")])
    node_id, _, message = only_problem(doc)
    assert node_id == "sum"
    assert "[B, 8] from x" in message and "[B, 5] from z" in message
    assert message.endswith("a Linear with out_features 8 after z makes b match a")


def test_concat_with_a_mismatched_dimension_names_it() -> None:
    doc = document([input_node("x", [8, 3]), input_node("z", [5, 4]),
                    node("cat", "Concat", dim=1), node("y", "Output")],
                   [("x", "cat.a"), ("z", "cat.b"), ("cat", "y")])
    node_id, _, message = only_problem(doc)
    assert node_id == "cat"
    assert "a is [B, 8, 3] and b is [B, 5, 4]" in message and "dimension 2 differs" in message
    assert message.endswith("make the other dimensions equal first, e.g. with a Linear or Reshape")


def test_concat_along_the_wrong_dimension_says_which_dim_would_join() -> None:
    doc = document([input_node("x", [8, 3]), input_node("z", [8, 4]),
                    node("cat", "Concat", dim=1), node("y", "Output")],
                   [("x", "cat.a"), ("z", "cat.b"), ("cat", "y")])
    assert only_problem(doc) == (
        "cat", "dim", "Concat along dim 1 needs every other dimension equal, but a is "
        "[B, 8, 3] and b is [B, 8, 4] (dimension 2 differs): to join along dimension 2, set dim "
        "to 2")


def test_concat_along_the_batch_is_refused_on_its_dim() -> None:
    doc = document([input_node("x", [8]), input_node("z", [8]),
                    node("cat", "Concat", dim=0), node("y", "Output")],
                   [("x", "cat.a"), ("z", "cat.b"), ("cat", "y")])
    assert only_problem(doc)[:2] == ("cat", "dim")


def test_attention_heads_must_divide_the_width() -> None:
    doc = chain([4, 30], node("attn", "MultiHeadAttention", num_heads=4))
    node_id, field, message = only_problem(doc)
    assert (node_id, field) == ("attn", "num_heads")
    assert "the width 30 of x does not split into 4 heads" in message


def test_rank_mismatch_says_what_layout_is_expected() -> None:
    node_id, _, message = only_problem(chain([64], node("conv", "Conv2d")))
    assert node_id == "conv"
    assert message == ("Conv2d expects [B, C, H, W], but x gives float32 [B, 64]: add a "
                       "Reshape before it to give it [B, C, H, W]")


@pytest.mark.parametrize(("shape", "layer", "fix"), [
    ([3, 32], node("conv", "Conv2d"), "use Conv1d for [B, C, L]"),
    ([3, 8, 8], node("conv", "Conv1d"), "use Conv2d for [B, C, H, W]"),
    ([3, 8, 8], node("bn", "BatchNorm1d"), "use BatchNorm2d for [B, C, H, W]"),
    ([16], node("bn", "BatchNorm2d"), "use BatchNorm1d for [B, C] or [B, C, L]"),
    ([16], node("attn", "MultiHeadAttention", num_heads=2),
     "give the Input a shape T, D, or feed int64 token ids [B, T] through an Embedding"),
    ([16], node("pos", "PositionalEmbedding"), "through an Embedding"),
])
def test_a_rank_mismatch_points_to_the_block_that_fits(shape: list[int], layer: dict,
                                                       fix: str) -> None:
    _, _, message = only_problem(chain(shape, layer))
    assert message.endswith(fix), message


def test_a_lone_block_with_nothing_wired_is_at_fault_for_its_own_input() -> None:
    doc = document([input_node("x", [8]), node("linear1", "Linear"), node("y", "Output")],
                   [("x", "y")])
    report = inspect_graph(doc)
    assert problems_of(report) == [
        ("linear1", "in", "input 'in' is not connected: wire another block's output into it")]
    # Its own problem, not an upstream one: "error", not "skipped".
    assert report["nodes"]["linear1"]["status"] == "error"


def test_a_problem_inside_a_repeat_is_counted_once() -> None:
    doc = chain([4, 16], repeat("blocks", 2, node("attn", "MultiHeadAttention", num_heads=5)))
    report = inspect_graph(doc)
    assert [(n, f) for n, f, _ in problems_of(report)] == [("blocks/attn", "num_heads")]
    assert report["nodes"]["blocks"]["status"] == "error"


def test_a_kernel_larger_than_the_image_is_reported_on_the_node_not_raised() -> None:
    node_id, _, message = only_problem(chain([1, 2, 2], node("conv", "Conv2d", kernel_size=5)))
    assert node_id == "conv"
    assert message.startswith("Conv2d cannot run on float32 [B, 1, 2, 2] from x: ")


def test_nodes_after_a_broken_node_are_skipped_not_reported_again() -> None:
    doc = chain([8], node("bad", "Conv2d"), node("act", "ReLU"), node("h", "Linear"))
    report = inspect_graph(doc)
    assert [p["node"] for p in report["problems"]] == ["bad"]
    assert report["nodes"]["bad"]["status"] == "error"
    assert report["nodes"]["act"]["status"] == "skipped"
    assert report["nodes"]["x"]["outputs"]["out"]["shape"] == ["B", 8]


def test_duplicate_ids_are_reported_on_the_id() -> None:
    doc = chain([8], node("act", "ReLU"), node("act", "ReLU"))
    problems = problems_of(inspect_graph(doc))
    assert ("act", "id", "two nodes have the id 'act'; ids must be unique") in problems


@pytest.mark.parametrize("bad_id", ["1st", "has-dash", "a b", "", "x" * 65, "émoji"])
def test_ids_that_cannot_be_python_names_are_refused(bad_id: str) -> None:
    doc = chain([8], node(bad_id, "ReLU"))
    messages = [m for _, f, m in problems_of(inspect_graph(doc)) if f == "id"]
    assert len(messages) == 1
    assert repr(bad_id) in messages[0] and "starts with a letter or _" in messages[0]


@pytest.mark.parametrize("reserved", ["class", "self", "forward", "training", "meta",
                                      "state_dict", "_modules", "float"])
def test_ids_that_clash_with_python_or_torch_are_refused(reserved: str) -> None:
    doc = chain([8], node(reserved, "ReLU"))
    problems = problems_of(inspect_graph(doc))
    assert (reserved, "id", f"{reserved!r} is reserved in Python or by torch modules; "
            "pick another id") in problems


def test_an_edge_to_an_unknown_node_names_the_edge_and_the_node() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["edges"].append({"from": "ghost", "to": "act"})
    problems = problems_of(inspect_graph(doc))
    assert (None, "edges[2].from",
            "edges[2].from names 'ghost', which is not a node of this graph") in problems


def test_an_unknown_port_lists_the_real_ports() -> None:
    doc = document([input_node("x", [8]), node("sum", "Add"), node("y", "Output")],
                   [("x", "sum.a"), ("x", "sum.c"), ("sum", "y")])
    problems = problems_of(inspect_graph(doc))
    assert ("sum", "c", "Add has no input port 'c'; its inputs: a, b") in problems
    assert ("sum", "b", "input 'b' is not connected: wire another block's output into it") in \
        problems


def test_a_two_input_block_needs_the_port_written_out() -> None:
    doc = document([input_node("x", [8]), node("sum", "Add"), node("y", "Output")],
                   [("x", "sum"), ("sum", "y")])
    messages = [m for n, _, m in problems_of(inspect_graph(doc)) if n == "sum"]
    assert "Add has inputs a, b: write 'sum.a' or 'sum.b'" in messages


def test_two_edges_into_one_input_port_are_refused() -> None:
    doc = document([input_node("x", [8]), input_node("z", [8]), node("act", "ReLU"),
                    node("y", "Output")], [("x", "act"), ("z", "act"), ("act", "y")])
    node_id, field, message = only_problem(doc)
    assert (node_id, field) == ("act", "in")
    assert "input 'in' already takes x.out; an input port takes one edge" in message


def test_an_unconnected_output_and_a_missing_format_are_both_reported() -> None:
    doc = chain([8], node("act", "ReLU"))
    del doc["format"]
    doc["nodes"].append(node("extra", "Output"))
    problems = problems_of(inspect_graph(doc))
    assert (None, "format", 'missing "format": write "format": "shipyard.graph/v1"') in problems
    assert ("extra", "in",
            "nothing is wired into this Output: wire the model's result into it") in problems


def test_a_graph_without_input_or_output_says_what_to_add() -> None:
    messages = [m for _, _, m in problems_of(inspect_graph(document([], [])))]
    assert "the graph has no Input: add one for the data to enter" in messages
    assert "the graph has no Output: wire the result into an Output" in messages


def test_unknown_members_are_errors_at_every_level() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["version"] = 2
    doc["nodes"][1]["colour"] = "red"
    doc["edges"][0]["weight"] = 1
    problems = problems_of(inspect_graph(doc))
    fields = {(n, f) for n, f, _ in problems}
    assert (None, "version") in fields
    assert ("act", "colour") in fields
    assert (None, "edges[0]") in fields


def test_another_format_version_is_refused() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["format"] = "shipyard.graph/v2"
    _node_id, field, message = only_problem(doc)
    assert field == "format" and "'shipyard.graph/v2'" in message


def test_layout_and_meta_never_change_validity() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["layout"] = {"x": [0, 0], "act": [10.5, -3], "gone": [1, 1]}
    doc["meta"] = {"zoom": 2, "notes": ["anything"]}
    assert inspect_graph(doc)["valid"]


@pytest.mark.parametrize("source", ["{not json", "[1, 2]", 42])
def test_unreadable_documents_are_problems_not_exceptions(source: object) -> None:
    report = inspect_graph(source)  # type: ignore[arg-type]
    assert report["valid"] is False and report["problems"]
    with pytest.raises(GraphError):
        load_graph(source)  # type: ignore[arg-type]


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="no such file"):
        load_graph(tmp_path / "nope.json")


def test_a_graph_loads_from_a_json_string_and_a_path(tmp_path: Path) -> None:
    text = json.dumps(load_starter("mlp"))
    path = tmp_path / "mlp.json"
    path.write_text(text)
    name = load_starter("mlp")["name"]
    assert load_graph(text).name == load_graph(path).name == load_graph(str(path)).name == name


def test_unused_node_output_is_a_warning_not_a_problem() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["nodes"].append(node("dangling", "Tanh"))
    doc["edges"].append({"from": "x", "to": "dangling"})
    report = inspect_graph(doc)
    assert report["valid"]
    assert [w["node"] for w in report["warnings"]] == ["dangling"]
    assert "not used" in report["warnings"][0]["message"]


# Nested graphs: Repeat.


def repeat_doc(body: dict, shape: list[int] | None = None) -> dict:
    block = {"id": "blocks", "type": "Repeat", "params": {"times": 2}, "graph": body}
    return document([input_node("x", shape or [4, 16]), block, node("y", "Output")],
                    [("x", "blocks"), ("blocks", "y")])


def test_nested_problems_are_named_by_their_path() -> None:
    body = nested([{"id": "i", "type": "Input"}, node("attn", "MultiHeadAttention", num_heads=5),
                   node("o", "Output")], [("i", "attn"), ("attn", "o")])
    problems = problems_of(inspect_graph(repeat_doc(body)))
    assert [p[:2] for p in problems] == [("blocks/attn", "num_heads")]


def test_nested_parameter_problems_are_named_by_their_path() -> None:
    body = nested([{"id": "i", "type": "Input"}, node("lin", "Linear", out_features=-3),
                   node("o", "Output")], [("i", "lin"), ("lin", "o")])
    problems = problems_of(inspect_graph(repeat_doc(body)))
    assert ("blocks/lin", "out_features", "out_features must be at least 1, got -3") in problems


def test_nested_graph_needs_exactly_one_input_and_one_output() -> None:
    body = nested([{"id": "i", "type": "Input"}, {"id": "j", "type": "Input"},
                   node("o", "Output")], [("i", "o")])
    problems = problems_of(inspect_graph(repeat_doc(body)))
    assert ("blocks", None, "a nested graph has exactly one Input and one Output, "
            "this one has 2 and 1") in problems


def test_nested_graph_must_give_back_the_shape_it_takes() -> None:
    doc = repeat_doc(nested([{"id": "i", "type": "Input"}, node("lin", "Linear", out_features=5),
                             node("o", "Output")], [("i", "lin"), ("lin", "o")]))
    node_id, _, message = only_problem(doc)
    assert node_id == "blocks"
    assert message.endswith("takes float32 [B, 4, 16] but gives float32 [B, 4, 5]: change the "
                            "blocks inside so that its Output gets [B, 4, 16]")


def test_nested_input_shape_must_agree_with_what_is_fed() -> None:
    body = nested([input_node("i", [3]), node("o", "Output")], [("i", "o")])
    node_id, field, message = problems_of(inspect_graph(repeat_doc(body)))[0]
    assert (node_id, field) == ("blocks/i", "shape")
    assert "this Input says [B, 3], but x feeds float32 [B, 4, 16]" in message
    assert "leave the shape empty inside a Repeat" in message


def test_repeat_without_a_graph_is_refused() -> None:
    doc = chain([8], node("blocks", "Repeat", times=2))
    node_id, field, _ = only_problem(doc)
    assert (node_id, field) == ("blocks", "graph")


def test_only_a_repeat_holds_a_graph() -> None:
    layer = node("act", "ReLU")
    layer["graph"] = nested([], [])
    node_id, field, message = only_problem(chain([8], layer))
    assert (node_id, field) == ("act", "graph")
    assert message == "only a Repeat or a Custom block holds a nested graph, not a ReLU"


def test_repeats_nest_and_name_deep_problems_by_path() -> None:
    inner = repeat("inner", 2, node("bad", "Linear", out_features=0))
    doc = chain([8], repeat("outer", 2, inner))
    problems = problems_of(inspect_graph(doc))
    assert problems[0][:2] == ("outer/inner/bad", "out_features")
    ok = chain([8], repeat("outer", 2, repeat("inner", 3, node("lin", "Linear", out_features=8))))
    report = inspect_graph(ok)
    assert report["valid"], report["problems"]
    assert report["totals"]["params"] == 2 * 3 * (8 * 8 + 8)


def test_dropout_refuses_integer_ids_before_training_would() -> None:
    report = inspect_graph(chain([16], node("drop", "Dropout"), dtype="int64"))
    assert problems_of(report) == [
        ("drop", None, "Dropout expects a float input, but x gives int64 [B, 16]: put an "
                       "Embedding before it to turn token ids into vectors, or set the Input's "
                       "dtype to float32")]


# Hostile values: too deep for recursive code, or numbers JSON cannot carry back.


def nest(levels: int, leaf: object = 1) -> object:
    """`{"a": {"a": ... leaf}}`, `levels` objects deep, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def test_meta_nested_956_deep_is_refused_naming_the_member_and_the_path() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["meta"] = nest(956)
    node_id, field, message = only_problem(doc)
    assert (node_id, field) == (None, "meta")
    assert message == ("meta nests deeper than 32 levels (at meta" + ".a" * 32 + "); values in "
                       "a graph nest at most 32 deep")
    doc["meta"] = nest(32)
    assert inspect_graph(doc)["valid"]


def test_a_value_nested_past_the_recursion_limit_is_a_problem_not_a_recursion_error() -> None:
    doc = chain([8], node("act", "ReLU"))
    doc["meta"] = {"notes": [nest(200_000)]}
    assert only_problem(doc)[1] == "meta"
    text = '{"format": "shipyard.graph/v1", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert problems_of(inspect_graph(text)) == [
        (None, None, "the JSON nests too deep to read; values nest at most 32 levels")]


@pytest.mark.parametrize(("where", "field"), [
    ("params", "nodes[1].params"), ("unknown", "unknown"), ("layout", "layout")])
def test_deep_values_anywhere_in_the_document_are_refused_on_the_value(where: str,
                                                                        field: str) -> None:
    doc = chain([8], node("act", "ReLU"))
    deep = nest(40)
    if where == "params":
        doc["nodes"][1]["params"] = {"extra": deep}
    else:
        doc[where] = deep
    report = inspect_graph(doc)
    assert [(p["field"], p["message"].split(" (at ")[0]) for p in report["problems"]] == [
        (field, f"{field} nests deeper than 32 levels")]


def test_repeats_nested_deeper_than_recursive_code_can_follow_are_refused() -> None:
    doc = chain([8], node("act", "ReLU"))
    for level in range(100):  # 300 levels of nested graphs; SHIPYARD_MAX_DEPTH stops at 8
        doc = chain([8], repeat(f"r{level}", 1, *doc["nodes"][1:-1]))
    assert problems_of(inspect_graph(doc)) == [
        (None, None, "the document nests 303 levels deep (Repeats inside Repeats); the limit "
                     "is 200")]


@pytest.mark.parametrize(("change", "field", "shown"), [
    (lambda d: d.update(meta={"lr": float("inf")}), "meta.lr", "Infinity"),
    (lambda d: d.update(meta={"curve": [0.5, float("-inf")]}), "meta.curve[1]", "-Infinity"),
    (lambda d: d.update(meta={"odd key": float("nan")}), 'meta["odd key"]', "NaN"),
    (lambda d: d.update(layout={"x": [float("inf"), 0]}), "layout.x[0]", "Infinity"),
    (lambda d: d["nodes"][1].update(graph={"nodes": float("nan")}), "nodes[1].graph.nodes",
     "NaN"),
])
def test_a_number_that_is_not_finite_outside_params_is_a_problem_on_its_path(
        change: object, field: str, shown: str) -> None:
    doc = chain([8], node("act", "ReLU"))
    change(doc)  # type: ignore[operator]
    report = inspect_graph(doc)
    assert (None, field, f"{field} is {shown}: numbers must be finite (1e999 and larger read "
                         "as Infinity)") in problems_of(report)
    json.dumps(report, allow_nan=False)  # the report itself stays valid JSON


@pytest.mark.parametrize(("layer", "field", "message"), [
    (node("lin", "Linear", out_features=float("inf")), "out_features",
     "out_features must be a whole number, got Infinity"),
    (node("lin", "LayerNorm", eps=float("nan")), "eps", "eps must be a finite number, got NaN"),
    (node("lin", "Dropout", p=float("-inf")), "p", "p must be a finite number, got -Infinity"),
    (node("lin", "Reshape", shape=[float("inf")]), "shape",
     "shape must be a whole number, got Infinity"),
])
def test_a_parameter_that_is_not_finite_is_a_problem_on_the_parameter_once(
        layer: dict, field: str, message: str) -> None:
    assert only_problem(chain([8], layer)) == ("lin", field, message)


def test_an_input_shape_of_1e999_is_one_problem_on_the_shape() -> None:
    text = json.dumps(chain([8], node("act", "ReLU"))).replace("[8]", "[1e999]")
    assert only_problem(json.loads(text)) == (
        "x", "shape", "shape must be a whole number, got Infinity")


def test_1e999_and_nan_in_json_text_are_problems_and_a_huge_integer_too() -> None:
    base = json.dumps(chain([8], node("act", "ReLU")))[:-1]
    report = inspect_graph(base + ', "meta": {"lr": 1e999, "m": NaN}}')
    assert [p["field"] for p in report["problems"]] == ["meta.lr", "meta.m"]
    report = inspect_graph(base + ', "meta": {"n": ' + "9" * 5000 + "}}")
    assert problems_of(report) == [
        (None, None, "not valid JSON: a number has more than 4,300 digits")]


def test_document_depth_counts_levels_of_lists_and_objects_without_recursion() -> None:
    assert [document_depth(v) for v in (1, "a", [], {"a": 1}, {"a": [1, {"b": []}]})] == \
        [0, 0, 1, 1, 4]
    assert document_depth(nest(100_000)) == 100_000
