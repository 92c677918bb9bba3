"""Prompts and responses as HTML: Markdown and highlighted code render, HTML in the text stays text."""

from __future__ import annotations

from preference_ui import render


def test_markdown_renders_and_code_is_highlighted():
    out = render.markdown("Some **bold** text.\n\n```python\ndef f():\n    return 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<strong>bold</strong>" in out and '<pre class="wb-code">' in out
    assert '<span class="k">def</span>' in out and "<table>" in out


def test_a_newline_is_a_line_break():
    assert "17 * 3 = 51<br />\nAnswer: 51" in render.markdown("17 * 3 = 51\nAnswer: 51")


def test_html_scripts_images_and_javascript_links_never_reach_the_page_as_markup():
    text = ('<script>alert(1)</script> <img src=x onerror="alert(2)"> <b>b</b> [x](javascript:alert(3)) '
            '![pixel](https://tracker.example/p.png) [ok](https://example.org)\n\n```zz\n<script>\n```')
    out = render.markdown(text)
    assert "<script" not in out and "<img" not in out and "<b>" not in out and 'href="javascript' not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "onerror=&quot;alert(2)&quot;" in out
    assert '<a href="https://example.org" target="_blank" rel="noopener noreferrer nofollow">ok</a>' in out


def test_a_multi_turn_prompt_is_a_conversation_and_a_single_turn_plain_text():
    single = render.conversation([{"role": "user", "content": "Hi <you>"}])
    assert "wb-role" not in single and "Hi &lt;you&gt;" in single
    turns = render.conversation([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "2+2?"}])
    assert turns.count('class="wb-role"') == 4 and turns.index("Be brief.") < turns.index("2+2?")


def test_diff_marks_removed_and_added_words_and_escapes_them():
    assert render.diff("Answer: 5 <b>", "Answer: 6 <b> ok") == (
        '<pre class="wb-diff">Answer: <del>5</del><ins>6</ins> &lt;b&gt;<ins> ok</ins></pre>')
