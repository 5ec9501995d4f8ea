"""JSON output as a person meets it: a click switches a chat's replies to JSON, Schema… takes a
JSON Schema (a wrong one is refused in the dialog with the reason, and the dialog stays open),
the instruct starter's reply then parses and validates, and the chat keeps the setting when it
is opened again; switched off, replies are text again. Real clicks on the real window, the
instruct starter through real llama.cpp, the store read back as saved."""

from __future__ import annotations

import json

import jsonschema
from PySide6.QtTest import QTest

from quantdesk.engine.library.starter import chat_starter_source
from quantdesk.ui.chat.json_schema_dialog import JsonSchemaDialog
from tests.support.dialogs import button, click, when_dialog
from tests.support.journey_actions import add_in_place, load_by_double_click, type_and_send

PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 30},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "mood": {"enum": ["happy", "sad", "curious"]}},
    "required": ["name", "age", "mood"], "additionalProperties": False}  # fmt: skip


def test_a_chat_switched_to_json_output_with_a_schema_gets_replies_that_validate(
    qtbot, window_app
) -> None:
    window, controller = window_app
    add_in_place(qtbot, window, chat_starter_source())
    window.settings_panel.editor("sampling.max_tokens").setValue(120)
    load_by_double_click(qtbot, window, controller, "Smollm2")
    page = window.chat
    assert not page.json_output.isChecked() and not page.schema.isEnabled()

    click(page.json_output)
    assert page.json_output.isChecked() and page.schema.isEnabled()
    seen: dict[str, str] = {}

    def give_schema(dialog: JsonSchemaDialog) -> None:
        dialog.editor.setFocus()
        QTest.keyClicks(dialog.editor, '{"type": "object", "properties": {"age": {"type": "int"}}}')
        click(button(dialog, "OK"))
        seen["refused"] = dialog.problem.text() if dialog.problem.isVisible() else ""
        assert dialog.isVisible()  # still open, to be put right
        dialog.editor.selectAll()
        QTest.keyClicks(dialog.editor, json.dumps(PERSON))
        click(button(dialog, "OK"))

    answered = when_dialog(JsonSchemaDialog, give_schema)
    click(page.schema)
    answered.check()
    assert "not valid at properties/age/type" in seen["refused"]
    assert page.schema.text() == "Schema ✓…"

    type_and_send(qtbot, window, controller, "Describe a pirate.")
    reply = page.transcript.messages()[-1]
    jsonschema.validate(json.loads(reply.text), PERSON)  # it parses, and follows the schema

    history = controller.chat.history
    chat_id = history.chat_id
    wanted = {"type": "json_schema", "json_schema": {"name": "chat", "schema": PERSON}}
    assert history.store.chat(chat_id).response_format == wanted
    stored = history.store.messages(chat_id)[-1]
    assert stored.settings["response_format"] == wanted  # with the reply's other settings
    assert json.loads(stored.text) == json.loads(reply.text)

    controller.chat.new_chat()  # a new chat: text
    assert not page.json_output.isChecked() and page.schema.text() == "Schema…"
    history.open(chat_id)  # opened again: JSON output, with its schema
    assert page.json_output.isChecked() and page.schema.text() == "Schema ✓…"
    click(page.json_output)  # off
    assert not page.schema.isEnabled()
    qtbot.waitUntil(lambda: history.store.chat(chat_id).response_format is None, timeout=5_000)
