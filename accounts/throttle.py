"""Login throttling helpers for django-axes."""


def sign_in_name(request, credentials: dict | None) -> str | None:
    """The sign-in name, lower-cased, so "Mara@x" and "mara@x" count as one name."""
    source = credentials if credentials else getattr(request, "POST", {})
    name = source.get("username") if source else None
    return name.strip().lower() if isinstance(name, str) else name
