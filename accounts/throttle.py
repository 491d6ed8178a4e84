"""Login throttling helpers for django-axes."""

MAX_NAME = 254


def sign_in_name(request, credentials: dict | None) -> str | None:
    """The sign-in name, lower-cased, so "Mara@x" and "mara@x" count as one name."""
    source = credentials if credentials else getattr(request, "POST", {})
    name = source.get("username") if source else None
    if not isinstance(name, str):
        return name
    # No address is longer than 254 characters, and axes stores the name in 255: a pasted
    # megabyte would fail that INSERT (a 500 on PostgreSQL). The cut still counts its attempts.
    return name.strip().lower()[:MAX_NAME]
