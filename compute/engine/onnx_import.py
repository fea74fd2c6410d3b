"""Reading an ONNX file back as an editable graph, with its weights.

A map of this file: `import_onnx` is the one door. It checks the file in an order that
spends nothing on a hostile one: its size, then tensors stored outside the file (refused),
then `onnx.checker`, then the number of nodes. Mapping then walks the nodes that the
outputs depend on, in the file's (topological) order, and turns them into blocks:

- Files written by Shipyard (`export_onnx`, the dynamo exporter) record, for each node, the
  module it came from. Nodes of one module that has no single-op counterpart (attention,
  rotary positions, gated MLPs, mixtures of experts, GELU written as `Erf`, learned
  positions) are mapped together by `_MODULE_MAPPERS`, keyed by the module's class. The file
  records no module's arguments: a mapper reads them from the weights' shapes and from the
  constants the exporter folded (RoPE's cosine and sine tables, attention's mask or bias),
  and checks those constants by making them again from what it read.
- Every other node is mapped on its own by `_OP_MAPPERS`, keyed by ONNX op type; `MatMul`
  with a constant matrix takes the `Add` of a bias after it, making one `Linear`, and
  attention's parts (`MatMul` of two activations, `Transpose`, `Split`, `Slice`, scaling by
  a constant, the causal `Where`) map onto the parts blocks.

A mapper returns a `_Mapped` (one block, its inputs, its weights) or a short label saying
why it cannot, such as "Add with a constant operand". Every node that cannot be mapped is
counted under its label, and the file is refused with the whole count: nothing is imported
halfway. Adding an op is adding one function to a table. Shape arithmetic (`Shape` and what
is computed from it) is not data: a module's inputs and outputs leave it out.

Nothing in the file is executed, and nothing from it becomes code: node ids are built from
its names but cleaned to the graph format's id rule, and the document made here goes
through `load_graph` and a real build, whose state dict must take the file's weights
exactly, before it is returned.
"""

from __future__ import annotations

import keyword
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import GraphError, Problem
from .graph import FORMAT, ID_PATTERN, RESERVED_IDS
from .limits import OnnxLimits

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_CLASSES_KEY = "pkg.torch.onnx.class_hierarchy"
_MAX_META_CHARS = 8192  # a longer scope list is not from an exporter we know; ignore it
_QUOTED = re.compile(r"'([^']*)'")
_MAX_LISTED = 30  # operator names in a refusal; a hostile file may have thousands
_MAX_LABEL = 80
_SHAPE_OPS = frozenset({"Concat", "Slice", "Gather", "Unsqueeze", "Squeeze", "Cast"})


class OnnxImportError(GraphError):
    """An ONNX file that cannot be imported, with every reason found.

    `unmapped` counts the operators that have no block (label -> count), empty when the file
    was refused for another reason (size, external data, checker, limits).
    """

    def __init__(self, problems: list[Problem], unmapped: Mapping[str, int] | None = None):
        self.unmapped = dict(unmapped or {})
        super().__init__(problems)


@dataclass(frozen=True)
class ImportedModel:
    """An imported file: a graph document (shipyard.graph/v1) and the full state dict of the
    model it compiles to, holding the file's weights."""

    document: dict[str, Any]
    weights: dict[str, torch.Tensor]


def import_onnx(data: bytes, *, name: str | None = None,
                limits: OnnxLimits | None = None) -> ImportedModel:
    """Read an ONNX model (the bytes of a .onnx file) as a Shipyard graph and its weights.

    Raises `OnnxImportError` listing what stands in the way: a file over the size limit,
    tensors kept in external files, a model `onnx.checker` rejects, too many nodes, and every
    operator that maps onto no block, by name and count.
    """
    import onnx

    limits = limits or OnnxLimits.from_env()
    if len(data) > limits.max_onnx_bytes:
        raise OnnxImportError([Problem(
            f"the file is {len(data):,} bytes, over the limit of {limits.max_onnx_bytes:,} "
            "(SHIPYARD_MAX_ONNX_BYTES); import a smaller model")])
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
    except Exception:  # protobuf raises DecodeError, RuntimeError, ... on garbage
        raise OnnxImportError([Problem(
            "this is not an ONNX file: it does not read as an ONNX model (protobuf); "
            "export the model again with an ONNX exporter")]) from None
    external = sorted(_external_tensors(model))
    if external:
        shown = ", ".join(repr(n) for n in external[:5]) + (" ..." if len(external) > 5 else "")
        raise OnnxImportError([Problem(
            f"{len(external)} tensor(s) are stored in external data files ({shown}); "
            "Shipyard reads only self-contained files: save the model with its weights "
            "inside (onnx.save_model(model, path, save_as_external_data=False))")])
    count = _node_count(model.graph)
    if count > limits.max_onnx_nodes:
        raise OnnxImportError([Problem(
            f"the model has {count:,} nodes, over the limit of {limits.max_onnx_nodes:,} "
            "(SHIPYARD_MAX_ONNX_NODES)")])
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # ValidationError, and anything else it meets in a bad file
        text = str(exc).strip().splitlines()
        first = text[0][:300] if text else type(exc).__name__
        raise OnnxImportError([Problem(f"onnx.checker rejects the model: {first}")]) from None
    try:
        return _Importer(model, name, limits).run()
    except OnnxImportError:
        raise
    except Exception as exc:  # a file the checker let through that the mapping cannot read
        raise OnnxImportError([Problem(
            f"the model could not be read ({type(exc).__name__}); "
            "export it again with a current ONNX exporter")]) from None


def _external_tensors(model: Any) -> Iterator[str]:
    from onnx import TensorProto

    def tensors(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from tensors(attr.g)
                for sub in attr.graphs:
                    yield from tensors(sub)

    for t in tensors(model.graph):
        if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
            yield t.name or "(unnamed)"


def _node_count(graph: Any) -> int:
    total = 0
    for node in graph.node:
        total += 1
        for attr in node.attribute:
            if attr.HasField("g"):
                total += _node_count(attr.g)
            for sub in attr.graphs:
                total += _node_count(sub)
    return total


# What a mapper returns.


@dataclass
class _Mapped:
    type: str
    inputs: dict[str, str]  # port -> ONNX value name
    output: str  # ONNX value name
    params: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # state dict suffix -> array
    consumed: tuple[Any, ...] = ()  # nodes mapped with it, beside the one it starts from
    alias: bool = False  # Identity, Dropout: the output is the input, no block
    ports: dict[str, str] = field(default_factory=dict)  # a Split's: port -> ONNX value name


_Result = _Mapped | str  # a label saying why not, counted in the refusal


class _Group:
    """The nodes that one module of the exporting model became."""

    def __init__(self, scope: str, cls: str):
        self.scope = scope
        self.cls = cls
        self.nodes: list[Any] = []
        self.failed = False


def _str(value: Any) -> str:
    """A string field of the file as text: protobuf hands back bytes where a file's "string"
    is not valid UTF-8."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _meta_list(node: Any, key: str) -> list[str]:
    for prop in node.metadata_props:
        if _str(prop.key) == key and len(prop.value) <= _MAX_META_CHARS:
            return _QUOTED.findall(_str(prop.value))
    return []


class _Importer:
    def __init__(self, model: Any, name: str | None, limits: OnnxLimits):
        import onnx

        self.model = model
        self.graph = model.graph
        self.limits = limits
        # torch.onnx names every graph "main_graph": no title worth keeping.
        own = _str(self.graph.name)
        own = own if own not in ("", "main_graph") else "imported"
        self.name = name if name is not None else own
        self.consts: dict[str, Any] = {i.name: i for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                self.consts[node.output[0]] = node
        self.shapes: dict[str, list[int | None]] = {}
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            for vi in [*inferred.graph.value_info, *inferred.graph.input,
                       *inferred.graph.output]:
                self.shapes[vi.name] = _dims(vi)
        except Exception:  # ranks are hints for a few mappers; without them those refuse
            pass
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.graph.node:
            for out in node.output:
                if out:
                    self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(node)
        self.outputs = {o.name for o in self.graph.output}
        self.groups: dict[int, _Group] = {}
        self.shape_values: dict[str, bool] = {}
        self._group_nodes()
        self.used_ids: set[str] = set()

    # Constants.

    def is_const(self, value: str) -> bool:
        return value in self.consts

    def const(self, value: str) -> np.ndarray | None:
        """The value of an initializer or Constant output as an array, None if it is not one
        or does not read (a tensor declaring more data than it holds)."""
        from onnx import numpy_helper

        item = self.consts.get(value)
        if item is None:
            return None
        try:
            if hasattr(item, "dims"):
                if math.prod(item.dims) > self.limits.max_onnx_bytes:
                    return None
                return np.asarray(numpy_helper.to_array(item))
            for attr in item.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    if math.prod(attr.t.dims) > self.limits.max_onnx_bytes:
                        return None
                    return np.asarray(numpy_helper.to_array(attr.t))
                if attr.name == "value_float":
                    return np.asarray(attr.f, dtype=np.float32)
                if attr.name == "value_floats":
                    return np.asarray(list(attr.floats), dtype=np.float32)
                if attr.name == "value_int":
                    return np.asarray(attr.i, dtype=np.int64)
                if attr.name == "value_ints":
                    return np.asarray(list(attr.ints), dtype=np.int64)
        except Exception:
            return None
        return None

    def weight(self, value: str) -> np.ndarray | None:
        array = self.const(value)
        if array is None or array.dtype.kind != "f":
            return None
        return array.astype(np.float32)

    def ints(self, value: str) -> list[int] | None:
        array = self.const(value)
        if array is None or array.dtype.kind not in "iu" or array.ndim > 1:
            return None
        return [int(v) for v in array.reshape(-1)]

    def rank(self, value: str) -> int | None:
        dims = self.shapes.get(value)
        return None if dims is None else len(dims)

    def sole_consumer(self, value: str) -> Any | None:
        users = self.consumers.get(value, [])
        if len(users) == 1 and value not in self.outputs:
            return users[0]
        return None

    # Module groups.

    def _group_nodes(self) -> None:
        by_scope: dict[str, _Group] = {}
        for node in self.graph.node:
            scopes = _meta_list(node, _SCOPES_KEY)
            classes = _meta_list(node, _CLASSES_KEY)
            group = None
            if scopes and len(scopes) == len(classes):
                for scope, cls in zip(scopes, classes, strict=True):
                    if cls in _MODULE_MAPPERS and scope:
                        group = by_scope.setdefault(scope, _Group(scope, cls))
                        break
            elif not scopes and node.input:
                # Nodes the exporter's optimizer made (a Split) carry no metadata: they go
                # with the module that feeds them.
                feeder = self.producer.get(node.input[0])
                group = self.groups.get(id(feeder)) if feeder is not None else None
            if group is not None:
                group.nodes.append(node)
                self.groups[id(node)] = group

    def is_shape(self, value: str) -> bool:
        """Whether `value` is a shape computed from `Shape` ops (with constants), not data:
        the exporter shares one such computation between modules (the batch size that
        every grouped-query attention expands to), so it crosses their boundaries."""
        if value in self.shape_values:
            return self.shape_values[value]
        self.shape_values[value] = False  # a cycle in a hostile file is no shape
        node = self.producer.get(value)
        result = node is not None and (node.op_type == "Shape" or (
            node.op_type in _SHAPE_OPS and any(v and not self.is_const(v) for v in node.input)
            and all(self.is_shape(v) for v in node.input if v and not self.is_const(v))))
        self.shape_values[value] = result
        return result

    def shape_of_modules(self, node: Any) -> bool:
        """A `Shape` only modules read (the batch size, for a grouped-query attention's
        Expand): the exporter records it as the model's own, outside any module. It makes no
        block; a module that fails to map lists its own nodes."""
        if node.op_type != "Shape" or id(node) in self.groups or not node.output:
            return False
        users = self.consumers.get(node.output[0], [])
        return bool(users) and node.output[0] not in self.outputs and all(
            id(u) in self.groups for u in users)

    # Naming.

    def node_id(self, wanted: Any) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", _str(wanted)).strip("_") or "node"
        if not re.match(r"[A-Za-z_]", base):
            base = "n_" + base
        base = base[:56]
        if base in RESERVED_IDS:
            base += "_"
        candidate, n = base, 2
        while candidate in self.used_ids or candidate in RESERVED_IDS:
            candidate, n = f"{base}_{n}", n + 1
        assert ID_PATTERN.match(candidate), candidate
        self.used_ids.add(candidate)
        return candidate

    def wanted_name(self, node: Any, group: _Group | None) -> str:
        if group is not None:
            return group.scope
        scopes = _meta_list(node, _SCOPES_KEY)
        if len(scopes) >= 2 and scopes[-2]:
            return scopes[-2]
        return node.name or node.op_type.lower()

    # The walk.

    def live_nodes(self) -> list[Any]:
        needed = set(self.outputs)
        live: list[Any] = []
        for node in reversed(self.graph.node):
            if any(o in needed for o in node.output):
                live.append(node)
                needed.update(i for i in node.input if i)
        live.reverse()
        return live

    def run(self) -> ImportedModel:
        problems: list[Problem] = []
        unmapped: Counter[str] = Counter()
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, str]] = []
        weights: dict[str, torch.Tensor] = {}
        source: dict[str, str] = {}  # ONNX value name -> node id (or id.port) producing it
        tables: list[tuple[str, np.ndarray]] = []  # Embeddings so far: node id, table

        for inp in self.graph.input:
            if inp.name in self.consts:
                continue
            params, problem = self.input_params(inp)
            node_id = self.node_id(inp.name)
            if problem:
                problems.append(Problem(problem, node_id))
                continue
            nodes.append({"id": node_id, "type": "Input", "params": params})
            source[inp.name] = node_id

        done: set[int] = set()
        for node in self.live_nodes():
            if id(node) in done:
                continue
            if node.op_type == "Constant" and node.output and node.output[0] in self.consts:
                done.add(id(node))
                continue
            if self.shape_of_modules(node):
                done.add(id(node))
                continue
            group = self.groups.get(id(node))
            result: _Result | None = None
            if group is not None and not group.failed:
                mapper = _MODULE_MAPPERS[group.cls]
                result = mapper(self, group)
                if isinstance(result, _Mapped):
                    result.consumed = tuple(group.nodes)
                else:
                    group.failed = True  # its nodes are tried one by one instead
                    if " with " in result:  # a known block holding what it cannot read
                        unmapped[_printable(f"{result} ({_str(group.scope)})")] += 1
                    result = None
            if result is None:
                op_mapper = _OP_MAPPERS.get(node.op_type) if node.domain in ("", "ai.onnx") \
                    else None
                result = op_mapper(self, node) if op_mapper else _op_label(node)
                group = None
            done.add(id(node))
            if isinstance(result, str):
                unmapped[result] += 1
                continue
            done.update(id(n) for n in result.consumed)
            if result.alias:
                if result.inputs["in"] in source:
                    source[result.output] = source[result.inputs["in"]]
                continue
            node_id = self.node_id(self.wanted_name(node, group))
            if result.type == "Embedding":
                tables.append((node_id, result.weights["weight"]))
            elif result.type == "Linear" and "weight" in result.weights:
                _tie(result, tables)
            entry: dict[str, Any] = {"id": node_id, "type": result.type}
            if result.params:
                entry["params"] = result.params
            nodes.append(entry)
            for port, value in result.inputs.items():
                if value in source:
                    target = node_id if port == "in" else f"{node_id}.{port}"
                    edges.append({"from": source[value], "to": target})
            if result.output:
                source[result.output] = node_id
            for port, value in result.ports.items():
                source[value] = f"{node_id}.{port}"
            for suffix, array in result.weights.items():
                weights[f"{node_id}.{suffix}"] = torch.from_numpy(np.ascontiguousarray(array))

        if unmapped:
            ranked = sorted(unmapped.items(), key=lambda item: (-item[1], item[0]))
            listed = ", ".join(f"{n} × {label}" for label, n in ranked[:_MAX_LISTED])
            if len(ranked) > _MAX_LISTED:
                listed += f" and {len(ranked) - _MAX_LISTED} other operators"
                unmapped = Counter(dict(ranked[:_MAX_LISTED]))
            verb = "has" if sum(unmapped.values()) == 1 else "have"
            raise OnnxImportError([Problem(
                f"cannot import: {listed} {verb} no Shipyard block; nothing was imported")],
                unmapped)
        for out in self.graph.output:
            node_id = self.node_id(out.name)
            nodes.append({"id": node_id, "type": "Output"})
            if out.name in source:
                edges.append({"from": source[out.name], "to": node_id})
            else:
                problems.append(Problem(
                    "this output is a constant or comes from nothing the model computes; "
                    "Shipyard graphs compute every output from their inputs", node_id))
        if problems:
            raise OnnxImportError(problems)
        document = {"format": FORMAT, "name": self.name[:200], "nodes": nodes, "edges": edges,
                    "layout": _layout(nodes, edges)}
        description = "".join(ch for ch in _str(self.graph.doc_string)[:2000]
                              if ch.isprintable() or ch in "\n\t")
        if description.strip():
            document["description"] = description
        return ImportedModel(document, _checked_weights(document, weights))

    def input_params(self, inp: Any) -> tuple[dict[str, Any], str | None]:
        from onnx import TensorProto

        kind = inp.type.WhichOneof("value")
        if kind != "tensor_type":
            return {}, f"input of kind {kind}; Shipyard inputs are tensors"
        dtypes = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64"}
        elem = inp.type.tensor_type.elem_type
        if elem not in dtypes:
            name = TensorProto.DataType.Name(elem) if elem in TensorProto.DataType.values() \
                else str(elem)
            return {}, f"input of type {name}; Shipyard inputs are float32 or int64"
        dims = _dims(inp)
        if not dims:
            return {}, ("input without a batch dimension; Shipyard inputs have the batch "
                        "first, then fixed sizes")
        rest = dims[1:]
        if any(d is None or d < 1 for d in rest):
            return {}, (f"input of shape {_shape_text(dims)}: every size after the batch "
                        "must be a fixed number")
        params: dict[str, Any] = {"shape": [int(d) for d in rest if d is not None]}
        if dtypes[elem] != "float32":
            params["dtype"] = dtypes[elem]
        return params, None


def _tie(linear: _Mapped, tables: list[tuple[str, np.ndarray]]) -> None:
    """A Linear whose weight is exactly an Embedding's table is tied to it (`tie_to`), so
    that the table stays one parameter, counted and trained once. torch's exporter writes a
    tied head as the table and a transposed copy of it, so equal values, not a shared
    initializer, are what says so."""
    weight = linear.weights["weight"]
    for node_id, table in tables:
        if table.shape == weight.shape and np.array_equal(table, weight):
            linear.params["tie_to"] = node_id
            return


def _dims(value_info: Any) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [int(d.dim_value) if d.HasField("dim_value") else None for d in shape.dim]


def _shape_text(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _op_label(node: Any) -> str:
    """The operator's name as a refusal lists it (a custom domain's ops with their domain),
    printable and short whatever the file says."""
    op = _str(node.op_type)
    label = op if node.domain in ("", "ai.onnx") else f"{_str(node.domain)}.{op}"
    return _printable(label)


def _printable(label: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in label)[:_MAX_LABEL]


def _layout(nodes: list[dict[str, Any]], edges: list[dict[str, str]]) -> dict[str, list[int]]:
    """Columns by depth from the inputs, so that an imported graph opens readable."""
    depth: dict[str, int] = {}
    into: dict[str, list[str]] = {}
    for e in edges:
        into.setdefault(e["to"].split(".")[0], []).append(e["from"].split(".")[0])
    rows: Counter[int] = Counter()
    layout: dict[str, list[int]] = {}
    for n in nodes:  # in topological order
        d = 1 + max((depth.get(src, 0) for src in into.get(n["id"], [])), default=-1)
        depth[n["id"]] = d
        layout[n["id"]] = [220 * d, 120 * rows[d]]
        rows[d] += 1
    return layout


def _checked_weights(document: dict[str, Any],
                     weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Build the graph for real and load the file's weights into it: the document and the
    weights must agree exactly, or the import is refused."""
    from . import compile_graph

    try:
        module = compile_graph(document)
    except GraphError as exc:
        raise OnnxImportError(exc.problems) from None
    state = module.state_dict()
    problems = []
    for key, value in weights.items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            want = tuple(state[key].shape) if key in state else "nothing"
            problems.append(Problem(
                f"the file's weight {key} has shape {tuple(value.shape)} but the block "
                f"expects {want}", key.split(".")[0]))
            continue
        state[key] = value.to(state[key].dtype)
    if problems:
        raise OnnxImportError(problems)
    return {k: v.detach().clone() for k, v in state.items()}


# Op mappers: node -> block. One per ONNX op type, in `_OP_MAPPERS` below.


def _activation(block: str) -> Callable[[_Importer, Any], _Result]:
    def mapper(imp: _Importer, node: Any) -> _Result:
        if imp.is_const(node.input[0]):
            return f"{node.op_type} of a constant"
        return _Mapped(block, {"in": node.input[0]}, node.output[0])
    return mapper


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _alias(imp: _Importer, node: Any) -> _Result:
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        mode = imp.const(node.input[2])
        if mode is None or bool(mode.reshape(-1)[0]):
            return "Dropout in training mode"
    if len(node.output) > 1 and any(node.output[1:]) and any(
            o in imp.consumers or o in imp.outputs for o in node.output[1:] if o):
        return f"{node.op_type} with its mask used"
    return _Mapped("", {"in": node.input[0]}, node.output[0], alias=True)


def _gemm(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        return "Gemm with transA, alpha or beta"
    if imp.is_const(node.input[0]) or not imp.is_const(node.input[1]):
        return "Gemm of two activations"
    w = imp.weight(node.input[1])
    if w is None or w.ndim != 2:
        return "Gemm with an unreadable weight"
    w = w if a.get("transB", 0) else w.T
    weights = {"weight": w}
    if len(node.input) > 2 and node.input[2]:
        b = imp.weight(node.input[2])
        if b is None or b.reshape(-1).shape != (w.shape[0],):
            return "Gemm with a bias that is not one per output"
        weights["bias"] = b.reshape(-1)
    return _Mapped("Linear", {"in": node.input[0]}, node.output[0],
                   {"out_features": int(w.shape[0]), "bias": "bias" in weights}, weights)


def _matmul(imp: _Importer, node: Any) -> _Result:
    x, w_name = node.input[0], node.input[1]
    if not imp.is_const(x) and not imp.is_const(w_name):
        return _Mapped("MatMul", {"a": x, "b": w_name}, node.output[0])
    if imp.is_const(x):
        return "MatMul of a constant by an activation"
    w = imp.weight(w_name)
    if w is None or w.ndim != 2:
        return "MatMul by a constant that is not a matrix"
    weights = {"weight": w.T}
    output, consumed = node.output[0], []
    add = imp.sole_consumer(output)
    if add is not None and add.op_type == "Add":
        other = add.input[1] if add.input[0] == output else add.input[0]
        b = imp.weight(other) if imp.is_const(other) else None
        if b is not None and b.shape == (w.shape[1],):
            weights["bias"] = b
            output, consumed = add.output[0], [add]
    mapped = _Mapped("Linear", {"in": x}, output,
                     {"out_features": int(w.shape[1]), "bias": "bias" in weights}, weights)
    mapped.consumed = tuple(consumed)
    return mapped


def _binary(block: str) -> Callable[[_Importer, Any], _Result]:
    def mapper(imp: _Importer, node: Any) -> _Result:
        a, b = node.input[0], node.input[1]
        if block == "Multiply":
            scaled = _scale(imp, node, divide=False)
            if scaled is not None:
                return scaled
        if imp.is_const(a) or imp.is_const(b):
            return f"{node.op_type} with a constant operand"
        return _Mapped(block, {"a": a, "b": b}, node.output[0])
    return mapper


def _scale(imp: _Importer, node: Any, *, divide: bool) -> _Mapped | None:
    """Mul or Div of an activation by one constant number: a Scale by that factor (1/c for
    a Div: the same number within float rounding)."""
    x, c = node.input[0], node.input[1]
    if not divide and imp.is_const(x):
        x, c = c, x
    if imp.is_const(x):
        return None
    factor = _scalar(imp, c)
    if factor is None or not math.isfinite(factor) or (divide and factor == 0):
        return None
    dims = imp.shapes.get(x) or []
    if divide and "compute.engine.layers.Scale" in _meta_list(node, _CLASSES_KEY):
        # Shipyard's Scale by 1/√d, d the size of a dimension: which one, when sizes agree,
        # cannot be told; the last is what attention uses.
        for dim in range(len(dims) - 1, 0, -1):
            size = dims[dim]
            if size and np.float32(math.sqrt(size)) == np.float32(factor):
                return _Mapped("Scale", {"in": x}, node.output[0], {
                    "by": "inverse_sqrt_dim", "dim": -1 if dim == len(dims) - 1 else dim})
    factor = 1.0 / factor if divide else factor
    return _Mapped("Scale", {"in": x}, node.output[0], {"by": "constant", "factor": factor})


def _div(imp: _Importer, node: Any) -> _Result:
    gelu = _erf_gelu(imp, node)
    if isinstance(gelu, _Mapped):
        return gelu
    return _scale(imp, node, divide=True) or "Div other than by a constant number"


def _transpose(imp: _Importer, node: Any) -> _Result:
    perm = [int(p) for p in _attrs(node).get("perm", [])]
    if not perm or perm[0] != 0 or sorted(perm) != list(range(len(perm))):
        return "Transpose that moves the batch dimension"
    moved = [i for i, p in enumerate(perm) if p != i]
    if len(moved) == 2:
        return _Mapped("Transpose", {"in": node.input[0]}, node.output[0],
                       {"dim0": moved[0], "dim1": moved[1]})
    return _Mapped("Permute", {"in": node.input[0]}, node.output[0], {"dims": perm[1:]})


def _split(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    axis = int(a.get("axis", 0))
    rank = imp.rank(node.input[0])
    if rank is not None and axis < 0:
        axis += rank
    if axis == 0 or (rank is not None and not 0 < axis < rank):
        return "Split along the batch dimension"
    sizes: list[int] | None = None
    if len(node.input) > 1 and node.input[1]:
        sizes = imp.ints(node.input[1])
        if sizes is None or any(s < 1 for s in sizes):
            return "Split into computed sizes"
    elif "split" in a:
        sizes = [int(v) for v in a["split"]]
    parts = len(node.output)
    if not 2 <= parts <= 8 or (sizes is not None and len(sizes) != parts):
        return f"Split into {parts} parts"
    names = _port_names([re.sub(r"[^A-Za-z0-9_]", "_", _str(o)) for o in node.output])
    params: dict[str, Any] = {"dim": axis, "names": names}
    if sizes is not None and len(set(sizes)) > 1:
        params["sizes"] = sizes
    return _Mapped("Split", {"in": node.input[0]}, "", params,
                   ports=dict(zip(names, node.output, strict=True)))


def _port_names(values: list[str]) -> list[str]:
    """A Split's ports named after its outputs (q, k, v), without the prefix they share
    (an exporter's `split_0`, `split_1`); part0, part1, ... when those are no port names."""
    prefix = values[0]
    for value in values[1:]:
        while not value.startswith(prefix):
            prefix = prefix[:-1]
    names = [v[len(prefix):] for v in values]
    if len(set(names)) == len(names) and all(
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", n) and not keyword.iskeyword(n)
            for n in names):
        return names
    return [f"part{i}" for i in range(len(values))]


_FAR = 1 << 62  # an end past any dimension: exporters write INT64_MAX for "to the end"


def _slice(imp: _Importer, node: Any) -> _Result:
    values = [imp.ints(v) if v else None for v in node.input[1:5]]
    starts, ends = values[0], values[1] if len(values) > 1 else None
    if starts is None or ends is None or len(starts) != 1 or len(ends) != 1:
        return "Slice by computed or several ranges"
    axes = values[2] if len(values) > 2 and node.input[3] else [0]
    steps = values[3] if len(values) > 3 and node.input[4] else [1]
    if axes is None or steps is None or len(axes) != 1 or len(steps) != 1 or steps[0] < 1:
        return "Slice by computed or backward steps"
    axis, rank = axes[0], imp.rank(node.input[0])
    if axis < 0 and rank is not None:
        axis += rank
    if imp.is_const(node.input[0]) or imp.is_shape(node.input[0]):
        return "Slice of a constant or of a computed shape"
    if axis <= 0:
        return "Slice of the batch dimension"
    start, end = starts[0], ends[0]
    return _Mapped("Slice", {"in": node.input[0]}, node.output[0], {
        "dim": axis, "start": max(start, -_FAR), "end": None if end >= _FAR else end,
        "step": steps[0]})


def _where(imp: _Importer, node: Any) -> _Result:
    """Where(future, fill, scores), with `future` the (T, T) mask above the diagonal: how a
    causal mask is written (CausalMask's own export among them)."""
    cond = imp.const(node.input[0])
    fill = _scalar(imp, node.input[1])
    if cond is None or fill is None or imp.is_const(node.input[2]) or cond.ndim != 2 \
            or cond.shape[0] != cond.shape[1] or cond.dtype != np.bool_:
        return "Where other than a causal mask"
    if not np.array_equal(cond, np.triu(np.ones(cond.shape, dtype=bool), 1)):
        return "Where other than a causal mask"
    params = {} if fill == -math.inf else {"fill": fill}
    return _Mapped("CausalMask", {"in": node.input[2]}, node.output[0], params)


def _concat(imp: _Importer, node: Any) -> _Result:
    if len(node.input) != 2:
        return f"Concat of {len(node.input)} inputs"
    if any(imp.is_const(v) for v in node.input):
        return "Concat with a constant operand"
    return _Mapped("Concat", {"a": node.input[0], "b": node.input[1]}, node.output[0],
                   {"dim": int(_attrs(node)["axis"])})


def _softmax(imp: _Importer, node: Any) -> _Result:
    if imp.model.opset_import and _opset(imp) < 13:
        return "Softmax before opset 13 (flattening)"
    return _Mapped("Softmax", {"in": node.input[0]}, node.output[0],
                   {"dim": int(_attrs(node).get("axis", -1))})


def _opset(imp: _Importer) -> int:
    return max((o.version for o in imp.model.opset_import if o.domain in ("", "ai.onnx")),
               default=0)


def _flatten(imp: _Importer, node: Any) -> _Result:
    if int(_attrs(node).get("axis", 1)) != 1:
        return "Flatten on an axis other than 1"
    return _Mapped("Flatten", {"in": node.input[0]}, node.output[0])


def _reshape(imp: _Importer, node: Any) -> _Result:
    target = imp.ints(node.input[1]) if len(node.input) > 1 else None
    if target is None or not target:
        return "Reshape to a computed shape"
    keeps_batch = target[0] == -1 or (target[0] == 0 and not _attrs(node).get("allowzero", 0))
    rest = target[1:]
    if not keeps_batch or not rest or any(d == 0 or d < -1 for d in rest) or rest.count(-1) > 1\
            or (target[0] == -1 and -1 in rest):
        return "Reshape that does not keep the batch dimension"
    in_dims = imp.shapes.get(node.input[0])
    if (len(rest) == 1 and in_dims and len(in_dims) > 2 and all(d for d in in_dims[1:])
            and rest[0] in (-1, math.prod(d for d in in_dims[1:] if d))):
        return _Mapped("Flatten", {"in": node.input[0]}, node.output[0])
    return _Mapped("Reshape", {"in": node.input[0]}, node.output[0], {"shape": rest})


def _reduce_mean(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.ints(node.input[1])
    if not axes:
        return "ReduceMean over all dimensions"
    keep = int(a.get("keepdims", 1))
    rank = imp.rank(node.input[0])
    if rank is not None:
        axes = sorted(ax % rank for ax in axes)
    if keep and rank == 4 and axes == [2, 3]:
        return _Mapped("AdaptiveAvgPool2d", {"in": node.input[0]}, node.output[0],
                       {"output_size": 1})
    if not keep and len(axes) == 1 and axes[0] != 0:
        return _Mapped("Mean", {"in": node.input[0]}, node.output[0], {"dim": int(axes[0])})
    return "ReduceMean over several dimensions or keeping them"


def _global_pool(imp: _Importer, node: Any) -> _Result:
    if imp.rank(node.input[0]) not in (None, 4):
        return "GlobalAveragePool on other than images"
    return _Mapped("AdaptiveAvgPool2d", {"in": node.input[0]}, node.output[0],
                   {"output_size": 1})


def _conv(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    w = imp.weight(node.input[1]) if len(node.input) > 1 else None
    if imp.is_const(node.input[0]) or w is None or w.ndim not in (3, 4):
        return "Conv with an unreadable weight"
    k = w.ndim - 2
    if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1] * k)):
        return "Conv with groups or dilation"
    pads = list(a.get("pads", [0] * 2 * k))
    auto = a.get("auto_pad", b"NOTSET")
    if auto not in (b"NOTSET", b"VALID", "NOTSET", "VALID") or pads[:k] != pads[k:]:
        return "Conv with uneven padding"
    strides = list(a.get("strides", [1] * k))
    weights = {"weight": w}
    if len(node.input) > 2 and node.input[2]:
        b = imp.weight(node.input[2])
        if b is None or b.shape != (w.shape[0],):
            return "Conv with an unreadable bias"
        weights["bias"] = b
    params: dict[str, Any] = {"out_channels": int(w.shape[0]), "bias": "bias" in weights}
    if k == 1:
        params.update(kernel_size=int(w.shape[2]), stride=int(strides[0]), padding=int(pads[0]))
        return _Mapped("Conv1d", {"in": node.input[0]}, node.output[0], params, weights)
    params.update(kernel_size=_pair(w.shape[2:]), stride=_pair(strides), padding=_pair(pads[:2]))
    return _Mapped("Conv2d", {"in": node.input[0]}, node.output[0], params, weights)


def _pair(values: Any) -> int | list[int]:
    a, b = (int(v) for v in values)
    return a if a == b else [a, b]


def _pool(block: str) -> Callable[[_Importer, Any], _Result]:
    def mapper(imp: _Importer, node: Any) -> _Result:
        a = _attrs(node)
        kernel = list(a.get("kernel_shape", []))
        if len(kernel) != 2:
            return f"{node.op_type} other than 2-d"
        pads = list(a.get("pads", [0, 0, 0, 0]))
        auto = a.get("auto_pad", b"NOTSET")
        if (a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1]))
                or pads[:2] != pads[2:] or auto not in (b"NOTSET", "NOTSET")):
            return f"{node.op_type} with ceil mode, dilation or uneven padding"
        if block == "AvgPool2d" and any(pads) and not a.get("count_include_pad", 0):
            return "AveragePool with padding left out of the count"
        if len(node.output) > 1 and node.output[1] and node.output[1] in imp.consumers:
            return "MaxPool with its indices used"
        return _Mapped(block, {"in": node.input[0]}, node.output[0], {
            "kernel_size": _pair(kernel), "stride": _pair(a.get("strides", [1, 1])),
            "padding": _pair(pads[:2])})
    return mapper


def _batch_norm(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    if a.get("training_mode", 0) or any(o for o in node.output[1:]):
        return "BatchNormalization in training mode"
    arrays = [imp.weight(v) for v in node.input[1:5]]
    present = [x for x in arrays if x is not None and x.ndim == 1]
    if len(present) != 4:
        return "BatchNormalization with computed statistics"
    scale, bias, mean, var = present
    rank = imp.rank(node.input[0])
    block = {4: "BatchNorm2d", 2: "BatchNorm1d", 3: "BatchNorm1d"}.get(rank or 0)
    if block is None:
        return "BatchNormalization of unknown rank"
    return _Mapped(block, {"in": node.input[0]}, node.output[0], {
        "eps": _tidy(a.get("epsilon", 1e-5)),
        "momentum": _tidy(1.0 - float(a.get("momentum", 0.9)))},
        {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var})


def _tidy(value: float) -> float:
    """A float32 attribute as the decimal it was written from: 9.99999974e-06 -> 1e-05."""
    return float(f"{float(value):.7g}")


def _layer_norm(imp: _Importer, node: Any) -> _Result:
    a = _attrs(node)
    rank = imp.rank(node.input[0])
    axis = int(a.get("axis", -1))
    if not (axis == -1 or (rank is not None and axis == rank - 1)):
        return "LayerNormalization over several dimensions"
    scale = imp.weight(node.input[1])
    if scale is None or scale.ndim != 1:
        return "LayerNormalization with a computed scale"
    weights = {"weight": scale}
    if len(node.input) > 2 and node.input[2]:
        b = imp.weight(node.input[2])
        if b is None or b.shape != scale.shape:
            return "LayerNormalization with a computed bias"
        weights["bias"] = b
    return _Mapped("LayerNorm", {"in": node.input[0]}, node.output[0],
                   {"eps": _tidy(a.get("epsilon", 1e-5)), "bias": "bias" in weights}, weights)


def _gather(imp: _Importer, node: Any) -> _Result:
    table = imp.weight(node.input[0])
    if table is None or table.ndim != 2 or int(_attrs(node).get("axis", 0)) != 0 \
            or imp.is_const(node.input[1]):
        return "Gather other than an embedding lookup"
    return _Mapped("Embedding", {"in": node.input[1]}, node.output[0], {
        "num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])},
        {"weight": table})


def _gelu(imp: _Importer, node: Any) -> _Result:
    approximate = _attrs(node).get("approximate", "none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    return _Mapped("GELU", {"in": node.input[0]}, node.output[0], {"approximate": approximate})


def _scalar(imp: _Importer, value: str) -> float | None:
    array = imp.weight(value) if imp.is_const(value) else None
    return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None


def _erf_gelu(imp: _Importer, node: Any) -> _Result:
    """GELU as exporters write it without a Gelu op: x · ½ · (1 + erf(x / √2)), starting
    from the Div; the two Muls may come in either order."""
    x = node.input[0]
    divisor = _scalar(imp, node.input[1])
    if divisor is None or abs(divisor - math.sqrt(2)) > 1e-4:
        return "Div"
    erf = imp.sole_consumer(node.output[0])
    if erf is None or erf.op_type != "Erf":
        return "Div"
    add = imp.sole_consumer(erf.output[0])
    if add is None or add.op_type != "Add":
        return "Div"
    one = add.input[1] if add.input[0] == erf.output[0] else add.input[0]
    if _scalar(imp, one) != 1.0:
        return "Div"
    chain, value, others = [], add.output[0], []
    for _ in range(2):
        mul = imp.sole_consumer(value) if value not in imp.outputs else None
        if mul is None or mul.op_type != "Mul":
            return "Div"
        others.append(mul.input[1] if mul.input[0] == value else mul.input[0])
        chain.append(mul)
        value = mul.output[0]
    if x not in others or not any(_scalar(imp, v) == 0.5 for v in others if v != x):
        return "Div"
    mapped = _Mapped("GELU", {"in": x}, value, {"approximate": "none"})
    mapped.consumed = (erf, add, *chain)
    return mapped


_OP_MAPPERS: dict[str, Callable[[_Importer, Any], _Result]] = {
    "Identity": _alias,
    "Dropout": _alias,
    "Relu": _activation("ReLU"),
    "Sigmoid": _activation("Sigmoid"),
    "Tanh": _activation("Tanh"),
    "Gelu": _gelu,
    "Div": _div,
    "Softmax": _softmax,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary("Add"),
    "Mul": _binary("Multiply"),
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "ReduceMean": _reduce_mean,
    "GlobalAveragePool": _global_pool,
    "Conv": _conv,
    "MaxPool": _pool("MaxPool2d"),
    "AveragePool": _pool("AvgPool2d"),
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Gather": _gather,
    "Transpose": _transpose,
    "Split": _split,
    "Slice": _slice,
    "Where": _where,
}


# Module mappers: the nodes of one exported module -> one block. Keyed by the module's class
# as the exporter records it; a mapper that returns a label leaves the nodes to `_OP_MAPPERS`.


def _boundary(imp: _Importer, group: _Group) -> tuple[list[str], list[str]]:
    """The group's inputs (values from outside that are not constants) and outputs (values
    used outside it), each in order of first appearance."""
    inside = {id(n) for n in group.nodes}
    made = {o for n in group.nodes for o in n.output if o}
    ins: list[str] = []
    outs: list[str] = []
    for n in group.nodes:
        for v in n.input:
            if v and v not in made and not imp.is_const(v) and v not in ins \
                    and not imp.is_shape(v):
                ins.append(v)
        for v in n.output:
            if v and (v in imp.outputs or any(id(c) not in inside
                                              for c in imp.consumers.get(v, []))) \
                    and not imp.is_shape(v):
                outs.append(v)
    return ins, outs


def _linear_in(imp: _Importer, nodes: list[Any]) -> tuple[str, str, dict[str, np.ndarray]] | None:
    """The Linear that `nodes` compute (Gemm, or MatMul and Add): input, output, weights."""
    for n in nodes:
        if n.op_type in ("Gemm", "MatMul"):
            result = _OP_MAPPERS[n.op_type](imp, n)
            if isinstance(result, _Mapped):
                return result.inputs["in"], result.output, result.weights
    return None


def _sub_nodes(group: _Group, name: str) -> list[Any]:
    """The group's nodes that come from its submodule `name` (`qkv` of `blocks.0.attn`)."""
    want = f"{group.scope}.{name}"
    return [n for n in group.nodes if want in _meta_list(n, _SCOPES_KEY)]


# The ops MultiHeadAttention exports to (projections, head split, rotary positions, key/value
# heads repeated for grouped queries, scaled dot-product attention with its mask or bias). A
# group holding any other computes something this mapper does not read: it is refused, not
# guessed. What the ops leave open is read from constants and checked (`_attention_options`).
_ATTENTION_OPS = frozenset({
    "MatMul", "Gemm", "Add", "Mul", "Div", "Sqrt", "Split", "Reshape", "Transpose", "Shape",
    "Slice", "Concat", "Softmax", "Trilu", "Equal", "Where", "Expand", "Constant", "Cast",
    "Unsqueeze", "Squeeze", "Gather", "ConstantOfShape", "Neg"})


def _only_ops(group: _Group, allowed: frozenset[str]) -> bool:
    return all(n.op_type in allowed and n.domain in ("", "ai.onnx") for n in group.nodes)


def _heads_in(imp: _Importer, group: _Group, dim: int) -> int | None:
    """The number of heads: the (B, T, heads, hs) target of the Reshape that splits the
    width `dim` into heads."""
    for n in group.nodes:
        target = imp.ints(n.input[1]) if n.op_type == "Reshape" and len(n.input) > 1 else None
        if target and len(target) == 4 and target[2] > 0 and target[2] * target[3] == dim:
            return target[2]
    return None


def _rope_theta(imp: _Importer, group: _Group, head_size: int) -> float | str:
    """RoPE's base θ, read back from the cosine and sine tables (T, hs) the exporter folds
    the rotation into, and checked by making the tables again with it. A label when the
    group holds no such tables or they are not RoPE's."""
    found = [imp.weight(v) for n in group.nodes if n.op_type == "Mul" for v in n.input
             if imp.is_const(v)]
    tables = [t for t in found if t is not None and t.ndim == 2 and t.shape[1] == head_size]
    cos = next((t for t in tables if np.all(t[0] == 1)), None)
    sin = next((t for t in tables if np.all(t[0] == 0)), None)
    if cos is None or sin is None or cos.shape != sin.shape or cos.shape[0] < 2 \
            or head_size % 2:
        return "rotary positions without their cosine and sine tables"
    half = head_size // 2
    theta = 10000.0  # with one frequency (head size 2) every θ gives the same tables
    if half > 1:
        step = float(np.arctan2(sin[1, half - 1], cos[1, half - 1]))  # θ^(−2(half−1)/hs)
        if not 0 < step < 1:
            return "rotary tables that are not RoPE's"
        raw = step ** (-head_size / (2.0 * (half - 1)))
        if not 1 < raw < 1e12:
            return "rotary tables that are not RoPE's"
        theta = float(f"{raw:.6g}")
    from .layers import RotaryEmbedding

    probe = torch.ones(1, cos.shape[0], head_size)
    ones = RotaryEmbedding.rotate(probe, theta).numpy()[0]  # cos − sin, cos + sin halves
    want = np.concatenate([cos[:, :half] - sin[:, :half], cos[:, half:] + sin[:, half:]], -1)
    # `not <=`: a NaN in a table fails
    if not (np.abs(ones - want).max() <= 1e-5
            and np.abs(cos - cos[:, list(range(half)) * 2]).max() == 0):
        return "rotary tables that are not RoPE's"
    return theta


def _attention_options(imp: _Importer, group: _Group, dim: int, heads: int,
                       kv_heads: int) -> dict[str, Any] | str:
    """causal, window and ALiBi, from what the exporter made of them: a Trilu for plain
    causal attention, or the (1 or heads, T, T) bias added to the scores, folded into a
    constant. Options are read from the bias, then the bias is made again from them
    (`MultiHeadAttention.attention_bias`) and must match the file's."""
    from .layers import MultiHeadAttention

    found = [imp.weight(v) for n in group.nodes if n.op_type == "Add" for v in n.input
             if imp.is_const(v)]
    biases = [b for b in found if b is not None and b.ndim == 3 and b.shape[1] == b.shape[2]
              and b.shape[0] in (1, heads) and b.shape[1] > 1]
    if not biases:
        return {"causal": any(n.op_type == "Trilu" for n in group.nodes)}
    if len(biases) > 1:
        return "several attention biases"
    bias = biases[0]
    t = bias.shape[1]
    visible = np.isfinite(bias[0])
    distance = np.arange(t)[:, None] - np.arange(t)[None, :]
    causal = not visible[distance < 0].any()
    reach = int(np.abs(distance[visible]).max()) + 1 if visible.any() else 1
    window = reach if reach < t else None
    alibi = bool(np.any(bias[np.isfinite(bias)] != 0))
    options: dict[str, Any] = {"causal": causal}
    if window is not None:
        options["window"] = window
    if alibi:
        options["position"] = "alibi"
    module = MultiHeadAttention(dim, heads, causal=causal, num_kv_heads=kv_heads,
                                position="alibi" if alibi else "none", window=window)
    made = module.attention_bias(t, torch.device("cpu"), torch.float32)
    if made is None or tuple(made.shape) != bias.shape:
        return "an attention bias it does not read"
    again = made.numpy()
    same_inf = np.array_equal(np.isinf(again), np.isinf(bias)) and not np.isnan(bias).any()
    finite = np.isfinite(bias)
    if not same_inf or np.abs(again[finite] - bias[finite]).max(initial=0) > 1e-5:
        return "an attention bias it does not read"
    return options


def _attention(imp: _Importer, group: _Group) -> _Result:
    if not _only_ops(group, _ATTENTION_OPS):
        return "MultiHeadAttention"
    qkv = _linear_in(imp, _sub_nodes(group, "qkv"))
    proj = _linear_in(imp, _sub_nodes(group, "proj"))
    ins, outs = _boundary(imp, group)
    if qkv is None or proj is None or len(ins) != 1 or outs != [proj[1]] or qkv[0] != ins[0]:
        return "MultiHeadAttention"
    w = qkv[2]["weight"]
    dim = w.shape[1]
    heads = _heads_in(imp, group, dim)
    if heads is None or proj[2]["weight"].shape != (dim, dim) or (w.shape[0] - dim) % 2:
        return "MultiHeadAttention"
    head_size = dim // heads
    kv_width = (w.shape[0] - dim) // 2
    kv_heads = kv_width // head_size
    if kv_width % head_size or kv_heads < 1 or heads % kv_heads:
        return "MultiHeadAttention"
    has_bias = "bias" in qkv[2]
    if has_bias != ("bias" in proj[2]):
        return "MultiHeadAttention"
    params: dict[str, Any] = {"num_heads": int(heads)}
    options = _attention_options(imp, group, dim, heads, kv_heads)
    if isinstance(options, str):
        return f"MultiHeadAttention with {options}"
    params["causal"] = options.pop("causal")
    params["bias"] = has_bias
    if kv_heads != heads:
        params["num_kv_heads"] = int(kv_heads)
    params.update(options)
    if any(n.op_type == "Neg" for n in group.nodes):
        if "position" in params:
            return "MultiHeadAttention with both rotary positions and ALiBi"
        theta = _rope_theta(imp, group, head_size)
        if isinstance(theta, str):
            return f"MultiHeadAttention with {theta}"
        params["position"] = "rope"
        if theta != 10000.0:
            params["rope_theta"] = theta
    weights = {f"qkv.{k}": v for k, v in qkv[2].items()}
    weights.update({f"proj.{k}": v for k, v in proj[2].items()})
    return _Mapped("MultiHeadAttention", {"in": ins[0]}, outs[0], params, weights)


_ROTARY_OPS = frozenset({"Reshape", "Transpose", "Slice", "Neg", "Concat", "Mul", "Add",
                         "Constant", "Shape", "Gather", "Unsqueeze", "Cast"})


def _rotary(imp: _Importer, group: _Group) -> _Result:
    ins, outs = _boundary(imp, group)
    if not _only_ops(group, _ROTARY_OPS) or len(ins) != 1 or len(outs) != 1:
        return "RotaryEmbedding"
    dims = imp.shapes.get(ins[0])
    dim = dims[-1] if dims and len(dims) == 3 else None
    heads = _heads_in(imp, group, dim) if dim else None
    if heads is None or dim is None:
        return "RotaryEmbedding"
    theta = _rope_theta(imp, group, dim // heads)
    if isinstance(theta, str):
        return f"RotaryEmbedding with {theta}"
    params: dict[str, Any] = {"num_heads": int(heads)}
    if theta != 10000.0:
        params["theta"] = theta
    return _Mapped("RotaryEmbedding", {"in": ins[0]}, outs[0], params)


_MLP_OPS = frozenset({"MatMul", "Gemm", "Add", "Mul", "Div", "Erf", "Sigmoid", "Constant"})


def _gated_mlp(imp: _Importer, group: _Group) -> _Result:
    ins, outs = _boundary(imp, group)
    parts = {name: _linear_in(imp, _sub_nodes(group, name)) for name in ("gate", "up", "down")}
    if not _only_ops(group, _MLP_OPS) or len(ins) != 1 or len(outs) != 1:
        return "GatedMLP"
    gate, up, down = parts["gate"], parts["up"], parts["down"]
    if gate is None or up is None or down is None or down[1] != outs[0] \
            or gate[0] != ins[0] or up[0] != ins[0]:
        return "GatedMLP"
    hidden, dim = gate[2]["weight"].shape
    if up[2]["weight"].shape != (hidden, dim) or down[2]["weight"].shape != (dim, hidden):
        return "GatedMLP"
    has_bias = {"bias" in p[2] for p in (gate, up, down)}
    silu = any(n.op_type == "Sigmoid" for n in group.nodes)
    gelu = any(n.op_type == "Erf" for n in group.nodes)
    if len(has_bias) != 1 or silu == gelu:
        return "GatedMLP"
    weights = {f"{name}.{k}": v for name, p in parts.items() if p for k, v in p[2].items()}
    return _Mapped("GatedMLP", {"in": ins[0]}, outs[0], {
        "activation": "silu" if silu else "gelu", "hidden_features": int(hidden),
        "bias": has_bias.pop()}, weights)


_MOE_OPS = frozenset({
    "MatMul", "Gemm", "Add", "Mul", "Div", "Softmax", "TopK", "ReduceSum", "Shape", "Expand",
    "ScatterElements", "Slice", "Erf", "Sigmoid", "Relu", "Constant", "Cast", "Gather",
    "Unsqueeze", "ConstantOfShape"})
_EXPERT_ACTIVATIONS = {"torch.nn.modules.activation.GELU": "gelu",
                       "torch.nn.modules.activation.SiLU": "silu",
                       "torch.nn.modules.activation.ReLU": "relu"}


def _mixture(imp: _Importer, group: _Group) -> _Result:
    """A MixtureOfExperts: the router and the experts' layers from their submodules, top_k
    from the TopK's constant, the activation from the class the experts' `act` recorded.
    aux_loss_weight (training only) is not in the file: it takes its default."""
    ins, outs = _boundary(imp, group)
    router = _linear_in(imp, _sub_nodes(group, "router"))
    topk = [n for n in group.nodes if n.op_type == "TopK"]
    if not _only_ops(group, _MOE_OPS) or len(ins) != 1 or len(outs) != 1 or router is None \
            or "bias" in router[2] or len(topk) != 1 or router[0] != ins[0]:
        return "MixtureOfExperts"
    k = imp.ints(topk[0].input[1]) if len(topk[0].input) > 1 else None
    experts = router[2]["weight"].shape[0]
    weights = {"router.weight": router[2]["weight"]}
    activations, biases, hidden = set(), set(), set()
    for i in range(experts):
        up = _linear_in(imp, _sub_nodes(group, f"experts.{i}.up"))
        down = _linear_in(imp, _sub_nodes(group, f"experts.{i}.down"))
        if up is None or down is None:
            return "MixtureOfExperts"
        act = f"{group.scope}.experts.{i}.act"
        for node in _sub_nodes(group, f"experts.{i}.act"):
            scopes, classes = _meta_list(node, _SCOPES_KEY), _meta_list(node, _CLASSES_KEY)
            if len(scopes) == len(classes):
                cls = classes[scopes.index(act)]
                activations.add(_EXPERT_ACTIVATIONS.get(cls, cls))
        biases.update({"bias" in up[2], "bias" in down[2]})
        hidden.add(up[2]["weight"].shape[0])
        weights.update({f"experts.{i}.up.{n}": v for n, v in up[2].items()})
        weights.update({f"experts.{i}.down.{n}": v for n, v in down[2].items()})
    if k is None or len(k) != 1 or not 1 <= k[0] <= experts or len(biases) != 1 \
            or len(hidden) != 1 or len(activations) != 1 \
            or not activations <= set(_EXPERT_ACTIVATIONS.values()):
        return "MixtureOfExperts"
    return _Mapped("MixtureOfExperts", {"in": ins[0]}, outs[0], {
        "num_experts": int(experts), "top_k": int(k[0]), "hidden_features": int(hidden.pop()),
        "activation": activations.pop(), "bias": biases.pop()}, weights)


def _positional(imp: _Importer, group: _Group) -> _Result:
    ins, outs = _boundary(imp, group)
    adds = [n for n in group.nodes if n.op_type == "Add"]
    if len(ins) != 1 or len(outs) != 1 or len(adds) != 1:
        return "PositionalEmbedding"
    table = next((imp.weight(v) for v in adds[0].input if imp.is_const(v)), None)
    if table is None or table.ndim != 2:
        return "PositionalEmbedding"
    return _Mapped("PositionalEmbedding", {"in": ins[0]}, outs[0],
                   {"max_len": int(table.shape[0])}, {"weight": table})


def _whole(block: str) -> Callable[[_Importer, _Group], _Result]:
    def mapper(imp: _Importer, group: _Group) -> _Result:
        ins, outs = _boundary(imp, group)
        if len(ins) != 1 or len(outs) != 1:
            return block
        params = {}
        if block == "GELU":
            tanh = any(n.op_type == "Tanh" for n in group.nodes)
            params["approximate"] = "tanh" if tanh else "none"
        return _Mapped(block, {"in": ins[0]}, outs[0], params)
    return mapper


def _rms_norm(imp: _Importer, group: _Group) -> _Result:
    ins, outs = _boundary(imp, group)
    if len(ins) != 1 or len(outs) != 1:
        return "RMSNorm"
    eps = None
    scale = None
    for n in group.nodes:
        consts = [imp.weight(v) for v in n.input if imp.is_const(v)]
        if n.op_type == "Add" and consts and consts[0] is not None and consts[0].size == 1:
            eps = float(consts[0].reshape(-1)[0])
        if n.op_type == "Mul" and consts and consts[0] is not None and consts[0].ndim == 1 \
                and consts[0].size > 1:
            scale = consts[0]
    if eps is None or eps <= 0:
        return "RMSNorm"
    params: dict[str, Any] = {"eps": _tidy(eps), "elementwise_affine": scale is not None}
    weights = {"weight": scale} if scale is not None else {}
    return _Mapped("RMSNorm", {"in": ins[0]}, outs[0], params, weights)


_MODULE_MAPPERS: dict[str, Callable[[_Importer, _Group], _Result]] = {
    "compute.engine.layers.MultiHeadAttention": _attention,
    "compute.engine.layers.PositionalEmbedding": _positional,
    "compute.engine.layers.RotaryEmbedding": _rotary,
    "compute.engine.layers.GatedMLP": _gated_mlp,
    "compute.engine.layers.MixtureOfExperts": _mixture,
    "torch.nn.modules.activation.GELU": _whole("GELU"),
    "torch.nn.modules.activation.SiLU": _whole("SiLU"),
    "torch.nn.modules.normalization.RMSNorm": _rms_norm,
}
