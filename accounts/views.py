from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from postmortems import access

from . import invitations
from .forms import InviteForm, ProfileForm


@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, "Your profile is saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest) -> HttpResponse:
    if not access.can_open_incident(request.user):
        raise PermissionDenied
    form = InviteForm(request.POST or None)
    if form.is_valid():
        user, invited = invitations.invite(
            form.cleaned_data["email"],
            invited_by=request.user,
            display_name=form.cleaned_data["display_name"],
        )
        if invited:
            messages.success(request, f"Invitation sent to {user.email}.")
        else:
            messages.info(request, f"{user.email} already has an account here.")
        return redirect("accounts:invite")
    return render(request, "accounts/invite.html", {"form": form})


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitations.invitation_from_token(token)
    except invitations.InvalidInvitation as exc:
        return render(request, "accounts/invitation_invalid.html", {"reason": str(exc)}, status=410)
    form = SetPasswordForm(invitation.user, request.POST or None)
    if form.is_valid():
        try:
            user = invitations.accept(invitation, form.cleaned_data["new_password1"])
        except invitations.InvalidInvitation as exc:
            return render(
                request, "accounts/invitation_invalid.html", {"reason": str(exc)}, status=410
            )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.name}. Your account is ready.")
        return redirect("home")
    return render(
        request, "accounts/invitation_accept.html", {"form": form, "invitation": invitation}
    )
