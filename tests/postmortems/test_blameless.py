import pytest
from hypothesis import given
from hypothesis import strategies as st

from postmortems import blameless

FLAGGED = [
    ("I should have checked the replica lag first.", "should have checked"),
    ("Bob should have known better.", "should have known"),
    ("Should've waited for the canary.", "Should've"),
    ("We could have caught this in staging.", "could have caught"),
    ("I failed to page the database team.", "failed to"),
    ("She failed to follow the runbook.", "failed to"),
    ("Failed to notice the alert in the channel.", "Failed to"),
    ("I restarted the pod and failed to check the logs.", "failed to"),
    ("The on-call failed to acknowledge the page.", "failed to"),
    ("Priya failed to roll back.", "failed to"),
    ("I didn't notice the second alert.", "didn't notice"),
    ("We did not notice the disk filling up.", "did not notice"),
    ("Obviously the config was wrong.", "Obviously"),
    ("It was obvious that the pool was exhausted.", "obvious"),
    ("The graph clearly showed errors.", "clearly"),
    ("It was a careless change.", "careless"),
    ("Root cause: human error.", "human error"),
    ("Why didn't you roll back?", "Why didn't you"),
    ("Why didn't Sam say something?", "Why didn't Sam"),
    ("If only we had waited for the canary.", "If only"),
    ("I just restarted the service.", "just"),
    ("You can simply flip the flag.", "simply"),
    ("That was negligent.", "negligent"),
    ("A lazy fix.", "lazy"),
    ("I forgot to update the DNS record.", "forgot to"),
    ("The outage happened because Priya merged the change.", "because Priya"),
    ("It was Dave's mistake.", "Dave's mistake"),
    ("Tom caused the outage.", "Tom caused"),
    ("It was his fault.", "his fault"),
]

NOT_FLAGGED = [
    "The health check failed to connect to the replica.",
    "The deploy failed to complete within the timeout.",
    "It failed to start after the upgrade.",
    "Kubernetes failed to schedule the pod.",
    "Monitoring failed to alert us.",
    "Alerts failed to fire.",
    "The job retried and failed to connect.",
    "The endpoint returned 200 as expected.",
    "We rely on just-in-time compilation.",
    "The API has clearly-defined limits.",
    "Lazy loading of images was enabled.",
    "The service uses lazy evaluation.",
    "The job should have finished by 10:05.",
    "The pool should have three connections.",
    "I thought the cache could have expired.",
    "It could have been much worse.",
    "Why didn't the alert fire?",
    "It pages only if only one replica is healthy.",
    "I joined just before 10:00.",
    "Latency was just under 200 ms.",
    "It was not just the API but also the worker.",
    "The outage happened because Postgres ran out of connections.",
    "Errors increased because Monday traffic peaked.",
    "Simply put, the queue was full.",
    "I rolled back the deploy at 10:02 and saw errors drop.",
    "Retries caused the thundering herd.",
    "The primary's fault detector caused a failover.",
    "",
]


@pytest.mark.parametrize(("text", "phrase"), FLAGGED)
def test_hindsight_and_blame_are_pointed_out(text, phrase):
    findings = blameless.check(text)

    assert [f.phrase for f in findings] == [phrase]
    finding = findings[0]
    assert text[finding.start : finding.end] == phrase
    assert finding.reason and finding.suggestion


@pytest.mark.parametrize("text", NOT_FLAGGED)
def test_ordinary_technical_sentences_are_left_alone(text):
    assert blameless.check(text) == []


def test_there_are_at_least_fifteen_cases_each_way():
    assert len(FLAGGED) >= 15 and len(NOT_FLAGGED) >= 15


def test_findings_come_in_text_order_with_offsets():
    text = "Obviously I should have paged Bob. I just forgot to."

    findings = blameless.check(text)

    assert [f.phrase for f in findings] == ["Obviously", "should have paged", "just", "forgot to"]
    assert all(text[f.start : f.end] == f.phrase for f in findings)
    assert [f.start for f in findings] == sorted(f.start for f in findings)


def test_overlapping_patterns_give_one_nudge_per_stretch_of_words():
    findings = blameless.check("I failed to notice the page.")

    assert len(findings) == 1


def test_the_suggestion_asks_what_made_it_look_reasonable():
    (finding,) = blameless.check("I should have checked.")

    assert "reasonable at the time" in finding.suggestion


def test_the_lexicon_is_data_with_a_reason_and_suggestion_for_each_pattern():
    assert len(blameless.LEXICON) >= 15
    names = {pattern.name for pattern in blameless.LEXICON}
    assert {"should have", "failed to", "human error", "just", "named cause"} <= names
    assert all(pattern.reason and pattern.suggestion for pattern in blameless.LEXICON)


def test_input_beyond_the_cap_is_not_read():
    text = "x" * blameless.MAX_CHARS + " obviously"

    assert blameless.check(text) == []


@given(st.text(max_size=400))
def test_any_text_gives_findings_that_point_into_it(text):
    for finding in blameless.check(text):
        assert text[finding.start : finding.end] == finding.phrase
