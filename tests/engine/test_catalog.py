"""The catalog the editor draws from, the starters it offers, and the engine's imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compute.engine import (
    REGISTRY,
    block_catalog,
    catalog,
    inspect_graph,
    load_graph,
    load_starter,
    starter_names,
)
from compute.engine.blocks import Block
from compute.engine.graph import ID_PATTERN, RESERVED_IDS

from .graphs import chain, node


@pytest.mark.parametrize("entry", catalog(), ids=lambda e: e["type"])
def test_catalog_entry_explains_the_block_to_a_learner(entry: dict) -> None:
    assert entry["category"].strip()
    assert entry["summary"].strip() and "\n" not in entry["summary"]
    assert len(entry["explanation"]) > 80
    assert f"**{entry['type']}**" in entry["explanation"]


@pytest.mark.parametrize("entry", catalog(), ids=lambda e: e["type"])
def test_catalog_explanation_ends_with_what_to_look_for_in_the_numbers(entry: dict) -> None:
    last = entry["explanation"].split("\n\n")[-1]
    assert last.startswith("**What to look for:** "), last
    assert entry["explanation"].count("**What to look for:**") == 1
    said = last.removeprefix("**What to look for:** ")
    assert 40 < len(said) < 420
    assert said.count(". ") + 1 <= 2  # one sentence, two at most


@pytest.mark.parametrize(("layer", "shape", "params", "flops"), [
    # The figures the "What to look for" sentences give, as the inspection reports them.
    (("Linear", {"out_features": 4}), [10, 8], 8 * 4 + 4, 2 * 8 * 4 * 10),
    (("GatedMLP", {"hidden_features": 16}), [8], 3 * 8 * 16, 6 * 8 * 16),
    (("Conv2d", {"out_channels": 4, "kernel_size": 3}), [3, 8, 8], 4 * 3 * 9 + 4,
     2 * 4 * 3 * 9 * 6 * 6),
    (("MultiHeadAttention", {"num_heads": 2}), [6, 8], 4 * 8**2 + 4 * 8,
     8 * 6 * 8**2 + 4 * 6**2 * 8),
    (("LayerNorm", {}), [6, 8], 2 * 8, 0),
    (("ReLU", {}), [6, 8], 0, 0),
], ids=lambda v: v[0] if isinstance(v, tuple) else None)
def test_what_to_look_for_figures_are_what_the_inspection_reports(
        layer: tuple[str, dict], shape: list[int], params: int, flops: int) -> None:
    type_, given = layer
    report = inspect_graph(chain(shape, node("n", type_, **given)))
    assert (report["nodes"]["n"]["params"], report["nodes"]["n"]["flops"]) == (params, flops)


@pytest.mark.parametrize("entry", catalog(), ids=lambda e: e["type"])
def test_catalog_schema_gives_every_parameter_a_default_and_a_description(entry: dict) -> None:
    schema = entry["params_schema"]
    assert schema["type"] == "object"
    # A Custom node is made from a saved graph (My blocks), never drawn empty: the graph it
    # is and its version have no default.
    made_from_a_graph = {"source", "version"} if entry["type"] == "Custom" else set()
    for name, prop in schema.get("properties", {}).items():
        assert "default" in prop or name in made_from_a_graph, (
            f"{entry['type']}.{name} has no default")
        assert prop.get("description"), f"{entry['type']}.{name} has no description"
    assert set(schema.get("required", [])) == made_from_a_graph, (
        "a node without params must be valid as drawn")
    json.dumps(schema)  # served as is by the API


# A Custom node is made from a saved graph, never drawn empty: its source has no default.
@pytest.mark.parametrize("block", [b for b in REGISTRY.values() if b.type != "Custom"],
                         ids=lambda b: b.type)
def test_catalog_defaults_are_what_the_parameter_model_gives_an_empty_node(block: Block) -> None:
    entry = block.describe()
    defaults = entry["defaults"]
    assert block.Params.model_validate(defaults) == block.Params()
    assert block.Params.model_validate(json.loads(json.dumps(defaults))) == block.Params()
    props = entry["params_schema"].get("properties", {})
    assert defaults == {name: prop["default"] for name, prop in props.items()}


@pytest.mark.parametrize("entry", catalog(), ids=lambda e: e["type"])
def test_catalog_id_stem_numbered_is_an_id_the_engine_takes(entry: dict) -> None:
    stem = entry["id_stem"]
    assert not stem[-1].isdigit()  # the editor numbers it: attn1, attn2
    for n in (1, 12):
        assert ID_PATTERN.fullmatch(f"{stem}{n}") and f"{stem}{n}" not in RESERVED_IDS
    assert "id_stem" not in entry["params_schema"].get("properties", {})


def test_catalog_stems_are_the_short_names_people_write() -> None:
    stems = {e["type"]: e["id_stem"] for e in catalog()}
    assert stems["MultiHeadAttention"] == "attn" and stems["LayerNorm"] == "ln"
    assert stems["MixtureOfExperts"] == "moe"
    assert stems["Input"] == "x" and stems["Repeat"] == "blocks"
    assert stems["Linear"] == "linear"  # without a stem of its own: the type in lower case


def test_block_catalog_carries_the_engines_rules_for_ids() -> None:
    served = block_catalog()
    assert served["id_pattern"] == ID_PATTERN.pattern
    assert served["reserved_ids"] == sorted(RESERVED_IDS)
    assert served["blocks"] == catalog()
    json.dumps(served)


def test_catalog_lists_every_registered_block_once_with_its_ports() -> None:
    entries = catalog()
    assert [e["type"] for e in entries] == list(REGISTRY)
    by_type = {e["type"]: e for e in entries}
    assert by_type["Add"]["inputs"] == ["a", "b"]
    assert by_type["Concat"]["inputs"] == ["a", "b"]
    assert by_type["Input"]["inputs"] == [] and by_type["Output"]["outputs"] == []
    assert by_type["Repeat"]["holds_graph"] is True


def test_catalog_holds_the_minimum_catalog_of_the_format_with_its_parameter_names() -> None:
    expected = {
        "Linear": {"out_features", "bias"},
        "Conv1d": {"out_channels", "kernel_size", "stride", "padding", "bias"},
        "Conv2d": {"out_channels", "kernel_size", "stride", "padding", "bias"},
        "MaxPool2d": {"kernel_size", "stride", "padding"},
        "AvgPool2d": {"kernel_size", "stride", "padding"},
        "AdaptiveAvgPool2d": {"output_size"},
        "BatchNorm1d": {"eps", "momentum"},
        "BatchNorm2d": {"eps", "momentum"},
        "LayerNorm": {"eps", "elementwise_affine", "bias"},
        "RMSNorm": {"eps", "elementwise_affine"},
        "Dropout": {"p"},
        "ReLU": set(), "SiLU": set(), "Tanh": set(), "Sigmoid": set(),
        "Softmax": {"dim"},
        "Flatten": {"start_dim"},
        "Reshape": {"shape"},
        "Embedding": {"num_embeddings", "embedding_dim"},
        "PositionalEmbedding": {"max_len"},
        "MultiHeadAttention": {"num_heads", "causal", "dropout", "bias", "num_kv_heads",
                               "position", "rope_theta", "window"},
        "RotaryEmbedding": {"num_heads", "theta"},
        "GatedMLP": {"activation", "hidden_features", "multiple_of", "bias"},
        "MixtureOfExperts": {"num_experts", "top_k", "hidden_features", "activation", "bias",
                             "aux_loss_weight"},
        "Add": set(), "Multiply": set(),
        "Concat": {"dim"},
        "Repeat": {"times"},
        "Input": {"shape", "dtype"},
        "Output": set(),
    }
    by_type = {e["type"]: set(e["params_schema"].get("properties", {})) for e in catalog()}
    for type_, names in expected.items():
        assert names <= by_type[type_], f"{type_} lacks {names - by_type[type_]}"
    assert by_type["Softmax"] and REGISTRY["Softmax"].Params().dim == -1  # type: ignore[attr-defined]
    assert REGISTRY["Concat"].Params().dim == -1  # type: ignore[attr-defined]
    assert REGISTRY["Flatten"].Params().start_dim == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", starter_names())
def test_starter_is_a_valid_graph_without_warnings(name: str) -> None:
    report = inspect_graph(load_starter(name))
    assert report["valid"], report["problems"]
    assert report["warnings"] == []
    assert all(entry["status"] == "ok" for entry in report["nodes"].values())
    load_graph(load_starter(name))


def test_there_are_six_starters() -> None:
    assert starter_names() == ["mlp", "cnn", "resnet", "transformer_classifier", "char_gpt",
                               "llama"]


def test_load_starter_gives_a_fresh_copy_each_time() -> None:
    first = load_starter("mlp")
    first["nodes"].clear()
    assert load_starter("mlp")["nodes"]


def test_unknown_starter_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="mlp"):
        load_starter("gpt5")


def test_importing_the_engine_loads_no_django_celery_or_channels() -> None:
    code = (
        "import sys, compute.engine\n"
        "from compute.engine import compile_graph, load_starter, inspect_graph\n"
        "compile_graph(load_starter('mlp')); inspect_graph(load_starter('char_gpt'))\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('django', 'celery', 'channels', 'rest_framework'))\n"
        "print(','.join(bad))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""
