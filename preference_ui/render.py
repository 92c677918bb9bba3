"""Prompts and responses as sanitised HTML: Markdown with highlighted code, raw HTML shown as text.

The HTML is built on the server with markdown-it (``html`` off: every tag in the text is escaped,
so ``<script>`` or ``onerror=`` arrive as text) and Pygments for fenced code blocks. Images are not
rendered (no request to an address a response names); links keep markdown-it's scheme check
(no ``javascript:``) and open in a new tab without a referrer. A newline is a line break, as in
chat answers (``17 * 3 = 51`` and ``Answer: 51`` stay on two lines).
"""

from __future__ import annotations

import difflib
import html
import re

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)
PYGMENTS_CSS = HtmlFormatter(style="friendly").get_style_defs(".wb-md pre.wb-code")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """A fenced code block, highlighted when its language is known (escaped text otherwise)."""
    try:
        body = highlight(code, get_lexer_by_name(lang.strip() or "text"), _FORMATTER)
    except ClassNotFound:
        body = html.escape(code)
    return f'<pre class="wb-code"><code>{body}</code></pre>'


def _parser(breaks: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": breaks, "highlight": _highlight}).enable("table")
    md.disable("image").add_render_rule("link_open", lambda self, tokens, idx, options, env: (
        tokens[idx].attrSet("target", "_blank") or tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        or self.renderToken(tokens, idx, options, env)))
    return md


_MD, _DOC = _parser(breaks=True), _parser(breaks=False)


def markdown(text: str) -> str:
    """One text as sanitised HTML in a ``wb-md`` block."""
    return f'<div class="wb-md">{_MD.render(text)}</div>'


def document(text: str) -> str:
    """A Markdown document (the guidelines) as sanitised HTML: as :func:`markdown`, but a newline joins lines."""
    return f'<div class="wb-md wb-doc">{_DOC.render(text)}</div>'


def conversation(messages: list[dict]) -> str:
    """A prompt as HTML: a single user turn as is, several turns as a conversation with their roles."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return markdown(messages[0]["content"])
    turns = "".join(f'<div class="wb-turn wb-role-{html.escape(m["role"])}">'
                    f'<div class="wb-role">{html.escape(m["role"])}</div>{markdown(m["content"])}</div>'
                    for m in messages)
    return f'<div class="wb-conversation">{turns}</div>'


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def diff(old: str, new: str) -> str:
    """A word-level diff of two texts as HTML: removed words in ``<del>``, added ones in ``<ins>``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{html.escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{html.escape(''.join(b[j1:j2]))}</ins>")
        if op == "equal":
            out.append(html.escape("".join(a[i1:i2])))
    return f'<pre class="wb-diff">{"".join(out)}</pre>'
