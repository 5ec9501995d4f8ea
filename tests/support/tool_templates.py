"""Chat templates that render tools as the model families people call tools with do, written
for the tests (the models' own templates are longer; these keep the parts that matter here):

* :data:`HERMES_TOOLS` - Qwen 2.5 / Qwen3 / Hermes 2 Pro: ChatML; the tools in the system
  message inside ``<tools>``; calls as ``<tool_call>`` blocks; results in a user turn inside
  ``<tool_response>``.
* :data:`LLAMA3_TOOLS` - Llama 3.1–3.3: the tools in the system message, a call as the JSON
  ``{"name", "parameters"}``, results in an ``ipython`` turn (the generation prompt stops at
  ``<|end_header_id|>``, where the real one adds a blank line, so that the scripted model's
  trigger is one token).
* :data:`MISTRAL_TOOLS` - Mistral Nemo: ``[AVAILABLE_TOOLS]`` before the last question, calls
  after ``[TOOL_CALLS]`` with ids the template insists have 9 letters and digits, results in
  ``[TOOL_RESULTS]``.

:func:`write_tool_models` writes one scripted model (``tests.support.scripted_models``) per
family, each answering with a call of ``get_weather`` for Paris as its family writes it.
"""

from __future__ import annotations

from pathlib import Path

HERMES_TOOLS = (
    "{%- if tools %}<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}"
    "{% else %}You are a helpful assistant.{% endif %}\n\n# Tools\n<tools>"
    "{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools>\n"
    "Call them within <tool_call></tool_call> tags.<|im_end|>\n"
    "{% elif messages[0].role == 'system' %}<|im_start|>system\n"
    "{{ messages[0].content }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'user' or (m.role == 'assistant' and not m.tool_calls) %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% elif m.role == 'assistant' %}<|im_start|>assistant\n"
    "{% if m.content %}{{ m.content }}\n{% endif %}"
    "{% for tc in m.tool_calls %}<tool_call>\n"
    '{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}'
    "\n</tool_call>{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ m.content }}"
    "\n</tool_response><|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HERMES_TOKENS = ("<|im_start|>", "<|im_end|>")

LLAMA3_TOOLS = (
    "{{ bos_token }}{% if tools %}<|start_header_id|>system<|end_header_id|>\n\n"
    "Environment: ipython\nTo call a function, respond with JSON in the format "
    '{"name": function name, "parameters": dictionary of argument name and its value}.\n'
    "{% for t in tools %}{{ t | tojson }}\n{% endfor %}<|eot_id|>{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'assistant' and m.tool_calls %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% for tc in m.tool_calls %}"
    '{"name": "{{ tc.function.name }}", "parameters": {{ tc.function.arguments | tojson }}}'
    "{% endfor %}<|eom_id|>"
    "{% elif m.role == 'tool' %}<|start_header_id|>ipython<|end_header_id|>\n\n"
    "{{ m.content }}<|eot_id|>"
    "{% else %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}"
)
LLAMA3_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
                 "<|python_tag|>")  # fmt: skip

MISTRAL_TOOLS = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m.role == 'user' %}{% if tools and loop.last %}"
    "[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}"
    "[INST]{{ m.content }}[/INST]"
    "{% elif m.role == 'assistant' and m.tool_calls %}[TOOL_CALLS]["
    "{% for tc in m.tool_calls %}{% if tc.id | length != 9 %}"
    "{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}"
    "{% endif %}"
    '{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}, '
    '"id": "{{ tc.id }}"}{% if not loop.last %}, {% endif %}{% endfor %}]{{ eos_token }}'
    "{% elif m.role == 'tool' %}[TOOL_RESULTS]"
    '{"content": {{ m.content | tojson }}, "call_id": "{{ m.tool_call_id }}"}[/TOOL_RESULTS]'
    "{% else %}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}"
)
MISTRAL_TOKENS = ("[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                  "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")  # fmt: skip

PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def write_tool_models(folder: Path) -> dict[str, Path]:
    """One scripted model per family, each calling ``get_weather`` for Paris its own way:
    "hermes" says a few words first, then its ``<tool_call>`` block; "llama3" answers with the
    call's JSON alone; "mistral" with ``[TOOL_CALLS]`` and a list holding the call and its id;
    "hermes-chat" is the hermes family answering in words, without a call."""
    from tests.support.scripted_models import write_scripted_model

    def model(name: str, **kwargs: object) -> Path:
        return write_scripted_model(folder / f"{name}.gguf", name=name, **kwargs)

    return {
        "hermes": model("hermes-tools", chat_template=HERMES_TOOLS, control=HERMES_TOKENS,
                        trigger="\n", script=["Let me look that up.", "<tool_call>",
                                              f"\n{PARIS}\n", "</tool_call>"]),
        "llama3": model("llama3-tools", chat_template=LLAMA3_TOOLS, control=LLAMA3_TOKENS,
                        trigger="<|end_header_id|>",
                        script=['{"name": "get_weather", "parameters": {"city": "Paris"}}']),
        "mistral": model("mistral-tools", chat_template=MISTRAL_TOOLS, control=MISTRAL_TOKENS,
                         trigger="[/INST]", script=[
                             "[TOOL_CALLS]", '[{"name": "get_weather", "arguments": '
                             '{"city": "Paris"}, "id": "abcDEF123"}]']),
        "hermes-chat": model("hermes-chat", chat_template=HERMES_TOOLS, control=HERMES_TOKENS,
                             trigger="\n", script=["It is sunny in Paris today."]),
    }  # fmt: skip
