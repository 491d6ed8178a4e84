"""The repeated rows of a digest: its lists of action items and its owners table, for the weekly
email (HTML and text) and the page that shows it.

A manager's email lists up to 25 items in each of five sections, twice (HTML and text). Written
as template loops, those rows were 85% of composing the email and most of the weekly run's time
(docs/performance.md); here each row is one format call. The markup is what the loops wrote,
byte for byte, and every value is escaped as a template escapes it (in the HTML; the text email
is plain text, in a template with autoescape off).
"""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_ROW = (
    '\n      <tr>\n        <td><a href="{}{}">{}</a></td>\n        <td>{}</td>\n        {}\n'
    "        <td>{}</td>\n      </tr>\n      "
)
_NO_DUE_DATE = mark_safe('<span class="text-body-secondary">no due date</span>')
_OVERDUE = {
    False: mark_safe(' <span class="badge text-bg-danger">overdue</span>'),
    True: mark_safe(' <span class="badge text-bg-danger" style="color: #c92a2a;">overdue</span>'),
}


def _owner_name(item, none: str) -> str:
    return (item.owner.name if item.owner is not None else "") or none


@register.simple_tag
def digest_item_rows(section, *, show_owner: bool, for_email: bool, base_url: str, today):
    """The <tr>s of digest_items.html: title with its link, incident, owner (show_owner), and
    the due date, marked overdue when an open item's date is before `today`."""
    rows = []
    for item in section.items:
        owner = format_html("<td>{}</td>", _owner_name(item, "No owner")) if show_owner else ""
        if item.due_on:
            overdue = item.is_open and item.due_on < today
            due = format_html("{}{}", item.due_label, _OVERDUE[for_email] if overdue else "")
        else:
            due = _NO_DUE_DATE
        rows.append(
            format_html(_ROW, base_url, item.url, item.title, item.incident.human_id, owner, due)
        )
    return mark_safe("".join(rows))


@register.simple_tag
def digest_item_lines(section, *, show_owner: bool, base_url: str) -> str:
    """The lines of weekly_digest_items.txt, as plain text (that template has autoescape off;
    anywhere else this would be escaped)."""
    lines = []
    for item in section.items:
        owner = f", {_owner_name(item, 'no owner')}" if show_owner else ""
        due = f"due {item.due_short}" if item.due_on else "no due date"
        lines.append(
            f"- {item.title} [{item.incident.human_id}]{owner}, {due}\n  {base_url}{item.url}\n"
        )
    return "".join(lines)


@register.simple_tag
def digest_owner_lines(owners) -> str:
    """The "By owner" lines of weekly_digest_body.txt, as plain text (autoescape off there)."""
    return "".join(
        f"  {row.name}: {row.overdue} / {row.due_soon} / {row.done} / {row.new}\n" for row in owners
    )


_OWNER_ROW = (
    '\n          <tr><td>{}</td><td class="text-end">{}</td><td class="text-end">{}</td>'
    '<td class="text-end">{}</td><td class="text-end">{}</td></tr>\n          '
)


@register.simple_tag
def digest_owner_rows(owners) -> SafeString:
    """The <tr>s of digest_sections.html's "By owner" table."""
    return mark_safe(
        "".join(
            format_html(_OWNER_ROW, row.name, row.overdue, row.due_soon, row.done, row.new)
            for row in owners
        )
    )
