"""The permission policy of every URL, written from DESIGN.md section 3 (not from access.py).

For each URL name: how to build its arguments (and query string) from the trust scenario, which
methods it answers, a valid-looking payload for POST (so that a missing check would change
something), and the expected outcome for every principal and object variant:

- LOGIN: a redirect to sign in (anonymous visitors, and deactivated people whose session
  survives: Django treats them as signed out);
- HIDDEN: 404, the person may not see the object;
- FORBIDDEN: 403, they may see it but not do this;
- OK: 200, or a redirect anywhere but the sign-in page;
- an int: that exact status (a refusal by state, e.g. 409 for editing a published write-up).

Variants name objects of the scenario (tests/trust/conftest.py): "internal"/"restricted" is the
incident whose write-up is a draft; "<visibility>/<shared|draft>" is the author's entry in it;
"<visibility>/<none|draft|in_review|published>" is the incident with a write-up in that state.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import invitations
from postmortems import preferences

# --- Principals ---------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
AUTHOR = "author"  # responder in the scenario's incidents, author of the entries under test
PARTICIPANT = "participant"  # another responder; owns the incidents' action items
FACILITATOR = "facilitator"  # facilitator of the scenario's incidents
OTHER_FACILITATOR = "other_facilitator"  # facilitates an incident elsewhere, not these
MANAGER = "manager"  # manages the team of the action items; in no incident
OTHER_MANAGER = "other_manager"  # manages another team
DEACTIVATED = "deactivated"  # is_active=False, participant, with a forced session
OUTSIDER = "outsider"  # signed in, in nothing
ADMIN = "admin"  # is_superuser, in nothing

PRINCIPALS = (
    ANONYMOUS,
    AUTHOR,
    PARTICIPANT,
    FACILITATOR,
    OTHER_FACILITATOR,
    MANAGER,
    OTHER_MANAGER,
    DEACTIVATED,
    OUTSIDER,
    ADMIN,
)
SIGNED_OUT = frozenset({ANONYMOUS, DEACTIVATED})
SIGNED_IN = frozenset(PRINCIPALS) - SIGNED_OUT
PARTICIPANTS = frozenset({AUTHOR, PARTICIPANT, FACILITATOR})
# Edit the incident and the write-up (facilitators of this incident, admins).
EDITORS = frozenset({FACILITATOR, ADMIN})
# Approve a write-up: managers and facilitators of other incidents, admins; never its facilitator.
APPROVERS = frozenset({OTHER_FACILITATOR, MANAGER, OTHER_MANAGER, ADMIN})
# Open incidents and invite people.
OPENERS = frozenset({FACILITATOR, OTHER_FACILITATOR, ADMIN})
# Change an action item: its owner, the incident's facilitators, the team's managers, admins.
ITEM_CHANGERS = frozenset({PARTICIPANT, FACILITATOR, MANAGER, ADMIN})

# --- Outcomes -----------------------------------------------------------------------------------

LOGIN = "login"
HIDDEN = "404"
FORBIDDEN = "403"
OK = "ok"
REFUSALS = (LOGIN, HIDDEN, FORBIDDEN)

VISIBILITIES = ("internal", "restricted")
WRITEUP_STATES = ("none", "draft", "in_review", "published")


def viewers(visibility: str) -> frozenset[str]:
    """Who reads an incident: everyone signed in, or (restricted) its participants and admins."""
    return SIGNED_IN if visibility == "internal" else PARTICIPANTS | {ADMIN}


def writeup_readers(visibility: str, state: str) -> frozenset[str]:
    """Who reads a write-up's words: published for all who see the incident; drafts for editors;
    in review also for those who may approve it."""
    if state == "published":
        return viewers(visibility)
    if state == "in_review":
        return EDITORS | (APPROVERS & viewers(visibility))
    return EDITORS


def gate(principal: str, *, sees, may, ok=OK):
    """The outcome of the usual order of checks: signed in, then see (404), then act (403)."""
    if principal in SIGNED_OUT:
        return LOGIN
    if principal not in sees:
        return HIDDEN
    if principal not in may:
        return FORBIDDEN
    return ok


def signed_in(principal: str, *_):
    return LOGIN if principal in SIGNED_OUT else OK


def public(*_):
    return OK


def split(variant: str) -> tuple[str, str]:
    visibility, _, rest = variant.partition("/")
    return visibility, rest


# --- Rules --------------------------------------------------------------------------------------

Expect = Callable[[str, str, str], object]  # (principal, variant, method) -> outcome


@dataclass(frozen=True)
class Rule:
    methods: tuple[str, ...]
    expect: Expect
    args: Callable = lambda s, v: []  # (scenario, variant) -> reverse() args
    variants: tuple[str, ...] = ("-",)
    payload: Callable = lambda s, v: {}  # (scenario, variant) -> POST data
    query: Callable = lambda s, v: ""  # (scenario, variant) -> query string, without "?"
    # Whether an allowed POST in this variant must change the database (proves the payload bites).
    mutates: Callable[[str], bool] = lambda v: True
    # The GET filters a list page reads (the malformed-input test sends garbage to each).
    filters: tuple[str, ...] = field(default=())


def _local(moment) -> str:
    """A datetime-local value; every scenario person works in UTC."""
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%dT%H:%M")


def incident_payload(s, incident=None) -> dict:
    data = {
        "title": "Checkout errors after the deploy",
        "severity": "3",
        "status": "investigating",
        "visibility": "internal",
        "summary": "Payments failed for a while.",
        "customer_impact": "Some customers could not pay.",
        "services": "checkout-api",
    }
    if incident is not None:
        data.update(
            title=incident.title,
            severity=str(incident.severity),
            status=incident.status,
            visibility=incident.visibility,
            summary=incident.summary + " Edited.",
            customer_impact=incident.customer_impact,
        )
        for name in ("started_at", "detected_at", "mitigated_at", "resolved_at"):
            value = getattr(incident, name)
            data[name] = _local(value) if value else ""
    return data


def entry_payload(prefix: str = "", **fields) -> dict:
    data = {
        "occurred_at": _local(timezone.now() - timedelta(hours=3)),
        "action": "Restarted the payment workers",
        "observation": "",
        "expectation": "",
        "assumption": "",
        "understanding": "",
        "kind": "action",
        "basis": "observed",
        "evidence_url": "",
        **fields,
    }
    if prefix:
        data = {f"{prefix}-{key}": value for key, value in data.items()}
    return data


def _entry_edit_payload(s, v) -> dict:
    entry = s.entry(*split(v))
    data = entry_payload(f"entry-{entry.pk}", action="Rewritten words", version=entry.version)
    data["intent"] = "save"
    return data


def writeup_payload(postmortem) -> dict:
    data = {name: getattr(postmortem, name) + "\n\nEdited." for name in postmortem.SECTIONS}
    data["version"] = postmortem.version
    return data


def factor_payload(s, v) -> dict:
    visibility, _state = split(v)
    return {
        "category": "process",
        "description": "The runbook did not mention the replica.",
        "entries": [s.entry(visibility, "shared").pk],
    }


def meeting_payload(s, v) -> dict:
    return {
        "starts_at": _local(timezone.now() + timedelta(days=3)),
        "duration_minutes": "45",
        "location": "Room 2",
        "video_url": "",
        "attendees": [s.users[p].pk for p in (FACILITATOR, AUTHOR, PARTICIPANT)],
    }


def action_item_payload(s, v) -> dict:
    return {
        "title": "Alert when the replica lags",
        "description": "Page the on-call engineer.",
        "owner": s.users[PARTICIPANT].pk,
        "team": s.team.pk,
        "due_on": (timezone.localdate() + timedelta(days=10)).isoformat(),
        "priority": "2",
        "kind": "detect",
        "status": "open",
        "tracker_url": "",
        "contributing_factor": "",
    }


def _item_update_payload(s, v) -> dict:
    item = s.items[v]
    return {
        "status": "in_progress",
        "owner": item.owner_id,
        "due_on": item.due_on.isoformat(),
        "reason": "",
    }


def _reset_args(s, v) -> list:
    user = s.users[OUTSIDER]
    return [urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)]


NEW_PASSWORD = "a brand new horse battery staple 7"

ENTRY_VARIANTS = tuple(f"{v}/{state}" for v in VISIBILITIES for state in ("shared", "draft"))
WRITEUP_VARIANTS = tuple(f"{v}/{state}" for v in VISIBILITIES for state in WRITEUP_STATES[1:])
EDITABLE_OR_NOT = tuple(f"{v}/{state}" for v in VISIBILITIES for state in ("draft", "published"))
TRANSITION_STATE = {
    "submit": "draft",
    "not_required": "draft",
    "approve": "in_review",
    "send_back": "in_review",
    "reopen": "published",
}
TRANSITION_MAY = {
    "submit": EDITORS,
    "not_required": EDITORS,
    "approve": APPROVERS,
    "send_back": EDITORS | APPROVERS,
    "reopen": EDITORS | APPROVERS,
}


def _entry_sees(variant: str) -> frozenset[str]:
    visibility, state = split(variant)
    return viewers(visibility) if state == "shared" else frozenset({AUTHOR})


def _on_incident(may) -> Expect:
    return lambda p, v, m: gate(p, sees=viewers(v), may=may & viewers(v) if may else viewers(v))


def _on_entry(may_of_variant) -> Expect:
    return lambda p, v, m: gate(p, sees=_entry_sees(v), may=may_of_variant(v))


def _on_writeup(may_of_variant, ok_of=lambda v, m: OK) -> Expect:
    return lambda p, v, m: gate(p, sees=viewers(split(v)[0]), may=may_of_variant(v), ok=ok_of(v, m))


def _transition(p, v, m):
    action, _, visibility = v.partition(":")
    if action not in TRANSITION_STATE:
        return LOGIN if p in SIGNED_OUT else HIDDEN  # no such step, for everyone
    return gate(p, sees=viewers(visibility), may=TRANSITION_MAY[action])


def _published_is_read_only(v, m):
    # Editing a published write-up: the page sends you back (GET), a save is refused (409).
    if split(v)[1] == "published":
        return 409 if m == "POST" else OK
    return OK


POLICY: dict[str, Rule] = {
    # --- Site and accounts ---
    "home": Rule(("GET",), signed_in),
    "healthz": Rule(("GET",), public),
    "accounts:login": Rule(
        ("GET", "POST"),
        public,  # signed-in people are sent home
        payload=lambda s, v: {"username": s.users[OUTSIDER].email, "password": "not it"},
        mutates=lambda v: False,
    ),
    "accounts:logout": Rule(
        ("POST",), lambda p, v, m: LOGIN, mutates=lambda v: False
    ),  # everyone ends up on the sign-in page
    "accounts:profile": Rule(
        ("GET", "POST"),
        signed_in,
        payload=lambda s, v: {
            "display_name": "Someone renamed",
            "time_zone": "UTC",
            "notify_account_requests": "on",
        },
    ),
    "accounts:invite": Rule(
        ("GET", "POST"),
        lambda p, v, m: gate(p, sees=SIGNED_IN, may=OPENERS),
        payload=lambda s, v: {"email": "new.colleague@example.com", "display_name": "New"},
    ),
    "accounts:invitation_accept": Rule(
        ("GET", "POST"),
        public,  # the signed link is the credential
        args=lambda s, v: [invitations.token_for(s.invitation)],
        payload=lambda s, v: {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    ),
    "accounts:password_change": Rule(
        ("GET", "POST"),
        signed_in,
        payload=lambda s, v: {
            "old_password": s.password,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    ),
    "accounts:password_change_done": Rule(("GET",), signed_in),
    "accounts:password_reset": Rule(
        ("GET", "POST"),
        public,
        payload=lambda s, v: {"email": s.users[OUTSIDER].email},
        mutates=lambda v: False,
    ),
    "accounts:password_reset_done": Rule(("GET",), public),
    "accounts:password_reset_confirm": Rule(
        ("GET",), public, args=_reset_args, mutates=lambda v: False
    ),
    "accounts:password_reset_complete": Rule(("GET",), public),
    # --- Incidents ---
    "postmortems:incident_list": Rule(
        ("GET",),
        signed_in,
        variants=("all", "search-restricted", "search-draft-entry"),
        # Part of a hidden title: matches it, but the echoed search box holds no whole marker.
        query=lambda s, v: {
            "all": "",
            "search-restricted": f"q={s.incident('restricted').title.split()[-1][:-1]}",
            "search-draft-entry": f"q={s.entry('internal', 'draft').action.split()[-1][:-1]}",
        }[v],
        filters=(
            "q",
            "status",
            "severity",
            "service",
            "participant",
            "opened_from",
            "opened_to",
            "sort",
            "page",
        ),
    ),
    "postmortems:incident_create": Rule(
        ("GET", "POST"),
        lambda p, v, m: gate(p, sees=SIGNED_IN, may=OPENERS),
        payload=lambda s, v: incident_payload(s),
    ),
    "postmortems:incident_detail": Rule(
        ("GET",),
        _on_incident(None),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        filters=("person", "kind", "view", "window", "as_of"),
    ),
    "postmortems:incident_edit": Rule(
        ("GET", "POST"),
        _on_incident(EDITORS),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        payload=lambda s, v: incident_payload(s, s.incident(v)),
    ),
    "postmortems:incident_history": Rule(
        ("GET",),
        _on_incident(EDITORS),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        filters=("page",),
    ),
    "postmortems:participant_add": Rule(
        ("GET", "POST"),
        _on_incident(EDITORS),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        payload=lambda s, v: {"user": s.newcomer.pk, "role": "responder"},
    ),
    "postmortems:participant_remove": Rule(
        ("GET", "POST"),
        _on_incident(EDITORS),
        args=lambda s, v: [s.incident(v).pk, s.observers[v].pk],
        variants=VISIBILITIES,
    ),
    # --- Accounts and entries ---
    "postmortems:my_account": Rule(
        ("GET", "POST"),
        _on_incident(PARTICIPANTS),  # admins fix accounts, not stories
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        payload=lambda s, v: entry_payload(),
        filters=("page",),
    ),
    "postmortems:account_share_all": Rule(
        ("POST",),
        _on_incident(PARTICIPANTS),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
    ),
    "postmortems:entry_detail": Rule(
        ("GET",),
        _on_entry(_entry_sees),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
    ),
    "postmortems:entry_edit": Rule(
        ("GET", "POST"),
        _on_entry(lambda v: {AUTHOR}),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
        payload=_entry_edit_payload,
    ),
    "postmortems:entry_delete": Rule(
        ("GET", "POST"),
        _on_entry(lambda v: {AUTHOR}),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
    ),
    "postmortems:entry_share": Rule(
        ("POST",),
        _on_entry(lambda v: {AUTHOR}),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
        mutates=lambda v: v.endswith("/draft"),  # sharing a shared entry is a no-op
    ),
    "postmortems:entry_annotate": Rule(
        ("POST",),
        # Key moments and questions go on shared entries only; a draft is its author's alone.
        _on_entry(lambda v: EDITORS if v.endswith("/shared") else set()),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
        payload=lambda s, v: {"key_moment": "detected"},
    ),
    "postmortems:entry_question_add": Rule(
        ("POST",),
        _on_entry(lambda v: EDITORS if v.endswith("/shared") else set()),
        args=lambda s, v: [s.entry(*split(v)).pk],
        variants=ENTRY_VARIANTS,
        payload=lambda s, v: {"text": "What did the dashboard show at this point?"},
    ),
    "postmortems:language_check": Rule(
        ("POST",),
        signed_in,
        payload=lambda s, v: {"text": "He should have known better."},
        mutates=lambda v: False,
    ),
    # --- Write-ups ---
    "postmortems:postmortem_detail": Rule(
        ("GET",),
        _on_writeup(lambda v: viewers(split(v)[0])),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=tuple(f"{v}/{state}" for v in VISIBILITIES for state in WRITEUP_STATES),
        filters=("items_page",),
    ),
    "postmortems:postmortem_start": Rule(
        ("POST",),
        _on_writeup(lambda v: EDITORS),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=("internal/none", "restricted/none"),
    ),
    "postmortems:postmortem_edit": Rule(
        ("GET", "POST"),
        _on_writeup(lambda v: EDITORS, _published_is_read_only),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=EDITABLE_OR_NOT,
        payload=lambda s, v: writeup_payload(s.postmortems[split(v)]),
        mutates=lambda v: v.endswith("/draft"),
    ),
    "postmortems:postmortem_history": Rule(
        ("GET",),
        _on_writeup(lambda v: EDITORS if v.endswith("/draft") else EDITORS | APPROVERS),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=WRITEUP_VARIANTS,
        filters=("page",),
    ),
    "postmortems:postmortem_transition": Rule(
        ("GET", "POST"),
        _transition,
        args=lambda s, v: [
            s.incident(v.partition(":")[2], TRANSITION_STATE.get(v.partition(":")[0], "draft")).pk,
            v.partition(":")[0],
        ],
        variants=(
            *(f"{action}:{v}" for action in TRANSITION_STATE for v in VISIBILITIES),
            "publish-now:internal",
        ),
        payload=lambda s, v: {"comment": "Ready for the next step."},
    ),
    "postmortems:postmortem_export_markdown": Rule(
        ("GET",),
        _on_writeup(lambda v: viewers(split(v)[0]) if v.endswith("/published") else EDITORS),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=WRITEUP_VARIANTS,
    ),
    "postmortems:postmortem_export_pdf": Rule(
        ("GET",),
        _on_writeup(lambda v: viewers(split(v)[0]) if v.endswith("/published") else EDITORS),
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=WRITEUP_VARIANTS,
    ),
    "postmortems:factor_create": Rule(
        ("GET", "POST"),
        _on_writeup(lambda v: EDITORS),  # published: sent back to the read-only page
        args=lambda s, v: [s.incident(*split(v)).pk],
        variants=EDITABLE_OR_NOT,
        payload=factor_payload,
        mutates=lambda v: v.endswith("/draft"),
    ),
    "postmortems:factor_edit": Rule(
        ("GET", "POST"),
        _on_writeup(lambda v: EDITORS),
        args=lambda s, v: [s.factors[split(v)].pk],
        variants=EDITABLE_OR_NOT,
        payload=factor_payload,
        mutates=lambda v: v.endswith("/draft"),
    ),
    "postmortems:factor_delete": Rule(
        ("GET", "POST"),
        _on_writeup(lambda v: EDITORS),
        args=lambda s, v: [s.factors[split(v)].pk],
        variants=EDITABLE_OR_NOT,
        mutates=lambda v: v.endswith("/draft"),
    ),
    "postmortems:meeting_edit": Rule(
        ("GET", "POST"),
        _on_incident(EDITORS),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        payload=meeting_payload,
    ),
    "postmortems:meeting_ics": Rule(
        ("GET",),
        _on_incident(None),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
    ),
    # --- Action items ---
    "postmortems:action_item_review": Rule(
        ("GET",),
        signed_in,  # others than facilitators and managers see their own items there
        variants=("default", "all-teams"),
        query=lambda s, v: "" if v == "default" else "team=all&status=open&status=done",
        filters=(
            "team",
            "owner",
            "status",
            "overdue",
            "due_window",
            "priority",
            "severity",
            "sort",
            "page",
        ),
    ),
    "postmortems:action_item_export_csv": Rule(
        ("GET",),
        signed_in,
        variants=("default", "all-teams"),
        query=lambda s, v: "" if v == "default" else "team=all&status=open&status=done",
        filters=("team", "owner", "status", "overdue", "due_window", "priority", "severity"),
    ),
    "postmortems:action_item_create": Rule(
        ("GET", "POST"),
        _on_incident(PARTICIPANTS | {MANAGER, OTHER_MANAGER, ADMIN}),
        args=lambda s, v: [s.incident(v).pk],
        variants=VISIBILITIES,
        payload=action_item_payload,
    ),
    "postmortems:action_item_detail": Rule(
        ("GET",),
        _on_incident(None),
        args=lambda s, v: [s.items[v].pk],
        variants=VISIBILITIES,
    ),
    "postmortems:action_item_update": Rule(
        ("POST",),
        _on_incident(ITEM_CHANGERS),  # a team's manager still needs to see a restricted one
        args=lambda s, v: [s.items[v].pk],
        variants=VISIBILITIES,
        payload=_item_update_payload,
    ),
    # --- Notifications ---
    "postmortems:digest_preview": Rule(("GET",), signed_in),
    "postmortems:email_preferences": Rule(
        ("GET", "POST"),
        public,  # the signed link is the credential: one click, signed in or not
        args=lambda s, v: [preferences.token_for(s.users[OUTSIDER], "notify_weekly_digest")],
    ),
}
