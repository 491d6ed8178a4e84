"""Markdown → sanitised HTML, and Markdown for export: whatever people type stays inert."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import markdown
import pytest

from postmortems import rendering

XSS_CORPUS = [
    "<script>alert('script')</script>",
    "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">raw link</a>',
    '<a href="jav&#x61;script:alert(1)">entity link</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<p style="background:url(javascript:alert(1))" onclick="alert(1)">styled</p>',
    '<div onmouseover="alert(1)">hover</div>',
    '<form action="https://evil.example"><input name="x"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<base href="https://evil.example/">',
    "[md link](javascript:alert(1))",
    "[md link](JaVaScRiPt:alert(1))",
    "[md link](  javascript:alert(1))",
    "[md link](java\tscript:alert(1))",
    "[md link](jav&#x61;script:alert(1))",
    "[md link](vbscript:msgbox(1))",
    "[md link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[md link](//evil.example/path)",
    "[md link](/\\evil.example)",
    "![md image](javascript:alert(1))",
    "![md image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![md image](http://evil.example/pixel.png)",
    '![md image](x" onerror="alert(1))',
    "[ref link][r]\n\n[r]: javascript:alert(1)",
    "[ref link][r]\n\n[r]: <data:text/html,<script>alert(1)</script>>",
    "<javascript:alert(1)>",
    "<data:text/html,x>",
    '"><script>alert(1)</script>',
    "`<script>alert('in code')</script>`",
    "```\n<script>alert('fenced')</script>\n```",
    "<!-- <script>alert(1)</script> -->",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="https://ok.example" target="_blank" onclick="x()">ok</a>',
    "| a | b |\n| --- | --- |\n| <img src=x onerror=alert(1)> | [c](javascript:alert(1)) |",
]

DANGEROUS_TAGS = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "img",
    "form",
    "input",
    "button",
    "meta",
    "link",
    "base",
}
SAFE_SCHEMES = {"http", "https", "mailto", ""}


class Inspector(HTMLParser):
    """Collects what a browser would act on: tags, event handlers, URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"{tag}[{name}]")
            if name in {"href", "src", "action", "data", "xlink:href"} and value is not None:
                cleaned = "".join(ch for ch in value if ch.isprintable() and not ch.isspace())
                scheme = urlsplit(cleaned).scheme.lower()
                if scheme not in SAFE_SCHEMES or cleaned.startswith(("//", "/\\")):
                    self.problems.append(f"{tag}[{name}]={value!r}")

    handle_startendtag = handle_starttag


def problems_in(html: str) -> list[str]:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


@pytest.mark.parametrize("text", XSS_CORPUS)
def test_rendered_markdown_carries_no_script_handler_or_unsafe_url(text):
    html = rendering.render_markdown(text)

    assert problems_in(html) == []


@pytest.mark.parametrize("text", XSS_CORPUS)
def test_exported_markdown_stays_inert_even_in_a_renderer_that_does_not_sanitise(text):
    exported = rendering.markdown_for_export(text)

    naive = markdown.markdown(exported, extensions=["fenced_code", "tables"])

    assert problems_in(naive) == []


@pytest.mark.parametrize("text", XSS_CORPUS)
def test_escaped_plain_text_stays_inert_in_a_renderer_that_does_not_sanitise(text):
    naive = markdown.markdown(rendering.escape_markdown(text))

    assert problems_in(naive) == []
    assert problems_in(markdown.markdown(rendering.escape_markdown_block(text))) == []


def test_links_get_rel_noopener_noreferrer_nofollow():
    html = rendering.render_markdown("[docs](https://example.com/runbook)")

    assert (
        '<a href="https://example.com/runbook" rel="noopener noreferrer nofollow">docs</a>' in html
    )


def test_mailto_and_links_within_the_site_are_kept():
    html = rendering.render_markdown(
        "[mail](mailto:sre@example.com) [entry](/incidents/4/#entry-9)"
    )

    assert 'href="mailto:sre@example.com"' in html
    assert 'href="/incidents/4/#entry-9"' in html


def test_an_image_becomes_a_link_so_nothing_remote_is_loaded():
    html = rendering.render_markdown("![the graph](https://grafana.example/d/1.png)")

    assert "<img" not in html
    assert 'href="https://grafana.example/d/1.png"' in html
    assert "Image: the graph" in html


def test_ordinary_markdown_renders_fully():
    text = (
        "# Title\n\n- one\n- two\n\n1. first\n\n> quoted\n\n"
        "`code` **b** _i_ ~~x~~\n\n| a |\n|---|\n| 1 |"
    )

    html = rendering.render_markdown(text)

    for fragment in (
        "<h1>Title</h1>",
        "<li>one</li>",
        "<ol>",
        "<blockquote>",
        "<code>code</code>",
        "<strong>b</strong>",
        "<em>i</em>",
        "<table>",
    ):
        assert fragment in html


def test_guiding_comments_disappear_from_page_and_export():
    text = "<!-- Tell the story -->\nWhat happened."

    assert "Tell the story" not in rendering.render_markdown(text)
    assert rendering.markdown_for_export(text) == "What happened."


def test_code_in_the_export_is_left_as_written():
    text = "Run `rm -rf <dir>` then:\n\n```\n<b>not html</b>\n```"

    exported = rendering.markdown_for_export(text)

    assert "`rm -rf <dir>`" in exported
    assert "```\n<b>not html</b>\n```" in exported


def test_raw_html_in_the_export_shows_as_literal_text():
    exported = rendering.markdown_for_export("Before <b>bold?</b> after")

    assert exported == "Before &lt;b>bold?&lt;/b> after"
    assert "&lt;b&gt;bold?&lt;/b&gt;" in markdown.markdown(
        exported
    ) or "&lt;b>" in markdown.markdown(exported)


def test_safe_links_survive_the_export():
    exported = rendering.markdown_for_export(
        "[runbook](https://example.com/a_(b)) [bad](javascript:x)"
    )

    assert "[runbook](https://example.com/a_(b))" in exported
    assert "[bad](#)" in exported


def test_empty_text_renders_to_nothing():
    assert rendering.render_markdown("") == ""
    assert rendering.render_markdown("  \n ") == ""
    assert rendering.render_markdown("<!-- only a prompt -->") == ""
