"""A run's dataset manifest: what data trained the model, in the MLCommons Croissant format
(JSON-LD, Croissant 1.0), like the references of a paper.

Croissant's own fields say what it has words for: `name`, `description`, `url` (a source
that is a web address), `citeAs` (any other source or a citation), `license`, and the file
read as a `cr:FileObject` in `distribution` (`sha256`, `contentSize`, `encodingFormat`)
with a record set of its fields. Shipyard's fields (prefix `shipyard:`) say the rest: the
task, how many samples (and characters), the vocabulary, the SHA-256 of the exact bytes
used and what they are (`shipyard:sha256Of`: a file's bytes, or for a generated dataset
its tensors' bytes), the split rule with the counts on each side, and every
preprocessing step in order.

`builtin_manifest` describes a built-in dataset (its registry entry carries its source and
licence); `dataset_manifest` any `Dataset` with the bytes it was read from (an upload).
`write_croissant` has `mlcroissant` read a manifest (checking it) and write it out, as a run
records it; `validate_manifest` lists every problem it finds: an empty list is a clean one.
"""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from .datasets import DATASETS, Dataset, DatasetError, split_rule

CROISSANT = "http://mlcommons.org/croissant/1.0"
NAMESPACE = "https://shipyard.dev/ns/croissant#"  # Shipyard's fields (`shipyard:`)
NOT_DECLARED = "not declared"
VERSION = "1.0.0"
MAX_LABEL = 100  # characters of one class name the manifest keeps (a CSV label is free text)

# The Croissant 1.0 JSON-LD context (mlcroissant's own), and Shipyard's prefix.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "shipyard": NAMESPACE,
}

_URL = re.compile(r"https?://[^\s<>\"']+\Z", re.IGNORECASE)


def is_url(text: str) -> bool:
    """A web address alone (http or https), as `url` takes it."""
    return bool(_URL.match(text.strip()))


def tensor_sha256(dataset: Dataset) -> str:
    """SHA-256 over the raw bytes of x_train, y_train, x_val, y_val, in that order (CPU,
    contiguous, native byte order): a generated dataset's exact data."""
    digest = hashlib.sha256()
    for t in (dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val):
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _tensor_bytes(dataset: Dataset) -> int:
    return sum(t.numel() * t.element_size()
               for t in (dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val))


def _text_vocabulary(content: bytes) -> list[str]:
    """The characters the model sees, as `load_upload` and `text_dataset` read the bytes."""
    text = content.decode("utf-8", errors="replace")
    return sorted({c if ord(c) < 128 else "?" for c in text})


def _field(name: str, data_type: str, description: str, source: dict[str, Any]
           ) -> dict[str, Any]:
    return {"@type": "cr:Field", "@id": f"records/{name}", "name": name,
            "description": description, "dataType": data_type, "source": source}


def dataset_manifest(dataset: Dataset, *, name: str, description: str, source: str = "",
                     licence: str = "", citation: str = "", content: bytes | None = None,
                     file_name: str = "", encoding_format: str = "text/plain",
                     seed: int = 0, options: dict[str, Any] | None = None,
                     read_steps: tuple[str, ...] = (), date: str | None = None
                     ) -> dict[str, Any]:
    """The Croissant manifest of `dataset`, made from `content` (the exact bytes of
    `file_name`; None for a generated dataset, whose tensors are hashed instead).
    `source` is a web address or words; an empty source or licence is "not declared".
    `read_steps` come before the dataset's own preprocessing (how the bytes were read).
    `date` (ISO, default today in UTC) is the manifest's `datePublished`: when the run
    read the data; `version` is 1.0.0, this manifest format's."""
    source, licence, citation = source.strip(), licence.strip(), citation.strip()
    name = name or "dataset"  # Croissant needs a name, and a file needs an address
    n_train, n_val = len(dataset.x_train), len(dataset.x_val)
    doc: dict[str, Any] = {
        "@context": dict(CONTEXT),
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT,
        "name": name,
        "description": description,
        "license": licence or NOT_DECLARED,
        "version": VERSION,
        "datePublished": date or datetime.now(UTC).date().isoformat(),
        "shipyard:source": source or NOT_DECLARED,
        "shipyard:task": dataset.info.task,
        "shipyard:samples": n_train + n_val,
        "shipyard:sample": {"x": dataset.spec.text(), "y": dataset.target_spec.text()},
    }
    if is_url(source):
        doc["url"] = source.strip()
    doc["citeAs"] = citation or source or f"{name} (source {NOT_DECLARED})"
    if options:
        doc["shipyard:options"] = dict(options)
    if content is not None:
        sha = hashlib.sha256(content).hexdigest()
        doc["contentSize"] = f"{len(content)} B"
        doc["distribution"] = [{
            "@type": "cr:FileObject", "@id": "file", "name": file_name or name,
            "contentUrl": file_name or name, "encodingFormat": encoding_format,
            "contentSize": f"{len(content)} B", "sha256": sha}]
        doc["shipyard:sizeBytes"] = len(content)
        doc["shipyard:sha256"] = sha
        doc["shipyard:sha256Of"] = f"the bytes of {file_name or name}, exactly as read"
        if dataset.text:
            text = content.decode("utf-8", errors="replace")
            doc["shipyard:characters"] = len(text)
            doc["recordSet"] = [{
                "@type": "cr:RecordSet", "@id": "records", "name": "records",
                "description": "The text, one record: the model reads its characters.",
                "field": [_field("text", "sc:Text", "the whole text", {
                    "fileObject": {"@id": "file"}, "extract": {"fileProperty": "content"}})]}]
    else:
        doc["shipyard:sizeBytes"] = _tensor_bytes(dataset)
        doc["shipyard:sha256"] = tensor_sha256(dataset)
        doc["shipyard:sha256Of"] = ("generated, so no file: the raw bytes of the tensors "
                                    "x_train, y_train, x_val, y_val in that order (CPU, "
                                    "contiguous, little-endian)")
    if dataset.text and content is not None:
        doc["shipyard:vocabulary"] = _text_vocabulary(content)
        doc["shipyard:vocabularyOf"] = "characters"
    elif dataset.labels is not None:
        doc["shipyard:vocabulary"] = [label[:MAX_LABEL] for label in dataset.labels]
        doc["shipyard:vocabularyOf"] = "classes"
    elif dataset.decode is not None and dataset.info.vocab:
        doc["shipyard:vocabulary"] = [dataset.decode([i]) for i in range(dataset.info.vocab)]
        doc["shipyard:vocabularyOf"] = "tokens"
    doc["shipyard:split"] = {"rule": dataset.split or split_rule(seed), "train": n_train,
                             "validation": n_val,
                             "unit": "windows" if dataset.text else "samples"}
    doc["shipyard:preprocessing"] = [*read_steps, *dataset.preprocessing]
    return doc


def builtin_content(name: str) -> tuple[str, bytes] | None:
    """The file a built-in dataset is read from and its exact bytes; None when generated."""
    entry = DATASETS[name]
    if entry.file:
        return entry.file, resources.files(__package__).joinpath(f"data/{entry.file}") \
            .read_bytes()
    if name == "digits":
        return "digits.csv.gz", resources.files("sklearn.datasets.data").joinpath(
            "digits.csv.gz").read_bytes()
    return None


def builtin_manifest(name: str, dataset: Dataset, *, seed: int = 0,
                     options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of built-in dataset `name` as `dataset` (made from it) has it."""
    entry = DATASETS.get(name)
    if entry is None:
        raise DatasetError(f"no dataset named {name!r}; datasets: {', '.join(DATASETS)}")
    found = builtin_content(name)
    file_name, content = found if found is not None else ("", None)
    read: tuple[str, ...] = ()
    if dataset.text:
        read = (f"read {file_name} as UTF-8",)
    return dataset_manifest(
        dataset, name=name, description=f"{entry.description}. {dataset.info.title}.",
        source=entry.source, licence=entry.licence, citation=entry.citation,
        content=content, file_name=file_name,
        encoding_format="application/gzip" if file_name.endswith(".gz") else "text/plain",
        seed=seed, options=options, read_steps=read)


class ManifestError(ValueError):
    """A manifest mlcroissant refuses; `problems` are its errors."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the dataset manifest is not valid Croissant: " + "; ".join(problems))
        self.problems = problems


def _read(doc: dict[str, Any]) -> tuple[Any, list[str], list[str]]:
    """`doc` read by mlcroissant into its model of Croissant: (the model or None, errors,
    warnings)."""
    import logging

    import mlcroissant as mlc

    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # mlcroissant logs what it also returns
    try:
        dataset = mlc.Dataset(jsonld=copy.deepcopy(doc))  # it writes into what it reads
    except mlc.ValidationError as exc:
        lines = [line.strip().removeprefix("-").strip() for line in str(exc).splitlines()]
        return None, [line for line in lines
                      if line and not line.startswith("Found the following")], []
    finally:
        absl.setLevel(level)
    issues = dataset.metadata.ctx.issues
    return dataset.metadata, sorted(issues.errors), sorted(issues.warnings)


def validate_manifest(doc: dict[str, Any]) -> list[str]:
    """Every problem `mlcroissant` finds in a manifest, errors and warnings; empty when
    it is clean."""
    _, errors, warnings = _read(doc)
    return [*errors, *warnings]


def write_croissant(doc: dict[str, Any]) -> dict[str, Any]:
    """A manifest as a run records it: `doc` read by mlcroissant (which checks it) and
    written back by it as JSON-LD (Shipyard's `shipyard:` fields travel through as they
    are). A ManifestError says what mlcroissant refused."""
    metadata, errors, _ = _read(doc)
    if metadata is None or errors:
        raise ManifestError(errors or ["mlcroissant could not read it"])
    written: dict[str, Any] = metadata.to_json()
    return written


__all__ = ["CROISSANT", "NAMESPACE", "NOT_DECLARED", "ManifestError", "builtin_content",
           "builtin_manifest", "dataset_manifest", "is_url", "tensor_sha256",
           "validate_manifest", "write_croissant"]
