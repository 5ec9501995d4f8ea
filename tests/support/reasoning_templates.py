"""Chat templates that mark thinking as the reasoning models people run do, written for the
tests (the models' own templates are longer; these keep the parts that matter here):

* :data:`R1_STYLE` - DeepSeek-R1 and its distills: the generation prompt opens ``<think>``, and
  an earlier reply is given back with everything up to its ``</think>`` cut off.
* :data:`QWEN3_STYLE` - Qwen3: ChatML; the model opens ``<think>`` itself; ``enable_thinking``
  false writes an empty block into the prompt; the reply after the last question is given back
  with its ``reasoning_content``, earlier ones without.
* :data:`HARMONY_STYLE` - gpt-oss: messages on channels; earlier thinking is dropped.
"""

from __future__ import annotations

from pathlib import Path

R1_STYLE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{% else %}{% set c = m['content'] %}{% if '</think>' in c %}"
    "{% set c = c.split('</think>')[-1] %}{% endif %}<｜Assistant｜>{{ c }}<｜end▁of▁sentence｜>"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)
R1_TOKENS = ("<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>")

QWEN3_STYLE = (
    "{% set ns = namespace(last_query=-1) %}{% for m in messages %}"
    "{% if m.role == 'user' %}{% set ns.last_query = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{% if m.role != 'assistant' %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% else %}{% set reasoning = m.reasoning_content if m.reasoning_content is defined else '' %}"
    "{% if loop.index0 > ns.last_query and reasoning %}"
    "<|im_start|>assistant\n<think>\n{{ reasoning.strip() }}\n</think>\n\n"
    "{{ m.content }}<|im_end|>\n"
    "{% else %}<|im_start|>assistant\n{{ m.content }}<|im_end|>\n{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)
QWEN3_TOKENS = ("<|im_start|>", "<|im_end|>")

HARMONY_STYLE = (
    "{% for m in messages %}{% if m.role == 'assistant' %}"
    "<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>"
    "{% else %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
)
HARMONY_TOKENS = ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>")


def write_reasoning_models(folder: Path) -> dict[str, Path]:
    """One scripted model (``tests.support.scripted_models``) per way of thinking, each writing
    the reply its family writes: DeepSeek-R1 (the block opened by the prompt), Qwen3 (opened
    by the model; with thinking off, the prompt's empty block leads to the answer alone), and
    gpt-oss's analysis and final channels (two models: a marker stands once in a script)."""
    from tests.support.scripted_models import write_scripted_model

    def model(name: str, **kwargs: object) -> Path:
        return write_scripted_model(folder / f"{name}.gguf", name=name, **kwargs)

    return {
        "r1": model("r1-style", chat_template=R1_STYLE, control=R1_TOKENS, trigger="\n",
                    script=["Two and two", " make four.\n", "</think>", "\n\n", "It is 4."]),
        "qwen3": model("qwen3-style", chat_template=QWEN3_STYLE, control=QWEN3_TOKENS,
                       trigger="\n", script=["<think>", "\nThe user greets me.\n", "</think>",
                                             "\n\n", "Hello!"]),
        "harmony-analysis": model(
            "harmony-analysis", chat_template=HARMONY_STYLE, control=HARMONY_TOKENS,
            trigger="assistant",
            script=["<|channel|>", "analysis", "<|message|>", "User says hi.", "<|end|>"]),
        "harmony-final": model(
            "harmony-final", chat_template=HARMONY_STYLE, control=HARMONY_TOKENS,
            trigger="assistant", script=["<|channel|>", "final", "<|message|>", "Hi!",
                                         "<|return|>"]),
    }  # fmt: skip
