"""Drawing in the editor: a model from the palette, shapes and errors as you edit, and
undo/redo."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import (
    HAS_ERROR,
    PROBLEMS,
    VALID,
    block,
    button,
    connect,
    document,
    drop_block,
    edge_label,
    find_node,
    graph_core,
    node,
    open_editor,
    quick_add,
    save,
    saved_graph_id,
    select,
    set_param,
    wait_ready,
    wait_until,
)
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def set_input_shape(page: Page, node_id: str, shape: list[int]) -> None:
    """The shape field of an Input: typed as "64" (or "1, 8, 8"); if the field wants the
    list written as JSON, "[64]"."""
    select(page, node_id)
    set_param(page, "shape", ", ".join(map(str, shape)))
    if find_node(document(page), node_id).get("params", {}).get("shape") != shape:
        set_param(page, "shape", json.dumps(shape))
    got = find_node(document(page), node_id).get("params", {}).get("shape")
    assert got == shape, f"the shape field of {node_id} gave {got!r} for {shape}"


def test_build_an_mlp_from_the_palette(user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new")
    artifacts.snap(page, "blank")

    x = drop_block(page, "Input", 120, 220)
    linear = drop_block(page, "Linear", 420, 220)
    y = drop_block(page, "Output", 720, 220)
    assert linear.startswith("linear"), linear
    set_input_shape(page, x, [64])
    select(page, linear)
    set_param(page, "out_features", 10)
    connect(page, x, linear)
    connect(page, linear, y)

    expect(edge_label(page, x, linear)).to_contain_text("[B, 64]")
    expect(edge_label(page, linear, y)).to_contain_text("[B, 10]")
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    expect(page.get_by_test_id("total-params")).to_contain_text("650")  # 64·10 + 10
    built = document(page)
    assert find_node(built, linear)["params"]["out_features"] == 10
    artifacts.snap(page, "built")

    save(page, "an MLP drawn from the palette")
    graph_id = saved_graph_id(page)
    artifacts.snap(page, "saved")

    page.reload()
    wait_ready(page)
    assert page.url.endswith(f"/g/{graph_id}")
    assert graph_core(document(page)) == graph_core(built)
    expect(edge_label(page, linear, y)).to_contain_text("[B, 10]")
    expect(page.get_by_test_id("save-state")).to_contain_text("saved")
    expect(page.get_by_test_id("save-state")).not_to_contain_text("unsaved")
    artifacts.snap(page, "reloaded")


def test_gpt_starter_shapes_follow_edits_and_errors_show(user_page: Page,
                                                        artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=char_gpt")
    expect(edge_label(page, "tokens", "wte")).to_contain_text("[B, 64]")
    expect(edge_label(page, "wte", "wpe")).to_contain_text("[B, 64, 128]")
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    artifacts.snap(page, "starter")

    # A wider embedding: every shape after it follows ...
    select(page, "wte")
    set_param(page, "embedding_dim", 256)
    expect(edge_label(page, "wte", "wpe")).to_contain_text("[B, 64, 256]")
    expect(edge_label(page, "wpe", "drop")).to_contain_text("[B, 64, 256]")
    # ... up to the transformer blocks, whose MLP still projects back to 128: their
    # residual Add no longer matches.
    expect(page.get_by_test_id("validity")).to_have_text(PROBLEMS)
    expect(page.locator('[data-testid="block-node"].has-error').first).to_be_visible()
    artifacts.snap(page, "wider-embedding")

    # Back to 128, and a mismatch on one node: 32 learned positions for 64 tokens.
    select(page, "wte")
    set_param(page, "embedding_dim", 128)
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    select(page, "wpe")
    set_param(page, "max_len", 32)
    expect(block(page, "wpe")).to_have_class(HAS_ERROR)
    error = node(page, "wpe").get_by_test_id("node-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("max_len")
    expect(block(page, "wte")).not_to_have_class(HAS_ERROR)
    expect(page.get_by_test_id("validity")).to_have_text(PROBLEMS)
    artifacts.snap(page, "positions-mismatch")


def test_undo_and_redo_give_back_the_exact_graph(user_page: Page,
                                                 artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new")
    states: list[dict[str, Any]] = [document(page)]

    def done(what: str) -> None:
        doc = document(page)
        assert doc != states[-1], f"{what} changed nothing in the document"
        states.append(doc)

    x = drop_block(page, "Input", 120, 200)
    done("dropping an Input")
    set_input_shape(page, x, [16])
    done("setting the Input's shape")
    linear = quick_add(page, "Linear", 420, 200)
    done("quick-adding a Linear")
    connect(page, x, linear)
    done("wiring Input -> Linear")
    select(page, linear)
    set_param(page, "out_features", 32)
    done("setting out_features")
    relu = drop_block(page, "ReLU", 420, 380)
    done("dropping a ReLU")
    connect(page, linear, relu)
    done("wiring Linear -> ReLU")
    select(page, relu)
    page.keyboard.press("Delete")
    wait_until(lambda: relu not in [n["id"] for n in document(page)["nodes"]],
               "the ReLU to be deleted")
    done("deleting the ReLU")
    artifacts.snap(page, "edited")

    def walk(name: str) -> list[dict[str, Any]]:
        """Press Undo (or Redo) until it is disabled; the distinct documents on the way."""
        seen: list[dict[str, Any]] = []
        control = button(page, name)
        for _ in range(60):
            if not control.is_enabled():
                break
            control.click()
            doc = document(page)
            if not seen or doc != seen[-1]:
                seen.append(doc)
        else:
            raise AssertionError(f"{name} was still enabled after 60 presses")
        return seen

    def distinct(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for i, d in enumerate(docs) if i == 0 or d != docs[i - 1]]

    undone = walk("Undo")
    assert document(page) == states[0], "undoing everything did not give the blank graph"
    assert undone == distinct(states[::-1])[1:], "Undo did not retrace the edits in order"
    artifacts.snap(page, "undone")

    redone = walk("Redo")
    assert document(page) == states[-1], "redoing everything did not give the edited graph"
    assert redone == distinct(states)[1:], "Redo did not replay the edits in order"
    expect(node(page, linear)).to_be_visible()
    expect(node(page, relu)).to_have_count(0)
    artifacts.snap(page, "redone")
