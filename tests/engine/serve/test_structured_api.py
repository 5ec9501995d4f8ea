"""Structured output through the OpenAI-compatible server: ``response_format`` holds the reply
to JSON (any object, or a JSON Schema's documents) by a grammar llama.cpp samples with, and a
schema that cannot be used is a 400 that says why. The instruct starter answers 20 requests
against a schema with a string, an integer and an enum: every reply parses and validates."""

from __future__ import annotations

import json

import jsonschema
import pytest

openai = pytest.importorskip("openai")

from quantdesk.engine.chat.structured import (  # noqa: E402
    JSON_OBJECT_GRAMMAR,
    SchemaError,
    grammar_for_response_format,
    grammar_for_schema,
)
from quantdesk.engine.serve.openai_server import RunningServer  # noqa: E402
from tests.support.serving import served_starter  # noqa: E402

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "mood": {"enum": ["happy", "sad", "curious"]},
    },
    "required": ["name", "age", "mood"],
    "additionalProperties": False,
}
PEOPLE = ["a pirate", "a baker", "a child", "an astronaut", "a teacher", "a poet", "a knight",
          "a farmer", "a robot", "a grandmother"]  # fmt: skip


def test_response_formats_become_grammars_and_bad_ones_say_why() -> None:
    assert grammar_for_response_format(None) == grammar_for_response_format({"type": "text"}) == ""
    assert grammar_for_response_format({"type": "json_object"}) == JSON_OBJECT_GRAMMAR
    grammar = grammar_for_response_format({"type": "json_schema",
                                           "json_schema": {"name": "p", "schema": PERSON}})
    assert '"\\"happy\\""' in grammar and "root ::=" in grammar
    assert "\\x00-\\x1F" in grammar  # no raw control character in a string: JSON forbids it
    for bad, words in (({"type": "xml"}, "is not one of"),
                       ({"type": "json_schema", "json_schema": {"name": "p"}}, "needs"),
                       ("json", "must be an object")):  # fmt: skip
        with pytest.raises(SchemaError, match=words):
            grammar_for_response_format(bad)
    with pytest.raises(SchemaError, match="not valid at properties/age/type"):
        grammar_for_schema({"type": "object", "properties": {"age": {"type": "int"}}})
    # a bounded integer is held to its bounds, not to its type alone (an age of 195 was written)
    ages = grammar_for_schema({"type": "integer", "minimum": 0, "exclusiveMaximum": 121})
    assert '"120"' in ages and '"121"' not in ages and "integral-part" not in ages
    wide = grammar_for_schema({"type": "integer", "minimum": 0, "maximum": 10**9})
    assert "integral-part" in wide  # too many values to list: the type alone
    with pytest.raises(SchemaError, match="no value to take"):
        grammar_for_schema({"type": "integer", "minimum": 5, "maximum": 4})


@pytest.fixture(scope="module")
def server():
    with served_starter() as running:
        yield running


def _client(server: RunningServer):
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=120)


@pytest.mark.starter
def test_twenty_replies_held_to_a_schema_all_parse_and_validate(server) -> None:
    client = _client(server)
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    replies = []
    for i in range(20):
        reply = client.chat.completions.create(
            model="smollm2", max_tokens=120, temperature=0.8, seed=i, response_format=fmt,
            messages=[{"role": "user", "content": f"Describe {PEOPLE[i % 10]} as JSON with "
                       "a name, an age and a mood."}],
        )  # fmt: skip
        replies.append(reply.choices[0].message.content)
    people = [json.loads(text) for text in replies]  # every one parses
    for person in people:
        jsonschema.validate(person, PERSON)  # and validates
    assert len({p["name"] for p in people}) > 1  # sampled, not one answer repeated


@pytest.mark.starter
def test_json_object_and_a_schema_that_cannot_be_used(server) -> None:
    client = _client(server)
    reply = client.chat.completions.create(
        model="smollm2", max_tokens=80, seed=1, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give me a JSON object about cats."}])  # fmt: skip
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    with pytest.raises(openai.BadRequestError, match="not valid at properties/age/type"):
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Hi"}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "p", "schema": {"type": "object",
                                        "properties": {"age": {"type": "int"}}}}})  # fmt: skip
