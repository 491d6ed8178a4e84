"""Writes on incidents and their participants that touch several rows or send something."""

from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils.formats import date_format

from accounts import invitations
from accounts.models import User
from postmortems import tasks
from postmortems.forms.incidents import IncidentForm
from postmortems.models import Incident, IncidentChange, Participant, Service, TimelineEntry

# The fields an edit records, in the order the history shows them.
TRACKED_FIELDS = (*IncidentForm.Meta.fields, "services")


class AlreadyParticipant(Exception):
    """The person was added to the incident by someone else a moment ago."""


class CannotRemove(Exception):
    """Removing this participant would lose something; the message says what and why."""


@transaction.atomic
def open_incident(*, form: IncidentForm, by: User) -> Incident:
    """Save a new incident with its services; its creator becomes its facilitator."""
    incident = form.save(commit=False)
    incident.created_by = by
    incident.save()
    _set_services(incident, form.cleaned_data["services"])
    # No account request for the creator: they are the one who just clicked "Open".
    Participant.objects.create(
        incident=incident, user=by, role=Participant.Role.FACILITATOR, added_by=by
    )
    return incident


@transaction.atomic
def update_incident(incident: Incident, *, form: IncidentForm, by: User) -> IncidentChange | None:
    """Save an edit and record what changed, as readable text. None when nothing did."""
    # The row as stored, locked so two edits at once each record what they really changed.
    before = Incident.objects.select_for_update().get(pk=incident.pk)
    old = _snapshot(before, [s.name for s in before.services.all()])
    incident = form.save()
    _set_services(incident, form.cleaned_data["services"])
    new = _snapshot(incident, form.cleaned_data["services"])
    changes = {name: [old[name], new[name]] for name in TRACKED_FIELDS if old[name] != new[name]}
    if not changes:
        return None
    return IncidentChange.objects.create(incident=incident, changed_by=by, changes=changes)


def _set_services(incident: Incident, names: list[str]) -> None:
    """Link the incident to exactly these services, creating the ones nobody has named yet."""
    # ignore_conflicts: two people naming the same new service at once both succeed.
    Service.objects.bulk_create([Service(name=name) for name in names], ignore_conflicts=True)
    incident.services.set(Service.objects.filter(name__in=names))


def _snapshot(incident: Incident, service_names: list[str]) -> dict[str, str]:
    values = {name: readable_value(incident, name) for name in IncidentForm.Meta.fields}
    values["services"] = ", ".join(sorted(service_names))
    return values


def readable_value(incident: Incident, name: str) -> str:
    """A field's value as a person would write it in a change log."""
    value = getattr(incident, name)
    if value is None or value == "":
        return ""
    if name == "severity":
        return incident.severity_label
    if name in ("status", "visibility"):
        # "Restricted — participants and admins only" → "Restricted"
        return getattr(incident, f"get_{name}_display")().split(" — ")[0]
    if isinstance(value, datetime):
        # Stored as text, so it names its zone; readers live in many.
        return date_format(value.astimezone(UTC), "j M Y, H:i") + " UTC"
    return str(value)


def _describe(participant: Participant) -> str:
    return f"{participant.user.name} ({participant.get_role_display()})"


@transaction.atomic
def add_participant(
    incident: Incident,
    *,
    user: User | None,
    email: str = "",
    display_name: str = "",
    role: str,
    by: User,
) -> Participant:
    """Add someone (inviting them first when they are new here) and ask them for their account.

    Raises AlreadyParticipant when they are on the incident already.
    """
    if user is None or not user.is_active:
        # Someone new, or invited before and not yet signed in: (re)send the invitation.
        user, _ = invitations.invite(
            user.email if user else email, invited_by=by, display_name=display_name
        )
    try:
        with transaction.atomic():
            participant = Participant.objects.create(
                incident=incident, user=user, role=role, added_by=by
            )
    except IntegrityError as exc:
        raise AlreadyParticipant(f"{user.name} is already on this incident.") from exc
    IncidentChange.objects.create(
        incident=incident, changed_by=by, changes={"participants": ["", _describe(participant)]}
    )
    tasks.send_account_request.delay_on_commit(participant.pk)
    return participant


def removal_blocker(participant: Participant) -> str | None:
    """Why this participant may not be removed, or None when they may."""
    name = participant.user.name
    # Drafts count too: their author must keep the incident that holds them.
    if TimelineEntry.objects.filter(
        incident_id=participant.incident_id, author_id=participant.user_id
    ).exists():
        return (
            f"{name} has started their account of this incident, so they stay on it: "
            "their words belong with the incident, and only they may change them."
        )
    if participant.is_facilitating:
        others = (
            Participant.objects.filter(
                incident_id=participant.incident_id, role__in=Participant.FACILITATING_ROLES
            )
            .exclude(pk=participant.pk)
            .exists()
        )
        if not others:
            return (
                f"{name} is the only facilitator. Add another facilitator or co-facilitator "
                "first, so that someone can still run this incident."
            )
    return None


@transaction.atomic
def remove_participant(participant: Participant, *, by: User) -> None:
    """Remove a participant and record it. Raises CannotRemove with the reason."""
    # Lock the incident: two facilitators removing each other at once must not leave none.
    Incident.objects.select_for_update().filter(pk=participant.incident_id).first()
    reason = removal_blocker(participant)
    if reason:
        raise CannotRemove(reason)
    IncidentChange.objects.create(
        incident_id=participant.incident_id,
        changed_by=by,
        changes={"participants": [_describe(participant), ""]},
    )
    participant.delete()
