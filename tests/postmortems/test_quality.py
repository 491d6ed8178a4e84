"""The action-item quality prompts: true positives, and the honest items they leave alone."""

from datetime import date

import pytest

from postmortems import quality


def kinds(title: str, description: str = "", names=()) -> set[str]:
    return {prompt.kind for prompt in quality.check_wording(title, description, names)}


@pytest.mark.parametrize(
    "title",
    [
        "Be more careful when deploying on Fridays",
        "Everyone to be extra vigilant during the freeze",
        "Retrain Andy on the failover runbook",
        "Retraining the support team on escalation paths",
        "Double-check the config before merging",
        "Double check replica settings after each failover",
        "Pay more attention to the lag dashboards",
        "Remind Sam to run the migration checklist",
        "Remind the on-call to acknowledge pages within five minutes",
        "Tell the new hires not to restart the primary",
        "Engineers should read the runbook before failing over",
        "The on-call engineer must watch the replication graph",
        "Don't forget to drain the node before rebooting it",
    ],
)
def test_items_that_ask_a_person_to_try_harder_are_flagged(title):
    assert quality.TARGETS_PERSON in kinds(title)


def test_a_named_person_who_should_do_better_is_flagged():
    assert quality.TARGETS_PERSON in kinds(
        "Andy should review every schema change by hand", names=["Andy Engineer"]
    )


def test_the_description_is_read_for_person_targeting_too():
    prompts = kinds("Add a lock-timeout check to the migration pipeline", "Tell Mei not to run it")
    assert quality.TARGETS_PERSON in prompts


@pytest.mark.parametrize(
    "title",
    [
        "Investigate the replica lag",
        "Look into flaky deploys on the checkout service",
        "Improve monitoring of the payments queue",
        "Fix it before the next release",
        "Follow up on the cache eviction behaviour",
    ],
)
def test_vague_items_are_flagged(title):
    assert quality.VAGUE in kinds(title)


@pytest.mark.parametrize("title", ["Fix it", "Add alert", "Monitoring"])
def test_titles_of_fewer_than_four_words_are_flagged(title):
    assert quality.TOO_SHORT in kinds(title)


@pytest.mark.parametrize(
    "title",
    [
        "Alert when replica lag exceeds 30 seconds for 5 minutes",
        "Add a pre-deploy check that blocks migrations without a lock timeout",
        "Document the failover runbook and link it from the lag alert",
        "The deploy pipeline should refuse migrations that lock tables",
        "Retrain the anomaly detection model on last quarter's traffic",
        "Page the database on-call when failover starts",
        "Make the load balancer drain connections before a restart",
    ],
)
def test_concrete_system_changes_get_no_wording_prompt(title):
    assert kinds(title, names=["Andy Engineer", "Sam"]) == set()


def test_vague_words_in_the_description_alone_are_fine():
    # A description may well say what to look into; the title says what will change.
    assert (
        kinds("Alert when replica lag exceeds 30 seconds", "Investigate the right threshold first.")
        == set()
    )


def test_missing_owner_and_due_date_are_prompted():
    prompts = quality.check_action_item(
        title="Alert when replica lag exceeds 30 seconds", owner_id=None, due_on=None
    )
    assert {prompt.kind for prompt in prompts} == {quality.NO_OWNER, quality.NO_DUE_DATE}


def test_a_good_item_with_owner_and_due_date_has_no_prompts():
    prompts = quality.check_action_item(
        title="Alert when replica lag exceeds 30 seconds",
        description="Use the existing lag metric; page the database on-call.",
        owner_id=7,
        due_on=date(2026, 12, 1),
    )
    assert prompts == []


def test_every_prompt_has_a_label_a_message_and_a_suggestion():
    prompts = quality.check_action_item(title="Be more careful", owner_id=None, due_on=None)
    assert prompts
    for prompt in prompts:
        assert prompt.label and prompt.message and prompt.suggestion


def test_the_same_phrase_is_reported_once():
    prompts = quality.check_wording("Double-check, double-check and double-check again")
    assert [p.phrase.lower() for p in prompts if p.kind == quality.TARGETS_PERSON] == [
        "double-check"
    ]
