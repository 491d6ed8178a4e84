"""Property-based: an entry's words change only when its author edits them, and fields nobody may
set through the form (author, incident, version, state, created_at, occurred_tz, key moment) are
ignored however they are smuggled in."""

from collections import Counter

from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postmortems.models import TimelineEntry, TimelineEntryRevision
from tests.trust import policy as p
from tests.trust.conftest import rolled_back

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no example database written into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Words people could type: anything printable, any script, emoji; not control characters or NUL,
# which the form refuses with a message (that refusal is the malformed-input test's business).
WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)
SMUGGLED_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["shared", "draft", "resolved", "Pacific/Kiritimati", "2001-01-01T00:00"]),
    WORDS,
)
SMUGGLED_FIELDS = (
    "author",
    "incident",
    "version",
    "state",
    "shared_at",
    "created_at",
    "updated_at",
    "occurred_tz",
    "key_moment",
)
# Half the examples are the author: the "if" side of "if and only if" needs its share too.
ACTORS = st.one_of(st.just(p.AUTHOR), st.sampled_from(p.PRINCIPALS))
FIGURES = Counter()


def _row(entry: TimelineEntry) -> dict:
    return TimelineEntry.objects.filter(pk=entry.pk).values().get()


def _smuggle(data: dict, prefix: str, values: dict, other_user, other_incident) -> dict:
    """Add every field the form must ignore, bare and with the form's prefix, pointing at another
    person and another incident where it names one."""
    for name, value in values.items():
        if name == "author":
            value = str(other_user.pk)
        elif name == "incident":
            value = str(other_incident.pk)
        data.setdefault(name, value)
        if name != "version":  # the prefixed version is the real optimistic-lock field
            data[f"{prefix}-{name}"] = value
    return data


@SETTINGS
@given(
    actor=ACTORS,
    visibility=st.sampled_from(p.VISIBILITIES),
    state=st.sampled_from(["shared", "draft"]),
    action=WORDS,
    understanding=WORDS,
    intent=st.sampled_from(["", "save", "share"]),
    stale=st.sampled_from([False, False, False, True]),  # a stale version: a conflict, not saved
    smuggled=st.fixed_dictionaries(
        {}, optional={name: SMUGGLED_VALUES for name in SMUGGLED_FIELDS}
    ),
)
def test_an_edit_persists_if_and_only_if_the_actor_is_the_author(
    trust_scenario,
    trust_figures,
    actor,
    visibility,
    state,
    action,
    understanding,
    intent,
    stale,
    smuggled,
):
    s = trust_scenario
    entry = s.entry(visibility, state)
    prefix = f"entry-{entry.pk}"
    words = f"Edit {FIGURES['examples']}: {action}"
    data = p.entry_payload(prefix, action=words, understanding=understanding)
    data[f"{prefix}-version"] = str(entry.version - 1 if stale else entry.version)
    data["intent"] = intent
    _smuggle(data, prefix, smuggled, s.users[p.FACILITATOR], s.incident(visibility, "published"))
    expected = p.POLICY["postmortems:entry_edit"].expect(actor, f"{visibility}/{state}", "POST")
    FIGURES["examples"] += 1

    with rolled_back():
        before = _row(entry)
        revisions = TimelineEntryRevision.objects.filter(entry=entry).count()
        response = s.client(actor).post(reverse("postmortems:entry_edit", args=[entry.pk]), data)
        after = _row(entry)
        revisions_after = TimelineEntryRevision.objects.filter(entry=entry).count()

    assert response.status_code < 500
    persists = actor == p.AUTHOR and not stale
    FIGURES["persisted" if persists else "refused"] += 1
    trust_figures("author-only edits", echo=False, **FIGURES)
    if not persists:
        assert after == before, f"{actor} changed {entry}: {data}"
        assert revisions_after == revisions
        if actor != p.AUTHOR:
            assert response.status_code in (302, 403, 404), (actor, response.status_code)
            assert expected != p.OK
        return
    assert response.status_code == 302, response.content.decode()[:2000]
    assert after["action"] == words.strip()
    assert after["understanding"] == understanding.strip()
    assert after["version"] == before["version"] + 1
    assert revisions_after == revisions + 1
    unchanged = ("author_id", "incident_id", "created_at", "key_moment", "id")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    # The zone the author typed the time in is theirs, whatever was posted.
    assert after["occurred_tz"] == s.users[p.AUTHOR].time_zone
    # Sharing is the author's explicit choice, never a smuggled field; and it is one-way.
    shared = state == "shared" or intent == "share"
    assert after["state"] == ("shared" if shared else "draft")


ADD_FIGURES = Counter()


@SETTINGS
@given(
    actor=st.sampled_from(p.PRINCIPALS),
    visibility=st.sampled_from(p.VISIBILITIES),
    action=WORDS,
    intent=st.sampled_from(["", "save", "share"]),
    smuggled=st.fixed_dictionaries(
        {}, optional={name: SMUGGLED_VALUES for name in SMUGGLED_FIELDS}
    ),
)
def test_a_new_entry_always_belongs_to_the_person_who_wrote_it(
    trust_scenario, trust_figures, actor, visibility, action, intent, smuggled
):
    s = trust_scenario
    incident = s.incident(visibility)
    data = p.entry_payload(action=f"Added: {action}")
    data["intent"] = intent
    for name, value in smuggled.items():
        data[name] = {
            "author": str(s.users[p.AUTHOR].pk),
            "incident": str(s.incident(visibility, "published").pk),
        }.get(name, value)
    expected = p.POLICY["postmortems:my_account"].expect(actor, visibility, "POST")
    ADD_FIGURES["examples"] += 1

    with rolled_back():
        known = set(TimelineEntry.objects.values_list("pk", flat=True))
        response = s.client(actor).post(reverse("postmortems:my_account", args=[incident.pk]), data)
        added = list(TimelineEntry.objects.exclude(pk__in=known).values())

    assert response.status_code < 500
    ADD_FIGURES["added" if expected == p.OK else "refused"] += 1
    trust_figures("author-only additions", echo=False, **ADD_FIGURES)
    if expected != p.OK:
        assert added == [], f"{actor} added an entry: {added}"
        return
    assert len(added) == 1, response.content.decode()[:2000]
    entry = added[0]
    assert entry["author_id"] == s.users[actor].pk
    assert entry["incident_id"] == incident.pk
    assert entry["version"] == 1
    assert entry["key_moment"] == ""
    assert entry["occurred_tz"] == s.users[actor].time_zone
    assert entry["state"] == ("shared" if intent == "share" else "draft")
