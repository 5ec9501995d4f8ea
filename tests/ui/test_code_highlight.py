"""Code blocks in colour: the language from the fence or a guess, colours that follow the
light and dark palettes, the code itself unchanged (what is shown, what Copy copies), and a
block still streaming is never guessed at."""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCursor, QTextDocument

from quantdesk.ui.chat._code_highlight import (
    MAX_HIGHLIGHTED_CHARS,
    guess_language,
    highlight_code,
)
from quantdesk.ui.chat._markdown_render import code_blocks, render_markdown

PROGRAM = 'def greet(name):\n    return "<b>" + name  # a comment\n'


def _document(markdown: str, dark: bool) -> QTextDocument:
    doc = QTextDocument()
    doc.setHtml(render_markdown(markdown, dark=dark))
    return doc


def _colour_of(doc: QTextDocument, word: str) -> QColor:
    """The colour the document shows ``word`` in (its first character's)."""
    found = doc.find(word)
    assert not found.isNull(), word
    cursor = QTextCursor(doc)
    cursor.setPosition(found.selectionStart() + 1)
    return cursor.charFormat().foreground().color()


def test_a_fenced_block_is_coloured_by_its_language_in_both_palettes(qtbot) -> None:  # noqa: ARG001
    fenced = f"Here:\n\n```python\n{PROGRAM}```\n"
    keywords = []
    for dark in (False, True):
        doc = _document(fenced, dark)
        assert PROGRAM.rstrip("\n") in doc.toPlainText()  # the code as it is, "<b>" as text
        keyword, name, comment = (_colour_of(doc, w) for w in ("def", "greet", "# a comment"))
        assert len({keyword.name(), name.name(), comment.name()}) == 3  # three colours
        keywords.append(keyword.name())
    assert keywords[0] != keywords[1]  # the dark palette has colours of its own
    assert code_blocks(fenced) == [PROGRAM.rstrip("\n")]  # Copy copies the code, not markup


def test_an_unknown_language_or_a_huge_block_is_shown_plain() -> None:
    assert highlight_code("x = 1", "no-such-language", dark=False) is None
    assert highlight_code("x = 1\n" * (MAX_HIGHLIGHTED_CHARS // 6 + 1), "python", False) is None
    html = render_markdown("```klingon\n<tag> & more\n```", dark=False)
    assert "&lt;tag&gt; &amp; more" in html and "<span" not in html.split("<pre")[1]


def test_a_block_without_a_language_is_guessed_once_it_has_closed() -> None:
    samples = {
        "python": "import os\nfor name in os.listdir('.'):\n    print(name)",
        "javascript": "const doubled = [1, 2].map(n => n * 2);\nconsole.log(doubled);",
        "bash": "cd /tmp && ls -la | grep log",
        "sql": "SELECT name FROM users WHERE id = 1;",
        "rust": 'fn main() {\n    let x = 5;\n    println!("{}", x);\n}',
        "json": '{"name": "quantdesk", "tags": [1, 2]}',
        "": "Just a few plain words in a box.",
    }
    for language, code in samples.items():
        assert guess_language(code) == language, code
    closed = render_markdown(f"```\n{samples['python']}\n```", dark=False)
    assert ">python</td>" in closed and "<span" in closed.split("<pre")[1]  # label and colour
    streaming = render_markdown(f"```\n{samples['python']}", dark=False)  # no closing fence
    assert ">python</td>" not in streaming and "<span" not in streaming.split("<pre")[1]
