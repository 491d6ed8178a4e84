"""Quality prompts for action items: nudges, never blocks.

A good action item changes the system (a check, an alert, a guard rail, a runbook), names who
looks after it and by when, and says what "done" looks like. Items that ask a person to try
harder ("be more careful", "retrain Sam") put the fix in someone's head instead of the system,
and vague ones ("investigate", "improve monitoring") never quite finish. The lexicon is data:
add a row to widen it, and a test beside it.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

# The kinds of prompt, also used as CSS hooks and in tests.
TARGETS_PERSON = "targets_person"
VAGUE = "vague"
NO_OWNER = "no_owner"
NO_DUE_DATE = "no_due_date"
TOO_SHORT = "too_short"

PERSON_REASON = (
    "This asks a person to behave differently. People were already trying to do a good job; "
    "a change to the system (a check, an alert, a safer default) outlasts a promise to try harder."
)
PERSON_SUGGESTION = "What could make the right action easier, or the wrong one harder, for anyone?"

# Retraining a model is engineering, not blame: "retrain the anomaly detection model".
NOT_PEOPLE = (
    r"[^.\n]{0,40}\b(?:models?|classifiers?|detectors?|networks?|embeddings?|indexes|index)\b"
)

# (pattern, reason, suggestion). Patterns are case-insensitive regular expressions; `{who}` is a
# word that names someone (any word, as in "retrain Sam" or "remind the team").
PERSON_LEXICON: list[tuple[str, str, str]] = [
    (
        r"\bbe (?:more|extra) (?:careful|vigilant|diligent|cautious)\b",
        PERSON_REASON,
        PERSON_SUGGESTION,
    ),
    (r"\bpay (?:more |closer |better )?attention\b", PERSON_REASON, PERSON_SUGGESTION),
    (
        r"\bdouble[- ]check(?:s|ed|ing)?\b",
        PERSON_REASON,
        "Could a tool or a pipeline step do the check, every time, for everyone?",
    ),
    (
        r"\bre-?train(?:s|ed|ing)? (?!" + NOT_PEOPLE + "){who}",
        PERSON_REASON,
        "If knowledge was missing, what would make it easy to find at the moment it is needed "
        "(a runbook link in the alert, a guard in the tool)?",
    ),
    (r"\bremind(?:s|ed|ing)? {who} to\b", PERSON_REASON, PERSON_SUGGESTION),
    (r"\btell(?:s|ing)? {who} (?:not to|to stop|never)\b", PERSON_REASON, PERSON_SUGGESTION),
    (r"\b(?:don't|do not|never) forget\b", PERSON_REASON, PERSON_SUGGESTION),
    (
        r"\bmake sure (?:to|that (?:he|she|they|you|we|everyone|engineers?))\b",
        PERSON_REASON,
        PERSON_SUGGESTION,
    ),
    (
        r"\b(?:he|she|they|you|someone|somebody|everyone|engineers?|the engineer|developers?|"
        r"operators?|on-?call(?: engineers?)?|the team|staff|people) (?:should|must|needs? to)\b",
        PERSON_REASON,
        PERSON_SUGGESTION,
    ),
]
# Up to three words for whoever is named: "Sam", "the on-call", "the new hires".
WHO = r"(?:the |our |all |every )?[\w'’.-]+(?: [\w'’.-]+)?"

VAGUE_REASON = (
    "This says where to start but not when it is finished, so it tends to stay open forever."
)
VAGUE_SUGGESTION = (
    "Name the outcome: what will exist or be different when this is done? "
    "(e.g. “Alert when replica lag exceeds 30 s for 5 min”.)"
)
# Vague verbs are only flagged in the title: a description may well explain what to look into.
VAGUE_LEXICON: list[tuple[str, str, str]] = [
    (r"\binvestigat(?:e|es|ing|ion)\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\blook(?:s|ing)? into\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\bimprov(?:e|es|ing)\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\bfix(?:es)? (?:it|this|that|the (?:issue|problem|bug))\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\b(?:think|thinking) about\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\bconsider(?:s|ing)?\b", VAGUE_REASON, VAGUE_SUGGESTION),
    (r"\bfollow(?:[- ]up)? on\b", VAGUE_REASON, VAGUE_SUGGESTION),
]

MIN_TITLE_WORDS = 4

# How each kind of prompt is labelled on the page.
LABELS = {
    TARGETS_PERSON: "Aimed at a person",
    VAGUE: "Vague",
    TOO_SHORT: "Too short",
    NO_OWNER: "No owner",
    NO_DUE_DATE: "No due date",
}


@dataclass(frozen=True)
class Prompt:
    kind: str  # one of the module constants above
    phrase: str  # the words that triggered it ("" for missing owner/due date)
    message: str  # what the prompt says, in one or two sentences
    suggestion: str  # a question or reframing to consider

    @property
    def label(self) -> str:
        return LABELS.get(self.kind, self.kind)

    @property
    def is_about_wording(self) -> bool:
        return self.kind in (TARGETS_PERSON, VAGUE, TOO_SHORT)


def _compile(lexicon: list[tuple[str, str, str]]) -> list[tuple[re.Pattern, str, str]]:
    return [
        (re.compile(pattern.replace("{who}", WHO), re.IGNORECASE), reason, suggestion)
        for pattern, reason, suggestion in lexicon
    ]


_PERSON = _compile(PERSON_LEXICON)
_VAGUE = _compile(VAGUE_LEXICON)


def _name_patterns(names: Iterable[str]) -> list[re.Pattern]:
    """ "Sam should…", "Sam needs to…": a named person as the one who must change."""
    patterns = []
    for name in {n.strip() for n in names if n and len(n.strip()) > 1}:
        patterns.append(
            re.compile(rf"\b{re.escape(name)}\b (?:should|must|needs? to)\b", re.IGNORECASE)
        )
    return patterns


def _first_names(names: Iterable[str]) -> list[str]:
    result = []
    for name in names:
        if not name:
            continue
        result.append(name)
        first = name.split()[0]
        if first != name:
            result.append(first)
    return result


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+", text)


def check_wording(title: str, description: str = "", names: Iterable[str] = ()) -> list[Prompt]:
    """Prompts about how the item is worded: aimed at a person, vague, or too short."""
    prompts: list[Prompt] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, phrase: str, reason: str, suggestion: str) -> None:
        key = (kind, phrase.lower())
        if key not in seen:
            seen.add(key)
            prompts.append(Prompt(kind, phrase, reason, suggestion))

    text = f"{title}\n{description}"
    for pattern, reason, suggestion in _PERSON:
        for match in pattern.finditer(text):
            add(TARGETS_PERSON, match.group(0), reason, suggestion)
    for pattern in _name_patterns(_first_names(names)):
        for match in pattern.finditer(text):
            add(TARGETS_PERSON, match.group(0), PERSON_REASON, PERSON_SUGGESTION)
    for pattern, reason, suggestion in _VAGUE:
        for match in pattern.finditer(title):
            add(VAGUE, match.group(0), reason, suggestion)
    if title.strip() and len(_words(title)) < MIN_TITLE_WORDS:
        add(
            TOO_SHORT,
            title.strip(),
            f"A title of fewer than {MIN_TITLE_WORDS} words rarely says what will change.",
            "Say what will exist or be different when this is done, and where.",
        )
    return prompts


def check_action_item(
    *,
    title: str,
    description: str = "",
    owner_id: int | None = None,
    due_on: date | None = None,
    names: Iterable[str] = (),
) -> list[Prompt]:
    """Every quality prompt for one action item. Nudges only: nothing here blocks saving."""
    prompts = check_wording(title, description, names)
    if owner_id is None:
        prompts.append(
            Prompt(
                NO_OWNER,
                "",
                "Nobody owns this item yet. Items without an owner are rarely done.",
                "Who is best placed to look after it? They can always hand it on, with a reason.",
            )
        )
    if due_on is None:
        prompts.append(
            Prompt(
                NO_DUE_DATE,
                "",
                "There is no due date, so no reminder will be sent and it can't become overdue.",
                "When would it be reasonable to have this done?",
            )
        )
    return prompts
