"""Keyset ("seek") pagination for long lists: a page starts just after the last row shown.

With OFFSET, page 2,000 of the incident list made the database read and throw away 50,000 rows
(and work out each one's columns) before the 25 it showed; a keyset page costs what the first
page does, however deep (docs/performance.md). The price: "newer" and "older" links instead of
page numbers, which nobody used 2,000 deep anyway.

A cursor is the sort key of one row, e.g. `2024-03-02T15:00:00.000000Z,42` for newest-first
(created_at, then id). A cursor that does not parse is ignored: the list starts at the top.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Q, QuerySet

# Larger numbers are no row's key, and comparing with them overflows the database driver.
MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Key:
    field: str
    descending: bool

    @classmethod
    def parse(cls, term: str) -> "Key":
        """ "-created_at" → Key("created_at", descending=True)."""
        return cls(term.removeprefix("-"), term.startswith("-"))


@dataclass
class KeysetPage:
    object_list: list
    # Cursors for the links: "" when there is no page that way (or, for previous, when the
    # page before is the first one: a link without a cursor).
    previous_cursor: str
    next_cursor: str
    is_first: bool

    @property
    def has_previous(self) -> bool:
        return not self.is_first

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next


def _encode(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _decode(model_field: models.Field, text: str):
    """One value of a cursor; ValueError when it is not one this field could hold."""
    if isinstance(model_field, models.DateTimeField):
        value = datetime.fromisoformat(text)
        # Naive times are ambiguous; far-off years overflow when converted for the database.
        if value.tzinfo is None or not 1970 <= value.year <= 2100:
            raise ValueError(text)
        return value
    if isinstance(model_field, models.IntegerField | models.AutoField):
        value = int(text)
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise ValueError(text)
        return value
    try:
        return model_field.to_python(text)
    except ValidationError as exc:
        raise ValueError(text) from exc


def cursor_of(row: models.Model, keys: Sequence[Key]) -> str:
    return ",".join(_encode(getattr(row, key.field)) for key in keys)


def parse_cursor(model: type[models.Model], keys: Sequence[Key], text: str | None) -> list | None:
    """The cursor's values, or None when it is missing or malformed."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != len(keys):
        return None
    try:
        return [
            _decode(model._meta.pk if key.field == "pk" else model._meta.get_field(key.field), part)
            for key, part in zip(keys, parts, strict=True)
        ]
    except (ValueError, OverflowError, FieldDoesNotExist):
        return None


def beyond(keys: Sequence[Key], values: Sequence, *, forward: bool = True) -> Q:
    """Rows strictly after (forward) or before the cursor in the order `keys` describe."""
    condition = None
    for index, key in enumerate(keys):
        later = key.descending != forward  # descending + forward → smaller values come next
        step = Q(**{f"{key.field}__{'gt' if later else 'lt'}": values[index]})
        earlier = zip(keys[:index], values[:index], strict=True)
        step &= Q(**{prev.field: value for prev, value in earlier})
        condition = step if condition is None else condition | step
    # Implied by the OR above; stated so the database can start its index scan at the cursor
    # rather than filter its way there from the top.
    first = keys[0]
    later = first.descending != forward
    return Q(**{f"{first.field}__{'gte' if later else 'lte'}": values[0]}) & condition


def paginate(
    queryset: QuerySet,
    ordering: Sequence[str],
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int = 25,
) -> KeysetPage:
    """The page after the `after` cursor, before the `before` cursor, or the first page.

    Always one query, except "newer" from near the top (fewer than a page left above the
    cursor): then the first page is fetched instead, so that it is always a full page.
    """
    keys = [Key.parse(term) for term in ordering]
    if keys[-1].field not in ("pk", queryset.model._meta.pk.name):
        raise ValueError("The ordering must end with the primary key, so that keys are unique.")
    model = queryset.model
    ordered = queryset.order_by(*ordering)
    if (values := parse_cursor(model, keys, before)) is not None:
        reverse = [f"{'' if key.descending else '-'}{key.field}" for key in keys]
        rows = list(
            queryset.filter(beyond(keys, values, forward=False)).order_by(*reverse)[: per_page + 1]
        )
        if len(rows) > per_page:
            rows = rows[:per_page][::-1]
            return KeysetPage(
                rows, cursor_of(rows[0], keys), cursor_of(rows[-1], keys), is_first=False
            )
        if len(rows) == per_page:
            rows.reverse()
            return KeysetPage(rows, "", cursor_of(rows[-1], keys), is_first=True)
        after = None  # Back at the top: show the whole first page.
    values = parse_cursor(model, keys, after)
    if values is not None:
        ordered = ordered.filter(beyond(keys, values))
    rows = list(ordered[: per_page + 1])
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    return KeysetPage(
        rows,
        previous_cursor=cursor_of(rows[0], keys) if values is not None and rows else "",
        next_cursor=cursor_of(rows[-1], keys) if has_next else "",
        is_first=values is None,
    )


def capped_count(queryset: QuerySet, limit: int | None) -> tuple[int, bool]:
    """(count, more): the exact count up to `limit`, and whether there are more than that.

    Counting 85,000 visible incidents exactly read them all on every page view; "more than
    100" reads at most 101 matching rows. With no limit, the exact count.
    """
    if limit is None:
        return queryset.order_by().count(), False
    found = queryset.order_by().values("pk")[: limit + 1].count()
    return min(found, limit), found > limit
