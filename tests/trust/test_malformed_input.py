"""Bad input breaks nothing: every GET filter of every list page and every POST form, fed a fixed
corpus of hostile values and Hypothesis's inventions, answers without a server error."""

import json
from collections import Counter

from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trust import policy as p
from tests.trust.conftest import rolled_back

HUGE = "9" * 40
MEGABYTE = "x" * 1_000_000
# Values every field and filter gets, alone and all at once.
CORPUS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    HUGE,
    "-" + HUGE,
    "-1",
    "0",
    "9223372036854775808",  # one past the largest 64-bit primary key
    "-9223372036854775809",
    "1e309",
    "NaN",
    "2026-02-30",
    "99999-01-01",
    "0000-00-00",
    "2026-13-45T25:61",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "1969-12-31",
    "-created_at",
    "not-a-sort-key",
    "' OR 1=1 --",
    "%",
    "../../../etc/passwd",
    "\u202e\u200b\ufeff",
    "🤯" * 50,
    "[]",
    '{"a": 1}',
]
# A smaller set for every field on its own, the others valid (so that an early check on one
# field cannot shield the parsing of the next): the values most likely to crash a parser.
PER_FIELD = ["\x00", HUGE, "2026-02-30", "99999-01-01T00:00"]
# Whole bodies that are not what a form view expects.
FORM = "application/x-www-form-urlencoded"
BODIES = [
    (b"action=%FF%FE%C0%AF&title=\xff\xfe\xfd&text=%00", FORM),
    (json.dumps({"title": "x", "action": "y", "version": 1}).encode(), "application/json"),
    (b'--xyz\r\nContent-Disposition: form-data; name="title"\r\n\r\n\xff', "multipart/form-data"),
    (
        b"--xyz\r\nContent-Disposition: form-data; nam\r\n\r\nunterminated",
        "multipart/form-data; boundary=xyz",
    ),
    (b"<xml>not a form</xml>", "text/xml"),
    (b"", FORM),
]
RAW_QUERIES = [
    "%FF%FE=%C0%AF",
    "q=%FF%FE%FD&page=%C0%AF",
    "\xff\xfe=\xfd",
    "q=%00&sort=%00",
    "&&==&",
]
PREFERENCE = (p.ANONYMOUS, p.ADMIN, p.FACILITATOR, p.AUTHOR, p.PARTICIPANT, p.OUTSIDER)


def _actor(rule, variant: str, method: str) -> str | None:
    """Who gets past the access checks to the form: anonymous for public pages, else the first
    allowed of admin, facilitator, author, ..."""
    return next((x for x in PREFERENCE if rule.expect(x, variant, method) == p.OK), None)


def _targets(scenario):
    """(name, rule, variant, url, actor) for each URL, in the first variant someone may use."""
    for name, rule in p.POLICY.items():
        for variant in rule.variants:
            actor = _actor(rule, variant, rule.methods[-1])
            if actor is not None:
                url = reverse(name, args=rule.args(scenario, variant))
                yield name, rule, variant, url, actor
                break


class Probe:
    """Sends requests in a rolled-back savepoint each, counting them and the server errors."""

    def __init__(self, scenario):
        self.scenario = scenario
        self.tried = 0
        self.errors: list[str] = []
        self.statuses = Counter()

    def send(self, label: str, actor: str, method: str, url: str, **kwargs) -> None:
        self.tried += 1
        with rolled_back():
            client = self.scenario.client(actor)
            response = getattr(client, method.lower())(url, **kwargs)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.errors.append(f"{label}: {response.status_code}")


def _rotated(values: list, offset: int, count: int = 2) -> list:
    """`count` of the values, a different pair for each field: together the fields of a form get
    all of them, at a fraction of the requests."""
    return [values[(offset + k) % len(values)] for k in range(count)]


def _is_text(value) -> bool:
    return isinstance(value, str)


def test_no_hostile_value_in_any_filter_or_form_field_causes_a_server_error(
    trust_scenario, trust_figures
):
    s = trust_scenario
    probe = Probe(s)
    for index, (name, rule, variant, url, actor) in enumerate(_targets(s)):
        # Any URL: a query string that is not UTF-8, or not even a query string.
        for raw in RAW_QUERIES if rule.filters else RAW_QUERIES[1:3]:
            probe.send(f"GET {name} ?{raw!r}", actor, "GET", url, QUERY_STRING=raw)
        if "GET" in rule.methods and rule.filters:
            # Every corpus value in every filter at once (filters are read independently)...
            for value in CORPUS + [MEGABYTE]:
                data = {name_: value for name_ in rule.filters}
                probe.send(f"GET {name} all filters={value[:20]!r}", actor, "GET", url, data=data)
            # ...and each filter alone, given twice (a list where one value is expected).
            for offset, filter_name in enumerate(rule.filters):
                for value in _rotated(PER_FIELD, offset):
                    data = {filter_name: [value, "second value"]}
                    probe.send(
                        f"GET {name} {filter_name}={value[:20]!r}", actor, "GET", url, data=data
                    )
        if "POST" not in rule.methods:
            continue
        valid = rule.payload(s, variant)
        if not valid:  # a form-less POST still parses its body
            for body, content_type in BODIES[:3]:
                probe.send(
                    f"POST {name} body={body[:20]!r}",
                    actor,
                    "POST",
                    url,
                    data=body,
                    content_type=content_type,
                )
            continue
        # Every field at once: each corpus value reaches every other form, alternating.
        for value in CORPUS[index % 2 :: 2]:
            data = {field: value for field in valid}
            probe.send(f"POST {name} every field={value[:20]!r}", actor, "POST", url, data=data)
        # Each field alone, the others valid, so an early check cannot shield a later field.
        for offset, (field, good) in enumerate(valid.items()):
            for value in _rotated(PER_FIELD, offset) + ([MEGABYTE] if _is_text(good) else []):
                data = {**valid, field: value}
                probe.send(f"POST {name} {field}={value[:20]!r}", actor, "POST", url, data=data)
        for body, content_type in BODIES:
            probe.send(
                f"POST {name} body={body[:20]!r} as {content_type}",
                actor,
                "POST",
                url,
                data=body,
                content_type=content_type,
            )
    trust_figures(
        "malformed input (corpus)",
        inputs_tried=probe.tried,
        server_errors=len(probe.errors),
        refused_400=probe.statuses[400],
    )
    assert not probe.errors, "\n".join(probe.errors)


HYPOTHESIS_FIGURES = Counter()
VALUES = st.one_of(
    st.text(max_size=300),
    st.integers().map(str),
    st.floats().map(str),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
)


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_invented_value_causes_a_server_error(trust_scenario, trust_figures, data):
    s = trust_scenario
    targets = [t for t in _targets(s) if t[1].filters or "POST" in t[1].methods]
    name, rule, variant, url, actor = data.draw(st.sampled_from(targets), label="url")
    method = "POST" if "POST" in rule.methods else "GET"
    fields = list(rule.payload(s, variant)) if method == "POST" else list(rule.filters)
    base = rule.payload(s, variant) if method == "POST" else {}
    chosen = data.draw(st.lists(st.sampled_from(fields or ["text"]), min_size=1, max_size=4))
    values = {field: data.draw(VALUES, label=field) for field in chosen}
    # Text that cannot be encoded as UTF-8 (lone surrogates) never leaves a browser either.
    values = {k: v.encode("utf-8", "replace").decode() for k, v in values.items()}
    probe = Probe(s)
    probe.send(f"{method} {name} {values!r:.200}", actor, method, url, data={**base, **values})
    HYPOTHESIS_FIGURES["inputs_tried"] += 1
    HYPOTHESIS_FIGURES["server_errors"] += len(probe.errors)
    trust_figures("malformed input (hypothesis)", echo=False, **HYPOTHESIS_FIGURES)
    assert not probe.errors, probe.errors
