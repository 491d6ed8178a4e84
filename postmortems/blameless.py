"""Blameless-language prompts. Interface fixed; the lexicon and matching are filled in by the
timeline work (issue 3)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    phrase: str  # the words as written
    start: int  # offset in the text
    end: int
    reason: str  # why this phrasing may carry hindsight or blame
    suggestion: str  # a reframing to consider


def check(text: str) -> list[Finding]:
    return []
