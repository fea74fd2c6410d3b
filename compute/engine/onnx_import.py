"""Reading an ONNX file back as an editable graph, with its weights.

A map of this file: `import_onnx` is the one door. It checks the file in an order that
spends nothing on a hostile one: its size, then tensors stored outside the file (refused),
then `onnx.checker`, then the number of nodes. Mapping then walks the nodes that the
outputs depend on, in the file's (topological) order, and turns them into blocks:

- Files written by Shipyard (`export_onnx`, the dynamo exporter) record, for each node, the
  module it came from. Nodes of one module that has no single-op counterpart (attention,
  GELU written as `Erf`, learned positions) are mapped together by `_MODULE_MAPPERS`,
  keyed by the module's class.
- Every other node is mapped on its own by `_OP_MAPPERS`, keyed by ONNX op type; `MatMul`
  with a constant matrix takes the `Add` of a bias after it, making one `Linear`.

A mapper returns a `_Mapped` (one block, its inputs, its weights) or a short label saying
why it cannot, such as "Add with a constant operand". Every node that cannot be mapped is
counted under its label, and the file is refused with the whole count: nothing is imported
halfway. Adding an op is adding one function to a table; ops waiting for blocks that do not
exist yet (MatMul of two activations, Transpose, Split, Slice, Sub/Div) are listed as such.

Nothing in the file is executed, and nothing from it becomes code: node ids are built from
its names but cleaned to the graph format's id rule, and the document made here goes
through `load_graph` and a real build, whose state dict must take the file's weights
exactly, before it is returned.
"""

from __future__ import annotations

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
        source: dict[str, str] = {}  # ONNX value name -> node id that produces it

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
            group = self.groups.get(id(node))
            result: _Result | None = None
            if group is not None and not group.failed:
                mapper = _MODULE_MAPPERS[group.cls]
                result = mapper(self, group)
                if isinstance(result, _Mapped):
                    result.consumed = tuple(group.nodes)
                else:
                    group.failed = True  # its nodes are tried one by one instead
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
            entry: dict[str, Any] = {"id": node_id, "type": result.type}
            if result.params:
                entry["params"] = result.params
            nodes.append(entry)
            for port, value in result.inputs.items():
                if value in source:
                    target = node_id if port == "in" else f"{node_id}.{port}"
                    edges.append({"from": source[value], "to": target})
            source[result.output] = node_id
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
    return "".join(ch if ch.isprintable() else "?" for ch in label)[:_MAX_LABEL]


def _layout(nodes: list[dict[str, Any]], edges: list[dict[str, str]]) -> dict[str, list[int]]:
    """Columns by depth from the inputs, so that an imported graph opens readable."""
    depth: dict[str, int] = {}
    into: dict[str, list[str]] = {}
    for e in edges:
        into.setdefault(e["to"].split(".")[0], []).append(e["from"])
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
    if imp.is_const(x) or not imp.is_const(w_name):
        return "MatMul of two activations (waits for the MatMul block)"
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
        if imp.is_const(a) or imp.is_const(b):
            return f"{node.op_type} with a constant operand"
        return _Mapped(block, {"a": a, "b": b}, node.output[0])
    return mapper


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
    "Div": _erf_gelu,
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
}
# Waiting for blocks being added: MatMul of two activations (MatMul), Transpose (Transpose/
# Permute), Split, Slice, Mul by a constant (Scale), Trilu/Where masks (CausalMask).


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
            if v and v not in made and not imp.is_const(v) and v not in ins:
                ins.append(v)
        for v in n.output:
            if v and (v in imp.outputs or any(id(c) not in inside
                                              for c in imp.consumers.get(v, []))):
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


# The ops today's MultiHeadAttention exports to (projections, head split, scaled dot-product
# attention with its causal mask). A group holding any other (Neg, Sin, Cos of rotary
# positions, say) computes something this mapper does not read: it is refused, not guessed.
_ATTENTION_OPS = frozenset({
    "MatMul", "Gemm", "Add", "Mul", "Div", "Sqrt", "Split", "Reshape", "Transpose", "Shape",
    "Slice", "Concat", "Softmax", "Trilu", "Equal", "Where", "Expand", "Constant", "Cast",
    "Unsqueeze", "Squeeze", "Gather", "ConstantOfShape"})


def _attention(imp: _Importer, group: _Group) -> _Result:
    if any(n.op_type not in _ATTENTION_OPS or n.domain not in ("", "ai.onnx")
           for n in group.nodes):
        return "MultiHeadAttention"
    qkv = _linear_in(imp, _sub_nodes(group, "qkv"))
    proj = _linear_in(imp, _sub_nodes(group, "proj"))
    ins, outs = _boundary(imp, group)
    if qkv is None or proj is None or len(ins) != 1 or outs != [proj[1]] or qkv[0] != ins[0]:
        return "MultiHeadAttention"
    w = qkv[2]["weight"]
    dim = w.shape[1]
    heads = None
    for n in group.nodes:
        target = imp.ints(n.input[1]) if n.op_type == "Reshape" and len(n.input) > 1 else None
        if target and len(target) == 4 and target[2] > 0 and target[2] * target[3] == dim:
            heads = target[2]
            break
    if heads is None or w.shape[0] != 3 * dim or proj[2]["weight"].shape != (dim, dim):
        return "MultiHeadAttention"
    has_bias = "bias" in qkv[2]
    if has_bias != ("bias" in proj[2]):
        return "MultiHeadAttention"
    weights = {f"qkv.{k}": v for k, v in qkv[2].items()}
    weights.update({f"proj.{k}": v for k, v in proj[2].items()})
    causal = any(n.op_type == "Trilu" for n in group.nodes)
    return _Mapped("MultiHeadAttention", {"in": ins[0]}, outs[0],
                   {"num_heads": int(heads), "causal": causal, "bias": has_bias}, weights)


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
    "torch.nn.modules.activation.GELU": _whole("GELU"),
    "torch.nn.modules.activation.SiLU": _whole("SiLU"),
    "torch.nn.modules.normalization.RMSNorm": _rms_norm,
}
