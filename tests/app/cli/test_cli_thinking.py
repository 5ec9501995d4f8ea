"""``quantdesk run`` on a reasoning model: its thinking under a heading (dimmed on a terminal),
the answer after it, and both apart in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.cli.test_cli import quantdesk
from tests.support.reasoning_templates import write_reasoning_models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_reasoning_models(tmp_path_factory.mktemp("reasoning"))


def test_run_shows_the_thinking_then_the_answer(models: dict[str, Path]) -> None:
    result = quantdesk("run", str(models["r1"]), "--prompt", "2+2?", "--ctx", "256", "--no-probe")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Thinking:\nTwo and two make four.\n\nAnswer:\nIt is 4.\n"


def test_run_json_gives_the_thinking_its_own_field(models: dict[str, Path]) -> None:
    result = quantdesk("run", str(models["r1"]), "--prompt", "2+2?", "--ctx", "256", "--json",
                       "--no-probe")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["thinking"], out["text"]) == ("Two and two make four.", "It is 4.")


def test_run_without_thinking_where_the_template_can(models: dict[str, Path]) -> None:
    result = quantdesk("run", str(models["qwen3"]), "--prompt", "Hi", "--ctx", "256", "--json",
                       "--no-thinking", "--no-probe")  # fmt: skip
    out = json.loads(result.stdout)
    assert (out["thinking"], out["text"]) == ("", "Hello!")


@pytest.mark.starter
def test_run_holds_the_reply_to_a_json_schema(tmp_path: Path) -> None:
    """Structured output from the command line, on the instruct starter."""
    from quantdesk.engine.library.starter import chat_starter_source

    schema = {"type": "object", "required": ["city", "people"], "additionalProperties": False,
              "properties": {"city": {"type": "string", "maxLength": 30},
                             "people": {"type": "integer", "minimum": 0}}}  # fmt: skip
    (tmp_path / "city.json").write_text(json.dumps(schema))
    result = quantdesk("run", str(chat_starter_source()), "--prompt", "Name a big city.",
                       "--json-schema", str(tmp_path / "city.json"), "--json", "-n", "60",
                       "--ctx", "1024")  # fmt: skip
    assert result.returncode == 0, result.stderr
    reply = json.loads(json.loads(result.stdout)["text"])
    assert set(reply) == {"city", "people"} and isinstance(reply["people"], int)
    (tmp_path / "bad.json").write_text('{"type": "object", "properties": {"n": {"type": 7}}}')
    bad = quantdesk("run", str(chat_starter_source()), "--prompt", "Hi", "--json-schema",
                    str(tmp_path / "bad.json"))  # fmt: skip
    assert bad.returncode == 2 and "not valid at properties/n/type" in bad.stderr
    assert "Traceback" not in bad.stderr
