"""What every block is: its parameters, its ports, how it builds its module, its explanation.

A block is a small stateless object. The builder (`compute.engine.build`) hands it the
validated parameters and the specs of the tensors arriving at its input ports; the block
checks what it can say in words (a dtype, a rank, a divisibility) and returns a `Ctor`, the
recipe of its module. The same recipe builds the module on the meta device for inspection,
on a real device for training, and is written out as source by `export_pytorch`, so the
three cannot drift apart.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict
from pydantic_core import to_jsonable_python
from torch import nn

# Parameter types for graph files: a JSON number or boolean, never a string to coerce.
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]  # an int is accepted, a string is not

# A name the user gives that becomes part of a Python name: a node id, an output port.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int64", "int32")
# What to do when a block that works on sequences gets one vector per sample.
SEQUENCE_FIX = ("it works on a sequence of T vectors: give the Input a shape T, D, or feed "
                "int64 token ids [B, T] through an Embedding")


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as seen by the graph: its shape without the batch dimension, and its dtype."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        """Dimensions after the batch."""
        return len(self.shape)

    @property
    def numel(self) -> int:
        """Elements per sample."""
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def text(self) -> str:
        """The shape as tools show it: `[B, 64, 128]`."""
        return "[" + ", ".join(["B", *map(str, self.shape)]) + "]"

    def describe(self) -> str:
        """Dtype and shape: `int64 [B, 64]`."""
        return f"{self.dtype} {self.text()}"

    def to_dict(self) -> dict[str, Any]:
        return {"shape": ["B", *self.shape], "dtype": self.dtype}


@dataclass(frozen=True)
class Incoming:
    """What arrives at an input port: the tensor's spec and where it comes from (`node[.port]`)."""

    spec: TensorSpec
    source: str


class Refusal(Exception):
    """Raised inside a block's `construct` to refuse its inputs or parameters, in words.

    The builder turns it into a `Problem` on the node; it never leaves the engine.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Ctor:
    """How to make a block's module: `cls(*args, **kwargs)`."""

    cls: type[nn.Module]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        return self.cls(*self.args, **self.kwargs)

    def source(self) -> str:
        """The call as Python source, for a file where `nn` is `torch.nn` and our layers are
        defined at top level: `nn.Linear(64, 128, bias=True)`."""
        prefix = "nn." if self.cls.__module__.startswith("torch.nn") else ""
        parts = [literal(a) for a in self.args]
        parts += [f"{k}={literal(v)}" for k, v in self.kwargs.items()]
        return f"{prefix}{self.cls.__name__}({', '.join(parts)})"


def literal(value: Any) -> str:
    """A recipe's argument as source. `repr` writes plain values as literals that read back
    the same (a string's quotes, backslashes and line breaks escaped); another object's
    `repr` could be any text, and a non-finite float's is a name (`inf`): both are refused."""
    if not _plain(value):
        raise ValueError(f"{value!r} has no Python literal to write in generated code")
    return repr(value)


def _plain(value: Any) -> bool:
    if type(value) in (tuple, list):
        return all(_plain(v) for v in value)
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) in (bool, int, str)


class BlockParams(BaseModel):
    """Base of every block's parameter model: unknown names are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(BlockParams):
    pass


INIT_SCHEMES = ("pytorch", "normal", "gpt2")


class WeightInit(BlockParams):
    """The two parameters every block with learned matrices takes: how they start.

    The builder applies them (`compute.engine.build.plan_init`): a block's own `construct`
    never sees them, since the GPT-2 scheme depends on the whole graph.
    """

    init: Literal["graph", "pytorch", "normal", "gpt2"] = Field(
        default="graph",
        description="How the weights start: graph = the graph's Init node (PyTorch's own "
        "when there is none); pytorch = PyTorch's default for this layer; normal = matrices "
        "from N(0, init_std²), biases 0; gpt2 = normal with std 0.02, and std "
        "0.02/√(2·layers) for the projections that write into the residual stream.")
    init_std: Annotated[Float, Field(gt=0, le=10)] = Field(
        default=0.02, description="Standard deviation of the normal scheme.")


class Block:
    """One kind of node.

    Subclasses set the class attributes and implement `construct`:

    - `type`: the name in graph files (`Linear`); `category`: the palette group.
    - `Params`: a `BlockParams` model; its JSON Schema is what the editor's form is made from,
      so every field has a default where one is sensible, ranges and a description.
    - `inputs` / `outputs`: port names, in the order the module's `forward` takes them (and,
      for several outputs, the order of the tuple it returns).
    - `outputs_from`: for a block whose output ports are named by a parameter (Split's
      `names`), that parameter; `output_ports(params)` then gives a node's ports, and
      `outputs` are those of the defaults. A block whose ports are those of the graph it
      holds (Custom) overrides `node_inputs` / `node_outputs` instead.
    - `id_stem`: how the editor starts the ids of new nodes (`attn` gives attn1, attn2, ...),
      what people call the block in code; without one, the type in lower case.
    - `summary`: one line for a tooltip; `explanation`: Markdown for a learner (what it
      computes, the formula, when to use it).
    - `construct(params, inputs)`: check the incoming specs, raise `Refusal` with a sentence
      if they cannot work, and return the `Ctor` of the module. The output shape is not
      computed here: the builder runs the module on the meta device to learn it.
    - `shows_attention(params, output)`: whether a run shows this node's attention weights
      (its module's output, or what it keeps, as maps per head); False unless overridden.
    """

    type: ClassVar[str]
    category: ClassVar[str]
    summary: ClassVar[str]
    explanation: ClassVar[str]
    Params: ClassVar[builtins.type[BlockParams]] = NoParams
    inputs: ClassVar[tuple[str, ...]] = ("in",)
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    outputs_from: ClassVar[str | None] = None
    holds_graph: ClassVar[bool] = False
    ports_from_graph: ClassVar[bool] = False  # its ports are its nested graph's (Custom)
    id_stem: ClassVar[str | None] = None

    def construct(self, params: Any, inputs: Mapping[str, Incoming]) -> Ctor:
        raise NotImplementedError

    def output_ports(self, params: BlockParams | None) -> tuple[str, ...]:
        """The output ports of a node with these (validated) parameters, in the order of the
        tuple its module returns. None (invalid parameters) gives the defaults' ports."""
        if self.outputs_from is None or params is None:
            return self.outputs
        return tuple(getattr(params, self.outputs_from))

    def node_inputs(self, params: BlockParams | None, graph: Any) -> tuple[str, ...]:
        """The input ports of one node, given its parameters and its nested graph (a
        `graph.Graph`, None where it has none or it is unreadable): `inputs`, except for a
        block whose ports are those of the graph it holds (Custom)."""
        return self.inputs

    def node_outputs(self, params: BlockParams | None, graph: Any) -> tuple[str, ...]:
        """The output ports of one node, in the order of the tuple its module returns:
        `output_ports(params)`, except for a block whose ports are its nested graph's."""
        return self.output_ports(params)

    def shows_attention(self, params: Any, output: TensorSpec) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        """The catalog entry: everything the API and the editor need to show this block."""
        return {
            "type": self.type,
            "category": self.category,
            "summary": self.summary,
            "explanation": self.explanation.strip(),
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "outputs_from": self.outputs_from,
            "holds_graph": self.holds_graph,
            "params_schema": _init_last(self.Params.model_json_schema()),
            "id_stem": self.id_stem or self.type.lower(),
            "defaults": self.defaults(),
        }

    def defaults(self) -> dict[str, Any]:
        """The value each parameter takes where a node leaves it out, as JSON."""
        return {name: to_jsonable_python(info.get_default(call_default_factory=True))
                for name, info in self.Params.model_fields.items() if not info.is_required()}


def _init_last(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with `init` and `init_std` listed last: the editor's form shows fields in
    this order, and a block's own parameters come first."""
    props = schema.get("properties")
    if isinstance(props, dict) and "init" in props:
        schema["properties"] = {**{k: v for k, v in props.items() if not k.startswith("init")},
                                **{k: v for k, v in props.items() if k.startswith("init")}}
    return schema


# Checks shared by many blocks. Each raises a Refusal phrased for the user.


def sole(inputs: Mapping[str, Incoming]) -> Incoming:
    """The one input of a single-input block."""
    (incoming,) = inputs.values()
    return incoming


def need_float(block: Block, incoming: Incoming) -> None:
    if not incoming.spec.is_float:
        fix = ("put an Embedding before it to turn token ids into vectors, or set the Input's "
               "dtype to float32") if incoming.spec.dtype in INT_DTYPES else (
            "set the Input's dtype to float32")
        raise Refusal(
            f"{block.type} expects a float input, but {incoming.source} gives "
            f"{incoming.spec.describe()}: {fix}"
        )


def need_rank(block: Block, incoming: Incoming, ranks: tuple[int, ...], layout: str,
              fix: str | None = None) -> None:
    """`layout` names the expected dimensions after B, e.g. `C, H, W`; `fix` says what to do
    instead when there is a better way than reshaping (a sibling block of another rank)."""
    if incoming.spec.rank not in ranks:
        raise Refusal(
            f"{block.type} expects [B, {layout}], but {incoming.source} gives "
            f"{incoming.spec.describe()}: "
            f"{fix or f'add a Reshape before it to give it [B, {layout}]'}"
        )


def port_name(name: str) -> str:
    """`name` if it can be an output port (a name like a node id); a `ValueError` in words
    otherwise, for a parameter validator."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} is not a port name: a name starts with a letter or _, then "
                         "letters, digits or _, at most 64 in all, in ASCII")
    if keyword.iskeyword(name):
        raise ValueError(f"{name!r} is a Python keyword; pick another port name")
    return name


def resolve_dim(dim: int, spec: TensorSpec, name: str = "dim") -> int:
    """A dimension counted with the batch (negative from the end), checked against `spec`."""
    ndim = spec.rank + 1
    if not -ndim <= dim < ndim:
        raise Refusal(
            f"{name} {dim} is out of range for {spec.text()}: use 1..{ndim - 1} or -1..-{ndim - 1}",
            name,
        )
    resolved = dim % ndim
    if resolved == 0:
        raise Refusal(f"{name} {dim} is the batch dimension; pick one of 1..{ndim - 1}", name)
    return resolved
