"""Code blocks in colour: Pygments' tokens as the inline-styled spans a QTextDocument shows.

The language comes from the fence (```` ```python ````); a block without one is guessed among the
languages models write most (a wrong colour scheme is worse than none, so the guess is only
among these, and only once the block has closed). Colours come from a light and a dark
Pygments style, following the chat's palette; only the text's colour and weight are used, the
block keeps the chat's own background.

A streaming reply builds its message's document again on every flush, and colour is not free:
each coloured run is a format the document parses and lays out (measured by
``bench/code_render.py``: 2,000 characters of Python cost about 12 ms more per build than plain,
6,000 about 45 ms). So a block still streaming is coloured while it is short
(:data:`MAX_STREAMING_CHARS`), then shown plain until its fence closes; a whole block is
coloured once, from a cache, up to :data:`MAX_HIGHLIGHTED_CHARS`; longer ones stay plain.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import Token, _TokenType
from pygments.util import ClassNotFound

LIGHT_STYLE, DARK_STYLE = "default", "one-dark"
#: Whole blocks longer than this are shown plain (building one costs about 8 ms per 1,000
#: characters coloured, on this project's 2-core machine).
MAX_HIGHLIGHTED_CHARS = 4_000
#: A block still streaming is built again on every flush: coloured only while this short.
MAX_STREAMING_CHARS = 1_500
#: What a block without a language is guessed among, with the signs of each (a sign is a regular
#: expression; the language with the most signs present wins, none: no guess).
_SIGNS: dict[str, tuple[str, ...]] = {
    "python": (r"^\s*(def|class)\s+\w+.*:\s*$", r"^\s*(import|from)\s+[\w.]+( import \w+)?\s*$",
               r"^\s*(if|elif|for|while|with|try|except)\b.*:\s*$", r"\bprint\(", r"\bself\."),
    "javascript": (r"\b(const|let|var)\s+\w+\s*=", r"=>", r"\bconsole\.log\(",
                   r"\bfunction\s*\w*\s*\(", r"\bdocument\.\w+"),
    "typescript": (r"\binterface\s+\w+\s*\{", r"\w\s*:\s*(string|number|boolean)\b",),
    "bash": (r"^#!.*\bsh\b|^#!.*bash", r"^\s*(sudo|apt|apt-get|pip|npm|cd|ls|echo|export|mkdir|"
             r"git|curl|wget|chmod|docker)\s", r"\$\{?[A-Za-z_]\w*", r"\|\s*(grep|sort|wc)\b"),
    "c": (r"#include\s*<\w+\.h>", r"\bint\s+main\s*\(", r"\bprintf\s*\("),
    "cpp": (r"#include\s*<(iostream|vector|string|map)>", r"\bstd::", r"\bcout\s*<<"),
    "java": (r"\bpublic\s+(static\s+)?(final\s+)?(class|void|int|String)\b",
             r"\bSystem\.out\.", r"\bimport\s+java\."),
    "go": (r"^package\s+\w+", r"\bfunc\s+(\(\w+ \*?\w+\)\s*)?\w*\(", r":="),
    "rust": (r"\bfn\s+\w+\s*[(<]", r"\blet\s+(mut\s+)?\w+", r"\b\w+!\(", r"\buse\s+\w+::"),
    "sql": (r"(?i)^\s*(select|insert\s+into|update|delete\s+from|create\s+table)\b",
            r"(?i)\bfrom\s+\w+", r"(?i)\bwhere\b"),
    "html": (r"^\s*<(!DOCTYPE|html|head|body|div|p|span|a|ul|ol|table|form)\b",
             r"</(div|p|span|a|li|td|html|body)>"),
    "css": (r"^\s*[.#]?[\w-]+(\s*[,>]\s*[.#]?[\w-]+)*\s*\{", r"^\s*[\w-]+\s*:\s*[^;]+;\s*$"),
    "yaml": (r"^[\w-]+:\s*$", r"^\s+[\w-]+:\s+\S", r"^\s*-\s+\w"),
}
_COMPILED = {name: tuple(re.compile(sign, re.MULTILINE) for sign in signs)
             for name, signs in _SIGNS.items()}  # fmt: skip


@lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer | None:
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=4)
def _styles(dark: bool) -> dict[_TokenType, str]:
    """Each token type's CSS (colour, bold, italic) in the light or dark style."""
    style = get_style_by_name(DARK_STYLE if dark else LIGHT_STYLE)
    css = {}
    for token_type, spec in style:
        parts = [f"color:#{spec['color']}"] if spec["color"] else []
        parts += ["font-weight:bold"] * bool(spec["bold"]) + ["font-style:italic"] * bool(
            spec["italic"])  # fmt: skip
        css[token_type] = "; ".join(parts)
    return css


@lru_cache(maxsize=256)
def guess_language(code: str) -> str:
    """The likeliest language of ``code`` among the common ones (the most of its signs present;
    JSON when it parses as an object or a list), or "" when none shows."""
    head = code[:MAX_HIGHLIGHTED_CHARS]
    if head.lstrip()[:1] in ("{", "[") and _is_json(code):
        return "json"
    best, most = "", 0
    for name, signs in _COMPILED.items():
        present = sum(1 for sign in signs if sign.search(head))
        if present > most:
            best, most = name, present
    return best


def _is_json(code: str) -> bool:
    try:
        json.loads(code)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=256)
def highlight_code(code: str, language: str, dark: bool, streaming: bool = False) -> str | None:
    """``code`` as escaped HTML with coloured spans for ``language`` (a fence's name such as
    "python" or "js"), or None when the language is unknown or the block too long (a block
    still ``streaming`` is, sooner: see the module's docstring)."""
    lexer = _lexer(language.lower()) if language else None
    if lexer is None or len(code) > (MAX_STREAMING_CHARS if streaming else MAX_HIGHLIGHTED_CHARS):
        return None
    styles = _styles(dark)
    runs: list[list[str]] = []  # [css, text]: neighbours of one look share a span
    for token_type, text in lexer.get_tokens(code):
        css = ""
        while token_type is not Token and not (css := styles.get(token_type, "")):
            token_type = token_type.parent  # an unstyled subtype takes its parent's look
        if runs and (runs[-1][0] == css or not text.strip()):
            runs[-1][1] += text  # spaces take the look of what they follow: fewer spans
        else:
            runs.append([css, text])
    return "".join(f'<span style="{css}">{html.escape(text)}</span>' if css
                   else html.escape(text) for css, text in runs)  # fmt: skip
