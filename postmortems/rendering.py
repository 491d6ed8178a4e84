"""Markdown written by people, turned into HTML that is safe to put in a page, a PDF or a file.

Two doors, one rule each:
- `render_markdown(text)`: python-markdown, then nh3 with an allow-list. Whatever the author
  typed (raw HTML, SVG, `javascript:` links, `data:` images), the output carries no script, no
  event handler, no style and no URL outside http/https/mailto or this site's own paths.
- `markdown_for_export(text)` / `escape_markdown(text)`: Markdown for the .md download, with raw
  HTML made literal and dangerous link targets removed, so even a naive renderer shows it inertly.
"""

import html
import re
import xml.etree.ElementTree as etree
from urllib.parse import urlsplit

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"

# Browsers drop these anywhere in a URL before reading its scheme ("java\tscript:").
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def _relative_url(url: str) -> str | None:
    """Keep paths and fragments on this site; drop "//host", backslash tricks and the rest."""
    if "\\" in url or _INVISIBLE.search(url):
        return None
    if url.startswith("#") or (url.startswith("/") and not url.startswith("//")):
        return url
    return None


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # A second check behind nh3's url_schemes: nothing but the allowed schemes or site paths.
    if attribute != "href":
        return value
    return value if is_safe_url(value) else None


def is_safe_url(url: str) -> bool:
    """http, https and mailto URLs, and paths or fragments on this site."""
    url = url.strip()
    if _relative_url(url) is not None:
        return True
    if _INVISIBLE.search(url) or "\\" in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() not in URL_SCHEMES:
        return False
    return parts.scheme.lower() == "mailto" or bool(parts.netloc)


_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags={"script", "style"},
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel=LINK_REL,
    url_schemes=URL_SCHEMES,
    url_relative=_relative_url,
)


class _ImagesAsLinks(Treeprocessor):
    """`![alt](url)` becomes a link to the image: no remote image ever loads in a page or PDF.

    Loading one would leak every reader's address to whoever owns the URL (and CSP would block it
    anyway); a link keeps the reference without fetching anything.
    """

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            for index, child in enumerate(list(element)):
                if child.tag != "img":
                    continue
                link = etree.Element("a", {"href": child.get("src", "")})
                link.text = "Image: " + (child.get("alt") or child.get("src", ""))
                link.tail = child.tail
                element.remove(child)
                element.insert(index, link)


class _ImagesAsLinksExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (markdown's API)
        md.treeprocessors.register(_ImagesAsLinks(md), "images_as_links", 0)


def _markdown() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", _ImagesAsLinksExtension()],
        output_format="html",
    )


def sanitise_html(fragment: str) -> str:
    return _cleaner.clean(fragment)


def render_markdown(text: str) -> SafeString:
    """Markdown to sanitised HTML; empty (after comments are dropped) becomes ""."""
    if not text or not text.strip():
        return mark_safe("")
    converted = _markdown().convert(text)
    return mark_safe(sanitise_html(converted).strip())  # sanitised just above


# --- Markdown for export ------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_FENCE = re.compile(
    r"^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?(^\1?\2[ \t]*$|\Z)", re.DOTALL | re.MULTILINE
)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
# An inline link or image destination: "](" then <...> or a run without spaces, parens balanced
# one level deep, which is what CommonMark renderers accept.
_INLINE_DESTINATION = re.compile(r"\]\(\s*(<[^>\n]*>|(?:[^\s()]|\([^\s()]*\))+)")
_REFERENCE_DEFINITION = re.compile(r"^( {0,3}\[[^\]\n]+\]:[ \t]*)(<[^>\n]*>|\S+)", re.MULTILINE)
# Inline punctuation that could start emphasis, a link, code, a table cell or raw HTML.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()!|~>])")
# What only matters at the start of a line: headings, lists, quotes, setext underlines.
_LINE_START = re.compile(r"^(\s*)(?:([#+\-=])|(\d+)([.)]))")


def _escape_line_start(match: re.Match) -> str:
    indent, symbol, number, delimiter = match.groups()
    if symbol == "=":
        return indent + "&#61;"  # not every renderer honours "\="
    if symbol:
        return f"{indent}\\{symbol}"
    return f"{indent}{number}\\{delimiter}"


def _safe_destination(destination: str) -> str:
    inner = destination[1:-1] if destination.startswith("<") else destination
    # Renderers decode entities and percent-escapes before acting on a URL; judge what they see.
    decoded = html.unescape(inner)
    return destination if is_safe_url(decoded) else "#"


def _neutralise_prose(text: str) -> str:
    # As in the page: an image becomes a link, so opening the file loads nothing remote.
    text = text.replace("![", "[Image: ")
    text = _INLINE_DESTINATION.sub(lambda m: "](" + _safe_destination(m.group(1)), text)
    text = _REFERENCE_DEFINITION.sub(lambda m: m.group(1) + _safe_destination(m.group(2)), text)
    # Raw HTML and autolinks (<javascript:...>) become literal text in every renderer.
    return text.replace("<", "&lt;")


def _outside_code(text: str, transform) -> str:
    """Apply `transform` to everything except fenced code blocks and inline code spans."""
    out: list[str] = []
    position = 0
    for fence in _FENCE.finditer(text):
        out.append(_outside_spans(text[position : fence.start()], transform))
        out.append(fence.group(0))
        position = fence.end()
    out.append(_outside_spans(text[position:], transform))
    return "".join(out)


def _outside_spans(text: str, transform) -> str:
    out: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(transform(text[position : span.start()]))
        out.append(span.group(0))
        position = span.end()
    out.append(transform(text[position:]))
    return "".join(out)


def markdown_for_export(text: str) -> str:
    """The author's Markdown, guiding comments dropped, raw HTML and unsafe links made inert."""
    text = _COMMENT.sub("", text or "").strip()
    return _outside_code(text, _neutralise_prose)


def escape_markdown(text: str) -> str:
    """Plain text (a title, a name, an entry's words) as literal Markdown, on one line."""
    text = " ".join((text or "").split())
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text).replace("<", "&lt;")
    return _LINE_START.sub(_escape_line_start, text)


def escape_markdown_block(text: str) -> str:
    """Plain multi-line text as literal Markdown, keeping its line breaks."""
    lines = [escape_markdown(line) for line in (text or "").splitlines()]
    return "  \n".join(line for line in lines if line)
