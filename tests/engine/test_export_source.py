"""The standalone PyTorch file is code that people run: nothing a document holds may become
code in it. User text (names, descriptions, meta, file names) reaches the file only as the
value of a string literal or inside a comment; ids reach it as names, and only checked ones.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import tokenize
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from compute.engine import GraphError, compile_graph, compiled_info, example_inputs, load_graph
from compute.engine.build import class_name
from compute.engine.export import pytorch_source
from compute.engine.graph import ID_PATTERN, RESERVED_IDS

from .graphs import document, input_node, nested, node

INJECTION = 'tiny""";__import__("builtins").print("INJECTED");"""'

# Pieces that break out of literals and comments, or that editors and Python's tokenizer
# treat as line ends, mixed into random text below.
NASTY = ['"""', "'''", '"', "'", "\\", "\\n", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c",
         "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\ud800", "\udfff", "\u202e",
         "\ufeff", "#", "{", "}", ");", "__import__('os').system('id')", INJECTION,
         "\\N{BULLET}", "\\x41", "%s", "{0}"]

ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.lists(st.one_of(st.sampled_from(NASTY), st.text(ANY_CHARACTER, max_size=6)),
                max_size=8).map("".join)

BENIGN_IDS = ("x", "lin", "attn", "blocks", "bx", "norm", "act", "by", "y", "z")


def sample_graph(ids: dict[str, str] | None = None, **members: Any) -> dict[str, Any]:
    """Every kind of line the writer makes: a layer class (attention, which needs `math` and
    `F`), string parameters, a Repeat body, an Input comment, two Outputs (a dict)."""
    i = {name: name for name in BENIGN_IDS} | (ids or {})
    body = nested(
        [{"id": i["bx"], "type": "Input"}, node(i["norm"], "LayerNorm"),
         node(i["act"], "GELU", approximate="tanh"), node(i["by"], "Output")],
        [(i["bx"], i["norm"]), (i["norm"], i["act"]), (i["act"], i["by"])])
    return document(
        [input_node(i["x"], [4, 8]), node(i["lin"], "Linear", out_features=8),
         node(i["attn"], "MultiHeadAttention", num_heads=2, causal=True),
         {"id": i["blocks"], "type": "Repeat", "params": {"times": 2}, "graph": body},
         node(i["y"], "Output"), node(i["z"], "Output")],
        [(i["x"], i["lin"]), (i["lin"], i["attn"]), (i["attn"], i["blocks"]),
         (i["blocks"], i["y"]), (i["lin"], i["z"])],
        **members)


def source_of(doc: dict[str, Any], weights_name: str = "weights.pt") -> str:
    return pytorch_source(compiled_info(compile_graph(doc)), weights_name)


def shape_of(source: str) -> str:
    """The module's AST with every string constant and every name blanked: what is left is
    its statements and expressions, which no text or id may change."""
    tree = ast.parse(source)
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            n.value = "…"
        for name in ("id", "attr", "arg", "name", "asname"):
            if isinstance(getattr(n, name, None), str):
                setattr(n, name, "…")
    return ast.dump(tree)


def docstrings(source: str) -> tuple[str | None, str | None]:
    """The module's docstring and the model class's (the last class of the file)."""
    tree = ast.parse(source)
    *_, model = (c for c in tree.body if isinstance(c, ast.ClassDef))
    return ast.get_docstring(tree, clean=False), ast.get_docstring(model, clean=False)


def run_file(source: str, path: Path) -> tuple[dict[str, Any], str]:
    """Execute the file as a module; its namespace and what it printed."""
    path.write_text(source, encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "shipyard_generated"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace, printed.getvalue()


BENIGN_SHAPE = shape_of(source_of(sample_graph(name="benign")))
UNNAMED_SHAPE = shape_of(source_of(sample_graph()))


def test_the_injection_name_stays_inside_a_string_and_running_the_file_prints_nothing(
        tmp_path: Path) -> None:
    doc = sample_graph(name=INJECTION)
    source = source_of(doc)
    namespace, printed = run_file(source, tmp_path / "model.py")
    assert printed == ""
    assert shape_of(source) == BENIGN_SHAPE
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    holding = [t for t in tokens if "__import__" in t.string]
    assert [t.type for t in holding] == [tokenize.STRING, tokenize.STRING]  # the two docstrings
    module_doc, class_doc = docstrings(source)
    assert module_doc is not None and module_doc.startswith(f"{INJECTION}: generated by Shipyard")
    assert class_doc == INJECTION
    model = namespace[class_name(INJECTION, "Model")]()
    compiled = compile_graph(doc)
    model.load_state_dict(compiled.state_dict())
    (x,) = example_inputs(load_graph(doc))
    assert torch.equal(model.eval()(x)["y"], compiled.eval()(x)["y"])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name=TEXT, description=TEXT, meta=st.dictionaries(TEXT, TEXT, max_size=3),
       weights_name=TEXT)
@example(name=INJECTION, description=INJECTION, meta={INJECTION: INJECTION},
         weights_name='w.pt", weights_only=False)); __import__("os").system("id"); ("')
@example(name="a\u2028b\x85c\x0bd\re\\", description="", meta={}, weights_name="\\")
@example(name="\ud800", description="\udfff", meta={}, weights_name="\ud800.pt")
@example(name='"', description="", meta={}, weights_name='"')
def test_no_text_changes_the_generated_module_beyond_its_string_literals(
        name: str, description: str, meta: dict[str, str], weights_name: str) -> None:
    doc = sample_graph(name=name, description=description, meta=meta)
    source = source_of(doc, weights_name)
    assert shape_of(source) == (BENIGN_SHAPE if name else UNNAMED_SHAPE)
    module_doc, class_doc = docstrings(source)
    assert module_doc is not None
    assert module_doc.startswith(f"{name or 'model'}: generated by Shipyard")
    assert f'torch.load("{weights_name}", weights_only=True)' in module_doc
    assert class_doc == (name or None)
    # One line per line: no character that any reader takes for a line end is left raw.
    assert source.splitlines() == source.split("\n")[:-1]
    assert all(ch.isprintable() for ch in source.replace("\n", ""))
    source.encode("utf-8")  # a lone surrogate is written as an escape, so the file saves


VALID_IDS = st.from_regex(ID_PATTERN, fullmatch=True).filter(lambda i: i not in RESERVED_IDS)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(ids=st.lists(VALID_IDS, min_size=len(BENIGN_IDS), max_size=len(BENIGN_IDS),
                    unique=True))
@example(ids=["F", "nn", "torch", "f", "math", "range", "super", "_", "Model", "print"])
@example(ids=["x", "Linear", "MultiHeadAttention", "none", "y2", "z", "b", "c", "d", "e"])
def test_any_valid_ids_give_the_same_module_computing_the_same_thing(
        ids: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = sample_graph(dict(zip(BENIGN_IDS, ids, strict=True)), name="benign")
    source = source_of(doc)
    assert shape_of(source) == BENIGN_SHAPE
    namespace, printed = run_file(source, tmp_path_factory.mktemp("ids") / "model.py")
    assert printed == ""
    compiled = compile_graph(doc)
    model = namespace[class_name("benign", "Model")]()
    model.load_state_dict(compiled.state_dict())
    (x,) = example_inputs(load_graph(doc))
    ours, theirs = model.eval()(x), compiled.eval()(x)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("bad_id", [
    "head\n",  # `$` matches before a final newline; the id must not end in one
    "ｘ",  # fullwidth x: NFKC-normalised by Python to `x`, another node's name
    "ﬁ",  # the ligature: `fi` to Python
    "é",
    "x\u2028",
])
def test_ids_that_python_would_read_as_another_name_or_a_line_break_are_refused(
        bad_id: str) -> None:
    doc = sample_graph({"lin": bad_id})
    with pytest.raises(GraphError) as caught:
        load_graph(doc)
    assert f"has id {bad_id!r}: an id starts with a letter or _" in str(caught.value)
    assert "in ASCII" in str(caught.value)


@pytest.mark.parametrize(("title", "expected"), [
    ("tiny-gpt", "TinyGpt"),
    ("none", "ModelNone"),
    ("true", "ModelTrue"),
    ("ｍｏｄｅｌ", "Model"),
    (INJECTION, "TinyImportBuiltinsPrintINJECTED"),
    ("3 layers", "Model3Layers"),
])
def test_class_names_are_ascii_identifiers_that_are_not_keywords(title: str,
                                                                 expected: str) -> None:
    assert class_name(title, "Model") == expected


def test_a_graph_or_repeat_named_like_a_name_the_file_uses_gets_another_class_name(
        tmp_path: Path) -> None:
    # A body class `F` and a model class `MultiHeadAttention`, both used by the layer's code.
    doc = sample_graph({"blocks": "f"}, name="multi-head attention")
    source = source_of(doc)
    classes = [c.name for c in ast.parse(source).body if isinstance(c, ast.ClassDef)]
    assert classes == ["MultiHeadAttention", "F2", "MultiHeadAttention2"]
    namespace, _ = run_file(source, tmp_path / "model.py")
    model = namespace["MultiHeadAttention2"]()
    model.load_state_dict(compile_graph(doc).state_dict())
    model(*example_inputs(load_graph(doc)))  # attention still finds torch's `F`


def test_a_recipe_argument_without_a_literal_is_refused_rather_than_written() -> None:
    graph = copy.deepcopy(sample_graph())
    info = compiled_info(compile_graph(graph))
    ctor = info.analysis.nodes["lin"].ctor
    assert ctor is not None
    assert ctor.source() == "nn.Linear(8, 8, bias=True)"
    bad = type(ctor)(ctor.cls, (float("inf"),))
    with pytest.raises(ValueError, match="has no Python literal"):
        bad.source()
    odd = type(ctor)(ctor.cls, (torch.float32,))
    with pytest.raises(ValueError, match="has no Python literal"):
        odd.source()
