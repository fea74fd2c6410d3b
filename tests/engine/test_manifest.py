"""Dataset manifests (compute/engine/manifest.py): every built-in dataset's is valid
Croissant, hashes the exact bytes it was read from, and its split counts add up."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from compute.engine.datasets import DATASETS, csv_dataset, make_dataset, text_dataset
from compute.engine.manifest import (
    CROISSANT,
    NOT_DECLARED,
    ManifestError,
    builtin_manifest,
    dataset_manifest,
    tensor_sha256,
    validate_manifest,
    write_croissant,
)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_builtin_manifest_is_valid_croissant(name: str) -> None:
    dataset = make_dataset(name)
    doc = builtin_manifest(name, dataset)
    assert validate_manifest(doc) == []
    assert doc["conformsTo"] == CROISSANT
    assert doc["license"] and doc["license"] != NOT_DECLARED
    assert doc["shipyard:source"] and doc["shipyard:source"] != NOT_DECLARED
    split = doc["shipyard:split"]
    assert split["train"] == len(dataset.x_train) and split["validation"] == len(dataset.x_val)
    assert split["train"] + split["validation"] == doc["shipyard:samples"]
    assert doc["shipyard:preprocessing"], "every dataset says how it became tensors"
    assert len(doc["shipyard:sha256"]) == 64


@pytest.mark.parametrize("name", ["shakespeare", "digits", "moons"])
def test_mlcroissant_writes_the_manifest_a_run_records_whole(name: str) -> None:
    """What mlcroissant writes back keeps every field, Shipyard's `shipyard:` ones too."""
    doc = builtin_manifest(name, make_dataset(name))
    assert write_croissant(doc) == doc


def test_mlcroissant_refuses_a_manifest_that_is_not_croissant() -> None:
    doc = builtin_manifest("moons", make_dataset("moons"))
    doc["distribution"] = [{"@type": "cr:FileObject", "@id": "file", "name": "file"}]
    with pytest.raises(ManifestError) as refused:
        write_croissant(doc)
    assert "contentUrl" in str(refused.value) or "encodingFormat" in str(refused.value)


def test_shakespeare_hash_is_of_the_shipped_file() -> None:
    raw = resources.files("compute.engine").joinpath("data/shakespeare.txt").read_bytes()
    doc = builtin_manifest("shakespeare", make_dataset("shakespeare"))
    assert doc["shipyard:sha256"] == hashlib.sha256(raw).hexdigest()
    assert doc["distribution"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert doc["shipyard:sizeBytes"] == len(raw) == 1_115_394
    assert doc["shipyard:characters"] == len(raw.decode("utf-8"))
    assert doc["license"].startswith("Public domain")
    assert doc["url"].startswith("https://github.com/karpathy/char-rnn")
    # The characters the model sees: 65 distinct in tiny Shakespeare.
    assert len(doc["shipyard:vocabulary"]) == 65 and "\n" in doc["shipyard:vocabulary"]
    assert "by position" in doc["shipyard:split"]["rule"]


def test_digits_hash_is_of_scikit_learns_file_and_lists_its_classes() -> None:
    raw = resources.files("sklearn.datasets.data").joinpath("digits.csv.gz").read_bytes()
    doc = builtin_manifest("digits", make_dataset("digits"))
    assert doc["shipyard:sha256"] == hashlib.sha256(raw).hexdigest()
    assert doc["license"] == "CC-BY-4.0"
    assert doc["shipyard:vocabulary"] == [str(d) for d in range(10)]
    assert any("scaled to 0..1" in step for step in doc["shipyard:preprocessing"])


def test_a_generated_dataset_hashes_its_tensors_and_says_so() -> None:
    one, again = make_dataset("moons", seed=3), make_dataset("moons", seed=3)
    other = make_dataset("moons", seed=4)
    doc = builtin_manifest("moons", one, seed=3)
    assert doc["shipyard:sha256"] == tensor_sha256(again)
    assert doc["shipyard:sha256"] != tensor_sha256(other)
    assert "tensors" in doc["shipyard:sha256Of"]
    assert "distribution" not in doc  # no file was read
    assert "seed 3" in doc["shipyard:split"]["rule"]
    assert doc["license"] == "Apache-2.0"


def test_an_upload_without_source_or_licence_is_not_declared() -> None:
    raw = ("x1,x2,label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(30))
           ).encode()
    data = csv_dataset(raw.decode(), name="mine.csv")
    doc = dataset_manifest(data, name="mine.csv", description="my rows", content=raw,
                           file_name="mine.csv", encoding_format="text/csv")
    assert validate_manifest(doc) == []
    assert doc["license"] == NOT_DECLARED and doc["shipyard:source"] == NOT_DECLARED
    assert doc["shipyard:sha256"] == hashlib.sha256(raw).hexdigest()
    assert doc["shipyard:vocabulary"] == ["a", "b"]
    assert doc["shipyard:samples"] == 30


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>.csv", "my file (1).csv",
                                  "données é.csv", ""])
def test_any_upload_name_gives_a_valid_manifest(name: str) -> None:
    raw = ("x1,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20))).encode()
    doc = dataset_manifest(csv_dataset(raw.decode(), name="x"), name=name, description="d",
                           content=raw, file_name=name, encoding_format="text/csv")
    assert validate_manifest(doc) == []
    assert doc["name"] == (name or "dataset")


def test_a_source_that_is_no_web_address_is_cited_not_linked() -> None:
    raw = ("The sea was calm that morning. " * 40).encode()
    data = text_dataset(raw.decode(), name="sea.txt")
    doc = dataset_manifest(data, name="sea.txt", description="d", content=raw,
                           file_name="sea.txt", source="javascript:alert(1)",
                           licence="CC0-1.0")
    assert "url" not in doc and doc["citeAs"] == "javascript:alert(1)"
    assert validate_manifest(doc) == []
    linked = dataset_manifest(data, name="sea.txt", description="d", content=raw,
                              file_name="sea.txt", source="https://example.org/sea")
    assert linked["url"] == "https://example.org/sea"


def test_validation_reports_a_broken_manifest() -> None:
    doc = builtin_manifest("harbour", make_dataset("harbour"))
    doc["distribution"][0]["sha256"] = 5
    problems = validate_manifest(doc)
    assert any("`sha256` should have type" in p for p in problems), problems
    assert not any(p.startswith("Found the following") for p in problems)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_huge_column_name_does_not_make_a_huge_manifest(task: str) -> None:
    # A header cell may be as long as Python's csv reads (128 KiB); the manifest goes into
    # the run's row and every export, so the names it repeats are cut.
    target = "t" * 100_000
    raw = (f"x,{target}\n" + "".join(f"{i},{i % 2}\n" for i in range(20))).encode()
    data = csv_dataset(raw.decode(), name="wide.csv", task=task)  # type: ignore[arg-type]
    doc = dataset_manifest(data, name="wide.csv", description="d", content=raw,
                           file_name="wide.csv", encoding_format="text/csv")
    assert max(len(step) for step in doc["shipyard:preprocessing"]) < 300
    assert "'" + "t" * 60 + "'" in doc["shipyard:preprocessing"][-1]
