"""Who may see and change what: the only home of permission rules (DESIGN.md section 3).

Views call these first. "May not see" is a 404 (use the `visible_*` querysets with
get_object_or_404, or incident_or_404 for one incident); "may see but not change" is a 403 (the
`can_*` predicates). Templates receive the booleans and hold no rules of their own.
"""

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import Team, User

from .models import ActionItem, Incident, Participant, Postmortem, TimelineEntry


def _is_admin(user: User) -> bool:
    return user.is_active and user.is_superuser


def _role(user: User, incident: Incident) -> str | None:
    """The user's role in the incident, or None. Cached on the incident for one request."""
    cache = incident.__dict__.setdefault("_roles_cache", {})
    if user.pk not in cache:
        cache[user.pk] = (
            Participant.objects.filter(incident=incident, user=user)
            .values_list("role", flat=True)
            .first()
        )
    return cache[user.pk]


def is_manager(user: User) -> bool:
    """Whether the user manages any team. Asked often per page, so cached on the user object."""
    return bool(managed_team_ids(user))


def managed_team_ids(user: User) -> list[int]:
    """The ids of the teams the user manages, read once per request (cached on the user)."""
    if not user.is_authenticated:
        return []
    if "_managed_team_ids" not in user.__dict__:
        user.__dict__["_managed_team_ids"] = list(user.managed_teams.values_list("pk", flat=True))
    return user.__dict__["_managed_team_ids"]


# --- Incidents ---------------------------------------------------------------------------------


def visible_incidents(user: User) -> QuerySet[Incident]:
    """Internal incidents for everyone signed in; restricted ones for participants and admins."""
    if not user.is_active:
        return Incident.objects.none()
    if _is_admin(user):
        return Incident.objects.all()
    participates = Participant.objects.filter(incident=OuterRef("pk"), user=user)
    return Incident.objects.filter(
        Q(visibility=Incident.Visibility.INTERNAL) | Q(Exists(participates))
    )


def may_see_incident(user: User, incident: Incident) -> bool:
    """visible_incidents, asked of one incident already read: internal ones for everyone signed
    in, restricted ones for participants (the viewer's role, cached for the request) and admins."""
    if not user.is_active:
        return False
    if _is_admin(user) or incident.visibility == Incident.Visibility.INTERNAL:
        return True
    return _role(user, incident) is not None


def incident_or_404(user: User, pk: int, incidents: QuerySet[Incident] | None = None) -> Incident:
    """The incident `pk` from `incidents` (all, by default) if the user may see it, else a 404.

    For one incident this asks may_see_incident of the row: building visible_incidents'
    participation subquery cost the incident page four times reading the incident itself, and
    the role it asks instead is one the pages ask anyway.
    """
    incident = get_object_or_404(Incident.objects.all() if incidents is None else incidents, pk=pk)
    if not may_see_incident(user, incident):
        raise Http404("No incident matches the given query.")
    return incident


def can_open_incident(user: User) -> bool:
    return user.is_active and (user.is_facilitator or _is_admin(user))


def is_facilitator_of(user: User, incident: Incident) -> bool:
    return _role(user, incident) in Participant.FACILITATING_ROLES


def can_edit_incident(user: User, incident: Incident) -> bool:
    """Incident fields, participants, key moments and review questions."""
    return _is_admin(user) or is_facilitator_of(user, incident)


def is_participant(user: User, incident: Incident) -> bool:
    return _role(user, incident) is not None


# --- Timeline entries: the author's words are the author's alone -------------------------------


def visible_entries(user: User) -> QuerySet[TimelineEntry]:
    """Shared entries of incidents the user may see, and the user's own drafts."""
    return TimelineEntry.objects.filter(incident__in=visible_incidents(user)).visible_to(user)


def can_write_account(user: User, incident: Incident) -> bool:
    """Only participants add entries to an incident, and only to their own account."""
    return user.is_active and is_participant(user, incident)


def can_edit_entry(user: User, entry: TimelineEntry) -> bool:
    # Not facilitators, not managers, not admins: nobody rewrites someone else's story.
    return user.is_active and entry.author_id == user.pk


def can_annotate_entry(user: User, entry: TimelineEntry) -> bool:
    """Mark a key moment or attach review questions, without touching the words."""
    return entry.is_shared and can_edit_incident(user, entry.incident)


# --- Postmortem write-up and review -------------------------------------------------------------


def can_edit_postmortem(user: User, incident: Incident) -> bool:
    return _is_admin(user) or _role(user, incident) in Participant.EDITOR_ROLES


def can_read_postmortem(user: User, postmortem: Postmortem) -> bool:
    """Published write-ups for everyone who sees the incident; drafts for editors and reviewers."""
    incident = postmortem.incident
    if postmortem.is_published or can_edit_postmortem(user, incident):
        return True
    return postmortem.status == Postmortem.Status.IN_REVIEW and can_approve_postmortem(
        user, postmortem
    )


def can_approve_postmortem(user: User, postmortem: Postmortem) -> bool:
    """A manager or another facilitator who did not facilitate this incident, or an admin."""
    if _is_admin(user):
        return True
    if not user.is_active or is_facilitator_of(user, postmortem.incident):
        return False
    return is_manager(user) or user.is_facilitator


# --- Action items --------------------------------------------------------------------------------


def can_create_action_item(user: User, incident: Incident) -> bool:
    return _is_admin(user) or is_participant(user, incident) or is_manager(user)


def manages(user: User, team_id: int | None) -> bool:
    if team_id is None:
        return False
    return Team.objects.filter(pk=team_id, managers=user).exists()


def can_change_action_item(user: User, item: ActionItem) -> bool:
    """Status, owner and due date: the owner, the incident's facilitators, the team's managers."""
    if _is_admin(user):
        return True
    if not user.is_active:
        return False
    return (
        item.owner_id == user.pk
        or is_facilitator_of(user, item.incident)
        or manages(user, item.team_id)
    )


def visible_action_items(user: User) -> QuerySet[ActionItem]:
    """Items of the incidents the user may see (visible_incidents), written for the database.

    The item's own copy of its incident's visibility, kept by the database (item_visibility.py),
    answers the first half: reading the incident of each of a manager's thousand items was most
    of the review's SQL. The user's own incidents come from one small hashed list.
    """
    if not user.is_active:
        return ActionItem.objects.none()
    if _is_admin(user):
        return ActionItem.objects.all()
    participates = Participant.objects.filter(user=user).values("incident_id")
    return ActionItem.objects.filter(
        Q(incident_visibility=Incident.Visibility.INTERNAL) | Q(incident_id__in=participates)
    )


def can_review_action_items(user: User) -> bool:
    """The review page across incidents; others still see their own items there."""
    return user.is_active and (user.is_facilitator or is_manager(user) or _is_admin(user))


# --- Write-ups: review workflow steps and exports (added by the write-ups work) -----------------


def can_transition_postmortem(user: User, postmortem: Postmortem, action: str) -> bool:
    """Who may take a review step; whether the current status allows it is the model's rule."""
    incident = postmortem.incident
    if action in ("submit", "not_required"):
        return can_edit_postmortem(user, incident)
    if action == "approve":
        return can_approve_postmortem(user, postmortem)
    if action in ("send_back", "reopen"):
        return can_edit_postmortem(user, incident) or can_approve_postmortem(user, postmortem)
    return False


def can_export_postmortem(user: User, postmortem: Postmortem) -> bool:
    """Published: whoever may read it. Unpublished: editors only (it is not agreed yet)."""
    if postmortem.is_published:
        return can_read_postmortem(user, postmortem)
    return can_edit_postmortem(user, postmortem.incident)


def can_view_postmortem_history(user: User, postmortem: Postmortem) -> bool:
    """Every saved version, drafts included: editors, and reviewers while they may read it."""
    if can_edit_postmortem(user, postmortem.incident):
        return True
    return can_read_postmortem(user, postmortem) and can_approve_postmortem(user, postmortem)


# --- Home page (added by the action-items work): querysets twinning the predicates above -------


def postmortems_awaiting_approval(user: User) -> QuerySet[Postmortem]:
    """In-review write-ups the user may approve: can_approve_postmortem as one query, limited to
    incidents the user can see."""
    in_review = Postmortem.objects.filter(
        status=Postmortem.Status.IN_REVIEW, incident__in=visible_incidents(user)
    )
    if _is_admin(user):
        return in_review
    if not user.is_active or not (user.is_facilitator or is_manager(user)):
        return Postmortem.objects.none()
    facilitates = Participant.objects.filter(
        incident=OuterRef("incident"), user=user, role__in=Participant.FACILITATING_ROLES
    )
    return in_review.exclude(Exists(facilitates))
