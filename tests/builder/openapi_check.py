"""Check real response bodies against the OpenAPI document, strictly: every member the
document requires is there, every value has its type (null only where `nullable`), and no
object carries a member the document does not declare. So the editor's generated types say
exactly what it gets."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema


def _strict(schema: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable: true` becomes a null type; objects that do not
    say otherwise take no undeclared members; a `discriminator` is enforced (JSON Schema
    ignores it): the member must be there, name a schema of its mapping, and fit that one."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) if k in {"properties", "items", "additionalProperties", "oneOf",
                                   "anyOf", "allOf"} else v for k, v in schema.items()}
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    if discriminator := out.pop("discriminator", None):
        name, mapping = discriminator["propertyName"], discriminator["mapping"]
        out = {"allOf": [
            out, {"required": [name], "properties": {name: {"enum": list(mapping)}}},
            *({"if": {"properties": {name: {"const": value}}}, "then": {"$ref": target}}
              for value, target in mapping.items())]}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(openapi: dict[str, Any], path: str, method: str, status: int) -> Any:
    responses = openapi["paths"][path][method.lower()]["responses"]
    return responses[str(status)]["content"]["application/json"]["schema"]


def validator(openapi: dict[str, Any], schema: Any) -> jsonschema.Draft7Validator:
    """A strict validator of `schema` (its $refs into `openapi`'s components)."""
    components = {name: _strict(copy.deepcopy(s))
                  for name, s in openapi["components"]["schemas"].items()}
    root = {**_strict(copy.deepcopy(schema)), "components": {"schemas": components}}
    return jsonschema.Draft7Validator(root)


def assert_conforms(openapi: dict[str, Any], path: str, method: str, response: Any) -> None:
    """`response` (Django's test response) to `method path` fits its schema in `openapi`."""
    schema = response_schema(openapi, path, method, response.status_code)
    validator(openapi, schema).validate(response.json())
