"""Run settings: the base of each run kind's settings model (training's `TrainConfig`; the
benchmark and FPGA runs to come add theirs the same way), and their validation errors as
problems that name the setting and its range in words.

A settings model is the one definition of its settings: the API serves its JSON Schema
(GET /api/run-kinds), the editor renders its form from that schema, and the server and the
command line validate with it. Each field has a title (the form's label), a description, a
default (or a default derived from other settings: `derived`) and its range or its choices;
`basic` marks the ones the form shows first.
"""

from __future__ import annotations

import copy
import types
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from .errors import Problem

S = TypeVar("S", bound="RunSettings")
BASIC = "x-basic"  # JSON Schema marker: the form shows this setting first, prefilled
DERIVED = "x-derived"  # JSON Schema marker: the default comes from other settings (in words)

_TYPE_MESSAGES = {
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number"}


def basic() -> dict[str, Any]:
    """`json_schema_extra` of a setting the form shows first."""
    return {BASIC: True}


def derived(rule: str) -> dict[str, Any]:
    """`json_schema_extra` of a setting whose default follows `rule` (words: "lr / 10")."""
    return {DERIVED: rule}


def refuse(field: str, text: str) -> PydanticCustomError:
    """An error of a cross-field rule, for a model validator to raise: `text` follows the
    setting's name ("must be at most lr (0.1), got 0.5")."""
    return PydanticCustomError("setting", "{field} {text}", {"field": field, "text": text})


class RunSettings(BaseModel):
    """Base of a run kind's settings: unknown names are refused, values are JSON numbers,
    booleans and strings as they are (never a string read as a number, nor a boolean as
    one; an integer is a fine float), and a validated settings object never changes.

    Subclasses set `kind`, `title` and `summary` (for GET /api/run-kinds) and give every
    field a title, a description and its range (`ge`/`gt`/`le`/`lt`) or a `Literal`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]

    @classmethod
    def settings_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema()

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The run kind as GET /api/run-kinds lists it."""
        return {"kind": cls.kind, "title": cls.title, "description": cls.summary,
                "settings_schema": cls.settings_schema()}

    @classmethod
    def problems(cls, exc: ValidationError, prefix: str = "") -> list[Problem]:
        """`exc`'s errors as problems, one per setting, each naming the setting (after
        `prefix`: "config.") and, for a number, its range in words."""
        found: dict[str, Problem] = {}
        for err in exc.errors():
            kind = err["type"]
            if kind == "default_factory_not_called":  # a setting it derives from is wrong
                continue
            ctx = err.get("ctx") or {}
            name = str(ctx["field"]) if kind == "setting" else str(err["loc"][0])
            if name in found:
                continue
            if kind == "setting":
                message = f"{prefix}{name} {ctx['text']}"
            elif name not in cls.model_fields:  # extra_forbidden
                has = f"{prefix.rstrip('.')} has no" if prefix else "there is no"
                message = (f"{has} setting {name!r}; settings: "
                           f"{', '.join(cls.model_fields)}")
            else:
                message = f"{prefix}{name} {cls._error_text(name, kind, ctx, err['input'])}"
            found[name] = Problem(message, field=f"{prefix}{name}")
        return list(found.values())

    @classmethod
    def _error_text(cls, name: str, kind: str, ctx: dict[str, Any], value: Any) -> str:
        field = cls.model_fields[name]
        got = f"got {shown(float(value) if _is_float(field) and type(value) is int else value)}"
        if kind in _RANGE_ERRORS:
            return f"must be {range_words(field)}, {got}"
        if kind == "literal_error":
            *rest, last = (str(choice) for choice in get_args(field.annotation))
            choices = f"{', '.join(rest)} or {last}" if rest else last
            return f"must be {choices}, {got}"
        if kind in _TYPE_MESSAGES:
            nullable = type(None) in get_args(field.annotation)
            return f"{_TYPE_MESSAGES[kind]}{' or null' if nullable else ''}, {got}"
        return f"is not valid ({kind}), {got}"


def range_words(field: FieldInfo) -> str:
    """A field's range in words: "at least 1 and at most 100,000", "above 0 and below 1"."""
    words = []
    for m in field.metadata:
        if isinstance(m, Ge):
            words.append(f"at least {_number(m.ge)}")
        elif isinstance(m, Gt):
            words.append(f"above {_number(m.gt)}")
    for m in field.metadata:
        if isinstance(m, Le):
            words.append(f"at most {_number(m.le)}")
        elif isinstance(m, Lt):
            words.append(f"below {_number(m.lt)}")
    return " and ".join(words) or "a finite number"


def shown(value: Any, limit: int = 60) -> str:
    """A value a user gave, as an error message quotes it (cut short when long)."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python prints
        return "a number too long to show"
    return text if len(text) <= limit else text[:limit] + "…"


def _number(x: Any) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _is_float(field: FieldInfo) -> bool:
    options = get_args(field.annotation) if get_origin(field.annotation) in (
        Union, types.UnionType) else (field.annotation,)
    return any((get_origin(o) is Annotated and get_args(o)[0] is float) or o is float
               for o in options)


def with_limits(model: type[S], limits: dict[str, int | float]) -> type[S]:
    """`model` with these settings' maxima lowered or raised (a server's own limits), in
    validation and in its schema alike."""
    fields: dict[str, Any] = {}
    for name, maximum in limits.items():
        info = model.model_fields[name]
        capped = copy.copy(info)
        capped.metadata = [m for m in info.metadata if not isinstance(m, Le)] + [Le(maximum)]
        fields[name] = (info.annotation, capped)
    return create_model(model.__name__, __base__=model, __module__=model.__module__,
                        **fields)


__all__ = ["BASIC", "DERIVED", "RunSettings", "basic", "derived", "range_words", "refuse",
           "shown", "with_limits"]
