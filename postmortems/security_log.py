"""Security events as one structured line each, on the "security" logger.

Events: `permission_denied` (a view refused: 403), `csrf_failure` (a POST without a valid
token), `forbidden` (any other 403), `login_failed` (a wrong name or password) and `lockout`
(django-axes locked, or kept locked, a name-and-address pair). Each is one JSON object:
event, time (UTC), ip, method, path, status, and who: `user_id` when known, and for sign-in
failures `name_hash`, a keyed hash of the name typed (the same name always gives the same hash,
so repeated attempts can be followed without the log holding email addresses).

Never logged: passwords, session keys, CSRF tokens, and the signed tokens in invitation,
password-reset and unsubscribe links (their path segments are replaced by "[token]").

The middleware goes after AuthenticationMiddleware (it names the user) and after
CsrfViewMiddleware: a 403 that comes back before this middleware's process_view ran is the CSRF
check's. The sign-in receivers are connected when this module is imported, which the
middleware setting does when the app starts.
"""

import json
import logging

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

logger = logging.getLogger("security")

# URL arguments that are credentials: never written to a log.
SECRET_URL_ARGUMENTS = ("token", "uidb64")


def name_hash(name: str | None) -> str:
    """A short keyed hash of a sign-in name: stable, but not reversible without the key."""
    if not name:
        return ""
    return salted_hmac("security_log.name", name.strip().lower()).hexdigest()[:16]


def _ip(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


def _path(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name in SECRET_URL_ARGUMENTS:
            value = match.kwargs.get(name)
            if value:
                path = path.replace(str(value), "[token]")
    return path


def log_event(event: str, request: HttpRequest | None = None, **fields) -> None:
    """Write one security event as one JSON line."""
    user = getattr(request, "user", None)
    record = {
        "event": event,
        "time": timezone.now().isoformat(timespec="seconds"),
        "ip": _ip(request),
        "method": request.method if request is not None else "",
        "path": _path(request),
        "user_id": user.pk if user is not None and user.is_authenticated else None,
        **fields,
    }
    logger.warning(json.dumps(record, default=str), extra={"security": record})


class SecurityLogMiddleware:
    """Log every 403 once, saying whether a view, the CSRF check or something else refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403:
            if getattr(request, "_security_denied", False):
                event = "permission_denied"
            elif not getattr(request, "_security_view_reached", False):
                event = "csrf_failure"  # only a middleware before this one refuses that early
            else:
                event = "forbidden"
            log_event(event, request, status=403)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        request._security_view_reached = True

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            request._security_denied = True


def _sign_in_name(credentials: dict | None) -> str | None:
    name = (credentials or {}).get("username")
    return name if isinstance(name, str) else None


def _user_id_for(name: str | None) -> int | None:
    from accounts.models import User

    # No address is longer than the field: a pasted megabyte is nobody, and as an iexact (LIKE)
    # pattern SQLite would refuse it with an error, a 500 on the sign-in page.
    if not name or len(name) > User._meta.get_field("email").max_length:
        return None
    return User.objects.filter(email__iexact=name.strip()).values_list("pk", flat=True).first()


@receiver(user_login_failed, dispatch_uid="security_log.login_failed")
def _login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    # An attempt that axes refused or that brought on a lock is logged once, as `lockout`.
    if request is not None and getattr(request, "axes_locked_out", False):
        return
    name = _sign_in_name(credentials)
    log_event(
        "login_failed",
        request,
        name_hash=name_hash(name),
        known_user_id=_user_id_for(name),
    )


@receiver(user_locked_out, dispatch_uid="security_log.lockout")
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    log_event(
        "lockout",
        request,
        name_hash=name_hash(username),
        known_user_id=_user_id_for(username),
        failures=getattr(request, "axes_failures_since_start", None),
    )
