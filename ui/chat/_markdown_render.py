"""Markdown -> HTML for chat messages, in the subset of HTML that QTextDocument understands.

Model output is untrusted: raw HTML is never passed through (it is escaped as text), images
become plain links (a QTextDocument would otherwise try to load them) and only the link schemes
markdown-it considers safe survive. Rendering is tolerant of half-written markdown, which is what
a streaming reply is: an unclosed code fence renders as code up to the end of the text so far.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from quantdesk.ui.chat._code_highlight import guess_language, highlight_code

__all__ = ["MarkdownTheme", "code_blocks", "render_markdown", "theme"]

#: Fallback list; Qt picks the first family installed.
DEFAULT_MONO = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"

_HEADING_SIZES = {"h1": "x-large", "h2": "large", "h3": "medium"}
_CODE_TOKENS = ("fence", "code_block")


@dataclass(frozen=True)
class MarkdownTheme:
    """Colors (CSS strings) used for the parts of a message the text color does not cover."""

    link: str
    muted: str
    code_bg: str
    code_header_bg: str
    inline_code_bg: str
    table_border: str


_LIGHT = MarkdownTheme(
    link="#0b62d6",
    muted="#6b7280",
    code_bg="#f2f4f6",
    code_header_bg="#e6e9ed",
    inline_code_bg="#eceef1",
    table_border="#c9cdd3",
)
_DARK = MarkdownTheme(
    link="#6cb6ff",
    muted="#9aa3ad",
    code_bg="#1e2227",
    code_header_bg="#2a2f36",
    inline_code_bg="#30353c",
    table_border="#4a515a",
)


def theme(dark: bool) -> MarkdownTheme:
    """The colors for a light or a dark palette."""
    return _DARK if dark else _LIGHT


def _new_parser() -> MarkdownIt:
    # html=False escapes raw HTML; breaks=True keeps the single newlines people and models type.
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


_PARSER = _new_parser()


def _code_text(token: Token) -> str:
    return token.content.removesuffix("\n")


def code_blocks(text: str) -> list[str]:
    """The contents of the message's code blocks (fenced or indented), in order."""
    return [_code_text(t) for t in _PARSER.parse(text) if t.type in _CODE_TOKENS]


def render_markdown(text: str, *, dark: bool, mono_family: str = DEFAULT_MONO) -> str:
    """Render ``text`` as QTextDocument HTML.

    Code blocks get a header row with the language and a ``copy-code:N`` link, N being the
    block's index in :func:`code_blocks`, and their code in colour (``_code_highlight``).
    """
    env: dict[str, Any] = {"theme": theme(dark), "mono": mono_family, "code_index": 0,
                           "dark": dark, "lines": text.split("\n")}  # fmt: skip
    return _RENDERER.render(text, env)


# Render rules. markdown-it binds each as a method of its renderer, so they are called as
# rule(renderer, tokens, idx, options, env); env carries the theme and the code block counter.
_Tokens = Sequence[Token]


def _code(_r: Any, tokens: _Tokens, idx: int, _o: Any, env: dict) -> str:
    token = tokens[idx]
    th: MarkdownTheme = env["theme"]
    index = env["code_index"]
    env["code_index"] = index + 1
    language = token.info.split()[0] if token.info.strip() else ""
    text = _code_text(token)
    closed = _closed(token, env["lines"])
    if not language and closed:  # a guess only once the block is whole
        language = guess_language(text)
    lang = html.escape(language)
    code = (highlight_code(text, language, env["dark"], streaming=not closed)
            or html.escape(text) or "&nbsp;")  # fmt: skip
    head = f'bgcolor="{th.code_header_bg}" style="font-size:small;'
    return (
        f'<table width="100%" cellspacing="0" cellpadding="6" border="0" '
        f'bgcolor="{th.code_bg}" style="margin-top:2px; margin-bottom:8px;">'
        f'<tr><td {head} color:{th.muted};">{lang}</td>'
        f'<td align="right" {head}">'
        f'<a href="copy-code:{index}" style="color:{th.link}; text-decoration:none;">'
        f"Copy</a></td></tr>"
        f'<tr><td colspan="2"><pre style="margin:0; white-space:pre-wrap; '
        f'font-family:{env["mono"]};">{code}</pre></td></tr></table>\n'
    )


def _closed(token: Token, lines: list[str]) -> bool:
    """Whether the code block is whole: indented, or fenced with its closing fence written
    (a streaming reply's open fence runs to the end of the text so far)."""
    if token.type != "fence":
        return True
    start, end = token.map or (0, 0)
    last = lines[end - 1].strip() if start < end - 1 < len(lines) else ""
    return bool(last) and last.startswith(token.markup) and set(last) == set(token.markup[0])


def _code_inline(_r: Any, tokens: _Tokens, idx: int, _o: Any, env: dict) -> str:
    th: MarkdownTheme = env["theme"]
    return (
        f'<code style="font-family:{env["mono"]}; background-color:{th.inline_code_bg};">'
        f"{html.escape(tokens[idx].content)}</code>"
    )


def _image(r: Any, tokens: _Tokens, idx: int, options: Any, env: dict) -> str:
    # A QTextDocument would try to load the image; show a link to it instead.
    token = tokens[idx]
    alt = r.renderInlineAsText(token.children or [], options, env) or "image"
    src = html.escape(str(token.attrs.get("src", "")))
    return f'<a href="{src}" style="color:{env["theme"].link};">[{html.escape(alt)}]</a>'


def _link_open(r: Any, tokens: _Tokens, idx: int, options: Any, env: dict) -> str:
    tokens[idx].attrSet("style", f"color:{env['theme'].link};")
    return r.renderToken(tokens, idx, options, env)


def _heading_open(r: Any, tokens: _Tokens, idx: int, options: Any, env: dict) -> str:
    size = _HEADING_SIZES.get(tokens[idx].tag, "medium")
    tokens[idx].attrSet("style", f"font-size:{size}; margin-top:10px; margin-bottom:4px;")
    return r.renderToken(tokens, idx, options, env)


def _block_open(r: Any, tokens: _Tokens, idx: int, options: Any, env: dict) -> str:
    # Qt's defaults (12px above and below every paragraph) are too airy for a chat.
    tokens[idx].attrSet("style", "margin-top:0px; margin-bottom:8px;")
    return r.renderToken(tokens, idx, options, env)


def _blockquote_open(r: Any, tokens: _Tokens, idx: int, options: Any, env: dict) -> str:
    th: MarkdownTheme = env["theme"]
    style = f"margin-left:14px; margin-right:0px; margin-bottom:8px; color:{th.muted};"
    tokens[idx].attrSet("style", style)
    return r.renderToken(tokens, idx, options, env)


def _table_open(_r: Any, _t: _Tokens, _i: int, _o: Any, env: dict) -> str:
    th: MarkdownTheme = env["theme"]
    return (
        f'<table border="1" cellspacing="0" cellpadding="4" style="border-collapse:collapse; '
        f'border-style:solid; border-color:{th.table_border}; margin-bottom:8px;">\n'
    )


def _html_renderer() -> MarkdownIt:
    md = _new_parser()
    rules = {
        "fence": _code,
        "code_block": _code,
        "code_inline": _code_inline,
        "image": _image,
        "link_open": _link_open,
        "heading_open": _heading_open,
        "paragraph_open": _block_open,
        "bullet_list_open": _block_open,
        "ordered_list_open": _block_open,
        "blockquote_open": _blockquote_open,
        "table_open": _table_open,
    }
    for name, rule in rules.items():
        md.add_render_rule(name, rule)
    return md


_RENDERER = _html_renderer()
