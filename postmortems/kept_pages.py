"""Whole pages kept in memory and served again while nothing they show has changed.

A page is a function of the database and of the request: who asks (their row, their teams and
roles are in the database too), the address with its query, the viewer's time zone, language and
date. The database's change counter (postmortems/change_counter.py) moves with every committed
write to a table a page shows, so a page rendered when it read N is still right while it reads N:
one query instead of the page's own, and no template rendered.

The counter is read before the view runs, so the page kept under N was made from data at least as
new as N; a write committed meanwhile only makes the next request render again. A page is kept
for its viewer alone, never shared between people, and it is served again only to a GET that is
not an htmx request, from a signed-in person with no message waiting to be shown. The CSRF token
is the one part that belongs to the request: the page is rendered with a stand-in
(fragments.CSRF_SLOT) and every response, the first included, gets the request's own token.

Each process keeps its own pages, at most KEPT_PAGES_MB megabytes of them, the least recently
served going first; 0 keeps none (the benchmark measures both ways).
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone, translation

from postmortems import change_counter, fragments

_ATTRIBUTE = "keeping_page"  # on the request while its page is rendered to be kept
_SLOT = fragments.CSRF_SLOT.encode()


class _Page:
    __slots__ = ("content", "headers", "size")

    def __init__(self, content: bytes, headers: list[tuple[str, str]]) -> None:
        self.content = content
        self.headers = headers
        self.size = len(content)


class KeptPages(fragments.Kept):
    """Kept by size: pages run from 20 KB (a list) to 400 KB (a long timeline)."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def put_page(self, key: bytes, page: _Page, *, limit: int) -> None:
        with self._lock:
            old = self._pieces.pop(key, None)
            self.size += page.size - (old.size if old else 0)
            self._pieces[key] = page
            while self.size > limit and self._pieces:
                _, dropped = self._pieces.popitem(last=False)
                self.size -= dropped.size

    def clear(self) -> None:
        with self._lock:
            self._pieces.clear()
            self.size = 0


PAGES = KeptPages()


def forget_on_file_change(sender, file_path, **kwargs) -> None:
    """runserver: Django reloads a changed template without restarting the process, and the
    counter does not see templates, so every kept page goes (a changed Python file restarts
    the process anyway)."""
    PAGES.clear()


def limit() -> int:
    return settings.KEPT_PAGES_MB * 1024 * 1024


def csrf_stand_in(request: HttpRequest) -> dict:
    """Context processor: a page being kept shows the stand-in where the CSRF token goes (after
    Django's own `csrf` processor, so this one's value is the one templates read)."""
    return {"csrf_token": fragments.CSRF_SLOT} if getattr(request, _ATTRIBUTE, False) else {}


def csrf_token(request: HttpRequest) -> str:
    """The token for a form rendered outside a template's context (a kept card's)."""
    return fragments.CSRF_SLOT if getattr(request, _ATTRIBUTE, False) else get_token(request)


def _may_keep(request: HttpRequest) -> bool:
    return (
        settings.KEPT_PAGES_MB > 0
        # Inside a transaction the counter may not yet count its own writes (it moves at
        # commit): keep nothing there. Views run in autocommit; a test's transaction is one.
        and not connection.in_atomic_block
        and request.method == "GET"
        and request.headers.get("HX-Request") != "true"
        and request.user.is_authenticated
        # A message is shown once: the page that shows it is not the page to keep.
        and not len(get_messages(request))
    )


def _key(request: HttpRequest, view: Callable, number: int) -> bytes:
    return fragments.fingerprint(
        (
            number,
            view.__module__,
            view.__qualname__,
            request.user.pk,
            request.scheme,
            request.get_host(),
            request.get_full_path(),
            timezone.get_current_timezone_name(),
            timezone.localdate(),
            translation.get_language(),
        )
    )


def _with_token(content: bytes, request: HttpRequest) -> bytes:
    """A page rendered to be kept, with this request's CSRF token in place of the stand-in."""
    return content.replace(_SLOT, get_token(request).encode()) if _SLOT in content else content


def _respond(request: HttpRequest, page: _Page) -> HttpResponse:
    response = HttpResponse(_with_token(page.content, request))
    for name, value in page.headers:
        response.headers[name] = value
    return response


def kept_page(view: Callable) -> Callable:
    """Serve `view`'s page from memory while the change counter has not moved since it was
    rendered for this person at this address (see the module's docstring)."""

    @wraps(view)
    def keeping(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _may_keep(request):
            return view(request, *args, **kwargs)
        number = change_counter.current(connection)
        if number is None:
            return view(request, *args, **kwargs)
        key = _key(request, view, number)
        page = PAGES.get(key)
        if page is not None:
            return _respond(request, page)
        setattr(request, _ATTRIBUTE, True)
        try:
            response = view(request, *args, **kwargs)
        finally:
            setattr(request, _ATTRIBUTE, False)
        if response.streaming:
            return response
        if response.status_code == 200:
            page = _Page(response.content, list(response.items()))
            if page.size <= limit() // 4:  # one huge page must not empty the store
                PAGES.put_page(key, page, limit=limit())
        response.content = _with_token(response.content, request)
        return response

    return keeping
