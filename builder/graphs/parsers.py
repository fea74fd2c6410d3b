"""The API's JSON parser: DRF's, refusing (400) the JSON that parses but that the app could
neither keep nor answer with.

- nesting deeper than MAX_JSON_DEPTH, measured on the text before it is parsed: deeper
  nesting ends in a RecursionError somewhere (json itself gives up at about 960 levels);
- numbers JSON has no spelling for: NaN and Infinity, and literals such as 1e999 that only
  fit a float as infinity (a stored graph holding one could never be sent back as JSON);
- lone surrogates (an escape such as "\\ud800" without its pair): no UTF-8 text holds one,
  so neither the database nor a response could.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 100

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest, without parsing it: its strings
    taken out, the running count of its brackets (all in C, so cheap on a large body)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"the number {literal[:40]} is too large for a 64-bit float")
    return value


def loads(text: str) -> Any:
    """Parse JSON text as the API takes it; ValueError says what is wrong with it."""
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep "
                         f"({depth})")
    data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    if not _SURROGATE_ESCAPE.search(text):
        return data  # text decoded from UTF-8 holds surrogates only through escapes
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"a string holds a lone surrogate "
                         f"(U+{ord(exc.object[exc.start]):04X}), "
                         "which is not a Unicode character") from None
    return data


class StrictJSONParser(JSONParser):
    def parse(self, stream: IO[bytes], media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            return loads(stream.read().decode(encoding))
        except (ValueError, LookupError) as exc:  # UnicodeDecodeError is a ValueError
            raise ParseError(f"JSON parse error - {exc}") from None
