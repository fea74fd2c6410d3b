"""Built-in datasets, uploads, and the check that a dataset fits a graph."""

from __future__ import annotations

import re

import pytest
import torch

from compute.engine import TensorSpec, compile_graph, load_graph, load_starter
from compute.engine import datasets as ds
from compute.engine.datasets import (
    DATASETS,
    IGNORE,
    KINDS,
    DatasetError,
    check_fit,
    csv_dataset,
    dataset_for,
    make_dataset,
    text_dataset,
)

from ..graphs import chain, node

TOKEN_TASKS = ["copy", "reverse", "sort", "modadd"]


def assert_gives_what_it_declares(data: ds.Dataset) -> None:
    info = data.info
    assert len(data.x_train) > len(data.x_val) > 0
    assert data.x_train.shape[1:] == data.x_val.shape[1:]
    assert data.y_train.shape[1:] == data.y_val.shape[1:]
    assert len(data.x_train) == len(data.y_train)
    assert info.name in DATASETS and info.task in DATASETS[info.name].tasks
    if info.task == "classification":
        assert data.y_train.dtype == torch.int64 and data.y_train.dim() == 1
        assert int(data.y_train.min()) >= 0 and int(data.y_train.max()) < info.classes
    if info.task == "next_token":
        assert data.y_train.dtype == torch.int64
        assert data.y_train.shape == data.x_train.shape
        asked = data.y_train[data.y_train != IGNORE]
        assert len(asked) > 0 and int(asked.min()) >= 0 and int(asked.max()) < info.vocab
    if data.spec.dtype == "int64":
        assert int(data.x_train.min()) >= 0 and int(data.x_train.max()) < info.vocab
    else:
        assert data.x_train.dtype == torch.float32


@pytest.mark.parametrize("name", list(DATASETS))
def test_each_dataset_gives_what_it_declares(name: str) -> None:
    data = make_dataset(name)
    assert_gives_what_it_declares(data)
    # its kind, which the editor reads (a text run shows samples), fits its tensors
    kind = DATASETS[name].kind
    assert kind in KINDS
    assert data.text == (kind == "text")
    assert (data.spec.dtype == "int64") == (kind in ("text", "tokens"))
    if kind == "points":
        assert data.spec.shape == (2,)
    if kind == "image":
        assert data.spec.numel >= 16  # pixels, however the model views them


@pytest.mark.parametrize("starter", ["char_gpt", "transformer_classifier"])
@pytest.mark.parametrize("name", TOKEN_TASKS)
def test_token_tasks_take_the_view_the_model_asks_for(starter: str, name: str) -> None:
    model = compile_graph(load_starter(starter))
    data = dataset_for(model, name)
    assert_gives_what_it_declares(data)
    want = "next_token" if starter == "char_gpt" else "classification"
    assert data.info.task == want
    assert check_fit(model, data) == []


def test_digits_take_the_view_the_model_wants() -> None:
    assert make_dataset("digits").spec == TensorSpec((64,), "float32")
    assert make_dataset("digits", TensorSpec((1, 8, 8))).spec == TensorSpec((1, 8, 8))
    data = dataset_for(load_starter("cnn"), "digits")
    assert data.spec == TensorSpec((1, 8, 8)) and float(data.x_train.max()) == 1.0


def test_a_dataset_is_the_same_for_the_same_seed() -> None:
    a, b = make_dataset("spirals", seed=3), make_dataset("spirals", seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, make_dataset("spirals", seed=4).x_train)


def test_copy_as_next_token_asks_for_the_answer_after_the_equals_sign() -> None:
    data = make_dataset("copy", TensorSpec((8,), "int64"), TensorSpec((8, 12)), length=3)
    x, y = data.x_train[0].tolist(), data.y_train[0].tolist()
    a, b, c = x[:3]
    sep, pad = 10, 11
    assert x == [a, b, c, sep, a, b, pad, pad]
    assert y == [IGNORE, IGNORE, IGNORE, a, b, c, IGNORE, IGNORE]
    assert data.decode is not None and data.decode([1, 2, 10, 1, 11]) == "12=1."


def test_reverse_and_sort_answers_and_their_class_view() -> None:
    seq = TensorSpec((8,), "int64")
    rev = make_dataset("reverse", seq, TensorSpec((8, 12)), length=3)
    x, y = rev.x_train[0].tolist(), rev.y_train[0].tolist()
    assert y[3:6] == x[:3][::-1]
    srt = make_dataset("sort", seq, TensorSpec((10,)), length=5)
    assert srt.info.task == "classification" and srt.info.classes == 10
    x = srt.x_train[0].tolist()
    assert x[5:] == [10, 11, 11] and int(srt.y_train[0]) == min(x[:5])


def test_modadd_gives_a_b_equals_and_the_sum_mod_p() -> None:
    data = make_dataset("modadd", TensorSpec((16,), "int64"), TensorSpec((7,)), modulus=7)
    assert data.info.classes == 7 and data.info.vocab == 9
    assert len(data.x_train) + len(data.x_val) == 49  # every pair once
    for x, y in zip(data.x_train.tolist(), data.y_train.tolist(), strict=True):
        assert x[2:] == [7] + [8] * 13 and y == (x[0] + x[1]) % 7
    pairs = {tuple(r[:2]) for r in data.x_train.tolist()}
    assert not pairs & {tuple(r[:2]) for r in data.x_val.tolist()}  # held-out pairs
    gpt = make_dataset("modadd", TensorSpec((64,), "int64"), TensorSpec((64, 128)))
    x, y = gpt.x_train[0].tolist(), gpt.y_train[0].tolist()
    assert gpt.info.task == "next_token" and x[2] == 10 and y[2] == (x[0] + x[1]) % 10
    assert sum(t != IGNORE for t in y) == 1


def test_problems_too_long_for_the_model_are_refused_in_words() -> None:
    with pytest.raises(DatasetError, match="copy with problems of 9 symbols needs 18 "
                       "positions, but the model reads 16 tokens"):
        make_dataset("copy", TensorSpec((16,), "int64"), TensorSpec((16, 12)), length=9)
    with pytest.raises(DatasetError, match="modulus must be a whole number from 2 to 1000"):
        make_dataset("modadd", modulus=1)
    with pytest.raises(DatasetError, match="digits has no option 'modulus'; it takes no opt"):
        make_dataset("digits", modulus=3)
    with pytest.raises(DatasetError, match="no dataset named 'mnist'; datasets: digits"):
        make_dataset("mnist")


def test_the_text_corpus_is_ascii_and_shifted_by_one() -> None:
    data = dataset_for(load_starter("char_gpt"), "harbour")
    assert data.spec == TensorSpec((64,), "int64") and data.info.vocab == 128
    assert torch.equal(data.x_train[0, 1:], data.y_train[0, :-1])
    assert data.decode is not None and data.decode(data.x_train[0].tolist()).isascii()
    assert len(data.x_train) > 1000  # windows start at every character


SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_shakespeare_is_the_published_text_held_out_at_its_end() -> None:
    """tiny Shakespeare as published (its SHA-256, ../shared/data/README.md): 65 ASCII
    characters; the validation windows are its last fifth, a later passage."""
    import hashlib
    from importlib import resources

    raw = resources.files("compute.engine").joinpath("data/shakespeare.txt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SHAKESPEARE_SHA256 and len(raw) == 1_115_394
    text = raw.decode("ascii")
    assert len(set(text)) == 65
    data = dataset_for(load_starter("char_gpt"), "shakespeare")
    assert data.decode is not None
    first_val = data.decode(data.x_val[0].tolist())
    assert text.find(first_val) >= int(len(text) * (1 - ds.VAL_FRACTION)) - 1
    assert len(data.x_train) > 40_000  # windows over the whole text, not a sample of it


def test_the_char_gpt_starter_learns_shakespeare() -> None:
    from compute.engine import STARTER_DATASETS

    assert STARTER_DATASETS["char_gpt"] == "shakespeare"
    assert DATASETS["shakespeare"].tasks == ("next_token",)


def test_uploaded_text_replaces_other_characters_and_needs_enough_of_them() -> None:
    data = text_dataset("café au lait. " * 100, ds.View(TensorSpec((16,), "int64")))
    assert data.decode is not None and "caf? au lait" in data.decode(data.x_train[0].tolist())
    with pytest.raises(DatasetError, match="text has 40 characters; a model reading 64 at a "
                       "time needs at least 330"):
        text_dataset("x" * 40)


def test_the_registry_says_what_each_dataset_gives() -> None:
    for entry in DATASETS.values():
        described = entry.to_dict()
        assert set(described) == {"name", "kind", "description", "tasks", "gives", "options",
                                  "source", "licence"}
        assert described["gives"] and set(described["tasks"]) <= set(ds.TASKS)
        assert described["kind"] in KINDS
    assert DATASETS["modadd"].to_dict()["options"] == {"modulus": "p (default 10)"}


# Does it fit?


def test_a_dataset_of_the_wrong_shape_says_what_it_gives_and_what_the_input_expects() -> None:
    doc = chain([3, 32, 32], node("flat", "Flatten"), node("fc", "Linear", out_features=10))
    assert check_fit(load_graph(doc), make_dataset("digits")) == [
        "digits gives float32 [B, 64], but Input 'x' expects float32 [B, 3, 32, 32]"]


def test_a_classifier_with_the_wrong_number_of_classes_is_told_both_numbers() -> None:
    assert check_fit(load_starter("mlp"), make_dataset("spirals")) == [
        "spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]",
        "the model outputs 10 classes, but spirals has 3: make the last Linear ('logits') "
        "3 wide (out_features 3)"]
    doc = chain([2], node("fc", "Linear", out_features=10))
    assert check_fit(doc, make_dataset("moons")) == [
        "the model outputs 10 classes, but moons has 2: make the last Linear ('fc') 2 wide "
        "(out_features 2)"]


def test_a_64_wide_classifier_for_the_10_digits_is_told_how_to_fix_it() -> None:
    doc = chain([64], node("hidden", "Linear", out_features=64), node("act", "ReLU"))
    assert check_fit(doc, make_dataset("digits")) == [
        "the model outputs 64 classes, but digits has 10: end the model with a Linear 10 "
        "wide (out_features 10)"]
    doc = chain([64], node("head", "Linear", out_features=64))
    assert check_fit(doc, make_dataset("digits")) == [
        "the model outputs 64 classes, but digits has 10: make the last Linear ('head') 10 "
        "wide (out_features 10)"]


def test_a_sequence_model_is_checked_for_positions_vocabulary_and_embedding_rows() -> None:
    doc = load_starter("char_gpt")
    doc["nodes"][1]["params"]["num_embeddings"] = 64  # wte
    head = next(n for n in doc["nodes"] if n["id"] == "head")
    head["params"]["out_features"] = 100
    assert check_fit(doc, make_dataset("harbour", TensorSpec((64,), "int64"))) == [
        "the model outputs scores for 100 tokens, but harbour uses a vocabulary of 128",
        "harbour uses token ids up to 127, but Embedding 'wte' has only 64 rows"]
    short = make_dataset("harbour", TensorSpec((32,), "int64"))
    assert check_fit(load_starter("char_gpt"), short) == [
        "harbour gives int64 [B, 32], but Input 'tokens' expects int64 [B, 64]",
        "the model outputs 64 positions, but harbour has targets for 32"]


def test_a_classifier_offered_a_next_token_dataset_is_told_the_output_it_needs() -> None:
    data = make_dataset("harbour", TensorSpec((16,), "int64"))
    assert check_fit(load_starter("transformer_classifier"), data) == [
        "harbour asks for a token at each of 16 positions, so the model should output "
        "[B, 16, 128], but Output 'y' gives [B, 10]",
        "harbour uses token ids up to 127, but Embedding 'embed' has only 32 rows"]


def test_a_fitting_pair_has_no_problems() -> None:
    for starter, name in [("mlp", "digits"), ("cnn", "digits"), ("resnet", "digits"),
                          ("char_gpt", "harbour"), ("char_gpt", "shakespeare"),
                          ("transformer_classifier", "copy")]:
        model = compile_graph(load_starter(starter))
        assert check_fit(model, dataset_for(model, name)) == [], (starter, name)


# CSV uploads.


def csv_text(rows: int = 40) -> str:
    lines = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'big' if i % 7 > 3 else 'small'}"
                             for i in range(rows)]
    return "\n".join(lines)


def test_a_csv_gives_numeric_features_and_classes_from_any_labels() -> None:
    data = csv_dataset(csv_text(), target="label")
    assert data.info.classes == 2 and data.spec == TensorSpec((2,), "float32")
    assert data.info.task == "classification" and data.y_train.dtype == torch.int64
    assert csv_dataset(csv_text()).info.classes == 2  # the last column by default


def test_a_csv_for_regression_gives_float_targets() -> None:
    text = "x,y\n" + "\n".join(f"{i},{2 * i + 1}" for i in range(30))
    data = csv_dataset(text, task="regression")
    assert data.info.targets == 1 and data.y_train.shape[1:] == (1,)
    assert data.y_train.dtype == torch.float32
    with pytest.raises(DatasetError, match="row 3, column 'y': 'lots' is not a number, and "
                       "regression predicts numbers"):
        csv_dataset("x,y\n1,2\n2,lots\n" + "3,4\n" * 10, task="regression")


@pytest.mark.parametrize(("text", "message"), [
    ("", "upload.csv is empty; it needs a header row"),
    ("1,2,3\n4,5,6\n", r"upload.csv's first row \(1,2,3...\) is numbers; the first row must "
                       "be a header"),
    ("a,,label\n1,2,x\n", "upload.csv's header has an empty name in column 2"),
    ("a,a,label\n1,2,x\n", "upload.csv's header names column 'a' twice"),
    ("label\nx\n", "upload.csv's header has 1 column; it needs at least one feature column"),
])
def test_a_bad_csv_header_is_refused_with_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        csv_dataset(text)


def test_a_bad_csv_value_is_refused_with_its_row_and_column() -> None:
    good = "1,2,yes\n" * 12
    with pytest.raises(DatasetError, match="row 4, column 'b': 'x' is not a number"):
        csv_dataset("a,b,label\n1,2,yes\n\n1,x,no\n" + good, target="label")
    with pytest.raises(DatasetError, match="row 2, column 'a': 'nan' is not a finite number"):
        csv_dataset("a,b,label\nnan,2,yes\n" + good)
    with pytest.raises(DatasetError, match="row 2 has 2 values; the header has 3"):
        csv_dataset("a,b,label\n1,2\n" + good)
    with pytest.raises(DatasetError, match="no column 'kind'; its columns: a, b, label"):
        csv_dataset("a,b,label\n" + good, target="kind")
    with pytest.raises(DatasetError, match="has 3 data rows; training needs at least 10"):
        csv_dataset("a,b,label\n" + "1,2,yes\n" * 3)


def test_a_csv_over_the_row_limit_is_refused_with_the_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds, "MAX_CSV_ROWS", 30)
    csv_dataset(csv_text(30))
    too_many = "upload.csv has more than 30 rows; the limit is 30"
    with pytest.raises(DatasetError, match=re.escape(too_many)):
        csv_dataset(csv_text(31))


def test_a_csv_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds, "MAX_UPLOAD_BYTES", 1024 * 1024)
    with pytest.raises(DatasetError, match=re.escape("upload.csv is larger than 1 MiB")):
        csv_dataset("a,label\n" + "1,x\n" * 300_000)
