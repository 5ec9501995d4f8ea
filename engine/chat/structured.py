"""Structured output: a reply held to JSON, or to a JSON Schema, by a grammar llama.cpp samples
with (a token that would break the format is never picked), so the reply always parses.

OpenAI's ``response_format`` (``{"type": "json_object"}`` or ``{"type": "json_schema",
"json_schema": {"name": …, "schema": {…}}}``) and a schema file (``quantdesk run
--json-schema``) both come here. The schema is checked first (JSON Schema's own meta-schema),
so a wrong one is refused with the reason, then turned into a GBNF grammar by
llama-cpp-python's port of llama.cpp's converter.
"""

from __future__ import annotations

import json
import math
from typing import Any

from quantdesk.engine.errors import QuantDeskError

#: Any JSON object (llama.cpp's json.gbnf, limited to an object at the top).
JSON_OBJECT_GRAMMAR = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""


#: The string-character rule of llama-cpp-python's schema converter, and JSON's own (no
#: control characters unescaped, as in llama.cpp's current converter).
_ANY_CHAR = 'char ::= [^"\\\\]'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'


class SchemaError(QuantDeskError):
    """A response format or JSON Schema that cannot be used (the message says why)."""


def grammar_for_schema(schema: Any) -> str:
    """The GBNF grammar of replies that are JSON documents valid against ``schema``."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, dict):
        raise SchemaError("The JSON Schema must be a JSON object.")
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top"
        raise SchemaError(f"The JSON Schema is not valid at {where}: {exc.message}") from None
    from quantdesk.engine.llama.log import import_llama_cpp

    import_llama_cpp("structured output cannot be used")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(json.dumps(_with_integer_ranges(schema)))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # parts it cannot express
        raise SchemaError(f"This JSON Schema cannot be turned into a grammar: {exc}") from None
    # the port's string characters include control characters (a raw newline in a string),
    # which JSON forbids: strict parsers (Python's json.loads) refuse such a reply
    return grammar.replace(_ANY_CHAR, _JSON_CHAR)


#: An integer range of at most this many values is held by the grammar (as the list of them).
MAX_RANGE_VALUES = 1_000


def _with_integer_ranges(node: Any) -> Any:
    """``node`` with each bounded integer (``minimum``/``maximum``, exclusive ones too, at most
    :data:`MAX_RANGE_VALUES` values) written as the list of its values: the converter holds
    an integer to its type alone, so an "age" from 0 to 120 could come out 195."""
    if isinstance(node, list):
        return [_with_integer_ranges(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_integer_ranges(value) for key, value in node.items()}
    if node.get("type") != "integer" or "enum" in node or "const" in node:
        return node
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(node.get("exclusiveMinimum"), (int, float)):
        low = max(low, node["exclusiveMinimum"] + 1) if low is not None else (
            node["exclusiveMinimum"] + 1)  # fmt: skip
    if isinstance(node.get("exclusiveMaximum"), (int, float)):
        high = min(high, node["exclusiveMaximum"] - 1) if high is not None else (
            node["exclusiveMaximum"] - 1)  # fmt: skip
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return node
    first, last = math.ceil(low), math.floor(high)
    if first > last:
        raise SchemaError(f"An integer from {low} to {high} has no value to take.")
    if last - first + 1 > MAX_RANGE_VALUES:
        return node
    bounds = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "type")
    return {**{k: v for k, v in node.items() if k not in bounds},
            "enum": list(range(first, last + 1))}  # fmt: skip


def grammar_for_response_format(response_format: Any) -> str:
    """The grammar for OpenAI's ``response_format``: "" for ``{"type": "text"}`` (or none),
    any JSON object for ``json_object``, the schema's documents for ``json_schema``."""
    if response_format is None:
        return ""
    if not isinstance(response_format, dict):
        raise SchemaError("'response_format' must be an object such as "
                          "{\"type\": \"json_object\"}.")  # fmt: skip
    kind = response_format.get("type")
    if kind == "text":
        return ""
    if kind == "json_object":
        return JSON_OBJECT_GRAMMAR
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or "schema" not in spec:
            raise SchemaError("'response_format' of type json_schema needs "
                              "\"json_schema\": {\"name\": …, \"schema\": {…}}.")  # fmt: skip
        return grammar_for_schema(spec["schema"])
    raise SchemaError(f"'response_format' type {kind!r} is not one of text, json_object, "
                      "json_schema.")  # fmt: skip
