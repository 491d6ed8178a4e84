"""Links to one object by its id, for lists: the URL is reversed once per name, then each
object's link is a string join. A page of 50 rows called reverse() 50 times, about 1.5 ms."""

import functools

from django.urls import get_script_prefix, get_urlconf, reverse

_PK = 987654321


@functools.lru_cache(maxsize=64)
def _around(name: str, urlconf: str | None, prefix: str) -> tuple[str, str]:
    before, _, after = reverse(name, args=[_PK]).partition(str(_PK))
    return before, after


def pattern(name: str) -> tuple[str, str]:
    """The URL named `name` as the text before and after its one id argument."""
    return _around(name, get_urlconf(), get_script_prefix())


def object_url(name: str, pk: int) -> str:
    """reverse(name, args=[pk]), for a URL whose only argument is an integer id."""
    before, after = pattern(name)
    return f"{before}{pk}{after}"
